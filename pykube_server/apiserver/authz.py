"""Authorization: the seam between "who is asking" and "may they do this".

kube-apiserver asks a chain of authorizers (`--authorization-mode=Node,RBAC`) about a request's
attributes. Each answers allow, deny or no-opinion with a reason; the first allow or deny
decides, and when every authorizer has no opinion the request is forbidden. Members of
`system:masters` are allowed before the chain is consulted. We keep that shape so RBAC can
replace `AlwaysAllow` behind the same `Authorizer` protocol without touching the HTTP layer.

The 403 texts are kube's, byte for byte, because kubectl prints them verbatim
(`Error from server (Forbidden): pods "p" is forbidden: User "alice" cannot get ...`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from pykube_server.api.errors import Forbidden, qualified_resource
from pykube_server.apiserver.authn import UserInfo

PRIVILEGED_GROUP = "system:masters"


class Decision(enum.StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    NO_OPINION = "no-opinion"


@dataclass(frozen=True, slots=True)
class RequestAttributes:
    """What is being asked (`authorizer.Attributes`).

    For a resource request (`resource_request=True`) the resource fields are set and `path` is
    informational; for a non-resource request (`/healthz`, `/api`, `/version`) only `verb`
    (the lower-cased HTTP method: get, post, put, ...) and `path` matter.
    """

    user: UserInfo
    verb: str
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""
    resource_request: bool = False


class Authorizer(Protocol):
    async def authorize(self, attributes: RequestAttributes) -> tuple[str, str]:
        """Decide on `attributes`: `(Decision, reason)`.

        Must not mutate anything and is safe to call concurrently and repeatedly. `reason` is
        appended to the 403 message when non-empty. Errors are raised, never turned into a
        decision; the caller answers 500 for them (kube answers 500 on authorizer errors).
        """
        ...


class AlwaysAllow:
    """`--authorization-mode=AlwaysAllow`: the default until RBAC lands."""

    async def authorize(self, attributes: RequestAttributes) -> tuple[str, str]:
        return Decision.ALLOW, ""


class AlwaysDeny:
    """`--authorization-mode=AlwaysDeny`; useful in tests of the 403 path."""

    async def authorize(self, attributes: RequestAttributes) -> tuple[str, str]:
        return Decision.NO_OPINION, "Everything is forbidden."


class PrivilegedGroups:
    """Allows members of the given groups outright (kube's `system:masters` short-circuit)."""

    def __init__(self, groups: Iterable[str] = (PRIVILEGED_GROUP,)) -> None:
        self._groups = frozenset(groups)

    async def authorize(self, attributes: RequestAttributes) -> tuple[str, str]:
        if self._groups.intersection(attributes.user.groups):
            return Decision.ALLOW, ""
        return Decision.NO_OPINION, ""


class AuthorizerChain:
    """First allow or deny wins; all no-opinion is no-opinion. Reasons of abstainers are joined."""

    def __init__(self, *authorizers: Authorizer) -> None:
        self._authorizers = authorizers

    async def authorize(self, attributes: RequestAttributes) -> tuple[str, str]:
        reasons: list[str] = []
        for authorizer in self._authorizers:
            decision, reason = await authorizer.authorize(attributes)
            if decision != Decision.NO_OPINION:
                return decision, reason
            if reason:
                reasons.append(reason)
        return Decision.NO_OPINION, "\n".join(reasons)


# --- 403 ----------------------------------------------------------------------------------------

# kube HTML-escapes the generated part of the message (user, path, resource come from the client).
_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))


def forbidden_message(attributes: RequestAttributes) -> str:
    """`User "alice" cannot get resource "pods" in API group "" in the namespace "default"`."""
    user = attributes.user.username
    if not attributes.resource_request:
        return f'User "{_go(user)}" cannot {attributes.verb} path "{_go(attributes.path)}"'
    resource = attributes.resource
    if attributes.subresource:
        resource = f"{resource}/{attributes.subresource}"
    head = f'User "{_go(user)}" cannot {attributes.verb} resource "{_go(resource)}" in API group "{_go(attributes.api_group)}"'
    if attributes.namespace:
        return f'{head} in the namespace "{_go(attributes.namespace)}"'
    return f"{head} at the cluster scope"


def forbidden(attributes: RequestAttributes, reason: str = "") -> Forbidden:
    """The 403 error for a denied request, message and details as kube-apiserver builds them.

    `pods "p" is forbidden: <message>`, `pods is forbidden: <message>` without a name, and
    `forbidden: <message>` for non-resource paths (whose details are an empty object).
    """
    message = _escape(forbidden_message(attributes))
    if reason:
        message = f"{message}: {reason}"
    group = attributes.api_group if attributes.resource_request else ""
    resource = attributes.resource if attributes.resource_request else ""
    name = attributes.name if attributes.resource_request else ""
    if not resource and not group:
        prefix = "forbidden"
    elif not name:
        prefix = f"{qualified_resource(resource, group)} is forbidden"
    else:
        prefix = f'{qualified_resource(resource, group)} "{_go(name)}" is forbidden'
    return Forbidden(f"{prefix}: {message}", details=_details(name=name, group=group, kind=resource))


def _details(*, name: str, group: str, kind: str) -> dict[str, Any]:
    # metav1.StatusDetails fields are omitempty, so a non-resource 403 carries `"details":{}`.
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if kind:
        details["kind"] = kind
    return details


def _escape(text: str) -> str:
    for raw, escaped in _ESCAPES:
        text = text.replace(raw, escaped)
    return text


def _go(value: str) -> str:
    """Go's %q for the plain strings that reach these messages: escape backslashes and quotes."""
    return value.replace("\\", "\\\\").replace('"', '\\"')
