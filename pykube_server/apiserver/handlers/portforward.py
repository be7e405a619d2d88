"""`pods/<name>/portforward`: checked here, then relayed to the pod's kubelet.

The API server does not speak the port-forward protocols; the kubelet does (as in Kubernetes,
where kube-apiserver only tunnels and proxies). That keeps one implementation of SPDY stream
pairing and of the channel protocol, next to the pod it dials, and makes this side a relay:

* a WebSocket (kubectl 1.33's `SPDY/3.1+portforward.k8s.io` tunnel, or the Python client's
  `v4.channel.k8s.io` with `?ports=`) is connected to the kubelet's WebSocket with the same
  offered protocols; the protocol the kubelet picks is the one answered, and messages are
  copied untouched both ways. `ports` become the kubelet's `port` parameters (comma-separated
  values allowed, as kube-apiserver decodes PodPortForwardOptions);
* kubectl's fallback, a plain `Upgrade: SPDY/3.1` with `X-Stream-Protocol-Version:
  portforward.k8s.io`, is answered `101` with those headers and its raw bytes are carried to
  the kubelet in the tunnel's binary messages (SPDY framing survives any split of the bytes);
* anything else is `400 Upgrade request required`.

The kubelet is dialled before the client's upgrade is answered, so its refusal (pod not found,
bad port) reaches the client as the kubelet's status and text, as kube-apiserver's
upgrade-aware proxy passes it back.

Authorization: dispatch authorized the request's own verb, `get` for a WebSocket GET and
`create` for the POST of the SPDY fallback, as kube-apiserver 1.33 does (the extra `create`
check on WebSocket GETs, AuthorizePodWebsocketUpgradeCreatePermission, arrives in 1.35).
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from pykube_server.api import errors
from pykube_server.apiserver.handlers.wsrelay import both_ways, relay_websockets
from pykube_server.apiserver.handlers.common import Call
from pykube_server.apiserver.handlers.proxy import _kubelet_address
from pykube_server.apiserver.handlers.upgrade import RawUpgrade

SPDY_TUNNEL = "SPDY/3.1+portforward.k8s.io"
PORT_FORWARD_PROTOCOL = "portforward.k8s.io"
KUBELET_ERROR_HEADER = "X-Stream-Error"
"""Where our kubelet repeats its refusal's text (a WebSocket client is shown no body)."""


def kubelet_ports(values: list[str]) -> list[tuple[str, str]]:
    ports = []
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if not part.lstrip("-").isdigit() or not -2**31 <= int(part) < 2**31:
                raise errors.BadRequest(f'strconv.ParseInt: parsing "{part}": invalid syntax')
            ports.append(("port", str(int(part))))
    return ports


def _offered(request: web.Request) -> list[str]:
    return [p.strip() for h in request.headers.getall("Sec-WebSocket-Protocol", []) for p in h.split(",") if p.strip()]


async def pod_portforward(server: Any, call: Call) -> web.StreamResponse:
    request = call.request
    pod = (await call.store.get(call.namespace, call.info.name)).decode()
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise errors.BadRequest(f"pod {call.info.name} does not have a host assigned")
    upgrade = request.headers.get("Upgrade", "").lower()
    if upgrade not in ("websocket", "spdy/3.1"):
        raise errors.BadRequest("Upgrade request required")
    url = f"{await _kubelet_address(server, node_name)}/portForward/{call.namespace}/{call.info.name}"
    versions: list[str] = []
    if upgrade == "websocket":
        protocols, params = _offered(request), kubelet_ports(request.query.getall("ports", []))
    else:
        versions = [v.strip() for h in request.headers.getall("X-Stream-Protocol-Version", []) for v in h.split(",")]
        if versions and PORT_FORWARD_PROTOCOL not in versions:
            return web.Response(status=403, content_type="text/plain",
                                text=f"unable to upgrade: unable to negotiate protocol: client supports {_go_list(versions)}, "
                                     f"server supports {_go_list([PORT_FORWARD_PROTOCOL])}")
        protocols, params = [SPDY_TUNNEL], []
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            upstream = await session.ws_connect(url, params=params, protocols=protocols, ssl=False,
                                                max_msg_size=0, autoping=True)
        except aiohttp.WSServerHandshakeError as exc:
            text = (exc.headers or {}).get(KUBELET_ERROR_HEADER) or exc.message
            return web.Response(status=exc.status, text=text, content_type="text/plain")
        except aiohttp.ClientError as exc:
            raise errors.InternalError(f"error dialing backend: {exc}") from exc
        async with upstream:
            if upgrade == "websocket":
                chosen = upstream.protocol or ""
                ws = web.WebSocketResponse(protocols=(chosen,) if chosen else (), max_msg_size=0)
                await ws.prepare(request)
                await relay_websockets(ws, upstream)
                return ws
            raw = RawUpgrade(request)
            headers = {"Connection": "Upgrade", "Upgrade": "SPDY/3.1"}
            if versions:
                headers["X-Stream-Protocol-Version"] = PORT_FORWARD_PROTOCOL
            response = await raw.accept(headers)
            try:
                await _relay_raw(raw, upstream)
            finally:
                raw.close()
            return response


def _go_list(values: list[str]) -> str:
    return "[" + " ".join(values) + "]"


async def _relay_raw(client: RawUpgrade, kubelet: aiohttp.ClientWebSocketResponse) -> None:
    async def client_to_kubelet() -> None:
        while data := await client.recv():
            await kubelet.send_bytes(data)

    async def kubelet_to_client() -> None:
        async for msg in kubelet:
            if msg.type == WSMsgType.BINARY:
                await client.send(msg.data)

    try:
        await both_ways(asyncio.create_task(client_to_kubelet()), asyncio.create_task(kubelet_to_client()))
    finally:
        await kubelet.close()
