"""node-lifecycle-controller, taint-eviction-controller and pod-garbage-collector-controller.

Run in-process with short periods (the controllers take kube's flags as options). Kube 1.33
facts recorded here: a node whose Lease is no longer renewed goes Ready=Unknown with reason
NodeStatusUnknown and message `Kubelet stopped posting node status.` (MemoryPressure,
DiskPressure and PIDPressure too), is tainted `node.kubernetes.io/unreachable` NoExecute and
NoSchedule (both with timeAdded), and its pods get Ready=False; a NotReady node gets
`node.kubernetes.io/not-ready`; a cordoned node gets `node.kubernetes.io/unschedulable:NoSchedule`;
pods that tolerate a NoExecute taint for N seconds are evicted N seconds later, and the
DisruptionTarget condition says DeletionByTaintManager. Pods bound to a node that stays gone
past the quarantine are deleted by the pod GC, and terminated pods beyond the threshold are
deleted evicted-first.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timezone


from pykube_server.api import errors
from pykube_server.client.rest import LEASES, NODES, PODS, Client, PatchType
from pykube_server.controllers.nodelifecycle import tolerates
from pykube_server.testing import LocalCluster
from tests.controllers import controllers_running, eventually
from tests.controllers.workloads import CONTAINERS, set_pod_status

NS = "default"
UNREACHABLE = "node.kubernetes.io/unreachable"


def stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def fake_node(client: Client, name: str) -> None:
    """Register a node as a kubelet would: the Node, Ready=True, and its Lease."""
    node = await client.create(NODES, {"metadata": {"name": name}})
    conditions = [{"type": t, "status": s, "reason": "Kubelet", "message": "ok", "lastHeartbeatTime": stamp(),
                   "lastTransitionTime": stamp()}
                  for t, s in (("MemoryPressure", "False"), ("DiskPressure", "False"), ("PIDPressure", "False"),
                               ("Ready", "True"))]
    await client.update(NODES, {**node, "status": {"conditions": conditions}}, subresource="status")
    await client.create(LEASES, {"metadata": {"name": name}, "spec": {"holderIdentity": name, "leaseDurationSeconds": 40,
                                                                      "renewTime": micro()}}, namespace="kube-node-lease")


async def renew_forever(client: Client, name: str) -> None:
    while True:
        lease = await client.get(LEASES, name, namespace="kube-node-lease")
        lease["spec"]["renewTime"] = micro()
        await client.update(LEASES, lease)
        await asyncio.sleep(0.2)


def bound_pod(name: str, node: str, *tolerations: dict) -> dict:
    return {"metadata": {"name": name}, "spec": {"containers": CONTAINERS, "nodeName": node,
                                                 "tolerations": list(tolerations)}}


def taint_keys(node: dict) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in (node.get("spec") or {}).get("taints") or []}


def test_tolerates() -> None:
    taint = {"key": UNREACHABLE, "effect": "NoExecute"}
    assert tolerates({"key": UNREACHABLE, "operator": "Exists"}, taint)
    assert tolerates({"operator": "Exists"}, taint)
    assert not tolerates({"key": UNREACHABLE, "operator": "Exists", "effect": "NoSchedule"}, taint)
    assert not tolerates({"key": "other", "operator": "Exists"}, taint)
    assert tolerates({"key": "k", "value": "v"}, {"key": "k", "value": "v", "effect": "NoExecute"})
    assert not tolerates({"key": "k", "value": "w"}, {"key": "k", "value": "v", "effect": "NoExecute"})


async def test_lost_lease_makes_node_unknown_tainted_and_evicts(cluster: LocalCluster) -> None:
    async with controllers_running(cluster, ["node-lifecycle-controller", "taint-eviction-controller"],
                                   node_monitor_period_seconds=0.2, node_monitor_grace_period_seconds=1.5) as client:
        await fake_node(client, "n1")
        renewer = asyncio.create_task(renew_forever(client, "n1"))
        now = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 0}
        soon = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 2}
        forever = {"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}
        for name, toleration in (("now", now), ("soon", soon), ("forever", forever), ("default", None)):
            created = await client.create(PODS, bound_pod(name, "n1", *([toleration] if toleration else [])), namespace=NS)
            assert created["spec"]["tolerations"]  # DefaultTolerationSeconds adds 300 s where missing
            await set_pod_status(client, created, "Running", ready=True)
        await asyncio.sleep(2.0)  # longer than the grace period: renewals keep it Ready
        node = await client.get(NODES, "n1")
        assert next(c for c in node["status"]["conditions"] if c["type"] == "Ready")["status"] == "True"
        assert not taint_keys(node)

        renewer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await renewer

        async def unknown() -> dict | None:
            n = await client.get(NODES, "n1")
            return n if {(UNREACHABLE, "NoExecute"), (UNREACHABLE, "NoSchedule")} <= taint_keys(n) else None

        node = await eventually(unknown, timeout=15)
        for kind in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"):
            cond = next(c for c in node["status"]["conditions"] if c["type"] == kind)
            assert (cond["status"], cond["reason"], cond["message"]) == \
                ("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
        assert all(t["timeAdded"] for t in node["spec"]["taints"])

        async def deleting(name: str) -> bool:
            return bool((await client.get(PODS, name, namespace=NS))["metadata"].get("deletionTimestamp"))

        await eventually(lambda: deleting("now"), timeout=10)
        assert not await deleting("soon")
        await eventually(lambda: deleting("soon"), timeout=10)
        target = next(c for c in (await client.get(PODS, "soon", namespace=NS))["status"]["conditions"]
                      if c["type"] == "DisruptionTarget")
        assert (target["reason"], target["message"]) == ("DeletionByTaintManager", "Taint manager: deleting due to NoExecute taint")
        for name in ("forever", "default"):
            pod = await client.get(PODS, name, namespace=NS)
            assert not pod["metadata"].get("deletionTimestamp")
            assert next(c for c in pod["status"]["conditions"] if c["type"] == "Ready")["status"] == "False"


async def test_not_ready_and_cordoned_nodes_are_tainted(cluster: LocalCluster) -> None:
    async with controllers_running(cluster, ["node-lifecycle-controller"], node_monitor_period_seconds=0.2,
                                   node_monitor_grace_period_seconds=30) as client:
        await fake_node(client, "n2")
        await client.patch(NODES, "n2", {"spec": {"unschedulable": True}})

        async def has(keys: set) -> dict | None:
            n = await client.get(NODES, "n2")
            return n if taint_keys(n) == keys else None

        await eventually(lambda: has({("node.kubernetes.io/unschedulable", "NoSchedule")}), timeout=10)
        node = await client.get(NODES, "n2")
        for cond in node["status"]["conditions"]:
            if cond["type"] == "Ready":
                cond["status"] = "False"
        await client.update(NODES, node, subresource="status")
        await client.patch(NODES, "n2", {"spec": {"unschedulable": None}})
        await eventually(lambda: has({("node.kubernetes.io/not-ready", "NoExecute"),
                                      ("node.kubernetes.io/not-ready", "NoSchedule")}), timeout=10)
        # someone else's taint is left alone
        await client.patch(NODES, "n2", [{"op": "add", "path": "/spec/taints/-",
                                          "value": {"key": "mine", "effect": "NoSchedule"}}], patch_type=PatchType.JSON)
        node = await client.get(NODES, "n2")
        for cond in node["status"]["conditions"]:
            if cond["type"] == "Ready":
                cond["status"] = "True"
        await client.update(NODES, node, subresource="status")
        await eventually(lambda: has({("mine", "NoSchedule")}), timeout=10)


async def test_podgc_deletes_orphans_and_excess_terminated(cluster: LocalCluster) -> None:
    async with controllers_running(cluster, ["pod-garbage-collector-controller"], pod_gc_period_seconds=0.2,
                                   pod_gc_quarantine_seconds=0.5, terminated_pod_gc_threshold=2) as client:
        await client.create(NODES, {"metadata": {"name": "real"}})
        await client.create(NODES, {"metadata": {"name": "doomed"}})
        await client.create(PODS, bound_pod("orphan", "doomed"), namespace=NS)
        await asyncio.sleep(1.0)  # a quarantine's worth with the node still there: nothing happens
        assert (await client.get(PODS, "orphan", namespace=NS))["metadata"]["name"] == "orphan"
        await client.delete(NODES, "doomed")
        await client.create(PODS, bound_pod("alive", "real"), namespace=NS)
        for name in ("done1", "done2", "evicted"):
            created = await client.create(PODS, bound_pod(name, "real"), namespace=NS)
            await set_pod_status(client, created, "Failed" if name == "evicted" else "Succeeded", exit_code=0)
            if name == "evicted":
                fresh = await client.get(PODS, name, namespace=NS)
                await client.update(PODS, {**fresh, "status": {**fresh["status"], "reason": "Evicted"}}, subresource="status")

        async def gone(name: str) -> bool:
            try:
                await client.get(PODS, name, namespace=NS)
            except errors.NotFound:
                return True
            return False

        await eventually(lambda: gone("orphan"), timeout=10)
        await eventually(lambda: gone("evicted"), timeout=10)
        for name in ("alive", "done1", "done2"):
            assert not await gone(name)
