"""serviceaccount-token-controller: fills legacy service account token Secrets.

kube-controller-manager's TokensController as of 1.24+, which no longer makes a token Secret
for every ServiceAccount but still serves the ones users create: a Secret of type
`kubernetes.io/service-account-token` whose annotation `kubernetes.io/service-account.name`
names a ServiceAccount gets `data.token` (a non-expiring JWT signed with
`--service-account-private-key-file`, issuer `kubernetes/serviceaccount`), `data.ca.crt` (the
root CA), `data.namespace`, and the account's uid in the annotation
`kubernetes.io/service-account.uid`. A token Secret whose account is gone (or was recreated
with another uid) is deleted, so its token stops working; the API server's authenticator also
checks that the Secret still holds exactly the presented token.

Like kube, the controller runs only when it has a signing key; without one it logs a warning
and does nothing.
"""

from __future__ import annotations

import base64
import copy
import logging
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from pykube_server.api import errors, jwt
from pykube_server.api.types import Obj
from pykube_server.client.cache import Lister
from pykube_server.client.rest import SECRETS, SERVICEACCOUNTS, Client
from pykube_server.controllers.framework import Context, Controller, Request, Result

log = logging.getLogger(__name__)

TOKEN_SECRET_TYPE = "kubernetes.io/service-account-token"
NAME_ANNOTATION = "kubernetes.io/service-account.name"
UID_ANNOTATION = "kubernetes.io/service-account.uid"
LEGACY_ISSUER = "kubernetes/serviceaccount"
WORKERS = 5
"""kube-controller-manager's --concurrent-serviceaccount-token-syncs default."""


def legacy_claims(account: Obj, secret: Obj) -> dict[str, Any]:
    """kube's LegacyClaims: flat private claims naming the account and the Secret, no expiry."""
    meta = account.get("metadata") or {}
    namespace, name = meta.get("namespace", ""), meta.get("name", "")
    return {"iss": LEGACY_ISSUER, "kubernetes.io/serviceaccount/namespace": namespace,
            "kubernetes.io/serviceaccount/secret.name": (secret.get("metadata") or {}).get("name", ""),
            "kubernetes.io/serviceaccount/service-account.name": name,
            "kubernetes.io/serviceaccount/service-account.uid": meta.get("uid", ""),
            "sub": f"system:serviceaccount:{namespace}:{name}"}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _annotations(obj: Obj) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


class TokenSecretReconciler:
    def __init__(self, client: Client, secrets: Lister, accounts: Lister, key: jwt.PrivateKey | None,
                 root_ca: bytes) -> None:
        self.client = client
        self.secrets = secrets
        self.accounts = accounts
        self.key = key
        self.root_ca = root_ca

    async def reconcile(self, request: Request) -> Result:
        secret = self.secrets.get(request.name, namespace=request.namespace)
        if self.key is None or secret is None or secret.get("type") != TOKEN_SECRET_TYPE:
            return Result()
        if (secret.get("metadata") or {}).get("deletionTimestamp"):
            return Result()
        annotations = _annotations(secret)
        account = await self._account(request.namespace, annotations.get(NAME_ANNOTATION, ""))
        wanted_uid = annotations.get(UID_ANNOTATION, "")
        if account is None or (wanted_uid and wanted_uid != account["metadata"].get("uid")):
            await self._delete(secret)
            return Result()
        await self._fill(secret, account)
        return Result()

    async def _account(self, namespace: str, name: str) -> Obj | None:
        """From the cache, confirmed by a live GET before calling it gone (a new account may
        not have reached the informer yet)."""
        if not name:
            return None
        account = self.accounts.get(name, namespace=namespace)
        if account is not None:
            return account
        try:
            return await self.client.get(SERVICEACCOUNTS, name, namespace=namespace)
        except errors.NotFound:
            return None

    async def _delete(self, secret: Obj) -> None:
        meta = secret["metadata"]
        try:
            await self.client.delete(SECRETS, meta["name"], namespace=meta.get("namespace", ""),
                                     preconditions={"uid": meta.get("uid", "")})
        except (errors.NotFound, errors.Conflict):
            pass

    async def _fill(self, secret: Obj, account: Obj) -> None:
        assert self.key is not None
        data = secret.get("data") or {}
        namespace = secret["metadata"].get("namespace", "")
        uid_set = _annotations(secret).get(UID_ANNOTATION) == account["metadata"].get("uid")
        if data.get("token") and data.get("ca.crt") and data.get("namespace") and uid_set:
            return
        updated = copy.deepcopy(secret)
        new_data = updated.setdefault("data", {}) or {}
        updated["data"] = new_data
        if not new_data.get("token"):
            new_data["token"] = _b64(jwt.encode(legacy_claims(account, secret), self.key).encode("ascii"))
        if not new_data.get("ca.crt"):
            new_data["ca.crt"] = _b64(self.root_ca)
        if not new_data.get("namespace"):
            new_data["namespace"] = _b64(namespace.encode())
        updated["metadata"].setdefault("annotations", {})[UID_ANNOTATION] = account["metadata"].get("uid", "")
        try:
            await self.client.update(SECRETS, updated)
        except (errors.NotFound, errors.Conflict):
            pass  # gone, or changed meanwhile: the informer brings the next version


def _secrets_of_account(secrets: Lister) -> Any:
    def mapper(account: Obj) -> list[Request]:
        meta = account.get("metadata") or {}
        return [Request.of(s) for s in secrets.list(namespace=meta.get("namespace", ""))
                if s.get("type") == TOKEN_SECRET_TYPE and _annotations(s).get(NAME_ANNOTATION) == meta.get("name")]
    return mapper


def load_signing_key(path: str) -> jwt.PrivateKey | None:
    if not path:
        return None
    key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    jwt.algorithm_for(key)  # type: ignore[arg-type]
    return key  # type: ignore[return-value]


def create(ctx: Context) -> Controller:
    """The `serviceaccount-token-controller` factory (`service_account_private_key_file` option)."""
    key = load_signing_key(ctx.options.get("service_account_private_key_file", ""))
    if key is None:
        log.warning("serviceaccount-token-controller: no --service-account-private-key-file, "
                    "legacy token Secrets will not be filled")
    root_ca = ctx.options.get("root_ca") or ctx.client.config.ca_data or b""
    secrets = ctx.informer(SECRETS)
    accounts = ctx.informer(SERVICEACCOUNTS)
    reconciler = TokenSecretReconciler(ctx.client, secrets.lister, accounts.lister, key,
                                       root_ca.encode() if isinstance(root_ca, str) else bytes(root_ca))
    controller = Controller("serviceaccount-token-controller", reconciler, workers=WORKERS, clock=ctx.clock)
    controller.watches(secrets)
    controller.watches(accounts, _secrets_of_account(secrets.lister))
    return controller
