"""Audit: who did what, as kube-apiserver records it (`--audit-policy-file`, `--audit-log-path`).

The policy file is the real `audit.k8s.io/v1` Policy: rules tried in order, the first that
matches a request (by user, group, verb, resource/subresource and name, namespace, or
non-resource URL) gives its level — None, Metadata, Request (plus the request body) or
RequestResponse (plus the response body); a request no rule matches is not audited. Stages
(RequestReceived, ResponseStarted for long-running requests, ResponseComplete, Panic) can be
left out per rule or for the whole policy with `omitStages`.

Events are `audit.k8s.io/v1` Event objects, one JSON line each, appended to the log file, which
is rotated by size (`--audit-log-maxsize` MB) keeping `--audit-log-maxbackup` old files and
dropping those older than `--audit-log-maxage` days, the names kube's log backend gives them
(`audit-2026-11-27T07-05-48.123.log`).

Admission adds annotations to the request's event (`add_annotation`, kube's
`audit.AddAuditAnnotation`), e.g. ValidatingAdmissionPolicy's `validation_failure` and
auditAnnotations: the event's `annotations` map, from the first stage emitted after they were
added. They reach the request's admission through a context variable the middleware sets, as
kube's travel in the request context.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import orjson
import yaml
from aiohttp import web

from pykube_server.apiserver import authn
from pykube_server.apiserver.negotiation import content_type_of, decode_body
from pykube_server.apiserver.requestinfo import RequestInfo, parse_request_info

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
LONG_RUNNING_SUBRESOURCES = {"log", "exec", "attach", "portforward", "proxy"}
POLICY_KINDS = {("audit.k8s.io/v1", "Policy"), ("audit.k8s.io/v1beta1", "Policy")}


class PolicyError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class GroupResources:
    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()

    def matches(self, info: RequestInfo) -> bool:
        if self.group != "*" and self.group != info.group:
            return False
        if self.resources:
            combined = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
            if not any(_resource_matches(pattern, info.resource, info.subresource, combined) for pattern in self.resources):
                return False
        return not self.resource_names or info.name in self.resource_names


def _resource_matches(pattern: str, resource: str, subresource: str, combined: str) -> bool:
    """kube's rule: `pods` matches pods only, `pods/log` that subresource, `pods/*` the
    resource and all its subresources, `*/status` any status, `*` everything."""
    if pattern in ("*", combined):
        return True
    if pattern.endswith("/*") and pattern[:-2] == resource:
        return True
    return bool(pattern.startswith("*/") and subresource and pattern[2:] == subresource)


@dataclass(frozen=True, slots=True)
class Rule:
    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool | None = None

    def matches(self, user: authn.UserInfo, info: RequestInfo) -> bool:
        if self.users and user.username not in self.users:
            return False
        if self.user_groups and not set(self.user_groups) & set(user.groups):
            return False
        if self.verbs and info.verb not in self.verbs:
            return False
        if info.resource_request:
            if self.non_resource_urls:
                return False
            if self.namespaces and info.namespace not in self.namespaces:
                return False
            return not self.resources or any(gr.matches(info) for gr in self.resources)
        if self.resources or self.namespaces:
            return False
        return not self.non_resource_urls or any(
            info.path == url or (url.endswith("*") and info.path.startswith(url[:-1])) for url in self.non_resource_urls)


@dataclass(frozen=True, slots=True)
class Policy:
    rules: tuple[Rule, ...]
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool = False

    def decide(self, user: authn.UserInfo, info: RequestInfo) -> tuple[str, frozenset[str], bool]:
        """(level, stages to leave out, leave out managedFields) for a request."""
        for rule in self.rules:
            if rule.matches(user, info):
                omit_mf = self.omit_managed_fields if rule.omit_managed_fields is None else rule.omit_managed_fields
                return rule.level, frozenset(self.omit_stages) | frozenset(rule.omit_stages), omit_mf
        return "None", frozenset(), False


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{where}: must be a list of strings")
    return tuple(value)


def _stages(value: Any, where: str) -> tuple[str, ...]:
    stages = _strings(value, where)
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise PolicyError(f'{where}: Unsupported value: "{bad[0]}": supported values: {_quoted(STAGES)}')
    return stages


def _quoted(values: tuple[str, ...]) -> str:
    return ", ".join(f'"{v}"' for v in values)


def load_policy(path: str | Path) -> Policy:
    doc = yaml.safe_load(Path(path).read_text())
    if not isinstance(doc, dict) or (doc.get("apiVersion"), doc.get("kind")) not in POLICY_KINDS:
        raise PolicyError(f"{path}: not an audit.k8s.io/v1 Policy")
    rules = []
    for i, raw in enumerate(doc.get("rules") or []):
        where = f"rules[{i}]"
        level = (raw or {}).get("level")
        if level not in LEVELS:
            raise PolicyError(f'{where}.level: Unsupported value: "{level}": supported values: {_quoted(LEVELS)}')
        resources = tuple(GroupResources(str(gr.get("group", "")), _strings(gr.get("resources"), f"{where}.resources"),
                                         _strings(gr.get("resourceNames"), f"{where}.resourceNames"))
                          for gr in raw.get("resources") or [])
        rules.append(Rule(level, _strings(raw.get("users"), f"{where}.users"),
                          _strings(raw.get("userGroups"), f"{where}.userGroups"),
                          _strings(raw.get("verbs"), f"{where}.verbs"), resources,
                          _strings(raw.get("namespaces"), f"{where}.namespaces"),
                          _strings(raw.get("nonResourceURLs"), f"{where}.nonResourceURLs"),
                          _stages(raw.get("omitStages"), f"{where}.omitStages"), raw.get("omitManagedFields")))
    return Policy(tuple(rules), _stages(doc.get("omitStages"), "omitStages"), bool(doc.get("omitManagedFields")))


class LogBackend:
    """JSON lines to a file (or `-`: standard output), rotated by size like kube's."""

    def __init__(self, path: str, *, max_size_mb: int = 0, max_backups: int = 0, max_age_days: int = 0) -> None:
        self.path = path
        self.max_bytes = max_size_mb * 1024 * 1024
        self.max_backups, self.max_age_days = max_backups, max_age_days
        self._file: TextIO | None = None
        self._size = 0

    def _open(self) -> TextIO:
        if self._file is None:
            if self.path == "-":
                self._file = sys.stdout
            else:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open
                self._size = os.path.getsize(self.path)
        return self._file

    def write(self, event: dict[str, Any]) -> None:
        line = orjson.dumps(event).decode() + "\n"
        f = self._open()
        if self.max_bytes and self.path != "-" and self._size + len(line) > self.max_bytes and self._size:
            self._rotate()
            f = self._open()
        f.write(line)
        f.flush()
        self._size += len(line)

    def _rotate(self) -> None:
        assert self._file is not None
        self._file.close()
        self._file = None
        base = Path(self.path)
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H-%M-%S.%f")[:-3]
        base.rename(base.with_name(f"{base.stem}-{stamp}{base.suffix}"))
        backups = sorted(base.parent.glob(f"{base.stem}-*{base.suffix}"))
        cutoff = dt.datetime.now().timestamp() - self.max_age_days * 86400
        for i, old in enumerate(reversed(backups)):
            if (self.max_backups and i >= self.max_backups) or (self.max_age_days and old.stat().st_mtime < cutoff):
                old.unlink(missing_ok=True)

    def close(self) -> None:
        if self._file is not None and self._file is not sys.stdout:
            self._file.close()
        self._file = None


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _user(user: authn.UserInfo) -> dict[str, Any]:
    return dict(user.to_status())


def _object_ref(info: RequestInfo) -> dict[str, Any] | None:
    if not info.resource_request or not info.resource:
        return None
    ref: dict[str, Any] = {"resource": info.resource}
    if info.namespace:
        ref["namespace"] = info.namespace
    if info.name:
        ref["name"] = info.name
    if info.group:
        ref["apiGroup"] = info.group
    if info.version:
        ref["apiVersion"] = info.version
    if info.subresource:
        ref["subresource"] = info.subresource
    return ref


_REF_ORDER = ("resource", "namespace", "name", "uid", "apiGroup", "apiVersion", "resourceVersion", "subresource")
"""audit.k8s.io ObjectReference's fields in the order kube writes them."""


def _completed_ref(ref: dict[str, Any], obj: Any) -> dict[str, Any]:
    """The objectRef with what the request's object names filled in where the URL did not, as
    kube's LogRequestObject does for creates and updates (a create's name, an update's uid and
    resourceVersion)."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        return ref
    filled = dict(ref)
    for key in ("namespace", "name", "uid", "resourceVersion"):
        value = meta.get(key)
        if not filled.get(key) and isinstance(value, str) and value:
            filled[key] = value
    return {k: filled[k] for k in _REF_ORDER if filled.get(k)}


def _body(data: bytes, omit_managed_fields: bool, content_type: str = "application/json") -> Any:
    """A request or response body as the JSON object kube logs (protobuf and YAML decoded)."""
    try:
        obj = decode_body(data, content_type_of(content_type))
    except Exception:
        return None
    if omit_managed_fields and isinstance(obj, dict):
        for item in [obj, *(obj.get("items") or [])]:
            if isinstance(item, dict) and isinstance(item.get("metadata"), dict):
                item["metadata"].pop("managedFields", None)
    return obj


@dataclass
class _Record:
    base: dict[str, Any]
    info: RequestInfo
    level: str
    omit: frozenset[str]
    omit_managed_fields: bool
    started: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


RECORD: web.RequestKey[_Record] = web.RequestKey("audit", _Record)
_ANNOTATIONS: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("audit_annotations", default=None)


def add_annotation(key: str, value: str) -> None:
    """Annotate the audit event of the request being served (nothing when it is not audited,
    or audited below Metadata, as kube's admission annotations)."""
    annotations = _ANNOTATIONS.get()
    if annotations is not None:
        annotations[key] = value


class Auditor:
    def __init__(self, policy: Policy, backend: LogBackend) -> None:
        self.policy, self.backend = policy, backend

    def _emit(self, record: _Record, stage: str, **fields: Any) -> None:
        if stage in record.omit:
            return
        event = {**record.base, "stage": stage, **fields, "stageTimestamp": _now()}
        if record.annotations:
            event["annotations"] = dict(record.annotations)
        self.backend.write(event)

    def middleware(self) -> Callable[..., Awaitable[web.StreamResponse]]:
        @web.middleware
        async def audit(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
            user = request.get(authn.USER) or authn.ANONYMOUS
            info = parse_request_info(request.method, request.path, dict(request.query))
            level, omit, omit_mf = self.policy.decide(user, info)
            if level == "None":
                return await handler(request)
            base: dict[str, Any] = {
                "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": level, "auditID": str(uuid.uuid4()),
                "requestURI": request.path_qs, "verb": info.verb, "user": _user(user),
                "sourceIPs": [request.remote or ""], "userAgent": request.headers.get("User-Agent", ""),
            }
            ref = _object_ref(info)
            if ref is not None:
                base["objectRef"] = ref
            base["requestReceivedTimestamp"] = _now()
            record = _Record(base, info, level, omit, omit_mf)
            request[RECORD] = record
            self._emit(record, "RequestReceived")
            token = _ANNOTATIONS.set(record.annotations)
            try:
                response = await handler(request)
            except BaseException as exc:
                if not isinstance(exc, web.HTTPException):
                    self._finish(request, record, 500, "Panic")
                raise
            finally:
                _ANNOTATIONS.reset(token)
            if request.get(authn.USER) not in (None, user):  # impersonated in dispatch
                record.base["impersonatedUser"] = _user(request[authn.USER])
            await self._complete(request, record, response)
            return response

        return audit

    async def on_prepare(self, request: web.Request, response: web.StreamResponse) -> None:
        """aiohttp's response-prepare signal: long-running requests get ResponseStarted."""
        record = request.get(RECORD)
        if record is None or record.started:
            return
        if _long_running(record.info) and response.status < 300:
            record.started = True
            self._emit(record, "ResponseStarted", responseStatus={"metadata": {}, "code": response.status})

    async def _complete(self, request: web.Request, record: _Record, response: web.StreamResponse) -> None:
        fields: dict[str, Any] = {}
        logs_body = record.level in ("Request", "RequestResponse")
        completes_ref = request.method != "PATCH" and "objectRef" in record.base  # a patch is not an object
        if request.method in ("POST", "PUT", "PATCH") and (logs_body or completes_ref) \
                and record.info.resource_request and not _long_running(record.info):
            body = _body(await request.read(), record.omit_managed_fields,  # the handler's read, cached
                         request.headers.get("Content-Type", "application/json"))
            if completes_ref:
                record.base["objectRef"] = _completed_ref(record.base["objectRef"], body)
            if body is not None and logs_body:
                fields["requestObject"] = body
        if record.level == "RequestResponse" and isinstance(response, web.Response) and response.body is not None \
                and not record.started and response.content_type != "text/plain":
            body = _body(bytes(response.body), record.omit_managed_fields, response.content_type)  # type: ignore[arg-type]
            if body is not None:
                fields["responseObject"] = body
        status: dict[str, Any] = {"metadata": {}, "code": response.status}
        if response.status >= 400 and isinstance(response, web.Response) and response.body:
            err = _body(bytes(response.body), False)  # type: ignore[arg-type]
            if isinstance(err, dict) and err.get("kind") == "Status":
                status.update({k: err[k] for k in ("status", "message", "reason", "details") if k in err})
        self._emit(record, "ResponseComplete", responseStatus=status, **fields)

    def _finish(self, request: web.Request, record: _Record, code: int, stage: str) -> None:
        self._emit(record, stage, responseStatus={"metadata": {}, "status": "Failure",
                                                   "message": "APIServer panic'd", "code": code})


def _long_running(info: RequestInfo) -> bool:
    return info.verb == "watch" or info.subresource in LONG_RUNNING_SUBRESOURCES


def from_settings(policy_file: str, log_path: str, *, max_size_mb: int = 0, max_backups: int = 0,
                  max_age_days: int = 0) -> Auditor | None:
    """The auditor kube-apiserver's flags describe; None when auditing is off (no policy or
    no log path, as kube does)."""
    if not policy_file or not log_path:
        return None
    return Auditor(load_policy(policy_file), LogBackend(log_path, max_size_mb=max_size_mb, max_backups=max_backups,
                                                        max_age_days=max_age_days))
