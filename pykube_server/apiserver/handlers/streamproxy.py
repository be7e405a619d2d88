"""`pods/exec` and `pods/attach`: validated here, then relayed to the pod's kubelet over WebSocket.

What kube-apiserver 1.33 does, and so what clients see:

* the pod, the container (`container x is not valid for pod p`, or the choice among several)
  and the node (`pod p does not have a host assigned`) are checked first, as a 400/404 Status;
  kubectl then retries over SPDY, which pykube refuses with the same Status;
* a request offering `v5.channel.k8s.io` goes through the *stream translator*: the WebSocket
  is always accepted, and whatever happens next arrives on the error channel. A kubelet that
  refuses the session gives `Internal error occurred: unable to upgrade connection: <its
  text>` (e.g. `container not found ("c")` for a container that is not running), and the
  kubelet's status is read back and worded again as client-go and the translator word it
  (`remotecommand.translated`);
* other WebSocket requests (v4 and older) are proxied as they are: the kubelet's refusal is
  passed back with its code and text, and its frames are relayed untouched;
* a plain request is `Upgrade request required`; a SPDY upgrade gets a clear 400.

Authorization already happened in dispatch: GET is the `get` verb and POST `create` on
`pods/exec` (kube 1.33 adds no `create` check for WebSocket GETs; that arrived in 1.35).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from aiohttp import web

from pykube_server.api import errors
from pykube_server.api import remotecommand as rc
from pykube_server.apiserver.handlers.wsrelay import relay_websockets
from pykube_server.apiserver.handlers.common import Call
from pykube_server.apiserver.handlers.proxy import _container, _kubelet_address

KUBELET_ERROR_HEADER = "X-Stream-Error"
"""Where our kubelet repeats its refusal text (a WebSocket client sees no body)."""

SPDY_REFUSED = ("pykube serves exec and attach over WebSocket only (v5.channel.k8s.io, v4.channel.k8s.io); "
                "SPDY/3.1 is not supported")


def _truthy(value: str) -> bool:
    return value.lower() in ("1", "t", "true")


def kubelet_params(query: Any, kind: str) -> list[tuple[str, str]]:
    """The kubelet URL's query, in the kubelet's own names (as kube-apiserver writes it)."""
    params: list[tuple[str, str]] = []
    for api_name, kubelet_name in (("stdin", "input"), ("stdout", "output"), ("stderr", "error"), ("tty", "tty")):
        if _truthy(query.get(api_name, "")):
            params.append((kubelet_name, "1"))
    if kind == "exec":
        params.extend(("command", c) for c in query.getall("command", []))
    return params


async def pod_stream(server: Any, call: Call, kind: str) -> web.StreamResponse:
    pod = (await call.store.get(call.namespace, call.info.name)).decode()
    container = _container(pod, call.query("container"))
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise errors.BadRequest(f"pod {call.info.name} does not have a host assigned")
    request = call.request
    upgrade = request.headers.get("Upgrade", "").lower()
    if upgrade != "websocket":
        raise errors.BadRequest(SPDY_REFUSED if upgrade.startswith("spdy") else "Upgrade request required")
    base = await _kubelet_address(server, node_name)
    url = f"{base}/{kind}/{call.namespace}/{call.info.name}/{container}"
    offers = rc.offered(request.headers.getall("Sec-WebSocket-Protocol", []))
    translate = rc.V5 in offers
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            upstream = await session.ws_connect(url, params=kubelet_params(request.query, kind),
                                                protocols=[rc.V5] if translate else offers, ssl=False,
                                                max_msg_size=0, autoping=True)
        except aiohttp.WSServerHandshakeError as exc:
            text = (exc.headers or {}).get(KUBELET_ERROR_HEADER) or f"{exc.status} {exc.message}"
            if translate:
                return await _refused(request, kind, f"unable to upgrade connection: {text}")
            return web.Response(status=exc.status, text=text, content_type="text/plain")
        except aiohttp.ClientError as exc:
            if translate:
                return await _refused(request, kind, f"error dialing backend: {exc}")
            raise errors.InternalError(f"error dialing backend: {exc}") from exc
        async with upstream:
            protocol = upstream.protocol or ""
            ws = web.WebSocketResponse(protocols=(protocol,) if protocol else (), max_msg_size=0, autoping=True)
            await ws.prepare(request)
            await relay_websockets(ws, upstream, rewrite=(lambda data: _rewrite_error(protocol, data)) if translate else None)
            return ws


async def _refused(request: web.Request, kind: str, message: str) -> web.WebSocketResponse:
    """The translator's answer when the kubelet cannot be reached or refuses: an accepted v5
    WebSocket with an InternalError on the error channel."""
    ws = web.WebSocketResponse(protocols=(rc.V5,), max_msg_size=0)
    await ws.prepare(request)
    q = request.query
    first = rc.STDOUT if _truthy(q.get("stdout", "")) else rc.STDERR if (
        _truthy(q.get("stderr", "")) and not _truthy(q.get("tty", ""))) else rc.ERROR
    await ws.send_bytes(rc.encode(rc.V5, first))
    payload = rc.status_payload(rc.V5, rc.internal_error(message))
    assert payload is not None
    await ws.send_bytes(rc.encode(rc.V5, rc.ERROR, payload))
    await ws.close()
    return ws


def _rewrite_error(protocol: str, data: bytes) -> bytes:
    """The kubelet's error-channel Status as kube-apiserver's stream translator words it."""
    return _translate_status(protocol, data) if data[:1] == bytes((rc.ERROR,)) and len(data) > 1 else data


def _translate_status(protocol: str, frame: bytes) -> bytes:
    try:
        status = orjson.loads(frame[1:])
    except orjson.JSONDecodeError:
        status = {"status": "Failure", "message": frame[1:].decode("utf-8", "replace")}
    payload = rc.status_payload(protocol, rc.translated(status if isinstance(status, dict) else {}))
    return rc.encode(protocol, rc.ERROR, payload or b"")  # type: ignore[return-value]
