"""`pods/<name>/log`: validated here, then streamed from the pod's kubelet, as kube-apiserver does.

The kubelet is found through its Node: the InternalIP address and the port in
`status.daemonEndpoints.kubeletEndpoint.Port`. The connection is HTTPS without verifying the
kubelet's (self-signed) serving certificate, kube-apiserver's behaviour when no
`--kubelet-certificate-authority` is given. A kubelet error answer (plain text) becomes a
Status with the kubelet's code and message.
"""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
from aiohttp import web

from pykube_server.api import errors
from pykube_server.apiserver.handlers.common import Call

LOG_PARAMS = ("follow", "previous", "tailLines", "timestamps", "limitBytes", "sinceSeconds", "sinceTime")


def _container(pod: dict[str, Any], requested: str) -> str:
    spec, name = pod.get("spec") or {}, pod["metadata"]["name"]
    names = [c["name"] for c in spec.get("containers") or []]
    init = [c["name"] for c in spec.get("initContainers") or []]
    if not requested:
        default = (pod["metadata"].get("annotations") or {}).get("kubectl.kubernetes.io/default-container")
        if default in names + init:
            return str(default)
        if len(names) == 1:
            return names[0]
        message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
        if init:
            message += f" or one of the init containers: [{' '.join(init)}]"
        raise errors.BadRequest(message)
    ephemeral = [c["name"] for c in spec.get("ephemeralContainers") or []]
    if requested not in names + init + ephemeral:
        raise errors.BadRequest(f"container {requested} is not valid for pod {name}")
    return requested


async def _kubelet_address(server: Any, node_name: str) -> str:
    node = (await server.store_for("", "v1", "nodes").get("", node_name)).decode()
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    hosts = [a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"]
    if not port or not hosts:
        raise errors.BadRequest(f"no kubelet endpoint is known for node {node_name}")
    return f"https://{hosts[0]}:{port}"


# wsstream.Reader's protocols: raw bytes in binary messages, or base64 in text messages ("" is binary)
WS_PROTOCOLS = ("binary.k8s.io", "base64.binary.k8s.io")


def _is_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket" and "upgrade" in \
        request.headers.get("Connection", "").lower()


async def _log_websocket(request: web.Request, upstream: aiohttp.ClientResponse) -> web.WebSocketResponse:
    """The log over a WebSocket, as kube-apiserver's stream handler serves it to a client that
    upgrades (`e2ewebsocket`, browsers): one message per chunk, closed at the end of the log."""
    offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    protocol = next((p for p in offered if p in WS_PROTOCOLS), "")
    ws = web.WebSocketResponse(protocols=(protocol,) if protocol else (), max_msg_size=0)
    await ws.prepare(request)
    async for chunk in upstream.content.iter_any():
        if protocol == "base64.binary.k8s.io":
            await ws.send_str(base64.b64encode(chunk).decode())
        else:
            await ws.send_bytes(chunk)
    await ws.close()
    return ws


async def pod_log(server: Any, call: Call) -> web.StreamResponse:
    pod = (await call.store.get(call.namespace, call.info.name)).decode()
    container = _container(pod, call.query("container"))
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise errors.BadRequest(f"pod {call.info.name} does not have a host assigned")
    base = await _kubelet_address(server, node_name)
    params = {k: call.query(k) for k in LOG_PARAMS if call.query(k)}
    url = f"{base}/containerLogs/{call.namespace}/{call.info.name}/{container}"
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        try:
            upstream = await session.get(url, params=params, ssl=False)
        except aiohttp.ClientError as exc:
            raise errors.InternalError(f"Get \"{url}\": {exc}") from exc
        async with upstream:
            if upstream.status != 200:
                text = (await upstream.text()).strip()
                raise errors.StatusError(text, code=upstream.status,
                                         reason={400: "BadRequest", 404: "NotFound"}.get(upstream.status, "InternalError"))
            if _is_websocket(call.request):
                return await _log_websocket(call.request, upstream)
            resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await resp.prepare(call.request)
            async for chunk in upstream.content.iter_any():
                await resp.write(chunk)
            await resp.write_eof()
            return resp
