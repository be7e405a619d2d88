"""Traffic policies and health check node ports in the proxy.

Facts from kube-proxy recorded here: with `internalTrafficPolicy: Local`, ClusterIP traffic goes
only to endpoints on the proxy's own node (none there: not served); with
`externalTrafficPolicy: Local`, NodePort, load-balancer and external-IP traffic goes only to
node-local endpoints, while ClusterIP traffic still reaches every endpoint; when no endpoint
is ready, serving-and-terminating ones are used, locally too. For a LoadBalancer Service with
`externalTrafficPolicy: Local`, kube-proxy serves HTTP on `healthCheckNodePort`: any path
answers `application/json` with `X-Content-Type-Options: nosniff`, a tab-indented body
`{"service": {"namespace", "name"}, "localEndpoints": N, "serviceProxyHealthy": true}`,
status 200 when N > 0 and 503 when N = 0; N counts distinct ready local endpoint IPs.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from pykube_server.client.rest import ENDPOINTSLICES, SERVICES
from pykube_server.proxy.proxier import EXTERNAL, INTERNAL, health_check, plan_service
from pykube_server.proxy.topology import endpoints_of, local_endpoints
from pykube_server.testing import LocalCluster
from tests.proxy.test_proxier import NS, ask, backends, proxier_running, until_listening

Obj = dict[str, Any]
ME, OTHER = "node-a", "node-b"


def endpoint(ip: str, node: str, *, ready: bool = True, serving: bool | None = None,
             terminating: bool = False) -> Obj:
    conditions: Obj = {"ready": ready, "terminating": terminating}
    if serving is not None:
        conditions["serving"] = serving
    return {"addresses": [ip], "nodeName": node, "conditions": conditions}


def slice_of(service: str, endpoints: list[Obj], port: int = 8080) -> Obj:
    return {"metadata": {"name": f"{service}-x", "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "endpoints": endpoints, "ports": [{"name": "", "port": port, "protocol": "TCP"}]}


def service(**spec: Any) -> Obj:
    return {"metadata": {"namespace": NS, "name": "web"},
            "spec": {"clusterIP": "127.96.0.50", "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}], **spec},
            "status": {"loadBalancer": {"ingress": [{"ip": "127.240.0.7", "ipMode": "VIP"}]}}}


SLICES = [slice_of("web", [endpoint("127.244.1.1", ME), endpoint("127.244.2.1", OTHER)])]


def test_cluster_policies_send_everything_everywhere() -> None:
    plans = plan_service(service(type="LoadBalancer"), SLICES, "127.0.0.1", {ME})
    internal, external = plans[(NS, "web", "", "TCP", INTERNAL)], plans[(NS, "web", "", "TCP", EXTERNAL)]
    assert internal.endpoints == external.endpoints == [("127.244.1.1", 8080), ("127.244.2.1", 8080)]
    assert internal.listen == [("TCP", "127.96.0.50", 80)]
    assert external.listen == [("TCP", "127.0.0.1", 30080), ("TCP", "127.240.0.7", 80)]


def test_load_balancer_without_node_ports_listens_on_its_ingress_ip_only() -> None:
    svc = service(type="LoadBalancer", allocateLoadBalancerNodePorts=False)
    svc["spec"]["ports"][0].pop("nodePort")
    plans = plan_service(svc, SLICES, "127.0.0.1", {ME})
    assert plans[(NS, "web", "", "TCP", EXTERNAL)].listen == [("TCP", "127.240.0.7", 80)]


def test_external_local_keeps_cluster_ip_traffic_cluster_wide() -> None:
    plans = plan_service(service(type="LoadBalancer", externalTrafficPolicy="Local"), SLICES, "127.0.0.1", {ME})
    assert plans[(NS, "web", "", "TCP", INTERNAL)].endpoints == [("127.244.1.1", 8080), ("127.244.2.1", 8080)]
    assert plans[(NS, "web", "", "TCP", EXTERNAL)].endpoints == [("127.244.1.1", 8080)]
    elsewhere = plan_service(service(type="LoadBalancer", externalTrafficPolicy="Local"), SLICES, "127.0.0.1", {"x"})
    assert (NS, "web", "", "TCP", EXTERNAL) not in elsewhere  # no local endpoint: NodePort and LB IP not served
    assert (NS, "web", "", "TCP", INTERNAL) in elsewhere


def test_internal_local_limits_cluster_ip_traffic_to_this_node() -> None:
    plans = plan_service(service(type="NodePort", internalTrafficPolicy="Local"), SLICES, "127.0.0.1", {OTHER})
    assert plans[(NS, "web", "", "TCP", INTERNAL)].endpoints == [("127.244.2.1", 8080)]
    assert plans[(NS, "web", "", "TCP", EXTERNAL)].endpoints == [("127.244.1.1", 8080), ("127.244.2.1", 8080)]
    assert (NS, "web", "", "TCP", INTERNAL) not in plan_service(service(internalTrafficPolicy="Local"), SLICES,
                                                                "127.0.0.1", {"x"})


def test_local_terminating_fallback_and_unset_serving() -> None:
    infos = endpoints_of([slice_of("web", [endpoint("127.244.1.1", ME, ready=False, serving=True, terminating=True),
                                           endpoint("127.244.1.2", ME, ready=False, serving=False, terminating=True),
                                           endpoint("127.244.2.1", OTHER)])], "", "TCP")
    assert local_endpoints(infos, {ME}) == [("127.244.1.1", 8080)]
    assert infos[2].serving  # unset serving follows ready


def test_health_check_only_for_local_load_balancers() -> None:
    assert health_check(service(type="LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort=31000),
                        SLICES, {ME}) == (31000, 1)
    assert health_check(service(type="LoadBalancer", externalTrafficPolicy="Local", healthCheckNodePort=31000),
                        SLICES, {"x"}) == (31000, 0)
    assert health_check(service(type="LoadBalancer", healthCheckNodePort=31000), SLICES, {ME}) is None
    assert health_check(service(type="NodePort", externalTrafficPolicy="Local"), SLICES, {ME}) is None


async def test_local_policies_and_health_check_end_to_end(cluster: LocalCluster) -> None:
    async with proxier_running(cluster) as (client, proxier), backends(2) as (pods, port):
        proxier.node_names = frozenset({ME})
        body = {"metadata": {"name": "lb"},
                "spec": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                         "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}
        svc = await client.create(SERVICES, body, namespace=NS)
        cluster_ip, node_port = svc["spec"]["clusterIP"], svc["spec"]["ports"][0]["nodePort"]
        health_port = svc["spec"]["healthCheckNodePort"]
        only_other = {"metadata": {"name": "lb-x", "labels": {"kubernetes.io/service-name": "lb"}},
                      "addressType": "IPv4", "endpoints": [endpoint(pods[1].ip, OTHER)],
                      "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}
        created = await client.create(ENDPOINTSLICES, only_other, namespace=NS)
        await until_listening(proxier, ("TCP", cluster_ip, 80))
        assert (await ask(cluster_ip, 80)).startswith("pod-1:")  # ClusterIP traffic is cluster-wide
        assert ("TCP", "127.0.0.1", node_port) not in proxier.listeners  # no local endpoint: not served
        status, document, headers = await probe(health_port)
        assert (status, document["localEndpoints"]) == (503, 0)
        assert headers["Content-Type"] == "application/json" and headers["X-Content-Type-Options"] == "nosniff"

        created["endpoints"] = [endpoint(pods[0].ip, ME), endpoint(pods[1].ip, OTHER)]
        await client.update(ENDPOINTSLICES, created)
        await until_listening(proxier, ("TCP", "127.0.0.1", node_port))
        assert {(await ask("127.0.0.1", node_port)).split(":")[0] for _ in range(4)} == {"pod-0"}
        async with asyncio.timeout(5):
            while (await probe(health_port))[0] != 200:
                await asyncio.sleep(0.02)
        status, document, _ = await probe(health_port, "/healthz")
        assert document == {"service": {"namespace": NS, "name": "lb"}, "localEndpoints": 1,
                            "serviceProxyHealthy": True}


async def probe(port: int, path: str = "/") -> tuple[int, Obj, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as resp:
        text = await resp.text()
        assert text.startswith('{\n\t"service": {\n\t\t"namespace": ')
        return resp.status, json.loads(text), dict(resp.headers)
