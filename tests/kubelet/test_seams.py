"""The kubelet's CNI- and CSI-shaped seams.

Network: pod IPs come from a network plugin (ADD/DEL/CHECK); the default `loopback` plugin is
host-local IPAM over the node's podCIDR, and another plugin dropped in decides the pod IPs.

Storage: the local-path provisioner's volumes (and `csi` PVs) go through a CSI node plugin,
staged once per node under `plugins/kubernetes.io/csi/<driver>/<sha256(handle)>/globalmount`,
published per pod at `pods/<uid>/volumes/kubernetes.io~csi/<pv>/mount`; the kubelet lists its
drivers in the node's CSINode (`spec.drivers[]`: name, nodeID, topologyKeys) and in the Node's
`csi.volume.kubernetes.io/nodeid` annotation, as the real kubelet's plugin registration does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from pykube_server.client.clock import FakeClock
from pykube_server.client.rest import NODES, PODS
from pykube_server.kubelet.context import IPAllocator, NodeContext
from pykube_server.kubelet.csi import LOCAL_PATH_DRIVER, CSIError, LocalPathDriver
from pykube_server.kubelet.csinode import CSINODES
from pykube_server.kubelet.network import NETWORK_PLUGINS, LoopbackNetwork, PodNetwork
from pykube_server.kubelet.pod_workers import PodWorker
from pykube_server.kubelet.runtimes.fake import FakeRuntime
from pykube_server.kubelet.volumes import VolumeManager
from tests.conftest import ServerProcess, requires_kubectl
from tests.e2e.test_persistent_volumes import wait_for
from tests.kubelet.test_kubelet import eventually, kubelet  # noqa: F401  (kubelet is a fixture)
from tests.kubelet.test_pod_workers import StubClient as StatusClient
from tests.kubelet.test_pod_workers import StubRecorder, make_pod
from tests.kubelet.test_volumes import StubClient
from tests.kubelet.test_volumes import make_pod as make_volume_pod


# --- network -----------------------------------------------------------------------------------
class RecordingNetwork:
    """Another plugin: fixed addresses, every call recorded."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, tuple[str, ...]]] = []
        self.refuse = False

    async def setup_pod_network(self, pod: PodNetwork) -> tuple[str, ...]:
        self.calls.append(("ADD", pod.name, ()))
        return ("10.9.8.7",)

    async def teardown_pod_network(self, pod: PodNetwork, ips: Sequence[str]) -> None:
        self.calls.append(("DEL", pod.name, tuple(ips)))

    async def check_pod_network(self, pod: PodNetwork, ips: Sequence[str]) -> bool:
        self.calls.append(("CHECK", pod.name, tuple(ips)))
        return not self.refuse


def _context(network: Any = None) -> tuple[NodeContext, StatusClient]:
    clock = FakeClock()
    client = StatusClient()

    async def getter(kind: str, ns: str, name: str) -> None:
        return None

    ctx = NodeContext(node_name="n1", host_ip="127.0.0.1", client=client, recorder=StubRecorder(),  # type: ignore[arg-type]
                      runtime=FakeRuntime(clock=clock), ips=IPAllocator("127.244.1.0/24"), getter=getter,
                      services=lambda ns, links: [], clock=clock, network=network)
    return ctx, client


async def test_pod_ips_come_from_the_network_plugin() -> None:
    plugin = RecordingNetwork()
    ctx, client = _context(plugin)
    worker = PodWorker(ctx, make_pod())
    await worker.sync()
    assert client.statuses[-1]["podIP"] == "10.9.8.7" and client.statuses[-1]["podIPs"] == [{"ip": "10.9.8.7"}]
    worker.update(None)
    await worker.sync()
    assert plugin.calls == [("ADD", "p", ()), ("DEL", "p", ("10.9.8.7",))]


async def test_a_restarted_kubelet_checks_the_sandboxes_network() -> None:
    plugin = RecordingNetwork()
    ctx, _ = _context(plugin)
    await PodWorker(ctx, make_pod()).sync()
    await PodWorker(ctx, make_pod()).sync()  # a new worker finds the sandbox (as after a restart)
    assert plugin.calls[-1] == ("CHECK", "p", ("10.9.8.7",))


async def test_a_refused_check_replaces_the_sandbox() -> None:
    plugin = RecordingNetwork()
    ctx, _ = _context(plugin)
    await PodWorker(ctx, make_pod()).sync()
    first = await ctx.runtime.list_pod_sandboxes()
    plugin.refuse = True
    await PodWorker(ctx, make_pod()).sync()
    second = await ctx.runtime.list_pod_sandboxes()
    assert [c[0] for c in plugin.calls] == ["ADD", "CHECK", "DEL", "ADD"]
    assert len(second) == 1 and second[0].id != first[0].id


async def test_loopback_is_the_default_and_hands_out_the_node_range() -> None:
    ctx, client = _context()
    assert isinstance(ctx.network, LoopbackNetwork) and set(NETWORK_PLUGINS) == {"loopback"}
    await PodWorker(ctx, make_pod()).sync()
    assert client.statuses[-1]["podIP"] == "127.244.1.2"
    net = NETWORK_PLUGINS["loopback"]("127.244.7.0/24")
    pod = PodNetwork("u", "ns", "p")
    assert await net.check_pod_network(pod, ("127.244.7.2",))
    assert await net.setup_pod_network(pod) == ("127.244.7.3",)  # .2 was claimed again by CHECK
    await net.teardown_pod_network(pod, ("127.244.7.2",))
    assert await net.setup_pod_network(pod) == ("127.244.7.2",)


# --- CSI node plugin -----------------------------------------------------------------------------
async def test_local_path_driver_stage_publish_unpublish_unstage(tmp_path: Path) -> None:
    driver = LocalPathDriver("n1")
    info = await driver.node_get_info()
    assert (info.node_id, dict(info.topology)) == ("n1", {"kubernetes.io/hostname": "n1"})
    volume = tmp_path / "store" / "pvc-1"
    staging, target = tmp_path / "stage" / "globalmount", tmp_path / "pod" / "pv" / "mount"
    with pytest.raises(CSIError, match="is not staged"):
        await driver.node_publish_volume("h", staging, target, read_only=False, attributes={"path": str(volume)})
    for _ in range(2):  # idempotent, as CSI asks
        await driver.node_stage_volume("h", staging, {"path": str(volume)})
        await driver.node_publish_volume("h", staging, target, read_only=False, attributes={"path": str(volume)})
    assert volume.is_dir() and target.resolve() == volume.resolve()
    (target / "f").write_text("x")
    await driver.node_unpublish_volume("h", target)
    await driver.node_unstage_volume("h", staging)
    assert not target.exists() and not staging.exists() and (volume / "f").read_text() == "x"
    with pytest.raises(CSIError, match="not absolute"):
        await driver.node_stage_volume("relative", staging, {})


def _bound_claim(client: StubClient, pv: dict[str, Any]) -> None:
    client.put("persistentvolumeclaims", {"metadata": {"name": "claim", "namespace": "ns", "uid": "c-uid"},
                                          "spec": {"volumeName": pv["metadata"]["name"]},
                                          "status": {"phase": "Bound"}})
    client.put("persistentvolumes", pv)


async def test_local_path_volumes_go_through_the_csi_driver(tmp_path: Path) -> None:
    client = StubClient()
    root = tmp_path / "node"
    manager = VolumeManager(root, client, clock=FakeClock(),  # type: ignore[arg-type]
                            csi_drivers={LOCAL_PATH_DRIVER: LocalPathDriver("n1")})
    data = tmp_path / "local-path" / "pvc-c-uid_ns_claim"
    _bound_claim(client, {"metadata": {"name": "pvc-c-uid",
                                       "annotations": {"pv.kubernetes.io/provisioned-by": LOCAL_PATH_DRIVER}},
                          "spec": {"claimRef": {"uid": "c-uid"},
                                   "hostPath": {"path": str(data), "type": "DirectoryOrCreate"}}})
    pod = make_volume_pod([{"name": "data", "persistentVolumeClaim": {"claimName": "claim"}}],
                          [{"name": "data", "mountPath": "/data"}])
    result = await manager.setup(pod)
    target = root / "pods" / "uid-1" / "volumes" / "kubernetes.io~csi" / "pvc-c-uid" / "mount"
    staging = (root / "plugins" / "kubernetes.io" / "csi" / LOCAL_PATH_DRIVER /
               hashlib.sha256(str(data).encode()).hexdigest() / "globalmount")
    assert not result.blocking and result.volumes["data"].path == str(target)
    assert target.resolve() == data.resolve() and staging.resolve() == data.resolve() and data.is_dir()
    mounts = manager.container_mounts(pod["spec"]["containers"][0], result.volumes, {})
    assert [(m.host_path, m.container_path) for m in mounts] == [(str(target), "/data")]
    await manager.unpublish("uid-1")
    manager.cleanup("uid-1")
    assert not target.exists() and not staging.exists() and data.is_dir()


async def test_csi_persistent_volume_of_an_unknown_driver_fails_the_mount(tmp_path: Path) -> None:
    client = StubClient()
    manager = VolumeManager(tmp_path / "node", client, clock=FakeClock(),  # type: ignore[arg-type]
                            csi_drivers={LOCAL_PATH_DRIVER: LocalPathDriver("n1")})
    _bound_claim(client, {"metadata": {"name": "pv9"},
                          "spec": {"claimRef": {"uid": "c-uid"}, "csi": {"driver": "ebs.csi.aws.com",
                                                                        "volumeHandle": "vol-1"}}})
    pod = make_volume_pod([{"name": "data", "persistentVolumeClaim": {"claimName": "claim"}}])
    result = await manager.setup(pod)
    assert result.blocking and result.mount_failures == [(
        "data", "kubernetes.io/csi: attacher.MountDevice failed to create newCsiDriverClient: driver name "
                "ebs.csi.aws.com not found in the list of registered CSI drivers")]


async def test_csi_persistent_volume_of_the_local_driver_is_published(tmp_path: Path) -> None:
    client = StubClient()
    manager = VolumeManager(tmp_path / "node", client, clock=FakeClock(),  # type: ignore[arg-type]
                            csi_drivers={LOCAL_PATH_DRIVER: LocalPathDriver("n1")})
    data = tmp_path / "vol"
    _bound_claim(client, {"metadata": {"name": "pv2"},
                          "spec": {"claimRef": {"uid": "c-uid"}, "csi": {
                              "driver": LOCAL_PATH_DRIVER, "volumeHandle": "v", "volumeAttributes": {"path": str(data)}}}})
    result = await manager.setup(make_volume_pod([{"name": "d", "persistentVolumeClaim": {"claimName": "claim"}}]))
    assert not result.blocking and Path(result.volumes["d"].path).resolve() == data.resolve()


# --- registration ------------------------------------------------------------------------------
async def test_the_node_lists_its_csi_driver_in_csinode(kubelet) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    _, client = kubelet

    async def csinode() -> Any:
        return await client.get(CSINODES, "pykube-node-1")

    obj = await eventually(csinode)
    node = await client.get(NODES, "pykube-node-1")
    assert obj["spec"]["drivers"] == [{"name": LOCAL_PATH_DRIVER, "nodeID": "pykube-node-1",
                                       "topologyKeys": ["kubernetes.io/hostname"]}]
    assert obj["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Node", "name": "pykube-node-1",
                                                   "uid": node["metadata"]["uid"]}]
    assert json.loads(node["metadata"]["annotations"]["csi.volume.kubernetes.io/nodeid"]) == {
        LOCAL_PATH_DRIVER: "pykube-node-1"}
    assert (await client.list(PODS, namespace="default"))["items"] == []


@requires_kubectl
def test_every_node_of_a_cluster_has_its_csinode(cluster: ServerProcess) -> None:
    def listed() -> dict[str, Any] | None:
        nodes = {n["metadata"]["name"] for n in
                 json.loads(cluster.kubectl("get", "nodes", "-o", "json").stdout)["items"]}
        found = {c["metadata"]["name"]: c["spec"].get("drivers")
                 for c in json.loads(cluster.kubectl("get", "csinodes", "-o", "json").stdout)["items"]}
        return found if nodes and set(found) == nodes else None

    found = wait_for("a CSINode per node", listed, timeout=30)
    for name, drivers in found.items():
        assert [(d["name"], d["nodeID"], d.get("topologyKeys")) for d in drivers] == [
            (LOCAL_PATH_DRIVER, name, ["kubernetes.io/hostname"])]
