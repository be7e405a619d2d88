"""ClusterIP and NodePort allocation, as units and through the API.

Facts from kube-apiserver 1.33 recorded here: the texts of a refused clusterIP
(`spec.clusterIPs: Invalid value: []string{...}: failed to allocate IP ...`) and nodePort
(`spec.ports[0].nodePort: Invalid value: N: provided port is ...`); headless Services keep
`None`; ExternalName Services get no IP and no families; single-stack IPv4 fields; a type
change releases NodePorts; deletes release everything; a restart rebuilds allocations from the
stored Services.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pykube_server.api import errors
from pykube_server.client.rest import SERVICES, Client
from pykube_server.registry.ipallocator import Allocated, IPRange, NotInRange, RangeFull
from pykube_server.registry.portallocator import PortRange, parse_port_range
from pykube_server.testing import local_cluster

NS = "default"


# -- units ------------------------------------------------------------------------------------
def test_ip_range_bounds_messages_and_owners() -> None:
    ips = IPRange("127.96.0.0/16")
    assert ips.first() == "127.96.0.1"
    assert ips.offset_of("127.96.0.0") is None and ips.offset_of("127.96.255.255") is None
    assert ips.allocate("127.96.0.10", "ns/a") is True
    assert ips.allocate("127.96.0.10", "ns/a") is False or ips.holder("127.96.0.10") == "ns/a"
    with pytest.raises(Allocated, match="^provided IP is already allocated$"):
        ips.allocate("127.96.0.10", "ns/b")
    with pytest.raises(NotInRange, match=r"^the provided IP \(10.0.0.1\) is not in the valid range. "
                                         r"The range of valid IPs is 127.96.0.0/16$"):
        ips.allocate("10.0.0.1", "ns/b")
    dynamic = ips.allocate_next("ns/c")
    assert ips.offset_of(dynamic) >= 256  # the lower band stays free for static assignment


def test_reservations_expire_and_commits_release() -> None:
    now = [0.0]
    ips = IPRange("10.0.0.0/29", clock=lambda: now[0], reservation_seconds=5)
    ips.allocate("10.0.0.2", "ns/a")
    now[0] = 6  # the write never reached the cache: the reservation lapses
    assert ips.holder("10.0.0.2") is None
    ips.commit("ns/a", ["10.0.0.2"])
    assert ips.holder("10.0.0.2") == "ns/a"
    ips.commit("ns/a", [])  # the Service was deleted (or lost its IP)
    assert ips.holder("10.0.0.2") is None
    for i in range(6):
        ips.allocate_next(f"ns/{i}")
    with pytest.raises(RangeFull):
        ips.allocate_next("ns/full")


def test_port_range() -> None:
    assert parse_port_range("30000-32767") == (30000, 32767)
    assert parse_port_range("30000+10") == (30000, 30010)
    ports = PortRange("30000-32767")
    ports.allocate(30080, "ns/a")
    with pytest.raises(Allocated, match="^provided port is already allocated$"):
        ports.allocate(30080, "ns/b")
    with pytest.raises(NotInRange, match="^provided port is not in the valid range. The range of valid ports is 30000-32767$"):
        ports.allocate(8080, "ns/b")
    assert 30000 <= ports.allocate_next("ns/c") <= 32767


# -- through the API --------------------------------------------------------------------------
async def create(client: Client, name: str, **spec: Any) -> dict[str, Any]:
    body = {"metadata": {"name": name}, "spec": {"ports": [{"port": 80}], **spec}}
    return await client.create(SERVICES, body, namespace=NS)


async def refused(client: Client, name: str, **spec: Any) -> str:
    with pytest.raises(errors.Invalid) as info:
        await create(client, name, **spec)
    return info.value.message


async def test_allocation_rules_through_the_api(tmp_path: Path) -> None:
    async with local_cluster(tmp_path, storage_url="memory://") as lc, Client.from_kubeconfig(lc.kubeconfig) as client:
        kubernetes = await client.get(SERVICES, "kubernetes", namespace=NS)
        assert kubernetes["spec"]["clusterIP"] == "127.96.0.1"
        a = await create(client, "a")
        spec = a["spec"]
        assert spec["clusterIP"].startswith("127.96.") and spec["clusterIPs"] == [spec["clusterIP"]]
        assert spec["ipFamilies"] == ["IPv4"] and spec["ipFamilyPolicy"] == "SingleStack"
        assert await refused(client, "b", clusterIP=spec["clusterIP"]) == (
            f'Service "b" is invalid: spec.clusterIPs: Invalid value: []string{{"{spec["clusterIP"]}"}}: '
            f'failed to allocate IP {spec["clusterIP"]}: provided IP is already allocated')
        assert await refused(client, "b", clusterIP="10.0.0.1") == (
            'Service "b" is invalid: spec.clusterIPs: Invalid value: []string{"10.0.0.1"}: failed to allocate IP '
            '10.0.0.1: the provided IP (10.0.0.1) is not in the valid range. The range of valid IPs is 127.96.0.0/16')
        fixed = await create(client, "fixed", clusterIP="127.96.0.53")
        assert fixed["spec"]["clusterIPs"] == ["127.96.0.53"]
        headless = await create(client, "headless", clusterIP="None", selector={"app": "x"})
        assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["clusterIPs"] == ["None"]
        external = await client.create(SERVICES, {"metadata": {"name": "ext"},
                                                  "spec": {"type": "ExternalName", "externalName": "example.com"}},
                                       namespace=NS)
        assert "clusterIP" not in external["spec"] and "ipFamilies" not in external["spec"]

        node = await create(client, "np", type="NodePort", ports=[{"port": 80, "nodePort": 30080}])
        assert node["spec"]["ports"][0]["nodePort"] == 30080
        assert await refused(client, "np2", type="NodePort", ports=[{"port": 80, "nodePort": 30080}]) == (
            'Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is already allocated')
        assert await refused(client, "np2", type="NodePort", ports=[{"port": 80, "nodePort": 80}]) == (
            'Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided port is not in the valid '
            'range. The range of valid ports is 30000-32767')
        auto = await create(client, "auto", type="NodePort")
        assert 30000 <= auto["spec"]["ports"][0]["nodePort"] <= 32767

        # NodePort -> ClusterIP with the old nodePort still in the body: wiped and released.
        node["spec"]["type"] = "ClusterIP"
        changed = await client.update(SERVICES, node)
        assert "nodePort" not in changed["spec"]["ports"][0]
        assert changed["spec"]["clusterIP"] == node["spec"]["clusterIP"]
        await create(client, "np2", type="NodePort", ports=[{"port": 80, "nodePort": 30080}])
        # A PUT without the allocated values keeps them.
        replaced = {"metadata": {"name": "auto", "resourceVersion": auto["metadata"]["resourceVersion"]},
                    "spec": {"type": "NodePort", "ports": [{"port": 80}]}}
        kept = await client.update(SERVICES, replaced | {"metadata": {**replaced["metadata"], "namespace": NS}})
        assert kept["spec"]["clusterIP"] == auto["spec"]["clusterIP"]
        assert kept["spec"]["ports"][0]["nodePort"] == auto["spec"]["ports"][0]["nodePort"]

        await client.delete(SERVICES, "fixed", namespace=NS)
        again = await create(client, "fixed-again", clusterIP="127.96.0.53")
        assert again["spec"]["clusterIP"] == "127.96.0.53"


async def test_allocations_survive_a_restart(tmp_path: Path) -> None:
    async with local_cluster(tmp_path) as lc, Client.from_kubeconfig(lc.kubeconfig) as client:
        await create(client, "keep", clusterIP="127.96.7.7", type="NodePort", ports=[{"port": 80, "nodePort": 31000}])
    async with local_cluster(tmp_path) as lc, Client.from_kubeconfig(lc.kubeconfig) as client:
        message = await refused(client, "dup", clusterIP="127.96.7.7")
        assert message.endswith("failed to allocate IP 127.96.7.7: provided IP is already allocated")
        message = await refused(client, "dup", type="NodePort", ports=[{"port": 80, "nodePort": 31000}])
        assert message.endswith("provided port is already allocated")
