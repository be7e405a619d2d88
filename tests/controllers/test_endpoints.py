"""endpoints-controller, endpointslice-controller and endpointslice-mirroring-controller.

Facts from kube-controller-manager 1.33 recorded here: Endpoints carry the Service's labels plus
`endpoints.kubernetes.io/managed-by: endpoint-controller`, ready pods under `addresses` and
unready ones under `notReadyAddresses`, targetRef and nodeName on each address; EndpointSlices
are named `<service>-<random>`, labelled `kubernetes.io/service-name` and
`endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io`, owned by the
Service, hold at most 100 endpoints, report ready/serving/terminating; a Service without pods
keeps one empty placeholder slice; selector-less Services get their hand-written Endpoints
mirrored by `endpointslicemirroring-controller.k8s.io`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from pykube_server.api import errors
from pykube_server.client.rest import ENDPOINTS, ENDPOINTSLICES, PODS, SERVICES, Client
from pykube_server.testing import LocalCluster
from tests.controllers import controllers_running, eventually

CONTROLLERS = ["endpoints-controller", "endpointslice-controller", "endpointslice-mirroring-controller"]
NS = "default"
Obj = dict[str, Any]


@pytest.fixture
async def client(cluster: LocalCluster) -> AsyncIterator[Client]:
    async with controllers_running(cluster, CONTROLLERS) as c:
        yield c


async def make_pod(client: Client, name: str, ip: str, *, ready: bool = True, labels: dict[str, str] | None = None,
                   node: str = "node-1", port: int = 8080) -> Obj:
    pod = {"metadata": {"name": name, "labels": labels or {"app": "web"}},
           "spec": {"nodeName": node, "containers": [{"name": "c", "image": "python",
                                                      "ports": [{"name": "http", "containerPort": port}]}]}}
    created = await client.create(PODS, pod, namespace=NS)
    status = {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                         "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}
    await client.patch(PODS, name, status, namespace=NS, subresource="status")
    return created


async def make_service(client: Client, name: str = "web", **spec: Any) -> Obj:
    body = {"metadata": {"name": name, "labels": {"tier": "front"}},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}], **spec}}
    return await client.create(SERVICES, body, namespace=NS)


async def slices_of(client: Client, service: str) -> list[Obj]:
    items = (await client.list(ENDPOINTSLICES, namespace=NS, label_selector=f"kubernetes.io/service-name={service}"))["items"]
    return sorted(items, key=lambda s: s["metadata"]["name"])


async def get_or_none(client: Client, resource: Any, name: str) -> Obj | None:
    try:
        return await client.get(resource, name, namespace=NS)
    except errors.NotFound:
        return None


async def test_ready_and_not_ready_pods_with_named_target_port(client: Client) -> None:
    svc = await make_service(client)
    await make_pod(client, "web-1", "127.244.1.11")
    await make_pod(client, "web-2", "127.244.1.12", ready=False)
    await make_pod(client, "other", "127.244.1.13", labels={"app": "other"})

    async def endpoints_done() -> Obj | None:
        ep = await get_or_none(client, ENDPOINTS, "web")
        subsets = (ep or {}).get("subsets") or []
        return ep if subsets and subsets[0].get("addresses") and subsets[0].get("notReadyAddresses") else None

    ep = await eventually(endpoints_done)
    assert ep["metadata"]["labels"] == {"tier": "front", "endpoints.kubernetes.io/managed-by": "endpoint-controller"}
    assert "endpoints.kubernetes.io/last-change-trigger-time" in ep["metadata"]["annotations"]
    [subset] = ep["subsets"]
    assert subset["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    [ready] = subset["addresses"]
    assert ready["ip"] == "127.244.1.11" and ready["nodeName"] == "node-1"
    assert ready["targetRef"]["kind"] == "Pod" and ready["targetRef"]["name"] == "web-1"
    assert [a["ip"] for a in subset["notReadyAddresses"]] == ["127.244.1.12"]

    async def slice_done() -> list[Obj] | None:
        slices = await slices_of(client, "web")
        return slices if len(slices) == 1 and len(slices[0].get("endpoints") or []) == 2 else None

    [slice_] = await eventually(slice_done)
    meta = slice_["metadata"]
    assert meta["name"].startswith("web-") and len(meta["name"]) == len("web-") + 5
    assert meta["labels"] == {"tier": "front", "kubernetes.io/service-name": "web",
                              "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    assert meta["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                        "uid": svc["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]
    assert slice_["addressType"] == "IPv4"
    assert slice_["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    by_ip = {e["addresses"][0]: e for e in slice_["endpoints"]}
    assert by_ip["127.244.1.11"]["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert by_ip["127.244.1.12"]["conditions"] == {"ready": False, "serving": False, "terminating": False}
    assert by_ip["127.244.1.11"]["nodeName"] == "node-1"
    assert by_ip["127.244.1.11"]["targetRef"]["name"] == "web-1"


async def test_numeric_target_port_and_publish_not_ready(client: Client) -> None:
    await make_service(client, "plain", ports=[{"port": 80, "targetPort": 9090}], publishNotReadyAddresses=True)
    await make_pod(client, "web-1", "127.244.1.21", ready=False)

    async def done() -> Obj | None:
        ep = await get_or_none(client, ENDPOINTS, "plain")
        return ep if (ep or {}).get("subsets") else None

    ep = await eventually(done)
    assert ep["subsets"] == [{"addresses": [ep["subsets"][0]["addresses"][0]],
                              "ports": [{"port": 9090, "protocol": "TCP"}]}]
    assert ep["subsets"][0]["addresses"][0]["ip"] == "127.244.1.21"

    async def slice_done() -> Obj | None:
        slices = await slices_of(client, "plain")
        return slices[0] if slices and slices[0].get("endpoints") else None

    slice_ = await eventually(slice_done)
    assert slice_["ports"] == [{"name": "", "port": 9090, "protocol": "TCP"}]
    assert slice_["endpoints"][0]["conditions"] == {"ready": True, "serving": False, "terminating": False}


async def test_placeholder_then_pods_then_service_deleted(client: Client) -> None:
    await make_service(client)

    async def placeholder() -> Obj | None:
        slices = await slices_of(client, "web")
        return slices[0] if len(slices) == 1 else None

    slice_ = await eventually(placeholder)
    assert slice_["endpoints"] is None and slice_["ports"] is None
    ep = await eventually(lambda: get_or_none(client, ENDPOINTS, "web"))
    assert "subsets" not in ep
    await make_pod(client, "web-1", "127.244.1.31")

    async def filled() -> list[Obj] | None:
        slices = await slices_of(client, "web")
        return slices if len(slices) == 1 and slices[0].get("endpoints") else None

    await eventually(filled)
    await client.delete(SERVICES, "web", namespace=NS)

    async def gone() -> bool:
        return await get_or_none(client, ENDPOINTS, "web") is None and not await slices_of(client, "web")

    await eventually(gone)


async def test_terminating_pod_stays_in_slice_only(client: Client) -> None:
    await make_service(client)
    await make_pod(client, "web-1", "127.244.1.41")
    await make_pod(client, "web-2", "127.244.1.42")

    async def two() -> bool:
        slices = await slices_of(client, "web")
        return len(slices) == 1 and len(slices[0].get("endpoints") or []) == 2

    await eventually(two)
    await client.delete(PODS, "web-2", namespace=NS)  # bound to a node: graceful, stays terminating

    async def terminating() -> Obj | None:
        slices = await slices_of(client, "web")
        eps = {e["addresses"][0]: e for e in (slices[0].get("endpoints") or [])} if slices else {}
        e = eps.get("127.244.1.42")
        return e if e and e["conditions"]["terminating"] else None

    endpoint = await eventually(terminating)
    assert endpoint["conditions"] == {"ready": False, "serving": True, "terminating": True}

    async def endpoints_dropped() -> bool:
        ep = await client.get(ENDPOINTS, "web", namespace=NS)
        return [a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []] == ["127.244.1.41"]

    await eventually(endpoints_dropped)


async def test_at_most_100_endpoints_a_slice(client: Client) -> None:
    await make_service(client)
    sem = asyncio.Semaphore(8)

    async def one(i: int) -> None:
        async with sem:
            await make_pod(client, f"web-{i}", f"127.244.2.{i + 1}")

    await asyncio.gather(*(one(i) for i in range(105)))

    async def split() -> list[Obj] | None:
        slices = await slices_of(client, "web")
        counts = sorted(len(s.get("endpoints") or []) for s in slices)
        return slices if sum(counts) == 105 else None

    slices = await eventually(split, timeout=30)
    assert sorted(len(s["endpoints"]) for s in slices) == [5, 100]
    ips = [e["addresses"][0] for s in slices for e in s["endpoints"]]
    assert len(set(ips)) == 105


async def test_selectorless_service_endpoints_are_mirrored(client: Client) -> None:
    await client.create(SERVICES, {"metadata": {"name": "ext"}, "spec": {"ports": [{"port": 80}]}}, namespace=NS)
    endpoints = {"metadata": {"name": "ext", "labels": {"team": "a"}},
                 "subsets": [{"addresses": [{"ip": "127.244.3.1"}], "notReadyAddresses": [{"ip": "127.244.3.2"}],
                              "ports": [{"port": 8080}]}]}
    created = await client.create(ENDPOINTS, endpoints, namespace=NS)

    async def mirrored() -> Obj | None:
        slices = await slices_of(client, "ext")
        return slices[0] if slices else None

    slice_ = await eventually(mirrored)
    assert slice_["metadata"]["labels"] == {"team": "a", "kubernetes.io/service-name": "ext",
                                            "endpointslice.kubernetes.io/managed-by": "endpointslicemirroring-controller.k8s.io"}
    assert slice_["metadata"]["ownerReferences"][0]["kind"] == "Endpoints"
    assert slice_["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    assert slice_["ports"] == [{"name": "", "port": 8080, "protocol": "TCP"}]
    assert [(e["addresses"][0], e["conditions"]["ready"]) for e in slice_["endpoints"]] == \
        [("127.244.3.1", True), ("127.244.3.2", False)]
    # The API server's own Endpoints are marked skip-mirror: its slice is the server's, unmanaged.
    [kubernetes] = await slices_of(client, "kubernetes")
    assert kubernetes["metadata"]["name"] == "kubernetes"
    assert "endpointslice.kubernetes.io/managed-by" not in kubernetes["metadata"]["labels"]
