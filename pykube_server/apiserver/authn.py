"""Authentication: who is making this request, decided the way kube-apiserver decides it.

kube-apiserver runs a *union* of authenticators (x509 client certificates first, then bearer
tokens) and stops at the first one that recognises the request. An authenticator that finds
no credential of its kind abstains; one that finds a credential it rejects records an error,
but the union still tries the others. So:

* a verified client certificate authenticates the request even when a bogus bearer token is
  sent alongside it (the certificate wins, and it also wins over a *valid* token);
* an invalid bearer token without a certificate is a 401, on every path, `/healthz` included:
  the anonymous fallback is skipped once an authenticator has failed (`union.NewFailOnError`);
* a request with no credentials at all becomes `system:anonymous` in `system:unauthenticated`,
  which this server allows only on the public paths the caller names (`/healthz`, `/version`,
  ...). That is kube-apiserver 1.33 with an AuthenticationConfiguration whose `anonymous`
  section has `conditions` for those paths; everywhere else it is a 401.

Successful authentications get `system:authenticated` appended, as `AuthenticatedGroupAdder`
does. Client certificates also carry `authentication.kubernetes.io/credential-id` =
`X509SHA256=<hex sha256 of the DER certificate>` in `extra`, as kube-apiserver 1.32+ reports in
`kubectl auth whoami`. Certificate *verification* is TLS's job (see `certs.py`): by the time a
peer certificate is visible here, OpenSSL has already chained it to the cluster CA.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import orjson
from aiohttp import web
from cryptography import x509
from cryptography.x509.oid import NameOID

from pykube_server.api.errors import Unauthorized

log = logging.getLogger(__name__)

AUTHENTICATED_GROUP = "system:authenticated"
UNAUTHENTICATED_GROUP = "system:unauthenticated"
ANONYMOUS_USER = "system:anonymous"
CREDENTIAL_ID_EXTRA = "authentication.kubernetes.io/credential-id"
CERTIFICATE_CACHE_SIZE = 1024
"""Distinct client certificates whose identities are remembered (only verified ones get here)."""
DEFAULT_PUBLIC_PATHS: tuple[str, ...] = ("/healthz", "/livez", "/readyz", "/version")


@dataclass(frozen=True, slots=True)
class UserInfo:
    """The authenticated identity (`user.Info`): what authorization and audit see."""

    username: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)

    def to_status(self) -> dict[str, object]:
        """The `userInfo` of a SelfSubjectReview/TokenReview status, empty fields omitted."""
        out: dict[str, object] = {"username": self.username}
        if self.uid:
            out["uid"] = self.uid
        if self.groups:
            out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


ANONYMOUS = UserInfo(username=ANONYMOUS_USER, groups=(UNAUTHENTICATED_GROUP,))

#: Where the middleware stores the request's `UserInfo` (`request[USER]`).
USER: web.RequestKey[UserInfo] = web.RequestKey("user", UserInfo)


class AuthenticationFailed(Exception):
    """The request carried a credential that was rejected (e.g. an unknown bearer token)."""


class TokenFileError(ValueError):
    """The `--token-auth-file` could not be parsed."""


# --- static token file --------------------------------------------------------------------------


class TokenAuthenticator:
    """kube-apiserver's `--token-auth-file`: a CSV of `token,user,uid[,"group1,group2"]`.

    Parsed like Go's `encoding/csv` with a variable number of fields: quoting with `"`, `""` for
    a literal quote, blank lines skipped, no comments and no trimming. A record with fewer than
    three fields fails the whole file; a record with an empty token is skipped; a repeated token
    is overridden by its last record. The fourth field is split on `,` into groups; further
    fields are ignored. Loaded once: kube-apiserver does not reload this file either.
    """

    def __init__(self, tokens: Mapping[str, UserInfo]) -> None:
        self._tokens = dict(tokens)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TokenAuthenticator:
        return cls.parse(Path(path).read_text(encoding="utf-8"), path=os.fspath(path))

    @classmethod
    def parse(cls, text: str, *, path: str = "<string>") -> TokenAuthenticator:
        tokens: dict[str, UserInfo] = {}
        for number, record in enumerate(_csv_records(text, path), start=1):
            if len(record) < 3:
                raise TokenFileError(
                    f"token file '{path}' must have at least 3 columns (token, user name, user uid), "
                    f"found {len(record)}"
                )
            if not record[0]:
                log.warning("empty token has been found in token file '%s', record number '%d'", path, number)
                continue
            if record[0] in tokens:
                log.warning("duplicate token has been found in token file '%s', record number '%d'", path, number)
            groups = tuple(record[3].split(",")) if len(record) >= 4 else ()
            tokens[record[0]] = UserInfo(username=record[1], uid=record[2], groups=groups)
        return cls(tokens)

    def authenticate(self, token: str) -> UserInfo | None:
        """The user the token belongs to (without `system:authenticated`), or None."""
        return self._tokens.get(token)

    async def authenticate_token(self, token: str) -> UserInfo | None:
        return self.authenticate(token)


def _csv_records(text: str, path: str) -> Iterable[list[str]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for record in reader:
            if record:
                yield record
    except csv.Error as e:
        raise TokenFileError(f"token file '{path}': {e}") from e


# --- credentials in a request -------------------------------------------------------------------


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None when there is none.

    Mirrors client-go's server-side bearer parser: the scheme is case-insensitive, the header
    is trimmed, and an empty token (e.g. `Bearer  x` with two spaces) counts as no token.
    """
    if not authorization:
        return None
    parts = authorization.strip().split(" ", 2)
    if len(parts) < 2 or parts[0].lower() != "bearer":
        return None
    return parts[1] or None


def peer_certificate(request: web.BaseRequest) -> bytes | None:
    """The DER client certificate TLS verified for this connection, if any."""
    transport = request.transport
    ssl_object = transport.get_extra_info("ssl_object") if transport is not None else None
    if ssl_object is None:
        return None
    der: bytes | None = ssl_object.getpeercert(binary_form=True)
    return der or None


def user_from_certificate(der: bytes) -> UserInfo | None:
    """CN is the user name, O values the groups; a certificate without a CN abstains."""
    cert = x509.load_der_x509_certificate(der)
    common_names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    # Go's pkix.Name keeps the last CN when a subject has several.
    username = str(common_names[-1].value) if common_names else ""
    if not username:
        return None
    orgs = tuple(str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
    credential_id = "X509SHA256=" + hashlib.sha256(der).hexdigest()
    return UserInfo(username=username, groups=orgs, extra={CREDENTIAL_ID_EXTRA: (credential_id,)})


def with_authenticated_group(user: UserInfo) -> UserInfo:
    """Append `system:authenticated` unless the user already has it or `system:unauthenticated`."""
    if AUTHENTICATED_GROUP in user.groups or UNAUTHENTICATED_GROUP in user.groups:
        return user
    return UserInfo(user.username, user.uid, (*user.groups, AUTHENTICATED_GROUP), user.extra)


# --- the request authenticator ------------------------------------------------------------------


class TokenSource(Protocol):
    async def authenticate_token(self, token: str) -> UserInfo | None:
        """The user a bearer token belongs to, or None if this source does not know it.

        Pure lookup: no side effects, safe to call concurrently. Raises only on internal errors
        (which the caller answers with 500), never for an unknown or malformed token.
        """
        ...


class Authenticator:
    """The union of client-certificate and bearer-token authentication, in kube's order.

    `tokens` are asked in order and the first that knows the token wins (static file first,
    service-account tokens later, as kube-apiserver orders them). With no token sources the
    `Authorization` header is ignored, as it is when kube-apiserver has no token authenticator.
    """

    def __init__(self, *, tokens: Sequence[TokenSource] = (), client_certificates: bool = True) -> None:
        self._tokens = tuple(tokens)
        self._client_certificates = client_certificates
        self._certificate_users: dict[bytes, UserInfo | None] = {}

    async def authenticate(self, request: web.BaseRequest) -> UserInfo | None:
        """The request's user (with `system:authenticated`), or None if it carried no credential.

        Raises `AuthenticationFailed` when it carried a credential and none was accepted.
        """
        user = self._from_certificate(request)
        if user is None:
            user = await self._from_token(request)
        return with_authenticated_group(user) if user is not None else None

    def _from_certificate(self, request: web.BaseRequest) -> UserInfo | None:
        if not self._client_certificates:
            return None
        der = peer_certificate(request)
        if der is None:
            return None
        # Parsing a certificate costs more than serving a cached GET; the same few client
        # certificates arrive on every request, so remember what each one says.
        user = self._certificate_users.get(der)
        if user is None:
            user = user_from_certificate(der)
            if len(self._certificate_users) >= CERTIFICATE_CACHE_SIZE:
                self._certificate_users.clear()
            self._certificate_users[der] = user
        return user

    async def _from_token(self, request: web.BaseRequest) -> UserInfo | None:
        token = bearer_token(request.headers.get("Authorization")) if self._tokens else None
        if token is None:
            return None
        for source in self._tokens:
            user = await source.authenticate_token(token)
            if user is not None:
                return user
        raise AuthenticationFailed("invalid bearer token")


def is_public_path(path: str, public_paths: Iterable[str]) -> bool:
    """`/healthz` covers `/healthz` and `/healthz/...`, not `/healthzfoo`."""
    return any(path == p or path.startswith(p.rstrip("/") + "/") for p in public_paths)


def unauthorized_response() -> web.Response:
    """kube-apiserver's 401: a `Status` with message and reason `Unauthorized`."""
    body = orjson.dumps(Unauthorized("Unauthorized").status()) + b"\n"
    return web.Response(status=401, body=body, content_type="application/json")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def authentication_middleware(
    authenticator: Authenticator, public_paths: Iterable[str] = DEFAULT_PUBLIC_PATHS
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """An aiohttp middleware that sets `request[USER]` or answers 401.

    Anonymous requests are let through as `ANONYMOUS` on `public_paths` only; whether the
    anonymous user may do anything there is the authorizer's call, as in kube.
    """
    paths = tuple(public_paths)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            user = await authenticator.authenticate(request)
        except AuthenticationFailed:
            log.debug("unable to authenticate %s %s", request.method, request.path)
            return unauthorized_response()
        if user is None:
            if not is_public_path(request.path, paths):
                return unauthorized_response()
            user = ANONYMOUS
        request[USER] = user
        return await handler(request)

    return middleware
