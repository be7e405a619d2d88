"""Where a webhook lives and how it is called: one HTTPS POST with kube's error texts.

`clientConfig.url` is called as written. `clientConfig.service` is resolved the way
kube-apiserver does with `--enable-aggregator-routing`: the Service's port (default 443) is
found by number, then a ready endpoint of its EndpointSlices serving that port's name, so the
call does not depend on kube-proxy; TLS still verifies the name `<service>.<namespace>.svc`
against `caBundle` (the system roots when it is empty). The URL kube shows in errors names the
service host and carries the `?timeout=<n>s` its REST client adds, and failures read like Go's
(`Post "https://...": dial tcp 127.0.0.1:1: connect: connection refused`,
`context deadline exceeded`), because operators grep for them.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from pykube_server.apiserver import serviceresolver

Obj = dict[str, Any]
DEFAULT_TIMEOUT = 10
MAX_TIMEOUT = 30


class CallError(Exception):
    """A call that did not produce an AdmissionReview: the text after `failed to call webhook: `."""


@dataclass(slots=True)
class Target:
    shown: str  # the URL kube names in its errors
    connect: str  # the URL actually dialled
    server_name: str | None  # the TLS name, when it differs from the dialled host
    host_header: str | None


# apimachinery's NewGenericServerResponse words for a non-2xx answer that is not a Status.
_GENERIC = {
    400: "the server rejected our request for an unknown reason",
    401: "the server has asked for the client to provide credentials",
    404: "the server could not find the requested resource",
    405: "the server does not allow this method on the requested resource",
    409: "the server reported a conflict",
    422: "the server rejected our request due to an error in our request",
    429: "the server has received too many requests and has asked us to try again later",
    503: "the server is currently unable to handle the request",
    504: "the server was unable to return a response in the time allotted, but may still be processing the request",
}


def timeout_of(hook: Mapping[str, Any]) -> int:
    value = hook.get("timeoutSeconds")
    return min(int(value), MAX_TIMEOUT) if isinstance(value, int) and value > 0 else DEFAULT_TIMEOUT


def _with_timeout(url: str, timeout: int) -> str:
    return f"{url}{'&' if '?' in url else '?'}timeout={timeout}s"


@lru_cache(maxsize=64)
def _ssl_context(ca_bundle: str) -> ssl.SSLContext:
    if ca_bundle:
        try:
            pem = base64.b64decode(ca_bundle).decode()
        except (ValueError, UnicodeDecodeError):
            pem = ""
        ctx = ssl.create_default_context(cadata=pem) if pem else ssl.create_default_context()
    else:
        ctx = ssl.create_default_context()
    return ctx


def _go_error(exc: BaseException, host: str, port: int) -> str:
    """Go's net/http words for the failures people meet."""
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return "context deadline exceeded"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert_error = exc.certificate_error
        if getattr(cert_error, "verify_code", None) in (2, 7, 18, 19, 20, 21):  # unknown issuer, or one whose signature fails
            return "tls: failed to verify certificate: x509: certificate signed by unknown authority"
        if getattr(cert_error, "verify_code", None) == 62:  # hostname mismatch
            return f"tls: failed to verify certificate: x509: certificate is not valid for {host}"
        return f"tls: failed to verify certificate: x509: {getattr(cert_error, 'verify_message', cert_error)}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        errno = getattr(exc.os_error, "errno", None)
        if errno == 111:
            return f"dial tcp {host}:{port}: connect: connection refused"
        return f"dial tcp {host}:{port}: {exc.os_error.strerror or exc.os_error}"
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return "EOF"
    return str(exc) or type(exc).__name__


def _generic(status: int, body: bytes) -> str:
    try:
        doc = orjson.loads(body)
        if isinstance(doc, dict) and doc.get("kind") == "Status" and doc.get("message"):
            return str(doc["message"])
    except orjson.JSONDecodeError:
        pass
    if status == 500:
        return f'an error on the server ("{body.decode(errors="replace").strip() or "unknown"}") has prevented the request from succeeding'
    return _GENERIC.get(status, f"the server responded with the status code {status} but did not return more information")


class Caller:
    """Resolves targets and POSTs reviews.

    Each call has its own short-lived HTTP session: the plugin has no shutdown hook to close a
    shared one, and a webhook call pays for its TLS handshake either way."""

    def __init__(self, service_lookup: Callable[[str, str], Obj | None],
                 slices_lookup: Callable[[str, str], Iterable[Obj]]) -> None:
        self._service = service_lookup
        self._slices = slices_lookup

    def target(self, hook: Mapping[str, Any], timeout: int) -> Target:
        config = hook.get("clientConfig") or {}
        if config.get("url"):
            url = str(config["url"])
            shown = _with_timeout(url, timeout)
            return Target(shown, shown, None, None)
        svc = config.get("service") or {}
        name, namespace = svc.get("name", ""), svc.get("namespace", "")
        port = int(svc.get("port") or 443)
        path = svc.get("path") or "/"
        host = f"{name}.{namespace}.svc"
        shown = _with_timeout(f"https://{host}:{port}{path}", timeout)
        address, target_port = self._endpoint(namespace, name, port, shown)
        ip = f"[{address}]" if ":" in address else address
        return Target(shown, _with_timeout(f"https://{ip}:{target_port}{path}", timeout), host, f"{host}:{port}")

    def _endpoint(self, namespace: str, name: str, port: int, shown: str) -> tuple[str, int]:
        """A ready endpoint for the service port, as the aggregator's endpoint resolver picks one."""
        try:
            return serviceresolver.resolve(self._service, self._slices, namespace, name, port)
        except serviceresolver.ResolveError as exc:
            raise CallError(f'Post "{shown}": {exc}') from None

    async def post(self, hook: Mapping[str, Any], body: Obj) -> Any:
        """POST the review; returns the decoded answer or raises CallError."""
        timeout = timeout_of(hook)
        target = self.target(hook, timeout)
        ctx = _ssl_context(str((hook.get("clientConfig") or {}).get("caBundle") or ""))
        parts = urlsplit(target.connect)
        headers = {"Content-Type": "application/json", "Accept": "application/json, */*"}
        if target.host_header:
            headers["Host"] = target.host_header
        try:
            async with asyncio.timeout(timeout), aiohttp.ClientSession() as session:
                async with session.post(target.connect, data=orjson.dumps(body), headers=headers, ssl=ctx,
                                        server_hostname=target.server_name) as resp:
                    payload = await resp.read()
                    status = resp.status
        except (aiohttp.ClientError, OSError, TimeoutError, asyncio.TimeoutError, ssl.SSLError) as exc:
            raise CallError(f'Post "{target.shown}": {_go_error(exc, parts.hostname or "", parts.port or 443)}') from None
        if not 200 <= status < 300:
            raise CallError(_generic(status, payload))
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise CallError(f"couldn't get version/kind; json parse error: {exc}") from None
