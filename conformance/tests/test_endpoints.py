"""Endpoints and EndpointSlices: test/e2e/network/endpointslice.go, endpoints.go,
endpointslicemirroring.go, apiserver.go and service_latency.go (the conformance tests). The pods run the
nginx image, a placeholder process for the process runtime; only their IPs and ports matter here."""

from __future__ import annotations

import concurrent.futures
import time

from kubernetes import client, watch

from conformance.harness import conformance, wait_for
from conformance.tests._common import NGINX, PAUSE, wait_default_service_account

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"


def not_found(fn, *args) -> bool:  # type: ignore[no-untyped-def]
    try:
        fn(*args)
    except client.exceptions.ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def slices_of(disc: client.DiscoveryV1Api, ns: str, svc: str) -> list:
    return disc.list_namespaced_endpoint_slice(ns, label_selector=f"{SERVICE_NAME_LABEL}={svc}").items


def empty_selector_service(core: client.CoreV1Api, ns: str) -> object:
    return core.create_namespaced_service(ns, {
        "metadata": {"name": "example-empty-selector"},
        "spec": {"selector": {"does-not-match-anything": "endpoints-and-endpoint-slices-should-still-be-created"},
                 "ports": [{"name": "example", "port": 80, "protocol": "TCP"}]}})


def make_matching_pods_and_services(core: client.CoreV1Api, ns: str) -> dict:
    """Two pods (pod1 with port example-name 3000; pod2 with example-name 3001 and other-port 3002)
    and three services: one by int port for pod1, one by named port for both, one matching nothing."""
    def pod(name: str, labels: dict, ports: list[dict]) -> dict:
        return {"metadata": {"name": name, "labels": labels},
                "spec": {"containers": [{"name": "container1", "image": NGINX, "ports": ports}]}}
    core.create_namespaced_pod(ns, pod("pod1", {"pod1": "on", "shared12": "on"},
                                       [{"name": "example-name", "containerPort": 3000}]))
    core.create_namespaced_pod(ns, pod("pod2", {"pod2": "on", "shared12": "on"},
                                       [{"name": "example-name", "containerPort": 3001},
                                        {"name": "other-port", "containerPort": 3002}]))

    def svc(name: str, selector: dict, port_name: str, target) -> object:  # type: ignore[no-untyped-def]
        return core.create_namespaced_service(ns, {
            "metadata": {"name": name},
            "spec": {"selector": selector, "publishNotReadyAddresses": True,
                     "ports": [{"name": port_name, "port": 80, "targetPort": target, "protocol": "TCP"}]}})
    services = {"int": svc("example-int-port", {"pod1": "on"}, "example", 3000),
                "named": svc("example-named-port", {"shared12": "on"}, "http", "example-name"),
                "none": svc("example-no-match", {"pod3": "on"}, "example-no-match", 8080)}

    def with_ips():  # type: ignore[no-untyped-def]
        pods = [core.read_namespaced_pod(n, ns) for n in ("pod1", "pod2")]
        return pods if all(p.status.pod_ips for p in pods) else None
    pod1, pod2 = wait_for(with_ips, timeout=180, what="the pods to have IPs")
    return {"pods": {"pod1": pod1, "pod2": pod2}, "services": services}


def check_target_ref(pod, ref) -> None:  # type: ignore[no-untyped-def]
    """ensurePodTargetRef."""
    assert ref is not None, "expected a targetRef"
    assert (ref.kind, ref.namespace, ref.name, ref.uid) == ("Pod", pod.metadata.namespace, pod.metadata.name,
                                                            pod.metadata.uid), ref


def container_port(pod, name: str) -> int:  # type: ignore[no-untyped-def]
    return next(p.container_port for p in pod.spec.containers[0].ports if p.name == name)


def expect_endpoints(core: client.CoreV1Api, ns: str, svc, pods: list, subsets: int, named: bool) -> None:  # type: ignore[no-untyped-def]
    """The Endpoints half of expectEndpointsAndSlices."""
    def matching():  # type: ignore[no-untyped-def]
        ep = core.read_namespaced_endpoints(svc.metadata.name, ns)
        got = ep.subsets or []
        ips = sum(len(s.addresses or []) + len(s.not_ready_addresses or []) for s in got)
        return ep if len(got) == subsets and ips == len(pods) else None
    ep = wait_for(matching, timeout=60, what=f"endpoints of {svc.metadata.name}")
    by_ip = {p.status.pod_ip: p for p in pods}
    total = 0
    svc_port = svc.spec.ports[0]
    for subset in ep.subsets or []:
        addresses = (subset.addresses or []) + (subset.not_ready_addresses or [])
        total += len(addresses)
        if not named:
            for i, port in enumerate(subset.ports or []):
                sp = svc.spec.ports[i]
                assert (port.name, port.protocol, port.port) == (sp.name, sp.protocol, sp.target_port), port
        for address in addresses:
            pod = by_ip.get(address.ip)
            assert pod is not None, f"unexpected address with IP {address.ip}"
            check_target_ref(pod, address.target_ref)
            if named:
                assert subset.ports[0].port == container_port(pod, svc_port.target_port)
                assert subset.ports[0].name == svc_port.name
    assert total == len(pods)


def expect_slices(disc: client.DiscoveryV1Api, ns: str, svc, pods: list, n_slices: int, named: bool) -> None:  # type: ignore[no-untyped-def]
    """The EndpointSlice half of expectEndpointsAndSlices."""
    def matching():  # type: ignore[no-untyped-def]
        items = slices_of(disc, ns, svc.metadata.name)
        endpoints = sum(len(s.endpoints or []) for s in items)
        if not (items and len(items) >= n_slices and endpoints >= len(pods)):
            return None
        try:  # as upstream's poll: a slice set still settling (a placeholder beside the new ones) is retried
            _check_slices(items, svc, pods, named)
        except AssertionError:
            return None
        return items
    items = wait_for(matching, timeout=60, what=f"endpoint slices of {svc.metadata.name} as expected")
    _check_slices(items, svc, pods, named)


def _check_slices(items: list, svc, pods: list, named: bool) -> None:  # type: ignore[no-untyped-def]
    by_ip = {p.status.pod_ip: p for p in pods}
    if not pods:
        assert len(items) == 1, f"expected 1 EndpointSlice, got {len(items)}"
    addresses = set()
    svc_port = svc.spec.ports[0]
    for es in items:
        if not pods:
            assert not es.ports, f"expected the EndpointSlice to have 0 ports, got {es.ports}"
        else:
            assert len(es.ports or []) == len(svc.spec.ports)
        if not named:
            for i, port in enumerate(es.ports or []):
                sp = svc.spec.ports[i]
                assert (port.name, port.protocol, port.port) == (sp.name, sp.protocol, sp.target_port), port
        for endpoint in es.endpoints or []:
            assert endpoint.addresses, "expected an endpoint to have at least 1 address"
            addresses.add(endpoint.addresses[0])
            pod = by_ip.get(endpoint.addresses[0])
            assert pod is not None, f"unexpected address with IP {endpoint.addresses[0]}"
            check_target_ref(pod, endpoint.target_ref)
            if named:
                assert es.ports[0].port == container_port(pod, svc_port.target_port)
                assert es.ports[0].name == svc_port.name
    assert len(addresses) == len(pods)


@conformance("[sig-network] API Server should have Endpoints and EndpointSlices pointing to API Server [Conformance]")
def test_api_server_endpoints(api) -> None:  # type: ignore[no-untyped-def]
    core, disc = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    core.read_namespaced_service("kubernetes", "default")
    ep = core.read_namespaced_endpoints("kubernetes", "default")
    assert ep.subsets, "expected at least 1 subset in the kubernetes endpoints"
    items = slices_of(disc, "default", "kubernetes")
    assert items, "expected at least 1 EndpointSlice for the kubernetes service"
    # endpointSlicesEqual: the same addresses and ports, for the IPv4 slices
    ep_addresses = {a.ip for s in ep.subsets for a in (s.addresses or []) + (s.not_ready_addresses or [])}
    ep_ports = {p.port for s in ep.subsets for p in s.ports or []}
    slice_addresses = {a for es in items if es.address_type == "IPv4" for e in es.endpoints or [] for a in e.addresses}
    slice_ports = {p.port for es in items if es.address_type == "IPv4" for p in es.ports or [] if p.port is not None}
    assert (slice_addresses, slice_ports) == (ep_addresses, ep_ports)


@conformance("[sig-network] EndpointSlice should create and delete EndpointSlices for a Service with a selector "
             "that matches no pods [Conformance]")
def test_endpointslice_empty_selector(api, ns) -> None:  # type: ignore[no-untyped-def]
    core, disc = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    svc = empty_selector_service(core, ns)
    items = wait_for(lambda: slices_of(disc, ns, svc.metadata.name), timeout=30, what="an EndpointSlice")
    es = items[0]
    assert (es.metadata.labels or {}).get(MANAGED_BY) == "endpointslice-controller.k8s.io", es.metadata.labels
    assert not es.endpoints, f"expected the EndpointSlice to have 0 endpoints, got {es.endpoints}"
    core.delete_namespaced_service(svc.metadata.name, ns)
    wait_for(lambda: not slices_of(disc, ns, svc.metadata.name), timeout=90,
             what="the EndpointSlice to go with its Service")


@conformance("[sig-network] EndpointsController should create and delete Endpoints for a Service with a selector "
             "that matches no pods [Conformance]")
def test_endpoints_empty_selector(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    svc = empty_selector_service(core, ns)
    ep = wait_for(lambda: core.read_namespaced_endpoints(svc.metadata.name, ns), timeout=30, what="the Endpoints")
    assert not ep.subsets, f"expected no subsets, got {ep.subsets}"
    core.delete_namespaced_service(svc.metadata.name, ns)
    wait_for(lambda: not_found(core.read_namespaced_endpoints, svc.metadata.name, ns), timeout=30,
             what="the Endpoints to go with their Service")


@conformance("[sig-network] EndpointSlice should create Endpoints and EndpointSlices for Pods matching a Service "
             "[Conformance]")
def test_endpointslice_matching_pods(api, ns) -> None:  # type: ignore[no-untyped-def]
    core, disc = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    wait_default_service_account(api, ns)
    made = make_matching_pods_and_services(core, ns)
    pod1, pod2 = made["pods"]["pod1"], made["pods"]["pod2"]
    svcs = made["services"]
    expect_endpoints(core, ns, svcs["int"], [pod1], 1, named=False)
    expect_slices(disc, ns, svcs["int"], [pod1], 1, named=False)
    expect_endpoints(core, ns, svcs["named"], [pod1, pod2], 2, named=True)
    expect_slices(disc, ns, svcs["named"], [pod1, pod2], 2, named=True)
    expect_endpoints(core, ns, svcs["none"], [], 0, named=False)
    expect_slices(disc, ns, svcs["none"], [], 1, named=False)
    # the controller recreates EndpointSlices that are deleted
    for es in slices_of(disc, ns, svcs["named"].metadata.name):
        disc.delete_namespaced_endpoint_slice(es.metadata.name, ns)
    expect_endpoints(core, ns, svcs["named"], [pod1, pod2], 2, named=True)
    expect_slices(disc, ns, svcs["named"], [pod1, pod2], 2, named=True)


@conformance("[sig-network] EndpointsController should create Endpoints for Pods matching a Service [Conformance]")
def test_endpoints_matching_pods(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    made = make_matching_pods_and_services(core, ns)
    pod1, pod2 = made["pods"]["pod1"], made["pods"]["pod2"]
    svcs = made["services"]
    expect_endpoints(core, ns, svcs["int"], [pod1], 1, named=False)
    expect_endpoints(core, ns, svcs["named"], [pod1, pod2], 2, named=True)
    expect_endpoints(core, ns, svcs["none"], [], 0, named=False)
    # Endpoints deleted by hand come back while their Service selects pods
    core.delete_namespaced_endpoints(svcs["named"].metadata.name, ns)
    expect_endpoints(core, ns, svcs["named"], [pod1, pod2], 2, named=True)


@conformance("[sig-network] EndpointSliceMirroring should mirror a custom Endpoints resource through create "
             "update and delete [Conformance]")
def test_endpointslice_mirroring(api, ns) -> None:  # type: ignore[no-untyped-def]
    core, disc = client.CoreV1Api(api), client.DiscoveryV1Api(api)
    svc = core.create_namespaced_service(ns, {"metadata": {"name": "example-custom-endpoints"},
                                              "spec": {"ports": [{"name": "example", "port": 80,
                                                                  "protocol": "TCP"}]}})
    core.create_namespaced_endpoints(ns, {"metadata": {"name": svc.metadata.name},
                                          "subsets": [{"addresses": [{"ip": "10.1.2.3"}],
                                                       "ports": [{"name": "example", "port": 9000,
                                                                  "protocol": "TCP"}]}]})

    def mirrored(ip: str, port: int):  # type: ignore[no-untyped-def]
        def check():  # type: ignore[no-untyped-def]
            items = slices_of(disc, ns, svc.metadata.name)
            if len(items) != 1:
                return None
            es = items[0]
            assert (es.metadata.labels or {}).get(MANAGED_BY) == "endpointslicemirroring-controller.k8s.io"
            if len(es.endpoints or []) != 1 or es.endpoints[0].addresses != [ip]:
                return None
            if len(es.ports or []) != 1 or es.ports[0].port != port or es.ports[0].name != "example":
                return None
            return es
        return wait_for(check, timeout=30, what=f"a mirrored EndpointSlice with {ip}:{port}")
    mirrored("10.1.2.3", 9000)

    ep = core.read_namespaced_endpoints(svc.metadata.name, ns)
    ep.subsets[0].addresses = [client.V1EndpointAddress(ip="10.2.3.4")]
    ep.subsets[0].ports[0].port = 9001
    core.replace_namespaced_endpoints(svc.metadata.name, ns, ep)
    mirrored("10.2.3.4", 9001)

    core.delete_namespaced_endpoints(svc.metadata.name, ns)
    wait_for(lambda: not slices_of(disc, ns, svc.metadata.name), timeout=30,
             what="the mirrored EndpointSlice to be deleted")


@conformance("[sig-network] Service endpoints latency should not be very high [Conformance]")
def test_service_endpoints_latency(api, ns) -> None:  # type: ignore[no-untyped-def]
    """200 services over one running pod, 15 at a time: the time from a Service's creation until its
    Endpoints list the pod; 50th percentile under 20 s and 99th under 50 s (upstream's limits)."""
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    labels = {"name": "svc-latency-rc"}
    core.create_namespaced_replication_controller(ns, {
        "metadata": {"name": "svc-latency-rc"},
        "spec": {"replicas": 1, "selector": labels,
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "pause", "image": PAUSE,
                                                       "ports": [{"containerPort": 80}]}]}}}})
    wait_for(lambda: any(p.status.phase == "Running" for p in core.list_namespaced_pod(ns).items), timeout=60,
             what="the rc's pod to run")

    # one watch of all the namespace's Endpoints, noting when each first has an address
    ready_at: dict[str, float] = {}
    w = watch.Watch()
    start_rv = core.list_namespaced_endpoints(ns).metadata.resource_version

    def follow() -> None:
        for event in w.stream(core.list_namespaced_endpoints, ns, resource_version=start_rv, timeout_seconds=300):
            ep = event["object"]
            if any(s.addresses for s in ep.subsets or []):
                ready_at.setdefault(ep.metadata.name, time.monotonic())

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=16)
    watcher = pool.submit(follow)

    def trial(i: int) -> float:
        name = f"latency-svc-{i:03d}"
        created = time.monotonic()
        core.create_namespaced_service(ns, {"metadata": {"name": name},
                                            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 80}]}})
        wait_for(lambda: name in ready_at, timeout=60, interval=0.05, what=f"endpoints of {name}")
        return ready_at[name] - created

    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=15) as trials:
            durations = sorted(trials.map(trial, range(200)))
    finally:
        w.stop()
        pool.shutdown(wait=False)
    del watcher
    p50, p99 = durations[len(durations) // 2], durations[int(len(durations) * 0.99)]
    assert p50 < 20, f"50th percentile latency {p50:.2f}s"
    assert p99 < 50, f"99th percentile latency {p99:.2f}s"
