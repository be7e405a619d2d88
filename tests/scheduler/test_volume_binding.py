"""The VolumeBinding plugin over a dict-backed volume store, and inside the framework.

Kube facts recorded here (kube-scheduler's volumebinding plugin): a missing claim rejects the
pod with `persistentvolumeclaim "x" not found`, an unbound claim of an Immediate class with `pod
has unbound immediate PersistentVolumeClaims` (both unresolvable: no node can help); a bound
claim's PV must admit the node (`node(s) had volume node affinity conflict`); an unbound
WaitForFirstConsumer claim needs a fitting Available PV on the node or a provisioner
(`node(s) didn't find available persistent volumes to bind`). PreBind writes claimRef +
`pv.kubernetes.io/bound-by-controller` for a static PV and `volume.kubernetes.io/selected-node`
for a claim to provision, then waits until the claims are Bound.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pykube_server.api.types import Obj
from pykube_server.scheduler.framework import Code, CycleState, Handle, PodInfo, fit_error_message
from pykube_server.scheduler.plugins import PLUGINS
from pykube_server.scheduler.plugins import volume_binding as vb
from pykube_server.scheduler.profile import DEFAULT_PROFILE
from pykube_server.scheduler.runtime import Framework
from tests.scheduler.builders import node, node_info, pod

WFFC = {"metadata": {"name": "wffc"}, "provisioner": "local-path.pykube.io", "volumeBindingMode": "WaitForFirstConsumer"}
STATIC = {"metadata": {"name": "static"}, "provisioner": "kubernetes.io/no-provisioner",
          "volumeBindingMode": "WaitForFirstConsumer"}
IMMEDIATE = {"metadata": {"name": "now"}, "provisioner": "local-path.pykube.io", "volumeBindingMode": "Immediate"}


def on_node(name: str) -> Obj:
    return {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [name]}]}]}}


class DictStore:
    def __init__(self, claims: list[Obj] = (), volumes: list[Obj] = (), classes: list[Obj] = ()) -> None:  # type: ignore[assignment]
        self.claims = {(c["metadata"]["namespace"], c["metadata"]["name"]): c for c in claims}
        self.pvs = {v["metadata"]["name"]: v for v in volumes}
        self.classes = {c["metadata"]["name"]: c for c in classes}
        self.writes: list[tuple[str, Any]] = []

    def claim(self, namespace: str, name: str) -> Obj | None:
        return self.claims.get((namespace, name))

    def volume(self, name: str) -> Obj | None:
        return self.pvs.get(name)

    def volumes(self) -> list[Obj]:
        return list(self.pvs.values())

    def storage_class(self, name: str) -> Obj | None:
        return self.classes.get(name)

    async def update_volume(self, volume: Obj) -> Obj:
        self.writes.append(("volume", volume))
        self.pvs[volume["metadata"]["name"]] = volume
        return volume

    async def annotate_claim(self, namespace: str, name: str, annotations: dict[str, str]) -> Obj:
        self.writes.append(("claim", (namespace, name, annotations)))
        c = self.claims[(namespace, name)]
        c["metadata"].setdefault("annotations", {}).update(annotations)
        return c


def claim(name: str, cls: str = "wffc", volume_name: str = "", size: str = "1Gi") -> Obj:
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}, "storageClassName": cls}
    if volume_name:
        spec["volumeName"] = volume_name
    return {"metadata": {"namespace": "default", "name": name, "uid": f"uid-{name}"}, "spec": spec,
            "status": {"phase": "Bound" if volume_name else "Pending"}}


def pv(name: str, cls: str = "static", node_name: str = "", size: str = "1Gi") -> Obj:
    spec: Obj = {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": cls}
    if node_name:
        spec["nodeAffinity"] = on_node(node_name)
    return {"metadata": {"name": name}, "spec": spec, "status": {"phase": "Available"}}


def user(*claims: str) -> PodInfo:
    volumes = [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]
    return PodInfo.of(pod("user", volumes=volumes))


N1, N2 = node_info(node("n1")), node_info(node("n2"))


def run_filter(plugin: vb.VolumeBinding, info: PodInfo) -> tuple[Any, CycleState, dict[str, Any]]:
    state = CycleState()
    pre = plugin.pre_filter(state, info, [N1, N2])
    if pre is not None:
        return pre, state, {}
    return None, state, {n.name: plugin.filter(state, info, n) for n in (N1, N2)}


def test_pod_without_claims_skips() -> None:
    plugin = vb.VolumeBinding(DictStore())
    state = CycleState()
    assert plugin.pre_filter(state, PodInfo.of(pod()), [N1]).code is Code.SKIP
    assert plugin.filter(state, PodInfo.of(pod()), N1) is None


def test_missing_and_immediate_claims_reject_the_pod() -> None:
    plugin = vb.VolumeBinding(DictStore([claim("now", cls="now"), claim("odd", cls="nosuch")], classes=[IMMEDIATE]))
    status, _, _ = run_filter(plugin, user("nope"))
    assert status.code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE and status.message == 'persistentvolumeclaim "nope" not found'
    status, _, _ = run_filter(plugin, user("now"))
    assert status.message == "pod has unbound immediate PersistentVolumeClaims"
    status, _, _ = run_filter(plugin, user("odd"))
    assert status.message == 'storageclass.storage.k8s.io "nosuch" not found'
    no_class = vb.VolumeBinding(DictStore([claim("bare", cls="")]))
    assert run_filter(no_class, user("bare"))[0].message == "pod has unbound immediate PersistentVolumeClaims"


def test_bound_claim_follows_its_volume_node_affinity() -> None:
    store = DictStore([claim("b", volume_name="local"), claim("lost", volume_name="missing")],
                      [pv("local", node_name="n1")])
    _, _, results = run_filter(vb.VolumeBinding(store), user("b"))
    assert results["n1"] is None
    assert results["n2"].message == "node(s) had volume node affinity conflict"
    assert results["n2"].code is Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    _, _, results = run_filter(vb.VolumeBinding(store), user("lost"))
    assert results["n1"].message == "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"


def test_static_delayed_claim_only_fits_where_a_volume_is() -> None:
    store = DictStore([claim("s", cls="static")], [pv("on-n1", node_name="n1")], [STATIC])
    _, _, results = run_filter(vb.VolumeBinding(store), user("s"))
    assert results["n1"] is None
    assert results["n2"].message == "node(s) didn't find available persistent volumes to bind"
    assert results["n2"].code is Code.UNSCHEDULABLE


def test_two_claims_never_take_the_same_volume() -> None:
    store = DictStore([claim("a", cls="static"), claim("b", cls="static")], [pv("only", node_name="n1")], [STATIC])
    _, _, results = run_filter(vb.VolumeBinding(store), user("a", "b"))
    assert results["n1"].message == "node(s) didn't find available persistent volumes to bind"


def test_allowed_topologies_limit_provisioning() -> None:
    zoned = {**WFFC, "allowedTopologies": [{"matchLabelExpressions": [{"key": "kubernetes.io/hostname", "values": ["n2"]}]}]}
    _, _, results = run_filter(vb.VolumeBinding(DictStore([claim("z")], classes=[zoned])), user("z"))
    assert results["n1"] is not None and results["n2"] is None


async def test_pre_bind_binds_static_volume_and_selects_node_for_provisioning() -> None:
    store = DictStore([claim("s", cls="static"), claim("p")], [pv("on-n1", node_name="n1")], [STATIC, WFFC])
    plugin = vb.VolumeBinding(store, bind_timeout=5)
    info = user("s", "p")
    _, state, results = run_filter(plugin, info)
    assert results["n1"] is None and results["n2"] is not None
    assert plugin.reserve(state, info, "n1") is None

    async def binder() -> None:  # plays the PV controller and the provisioner
        while len(store.writes) < 2:
            await asyncio.sleep(0.01)
        for c in store.claims.values():
            c["status"]["phase"] = "Bound"
    task = asyncio.create_task(binder())
    assert await plugin.pre_bind(state, info, "n1") is None
    await task
    kind, volume = store.writes[0]
    assert kind == "volume" and volume["spec"]["claimRef"]["uid"] == "uid-s"
    assert volume["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert store.writes[1] == ("claim", ("default", "p", {"volume.kubernetes.io/selected-node": "n1"}))


async def test_pre_bind_gives_up_after_the_bind_timeout() -> None:
    store = DictStore([claim("p")], classes=[WFFC])
    plugin = vb.VolumeBinding(store, bind_timeout=0.2)
    info = user("p")
    _, state, _ = run_filter(plugin, info)
    plugin.reserve(state, info, "n1")
    status = await plugin.pre_bind(state, info, "n1")
    assert status.code is Code.ERROR and status.message == "binding volumes: context deadline exceeded"


def test_framework_reports_kube_message_for_unbound_immediate_claim() -> None:
    store = DictStore([claim("now", cls="now")], classes=[IMMEDIATE])
    fwk = Framework(DEFAULT_PROFILE, PLUGINS, Handle(all_nodes=lambda: [N1, N2], volumes=store))
    host, result = fwk.schedule(CycleState(), user("now"), [N1, N2])
    assert host == ""
    assert fit_error_message(2, result.diagnosis) == "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    assert "VolumeBinding" in DEFAULT_PROFILE.filters and "VolumeBinding" not in dict(DEFAULT_PROFILE.scores)
