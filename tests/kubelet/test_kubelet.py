"""Node registration, Lease renewal, node status and a pod's life, against an in-process API server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pykube_server.api import errors
from pykube_server.client.events import EventRecorder
from pykube_server.client.rest import LEASES, NODES, PODS, Client
from pykube_server.kubelet import node as nodeinfo
from pykube_server.kubelet.kubelet import Kubelet, NodeConfig
from pykube_server.kubelet.runtimes.fake import FakeRuntime
from pykube_server.testing import local_cluster

SIM = nodeinfo.Resources("32", 256 * 2**30, 1024 * 2**30)


@pytest.fixture
async def kubelet(tmp_path: Path) -> AsyncIterator[tuple[Kubelet, Client]]:
    async with local_cluster(tmp_path) as cluster:
        async with Client.from_kubeconfig(cluster.kubeconfig) as client:
            recorder = EventRecorder(client, component="kubelet", host="pykube-node-1")
            kl = Kubelet(NodeConfig("pykube-node-1", "127.244.1.0/24", SIM, simulated=True, kubelet_port=10250),
                         client=client, runtime=FakeRuntime(), recorder=recorder)
            async with asyncio.TaskGroup() as tg:
                tasks = [tg.create_task(kl.run()), tg.create_task(recorder.run())]
                await asyncio.wait_for(kl.registered.wait(), 10)
                yield kl, client
                for t in tasks:
                    t.cancel()


async def eventually(fn: Any, timeout: float = 10.0) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            try:
                result = await fn()
                if result:
                    return result
            except (AssertionError, errors.StatusError):
                pass
            await asyncio.sleep(0.05)


async def test_node_is_registered_ready_with_capacity(kubelet) -> None:  # type: ignore[no-untyped-def]
    _, client = kubelet
    node = await client.get(NODES, "pykube-node-1")
    status = node["status"]
    assert status["capacity"] == {"cpu": "32", "ephemeral-storage": "1073741824Ki", "hugepages-1Gi": "0",
                                  "hugepages-2Mi": "0", "memory": "268435456Ki", "pods": "110"}
    assert status["allocatable"]["memory"] == "268333056Ki"
    conds = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert conds == {"MemoryPressure": ("False", "KubeletHasSufficientMemory"),
                     "DiskPressure": ("False", "KubeletHasNoDiskPressure"),
                     "PIDPressure": ("False", "KubeletHasSufficientPID"), "Ready": ("True", "KubeletReady")}
    assert status["addresses"] == [{"type": "InternalIP", "address": "127.0.0.1"},
                                   {"type": "Hostname", "address": "pykube-node-1"}]
    info = status["nodeInfo"]
    assert (info["kubeletVersion"], info["containerRuntimeVersion"], info["operatingSystem"]) == (
        "v1.33.0", "pykube-simulated://0.1.0", "linux")
    assert status["daemonEndpoints"] == {"kubeletEndpoint": {"Port": 10250}}
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "pykube-node-1"
    assert labels["node.kubernetes.io/instance-type"] == "pykube-simulated"
    assert node["spec"]["podCIDR"] == "127.244.1.0/24"


async def test_lease_is_held_and_renewed(kubelet) -> None:  # type: ignore[no-untyped-def]
    kl, client = kubelet

    async def lease() -> Any:
        return await client.get(LEASES, "pykube-node-1", namespace="kube-node-lease")

    first = await eventually(lease)
    assert first["spec"]["holderIdentity"] == "pykube-node-1"
    assert first["spec"]["leaseDurationSeconds"] == 40
    assert first["metadata"]["ownerReferences"][0]["kind"] == "Node"
    await asyncio.sleep(0.01)
    await kl.renew_lease()
    second = await lease()
    assert second["spec"]["renewTime"] > first["spec"]["renewTime"]

    # A renewal is one request: the Lease written last time is updated without reading it first
    # (client-go's lease controller); someone else's write (a Conflict) makes it read again.
    calls: list[str] = []
    real_get, real_update = kl.client.get, kl.client.update

    async def get(*args: Any, **kwargs: Any) -> Any:
        calls.append("get")
        return await real_get(*args, **kwargs)

    async def update(*args: Any, **kwargs: Any) -> Any:
        calls.append("update")
        return await real_update(*args, **kwargs)

    kl.client.get, kl.client.update = get, update
    try:
        await kl.renew_lease()
        assert calls == ["update"]
        stale = await lease()
        stale["metadata"]["labels"] = {"touched": "yes"}
        await client.update(LEASES, stale)
        calls.clear()
        await kl.renew_lease()
        assert calls == ["update", "get", "update"]
    finally:
        kl.client.get, kl.client.update = real_get, real_update


async def test_node_status_written_only_when_changed_or_due(kubelet) -> None:  # type: ignore[no-untyped-def]
    kl, _ = kubelet
    writes = kl.node_status_writes
    assert await kl.update_node_status() is False
    assert await kl.update_node_status(force=True) is True
    assert kl.node_status_writes == writes + 1


async def test_pod_bound_to_node_runs_and_is_deleted(kubelet) -> None:  # type: ignore[no-untyped-def]
    _, client = kubelet
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
           "spec": {"nodeName": "pykube-node-1", "containers": [{"name": "c", "image": "nginx"}]}}
    await client.create(PODS, pod, namespace="default")

    async def running() -> Any:
        p = await client.get(PODS, "p", namespace="default")
        return p if p["status"].get("phase") == "Running" else None

    p = await eventually(running)
    assert p["status"]["podIP"].startswith("127.244.1.")
    assert p["status"]["containerStatuses"][0]["ready"] is True
    await client.delete(PODS, "p", namespace="default")

    async def gone() -> bool:
        items = (await client.list(PODS, namespace="default"))["items"]
        return not items

    await eventually(gone)
