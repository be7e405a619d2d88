"""Service account tokens in the API server: keys, issuing, verifying, issuer discovery.

`ServiceAccounts` is what the API server holds: built from the settings (the signing key, the
verification keys, the issuers and audiences), it signs TokenRequest tokens (`handlers/
tokenrequest.py`), authenticates bearer JWTs (a `TokenSource` in the authentication chain,
and TokenReview's verifier) and serves OIDC discovery. Objects a token is bound to are read
from the watch cache, falling back to a consistent read before calling one missing, as kube's
getter falls back from its informer to a live GET.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pykube_server.api import errors, jwt
from pykube_server.apiserver.serviceaccount import oidc
from pykube_server.apiserver.serviceaccount.keys import KeySet, ephemeral_key_set, load_key_set
from pykube_server.apiserver.serviceaccount.tokens import LAST_USED_LABEL, ServiceAccountTokenAuthenticator

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer, Settings

log = logging.getLogger(__name__)

DEFAULT_ISSUER = "https://kubernetes.default.svc.cluster.local"

RESOURCES: dict[str, tuple[str, str, str]] = {
    "ServiceAccount": ("", "v1", "serviceaccounts"),
    "Pod": ("", "v1", "pods"),
    "Secret": ("", "v1", "secrets"),
    "Node": ("", "v1", "nodes"),
}


class ServiceAccounts:
    def __init__(self, settings: Settings) -> None:
        if settings.service_account_signing_key_file or settings.service_account_key_files:
            self.keys: KeySet = load_key_set(settings.service_account_signing_key_file,
                                             settings.service_account_key_files)
        else:
            self.keys = ephemeral_key_set()
        self.issuers = settings.service_account_issuers or (DEFAULT_ISSUER,)
        self.issuer = self.issuers[0]
        """Tokens are issued with the first `--service-account-issuer`; all of them are accepted."""
        self.api_audiences = list(settings.api_audiences or self.issuers)
        self.max_expiration_seconds = settings.service_account_max_token_expiration_seconds
        self.extend_expiration = settings.service_account_extend_token_expiration
        self.authenticator = ServiceAccountTokenAuthenticator(
            keys=self.keys.public, issuers=self.issuers, api_audiences=self.api_audiences, lookup=self.lookup,
            mark_used=self.mark_legacy_token_used)
        self.discovery = oidc.Discovery(self.issuer, self.keys.public, settings.service_account_jwks_uri)
        self._server: APIServer | None = None

    def attach(self, server: APIServer) -> None:
        self._server = server

    def sign(self, claims: dict[str, Any]) -> str:
        if self.keys.signing is None:
            raise errors.InternalError("failed to generate token: no service account signing key configured")
        return jwt.encode(claims, self.keys.signing)

    async def mark_legacy_token_used(self, namespace: str, name: str, day: str) -> None:
        """Label a legacy token Secret with the day its token was last used, as kube-apiserver
        does (LegacyServiceAccountTokenTracking). A failed write never fails the request."""
        if self._server is None:
            return
        store = self._server.store_for("", "v1", "secrets")

        async def transform(current: dict[str, Any] | None) -> dict[str, Any]:
            if current is None:
                raise store.not_found(name)
            current["metadata"].setdefault("labels", {})[LAST_USED_LABEL] = day
            return current

        try:
            await store.update(namespace, name, transform)
        except errors.StatusError as e:
            log.warning("could not mark legacy token secret %s/%s as used: %s", namespace, name, e.message)

    async def lookup(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        if self._server is None or not name:
            return None
        store = self._server.store_for(*RESOURCES[kind])
        for resource_version in ("0", ""):
            try:
                return (await store.get(namespace, name, resource_version=resource_version)).decode()
            except errors.NotFound:
                continue
        return None
