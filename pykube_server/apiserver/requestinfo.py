"""URL -> RequestInfo: which verb on which resource a request is, as kube-apiserver reads it.

Mirrors apiserver's `RequestInfoFactory`: `/api/v1/...` is the core group, `/apis/<g>/<v>/...`
the others; `namespaces/<ns>/<resource>/<name>/<subresource>`; `namespaces/<name>/status` and
`/finalize` are subresources of the namespace itself; `GET` without a name is list, or watch
with `?watch=true` (or the legacy `/watch/` prefix).
"""

from __future__ import annotations

from dataclasses import dataclass

NAMESPACE_SUBRESOURCES = {"status", "finalize"}
_READ_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True, slots=True)
class RequestInfo:
    resource_request: bool
    path: str
    verb: str
    """get list watch create update patch delete deletecollection (or the HTTP verb lowercased
    for non-resource requests)."""
    api_prefix: str = ""
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    parts: tuple[str, ...] = ()


def _truthy(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


def parse_request_info(method: str, path: str, query: dict[str, str]) -> RequestInfo:
    parts = [p for p in path.strip("/").split("/") if p]
    if not parts or parts[0] not in ("api", "apis"):
        return RequestInfo(False, path, method.lower())
    prefix = parts[0]
    rest = parts[1:]
    if prefix == "api":
        if not rest:
            return RequestInfo(False, path, method.lower())
        group, version, rest = "", rest[0], rest[1:]
    else:
        if len(rest) < 2:
            return RequestInfo(False, path, method.lower())
        group, version, rest = rest[0], rest[1], rest[2:]
    if not rest:
        return RequestInfo(False, path, method.lower())
    watch_prefix = False
    if rest[0] == "watch":
        watch_prefix, rest = True, rest[1:]
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    verb = _READ_VERBS.get(method, method.lower())
    if watch_prefix:
        verb = "watch"
    elif method in ("GET", "HEAD") and not name:
        verb = "watch" if _truthy(query.get("watch")) else "list"
    elif method == "DELETE" and not name:
        verb = "deletecollection"
    return RequestInfo(
        True, path, verb, prefix, group, version, namespace, resource, subresource, name, tuple(rest[3:])
    )
