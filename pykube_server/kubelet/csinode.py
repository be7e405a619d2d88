"""The node's CSINode object: which CSI drivers run on this node, as the kubelet's plugin
registration records them.

Why: the real kubelet, once a driver's node plugin registered with it, calls the driver's
NodeGetInfo and writes the answer into `storage.k8s.io/v1` CSINode `<node>` (owned by the Node,
`spec.drivers[]`: name, nodeID, topologyKeys, allocatable) and into the Node's
`csi.volume.kubernetes.io/nodeid` annotation (`{"<driver>": "<node id>"}`); the scheduler's
volume plugins and external provisioners read them to know where a driver's volumes can go.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.rest import Client, Resource
from pykube_server.kubelet.csi import CSINodePlugin, NodeInfo, node_driver_entry

CSINODES = Resource("storage.k8s.io", "v1", "csinodes", namespaced=False)
NODE_ID_ANNOTATION = "csi.volume.kubernetes.io/nodeid"


async def driver_infos(plugins: Sequence[CSINodePlugin]) -> list[tuple[str, NodeInfo]]:
    return [(p.name, await p.node_get_info()) for p in plugins]


def node_id_annotation(infos: Sequence[tuple[str, NodeInfo]]) -> dict[str, str]:
    """The Node annotation naming each driver's node id (empty without drivers)."""
    if not infos:
        return {}
    return {NODE_ID_ANNOTATION: json.dumps({name: info.node_id for name, info in sorted(infos)},
                                           separators=(",", ":"))}


async def register(client: Client, node: Obj, infos: Sequence[tuple[str, NodeInfo]]) -> Obj:
    """Create CSINode `<node>` listing `infos`' drivers, or add them to the existing one (drivers
    registered by others are kept). One request when the object does not exist yet."""
    meta = node["metadata"]
    entries = [node_driver_entry(name, info) for name, info in infos]
    body = {"apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
            "metadata": {"name": meta["name"], "ownerReferences": [
                {"apiVersion": "v1", "kind": "Node", "name": meta["name"], "uid": meta.get("uid", "")}]},
            "spec": {"drivers": entries}}
    try:
        return await client.create(CSINODES, body)
    except errors.AlreadyExists:
        pass
    current = await client.get(CSINODES, meta["name"])
    ours = {e["name"] for e in entries}
    have = list((current.get("spec") or {}).get("drivers") or [])
    want = sorted([d for d in have if d.get("name") not in ours] + entries, key=lambda d: str(d.get("name")))
    if want == sorted(have, key=lambda d: str(d.get("name"))):
        return current
    current["spec"] = {**(current.get("spec") or {}), "drivers": want}
    return await client.update(CSINODES, current)
