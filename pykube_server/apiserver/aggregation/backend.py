"""Reaching an extension API server: endpoint resolution, TLS and the front-proxy identity.

The Service named by an APIService is resolved to a ready endpoint of its EndpointSlices (the
aggregator's endpoint routing, `--enable-aggregator-routing`), so it works without kube-proxy;
an ExternalName Service is dialled by its name. TLS verifies the name `<service>.<namespace>.svc`
against `spec.caBundle` (the system roots when empty), or nothing with
`insecureSkipTLSVerify`. Every connection presents the front-proxy client certificate, which the
extension server trusts (through the `extension-apiserver-authentication` ConfigMap) to assert
the user in the X-Remote-* headers.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from pykube_server.apiserver.authn import UserInfo
from pykube_server.apiserver import serviceresolver
from pykube_server.apiserver.certs import FrontProxy

Obj = dict[str, Any]
SLICE_SERVICE_LABEL = "kubernetes.io/service-name"
USER_HEADER = "X-Remote-User"
GROUP_HEADER = "X-Remote-Group"
EXTRA_HEADER_PREFIX = "X-Remote-Extra-"


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int
    server_name: str
    """The TLS name checked against the serving certificate."""

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"


class Backends:
    """Resolves APIServices' Services and builds their TLS contexts."""

    def __init__(self, service_lookup: Callable[[str, str], Obj | None],
                 slices_lookup: Callable[[str, str], Iterable[Obj]], front_proxy: FrontProxy) -> None:
        self._service = service_lookup
        self._slices = slices_lookup
        self.front_proxy = front_proxy
        self._contexts: dict[tuple[str, bool], ssl.SSLContext] = {}

    def resolve(self, ref: Obj) -> Endpoint:
        namespace, name = str(ref.get("namespace", "")), str(ref.get("name", ""))
        port = int(ref.get("port") or 443)
        server_name = f"{name}.{namespace}.svc"
        host, target = serviceresolver.resolve(self._service, self._slices, namespace, name, port)
        return Endpoint(host, target, server_name)

    def ssl_context(self, spec: Obj) -> ssl.SSLContext:
        ca_bundle, insecure = str(spec.get("caBundle") or ""), bool(spec.get("insecureSkipTLSVerify"))
        key = (ca_bundle, insecure)
        ctx = self._contexts.get(key)
        if ctx is None:
            ctx = ssl.create_default_context()
            if insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            elif ca_bundle:
                try:
                    ctx = ssl.create_default_context(cadata=base64.b64decode(ca_bundle).decode())
                except (ValueError, UnicodeDecodeError, ssl.SSLError):
                    pass  # an unusable bundle: the system roots then fail the handshake, as kube's would
            ctx.load_cert_chain(self.front_proxy.client_cert_path, self.front_proxy.client_key_path)
            self._contexts[key] = ctx
        return ctx


def identity_headers(user: UserInfo) -> list[tuple[str, str]]:
    """The requestheader identity: one X-Remote-Group per group, extra keys path-escaped."""
    headers = [(USER_HEADER, user.username)]
    headers.extend((GROUP_HEADER, g) for g in user.groups)
    for key, values in user.extra.items():
        headers.extend((EXTRA_HEADER_PREFIX + quote(key, safe=""), v) for v in values)
    return headers


def go_error(exc: BaseException, host: str, port: int) -> str:
    """Go's net/http words for a failed round trip."""
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "tls: failed to verify certificate: x509: certificate signed by unknown authority"
    if isinstance(exc, aiohttp.ClientConnectorError):
        if getattr(exc.os_error, "errno", None) == 111:
            return f"dial tcp {host}:{port}: connect: connection refused"
        return f"dial tcp {host}:{port}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return "EOF"
    return str(exc) or type(exc).__name__
