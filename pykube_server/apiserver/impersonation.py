"""User impersonation: `kubectl --as=bob --as-group=devs` acting as another user.

kube-apiserver's impersonation filter runs right after authentication. The `Impersonate-User`,
`Impersonate-Group` (repeatable), `Impersonate-Uid` and `Impersonate-Extra-<key>` headers each
need the `impersonate` verb, checked with the *requesting* user's permissions, on:

* `users` <name> (core group), or `serviceaccounts` <name> in <namespace> when the user is
  `system:serviceaccount:<namespace>:<name>`;
* `groups` <name> (core group);
* `userextras/<key>` <value> and `uids` <uid> in `authentication.k8s.io`.

The first refusal is a 403 built from those attributes (`users "bob" is forbidden: User "alice"
cannot impersonate resource "users" in API group "" at the cluster scope`). The request then
runs as the impersonated user: a ServiceAccount without explicit groups gets
`system:serviceaccounts` and `system:serviceaccounts:<ns>`, and everyone but
`system:anonymous` gets `system:authenticated` (anonymous gets `system:unauthenticated`).
"""

from __future__ import annotations

from urllib.parse import unquote

from multidict import CIMultiDictProxy

from pykube_server.api import errors
from pykube_server.apiserver import authz
from pykube_server.apiserver.authn import ANONYMOUS_USER, AUTHENTICATED_GROUP, UNAUTHENTICATED_GROUP, UserInfo

USER_HEADER = "Impersonate-User"
GROUP_HEADER = "Impersonate-Group"
UID_HEADER = "Impersonate-Uid"
EXTRA_PREFIX = "Impersonate-Extra-"
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
AUTH_GROUP = "authentication.k8s.io"


def requested(headers: CIMultiDictProxy[str]) -> bool:
    return any(k.lower().startswith("impersonate-") for k in headers)


def _checks(requester: UserInfo, username: str, groups: list[str], extra: dict[str, list[str]],
            uid: str | None) -> list[authz.RequestAttributes]:
    def attrs(resource: str, name: str, *, namespace: str = "", group: str = "", sub: str = "") -> authz.RequestAttributes:
        return authz.RequestAttributes(user=requester, verb="impersonate", namespace=namespace, api_group=group,
                                       resource=resource, subresource=sub, name=name, resource_request=True)

    out = []
    sa = _service_account(username)
    out.append(attrs("serviceaccounts", sa[1], namespace=sa[0]) if sa else attrs("users", username))
    out.extend(attrs("groups", g) for g in groups)
    for key, values in extra.items():
        out.extend(attrs("userextras", v, group=AUTH_GROUP, sub=key) for v in values)
    if uid is not None:
        out.append(attrs("uids", uid, group=AUTH_GROUP))
    return out


def _service_account(username: str) -> tuple[str, str] | None:
    if not username.startswith(SERVICE_ACCOUNT_PREFIX):
        return None
    parts = username[len(SERVICE_ACCOUNT_PREFIX):].split(":")
    if len(parts) != 2 or not all(parts):
        return None
    return parts[0], parts[1]


async def impersonate(authorizer: authz.Authorizer, requester: UserInfo, headers: CIMultiDictProxy[str]) -> UserInfo:
    """The user the request acts as: `requester` itself when no impersonation header is set.

    Raises Forbidden when a check fails, and BadRequest for groups, extras or a uid without a
    user to impersonate.
    """
    username = headers.get(USER_HEADER)
    groups = list(headers.getall(GROUP_HEADER, []))
    uid = headers.get(UID_HEADER)
    extra: dict[str, list[str]] = {}
    for name, value in headers.items():
        if name.lower().startswith(EXTRA_PREFIX.lower()):
            extra.setdefault(unquote(name[len(EXTRA_PREFIX):]).lower(), []).append(value)
    if username is None:
        if groups or extra or uid is not None:
            raise errors.InternalError("Internal error occurred: requested impersonation of groups, extras or uid "
                                       "without impersonating a user")
        return requester
    for attributes in _checks(requester, username, groups, extra, uid):
        decision, reason = await authorizer.authorize(attributes)
        if decision != authz.Decision.ALLOW:
            raise authz.forbidden(attributes, reason)
    sa = _service_account(username)
    if sa and not groups:
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{sa[0]}"]
    marker = UNAUTHENTICATED_GROUP if username == ANONYMOUS_USER else AUTHENTICATED_GROUP
    if marker not in groups:
        groups.append(marker)
    return UserInfo(username=username, uid=uid or "", groups=tuple(groups),
                    extra={k: tuple(v) for k, v in extra.items()})
