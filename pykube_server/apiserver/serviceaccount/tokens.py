"""Service account tokens: the claims kube 1.33 issues, and the authenticator that checks them.

Bound tokens (TokenRequest, projected volumes) carry `iss`, `aud`, `exp`, `iat`, `nbf`, `sub`,
`jti` and the private `kubernetes.io` claim naming the namespace, the service account and the
object the token is bound to (pod, with its node when scheduled; secret; or node), plus
`warnafter` for the auto-extended tokens of projected volumes. Legacy tokens (the token
controller's Secrets) carry issuer `kubernetes/serviceaccount` and four flat
`kubernetes.io/serviceaccount/...` claims.

Verification follows kube's JWT authenticator: a token whose `iss` is not ours is not ours to
judge (abstain, so a static token or another issuer's JWT falls through); then the signature,
the issuer, the audiences (the token's, or the API audiences for audience-less legacy tokens,
intersected with those the request asks for), the time claims with go-jose's one-minute leeway,
and finally the objects: the service account and any bound pod, secret or node must still exist
with the uids the token names. Each refusal carries kube's error text, which TokenReview shows.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pykube_server.api import jwt
from pykube_server.apiserver.authn import CREDENTIAL_ID_EXTRA, UserInfo

Obj = dict[str, Any]

LEGACY_ISSUER = "kubernetes/serviceaccount"
LEEWAY_SECONDS = 60
"""go-jose's DefaultLeeway for exp/nbf/iat, and kube's grace for objects being deleted."""
WARN_ONLY_EXPIRATION_SECONDS = 3607
"""The projected volume's requested lifetime: kube extends such tokens and only warns after it."""
EXTENDED_EXPIRATION_SECONDS = 365 * 24 * 3600
"""How long an extended (warn-only) projected token really lives."""
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
ALL_SERVICE_ACCOUNTS_GROUP = "system:serviceaccounts"
POD_NAME_EXTRA = "authentication.kubernetes.io/pod-name"
POD_UID_EXTRA = "authentication.kubernetes.io/pod-uid"
NODE_NAME_EXTRA = "authentication.kubernetes.io/node-name"
NODE_UID_EXTRA = "authentication.kubernetes.io/node-uid"
LEGACY_NAME_CLAIM = "kubernetes.io/serviceaccount/service-account.name"
LEGACY_UID_CLAIM = "kubernetes.io/serviceaccount/service-account.uid"
LEGACY_SECRET_CLAIM = "kubernetes.io/serviceaccount/secret.name"
LEGACY_NAMESPACE_CLAIM = "kubernetes.io/serviceaccount/namespace"
LEGACY_TOKEN_KEY = "token"
LAST_USED_LABEL = "kubernetes.io/legacy-token-last-used"
"""Set (UTC date) on a legacy token Secret whenever its token authenticates, at most daily."""
INVALID_SINCE_LABEL = "kubernetes.io/legacy-token-invalid-since"
"""The legacy token cleaner's mark: such a Secret's token is refused."""


def username(namespace: str, name: str) -> str:
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def groups(namespace: str) -> tuple[str, ...]:
    return (ALL_SERVICE_ACCOUNTS_GROUP, f"{ALL_SERVICE_ACCOUNTS_GROUP}:{namespace}")


def _ref(obj: Obj) -> dict[str, str]:
    meta = obj.get("metadata") or {}
    out = {}
    if meta.get("name"):
        out["name"] = meta["name"]
    if meta.get("uid"):
        out["uid"] = meta["uid"]
    return out


def claims(account: Obj, *, audiences: Sequence[str], expiration_seconds: int, issuer: str,
           pod: Obj | None = None, secret: Obj | None = None, node: Obj | None = None,
           warn_after: int = 0, now: float | None = None) -> Obj:
    """kube's `token.Claims` for a bound token. A pod-bound token also names the pod's node."""
    if secret is not None and (pod is not None or node is not None):
        raise ValueError("internal error, token can only be bound to one object type")
    issued = int(now if now is not None else time.time())
    meta = account.get("metadata") or {}
    private: Obj = {"namespace": meta.get("namespace", ""), "serviceaccount": _ref(account)}
    if pod is not None:
        private["pod"] = _ref(pod)
    if secret is not None:
        private["secret"] = _ref(secret)
    if node is not None:
        private["node"] = _ref(node)
    if warn_after:
        private["warnafter"] = issued + warn_after
    return {"aud": list(audiences), "exp": issued + expiration_seconds, "iat": issued, "iss": issuer,
            "jti": str(uuid.uuid4()), "kubernetes.io": private, "nbf": issued,
            "sub": username(meta.get("namespace", ""), meta.get("name", ""))}


class TokenInvalid(Exception):
    """A token this authenticator owns (our issuer) but refuses; the message is kube's."""


@dataclass(frozen=True)
class Verified:
    user: UserInfo
    audiences: list[str]


Lookup = Callable[[str, str, str], Awaitable[Obj | None]]
"""(kind: ServiceAccount | Pod | Secret | Node, namespace, name) -> the object, or None."""
MarkUsed = Callable[[str, str, str], Awaitable[None]]
"""(namespace, secret name, UTC date) -> label the legacy token Secret as used that day."""


class ServiceAccountTokenAuthenticator:
    """Verifies bound and legacy service account JWTs (kube's two JWT token authenticators).

    `lookup` reads objects from the API server's storage; `keys` are the verification keys
    (`--service-account-key-file`), `issuers` the accepted `iss` values (every
    `--service-account-issuer`), `api_audiences` kube's implicit audiences (`--api-audiences`).
    """

    def __init__(self, *, keys: list[jwt.PublicKey], issuers: Sequence[str], api_audiences: Sequence[str],
                 lookup: Lookup, clock: Callable[[], float] = time.time, mark_used: MarkUsed | None = None) -> None:
        self.keys = keys
        self.issuers = set(issuers)
        self.api_audiences = list(api_audiences)
        self.lookup = lookup
        self.clock = clock
        self.mark_used = mark_used

    async def authenticate_token(self, token: str) -> UserInfo | None:
        try:
            verified = await self.verify(token)
        except TokenInvalid:
            return None
        return verified.user if verified is not None else None

    async def verify(self, token: str, audiences: Sequence[str] | None = None) -> Verified | None:
        """None when the token is not a JWT of ours; raises TokenInvalid when ours but refused."""
        unverified = jwt.unverified_claims(token)
        if unverified is None:
            return None
        issuer = unverified.get("iss")
        legacy = issuer == LEGACY_ISSUER
        if not legacy and issuer not in self.issuers:
            return None
        try:
            claims_ = jwt.verify(token, self.keys)
        except jwt.TokenError:
            raise TokenInvalid("go-jose/go-jose: error in cryptographic primitive") from None
        token_audiences = _audiences(claims_.get("aud")) or list(self.api_audiences)
        requested = list(audiences) if audiences else list(self.api_audiences)
        common = [a for a in token_audiences if a in requested]
        if not common and self.api_audiences:
            raise TokenInvalid(f"token audiences {_go_quote(token_audiences)} is invalid for the target audiences "
                               f"{_go_quote(requested)}")
        user = await (self._validate_legacy(token, claims_) if legacy else self._validate(claims_))
        return Verified(user, common)

    async def _validate(self, claims_: Obj) -> UserInfo:
        now = self.clock()
        _check_times(claims_, now)
        private = claims_.get("kubernetes.io") or {}
        namespace = private.get("namespace", "")
        saref, podref = private.get("serviceaccount") or {}, private.get("pod")
        secref, noderef = private.get("secret"), private.get("node")
        account = await self.lookup("ServiceAccount", namespace, saref.get("name", ""))
        if account is None:
            raise TokenInvalid(f'serviceaccounts "{saref.get("name", "")}" not found')
        uid = account["metadata"].get("uid", "")
        if uid != saref.get("uid"):
            raise TokenInvalid(f"service account UID ({uid}) does not match claim ({saref.get('uid', '')})")
        if _deleted_before(account, now):
            raise TokenInvalid(f"service account {namespace}/{saref.get('name', '')} has been deleted")
        extra: dict[str, tuple[str, ...]] = {}
        if secref is not None:
            await self._bound("Secret", namespace, secref, now)
        if podref is not None:
            await self._bound("Pod", namespace, podref, now)
            extra[POD_NAME_EXTRA], extra[POD_UID_EXTRA] = (podref.get("name", ""),), (podref.get("uid", ""),)
        if noderef is not None:
            if podref is None:
                await self._bound("Node", "", noderef, now)
            if noderef.get("name"):
                extra[NODE_NAME_EXTRA] = (noderef["name"],)
                if noderef.get("uid"):
                    extra[NODE_UID_EXTRA] = (noderef["uid"],)
        if claims_.get("jti"):
            extra[CREDENTIAL_ID_EXTRA] = (f"JTI={claims_['jti']}",)
        return UserInfo(username(namespace, saref.get("name", "")), uid, groups(namespace), dict(sorted(extra.items())))

    async def _bound(self, kind: str, namespace: str, ref: Obj, now: float) -> None:
        """The bound object must exist, be the one named (uid), and not be long deleted."""
        obj = await self.lookup(kind, namespace, ref.get("name", ""))
        if obj is None:
            raise TokenInvalid("service account token has been invalidated")
        uid = (obj.get("metadata") or {}).get("uid", "")
        if uid != ref.get("uid"):
            raise TokenInvalid(f"{kind.lower()} UID ({uid}) does not match service account {kind.lower()} ref claim "
                               f"({ref.get('uid', '')})")
        if _deleted_before(obj, now):
            raise TokenInvalid("service account token has been invalidated")

    async def _validate_legacy(self, token: str, claims_: Obj) -> UserInfo:
        namespace, secret_name = claims_.get(LEGACY_NAMESPACE_CLAIM, ""), claims_.get(LEGACY_SECRET_CLAIM, "")
        name, uid = claims_.get(LEGACY_NAME_CLAIM, ""), claims_.get(LEGACY_UID_CLAIM, "")
        for value, what in ((claims_.get("sub"), "sub"), (namespace, "namespace"), (secret_name, "secretName"),
                            (name, "serviceAccountName"), (uid, "serviceAccountUID")):
            if not value:
                raise TokenInvalid(f"{what} claim is missing")
        if claims_["sub"] != username(namespace, name):
            raise TokenInvalid("sub claim is invalid")
        secret = await self.lookup("Secret", namespace, secret_name)
        if secret is None or (secret.get("metadata") or {}).get("deletionTimestamp"):
            raise TokenInvalid("token has been invalidated")
        labels = (secret.get("metadata") or {}).get("labels") or {}
        stored = (secret.get("data") or {}).get(LEGACY_TOKEN_KEY, "")
        if _decoded(stored) != token.encode():
            raise TokenInvalid("token does not match server's copy")
        account = await self.lookup("ServiceAccount", namespace, name)
        if account is None:
            raise TokenInvalid(f'serviceaccounts "{name}" not found')
        if (account.get("metadata") or {}).get("deletionTimestamp"):
            raise TokenInvalid(f"service account {namespace}/{name} has been deleted")
        if account["metadata"].get("uid") != uid:
            raise TokenInvalid(f"service account UID ({account['metadata'].get('uid', '')}) does not match claim ({uid})")
        if labels.get(INVALID_SINCE_LABEL):
            raise TokenInvalid(f"the token in secret {namespace}/{secret_name} for service account {namespace}/{name} "
                               "has been marked invalid. Use tokens from the TokenRequest API or manually created "
                               f"secret-based tokens, or remove the '{INVALID_SINCE_LABEL}' label from the secret to "
                               "temporarily allow use of this token")
        today = time.strftime("%Y-%m-%d", time.gmtime(self.clock()))
        if self.mark_used is not None and labels.get(LAST_USED_LABEL) != today:
            await self.mark_used(namespace, secret_name, today)
        return UserInfo(username(namespace, name), uid, groups(namespace))


def _decoded(data: str) -> bytes:
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return b""


def _audiences(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [a for a in value if isinstance(a, str)]
    return []


def _go_quote(values: Sequence[str]) -> str:
    """Go's `%q` of a string slice: `["a" "b"]`."""
    return "[" + " ".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "]"


def _check_times(claims_: Obj, now: float) -> None:
    nbf, exp, iat = claims_.get("nbf"), claims_.get("exp"), claims_.get("iat")
    if isinstance(nbf, (int, float)) and now + LEEWAY_SECONDS < nbf:
        raise TokenInvalid("service account token is not valid yet")
    if isinstance(exp, (int, float)) and now - LEEWAY_SECONDS > exp:
        raise TokenInvalid("service account token has expired")
    if isinstance(iat, (int, float)) and now + LEEWAY_SECONDS < iat:
        raise TokenInvalid("service account token is issued in the future")


def _deleted_before(obj: Obj, now: float) -> bool:
    """Deleted (deletionTimestamp) more than the leeway ago: kube still honours tokens of
    objects that are only just being deleted."""
    stamp = (obj.get("metadata") or {}).get("deletionTimestamp")
    if not stamp:
        return False
    when = dt.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    return when < now - LEEWAY_SECONDS
