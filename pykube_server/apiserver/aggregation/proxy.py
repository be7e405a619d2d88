"""Forwarding one request under /apis/<group>/<version> to the extension API server.

As kube-aggregator's proxy handler: an APIService whose Available condition is not True answers
503 `service unavailable` (plain text, Go's http.Error) without trying; a Service without a
ready endpoint answers the same; a failed round trip answers 503 `error trying to reach service:
<Go error>`. Otherwise the request goes out with its method, path, query and body, without the
client's credentials (Authorization, impersonation and X-Remote-* headers are dropped: the
identity is asserted by the front-proxy certificate and X-Remote-User/Group/Extra-*), and the
answer comes back streamed chunk by chunk, so watches flow through as they are written.
A WebSocket upgrade (what kubectl 1.33 tries first for exec-like subresources) is relayed frame
by frame with the subprotocol the extension server picked; other upgrades (SPDY) are refused
with 501.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from pykube_server.apiserver import authn
from pykube_server.apiserver.aggregation.backend import Backends, go_error, identity_headers
from pykube_server.apiserver.serviceresolver import ResolveError
from pykube_server.apiserver.handlers.wsrelay import relay_websockets

Obj = dict[str, object]
HOP_BY_HOP = frozenset(h.lower() for h in (
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "TE", "Trailer",
    "Transfer-Encoding", "Upgrade", "Host", "Content-Length"))
_DROPPED_PREFIXES = ("impersonate-", "x-remote-")


def unavailable(text: str = "service unavailable") -> web.Response:
    """Go's http.Error: the text and a newline, plain text, nosniff."""
    return web.Response(status=503, text=text + "\n", content_type="text/plain", charset="utf-8",
                        headers={"X-Content-Type-Options": "nosniff"})


def _available(apiservice: Obj) -> bool:
    conditions = (apiservice.get("status") or {}).get("conditions") or []  # type: ignore[union-attr]
    return any(c.get("type") == "Available" and c.get("status") == "True" for c in conditions)


def _outgoing_headers(request: web.Request) -> CIMultiDict[str]:
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in request.headers.items():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower == "authorization" or lower.startswith(_DROPPED_PREFIXES):
            continue
        headers.add(name, value)
    user = request.get(authn.USER) or authn.ANONYMOUS
    for name, value in identity_headers(user):
        headers.add(name, value)
    return headers


async def forward(backends: Backends, session: aiohttp.ClientSession, request: web.Request,
                  apiservice: Obj) -> web.StreamResponse:
    if not _available(apiservice):
        return unavailable()
    spec: Obj = apiservice.get("spec") or {}  # type: ignore[assignment]
    try:
        endpoint = backends.resolve(spec["service"])  # type: ignore[arg-type]
    except ResolveError:
        return unavailable()
    url = endpoint.base_url + request.rel_url.raw_path_qs
    if request.headers.get("Upgrade", "").lower() == "websocket":
        return await _websocket(backends, session, request, spec, url, endpoint.server_name)
    if request.headers.get("Upgrade"):
        return web.Response(status=501, text="upgrade requests other than WebSocket are not proxied to extension "
                            "API servers\n", content_type="text/plain")
    body = request.content if request.can_read_body else None
    try:
        upstream = await session.request(request.method, url, headers=_outgoing_headers(request), data=body,
                                         ssl=backends.ssl_context(spec), server_hostname=endpoint.server_name,
                                         allow_redirects=False, auto_decompress=False)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return unavailable(f"error trying to reach service: {go_error(exc, endpoint.host, endpoint.port)}")
    async with upstream:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for name, value in upstream.headers.items():
            if name.lower() not in HOP_BY_HOP:
                response.headers.add(name, value)
        await response.prepare(request)
        try:
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
        except (aiohttp.ClientError, ConnectionResetError):
            pass  # the backend went away mid-stream: end the answer, as a broken proxy stream does
        await response.write_eof()
        return response


async def _websocket(backends: Backends, session: aiohttp.ClientSession, request: web.Request, spec: Obj,
                     url: str, server_name: str) -> web.StreamResponse:
    """Dial the extension server first (its answer decides the subprotocol), then upgrade the
    client and copy frames both ways."""
    protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    headers = _outgoing_headers(request)
    for name in ("Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol"):
        headers.popall(name, None)
    try:
        upstream = await session.ws_connect(url, protocols=protocols, headers=headers, ssl=backends.ssl_context(spec),
                                            server_hostname=server_name)
    except aiohttp.WSServerHandshakeError as exc:
        return web.Response(status=exc.status or 502, text=f"{exc.message}\n", content_type="text/plain")
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        host, _, port = url.split("/")[2].rpartition(":")
        return unavailable(f"error trying to reach service: {go_error(exc, host, int(port))}")
    async with upstream:
        client = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else ())
        await client.prepare(request)
        await relay_websockets(client, upstream)
        await client.close()
        return client
