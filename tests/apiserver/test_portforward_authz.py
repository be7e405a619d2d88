"""`pods/portforward` authorization as in kube-apiserver 1.33: the WebSocket GET is authorized as
`get` (the extra `create` check, AuthorizePodWebsocketUpgradeCreatePermission, is beta in 1.35),
kubectl's SPDY POST as `create`."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from pykube_server.apiserver import authz
from pykube_server.apiserver.app import SERVER
from pykube_server.client.config import load_kubeconfig
from pykube_server.testing import local_cluster


class DenyCreatePortForward:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str]] = []

    async def authorize(self, attributes: authz.RequestAttributes) -> tuple[str, str]:
        key = (attributes.verb, f"{attributes.resource}/{attributes.subresource}")
        self.seen.append(key)
        if key == ("create", "pods/portforward"):
            return authz.Decision.DENY, ""
        return authz.Decision.ALLOW, ""


async def test_websocket_get_is_authorized_as_get_and_the_spdy_post_as_create(tmp_path: Path) -> None:
    async with local_cluster(tmp_path, storage_url="memory://") as lc:
        authorizer = DenyCreatePortForward()
        lc.app[SERVER].authorizer = authorizer
        config = load_kubeconfig(lc.kubeconfig)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=config.ssl_context())) as session:
            url = f"{lc.url}/api/v1/namespaces/default/pods/p/portforward?ports=80"
            headers = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                       "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Protocol": "v4.channel.k8s.io"}
            async with session.get(url, headers=headers) as resp:
                assert resp.status == 404  # allowed through authorization; the pod does not exist
            assert authorizer.seen[-1] == ("get", "pods/portforward")
            async with session.post(url, headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1"}) as resp:
                body = await resp.json()
            assert resp.status == 403
            assert 'cannot create resource "pods/portforward" in API group "" in the namespace "default"' in body["message"]
            assert authorizer.seen[-1] == ("create", "pods/portforward")
