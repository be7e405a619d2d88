"""Bootstrap tokens (`--enable-bootstrap-token-auth`): how a new node first talks to the cluster.

A bootstrap token is `<id>.<secret>` (6 and 16 characters of [a-z0-9]) stored as the Secret
`kube-system/bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token`, the way `kubeadm
token create` makes them. A request bearing one is `system:bootstrap:<id>` in the groups
`system:bootstrappers` plus the Secret's `auth-extra-groups`, as long as the secret matches, the
token has not expired and `usage-bootstrap-authentication` is "true". With those rights a
kubelet can do exactly one useful thing: ask for its client certificate through a
CertificateSigningRequest (TLS bootstrap), which the CSR approving controller approves.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from typing import TYPE_CHECKING

from pykube_server.api.bootstraptoken import expired, token_fields
from pykube_server.apiserver.authn import AUTHENTICATED_GROUP, UserInfo

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

TOKEN = re.compile(r"^([a-z0-9]{6})\.([a-z0-9]{16})$")
SECRET_TYPE = "bootstrap.kubernetes.io/token"
SECRET_PREFIX = "bootstrap-token-"
BOOTSTRAPPERS = "system:bootstrappers"
EXTRA_GROUP = re.compile(r"^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$")


class BootstrapTokenAuthenticator:
    def __init__(self, server: APIServer) -> None:
        self.secrets = server.store_for("", "v1", "secrets")

    async def authenticate_token(self, token: str) -> UserInfo | None:
        match = TOKEN.match(token)
        if match is None:
            return None
        token_id, token_secret = match.groups()
        cached = self.secrets.cacher.resource(self.secrets.root).objects.get(
            self.secrets.key("kube-system", SECRET_PREFIX + token_id))
        if cached is None:
            return None
        secret = cached.decode()
        if secret.get("type") != SECRET_TYPE:
            return None
        fields = token_fields(secret)
        if fields.get("token-id") != token_id or not hmac.compare_digest(fields.get("token-secret", ""), token_secret):
            return None
        if (secret.get("metadata") or {}).get("deletionTimestamp"):
            return None
        if expired(fields, dt.datetime.now(dt.timezone.utc)):
            return None
        if fields.get("usage-bootstrap-authentication") != "true":
            return None
        extra = [g.strip() for g in fields.get("auth-extra-groups", "").split(",") if g.strip()]
        if any(not EXTRA_GROUP.match(g) for g in extra):
            return None
        return UserInfo(username=f"system:bootstrap:{token_id}", groups=(BOOTSTRAPPERS, *extra, AUTHENTICATED_GROUP))
