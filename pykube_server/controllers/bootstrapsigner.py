"""Bootstrap signer and token cleaner: the controller side of bootstrap tokens.

* `bootstrap-signer-controller` keeps `kube-public/cluster-info` signed: one
  `jws-kubeconfig-<token id>` entry per live bootstrap token with `usage-bootstrap-signing:
  "true"`, a detached JWS of the ConfigMap's `kubeconfig` (see `api.jws`); entries of tokens
  that are gone or expired are removed. A joining node checks its token's signature before
  trusting the CA the kubeconfig carries.
* `token-cleaner-controller` deletes bootstrap token Secrets once they expire.
"""

from __future__ import annotations


from pykube_server.api import errors, jws
from pykube_server.api.bootstraptoken import expires_at, token_fields
from pykube_server.api.types import Obj
from pykube_server.client.rest import CONFIGMAPS, SECRETS
from pykube_server.controllers.framework import Context, Controller, Request, Result

SECRET_TYPE = "bootstrap.kubernetes.io/token"
JWS_PREFIX = "jws-kubeconfig-"


class BootstrapSigner:
    def __init__(self, ctx: Context) -> None:
        self.client, self.clock = ctx.client, ctx.clock
        self.secrets = ctx.informer(SECRETS).lister
        self.configmaps = ctx.informer(CONFIGMAPS).lister

    def _signing_tokens(self) -> dict[str, str]:
        now = self.clock.wall()
        tokens = {}
        for secret in self.secrets.list(namespace="kube-system"):
            if secret.get("type") != SECRET_TYPE or (secret.get("metadata") or {}).get("deletionTimestamp"):
                continue
            fields = token_fields(secret)
            when = expires_at(fields)
            if fields.get("usage-bootstrap-signing") != "true" or (when is not None and when <= now):
                continue
            if fields.get("token-id") and fields.get("token-secret"):
                tokens[fields["token-id"]] = fields["token-secret"]
        return tokens

    async def reconcile(self, request: Request) -> Result:
        cm = self.configmaps.get("cluster-info", namespace="kube-public")
        if cm is None or "kubeconfig" not in (cm.get("data") or {}):
            return Result()
        data = dict(cm["data"])
        payload = data["kubeconfig"].encode()
        wanted = {JWS_PREFIX + tid: sec for tid, sec in self._signing_tokens().items()}
        new = {k: v for k, v in data.items() if not k.startswith(JWS_PREFIX)}
        for key, secret in wanted.items():
            current = data.get(key, "")
            token_id = key[len(JWS_PREFIX):]
            new[key] = current if jws.verify_detached(current, payload, token_id, secret) else \
                jws.sign_detached(payload, token_id, secret)
        if new != data:
            try:
                await self.client.update(CONFIGMAPS, {**cm, "data": new})
            except errors.NotFound:
                pass
        soonest = [expires_at(token_fields(s)) for s in self.secrets.list(namespace="kube-system")
                   if s.get("type") == SECRET_TYPE]
        future = [w for w in soonest if w is not None and w > self.clock.wall()]
        return Result(requeue_after=(min(future) - self.clock.wall()).total_seconds() + 1 if future else None)


class TokenCleaner:
    def __init__(self, ctx: Context) -> None:
        self.client, self.clock = ctx.client, ctx.clock
        self.secrets = ctx.informer(SECRETS).lister

    async def reconcile(self, request: Request) -> Result:
        secret = self.secrets.get(request.name, namespace=request.namespace)
        if secret is None or secret.get("type") != SECRET_TYPE:
            return Result()
        when = expires_at(token_fields(secret))
        if when is None:
            return Result()
        remaining = (when - self.clock.wall()).total_seconds()
        if remaining > 0:
            return Result(requeue_after=remaining)
        try:
            await self.client.delete(SECRETS, request.name, namespace=request.namespace,
                                     preconditions={"uid": secret["metadata"]["uid"]})
        except (errors.NotFound, errors.Conflict):
            pass
        return Result()


def _cluster_info(obj: Obj) -> list[Request]:
    return [Request("kube-public", "cluster-info")]


def _if_cluster_info(obj: Obj) -> list[Request]:
    meta = obj.get("metadata") or {}
    return _cluster_info(obj) if (meta.get("namespace"), meta.get("name")) == ("kube-public", "cluster-info") else []


def _if_token(obj: Obj) -> list[Request]:
    return _cluster_info(obj) if obj.get("type") == SECRET_TYPE else []


def create_signer(ctx: Context) -> Controller:
    controller = Controller("bootstrap-signer-controller", BootstrapSigner(ctx), workers=1, clock=ctx.clock)
    controller.watches(ctx.informer(CONFIGMAPS), mapper=_if_cluster_info)
    controller.watches(ctx.informer(SECRETS), mapper=_if_token)
    return controller


def create_cleaner(ctx: Context) -> Controller:
    return Controller("token-cleaner-controller", TokenCleaner(ctx), workers=1, clock=ctx.clock).watches(
        ctx.informer(SECRETS), mapper=lambda obj: [Request.of(obj)] if obj.get("type") == SECRET_TYPE else [])
