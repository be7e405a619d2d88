"""API-only lifecycle tests of several areas: events (test/e2e/instrumentation/{core_events,events}.go),
service accounts (test/e2e/auth/service_accounts.go), limit ranges (test/e2e/scheduling/limit_range.go),
services/endpoints (test/e2e/network/{apiserver,service,endpoints,endpointslice,ingressclass}.go),
architecture (test/e2e/architecture/conformance.go), kubectl basics (test/e2e/kubectl/kubectl.go)."""

from __future__ import annotations

import datetime
import json
import uuid

from kubernetes import client

from conformance.harness import conformance, expect_status, raw, unique, wait_for

DELETE_BUG = ("server bug: DELETE answers a Status for kinds whose upstream store returns the deleted object "
              "(serviceaccounts, pods, ...), so the Python client's delete_* cannot deserialize it")


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- core/v1 Events ---------------------------------------------------------------------------

def _core_event(ns: str, name: str, labels: dict[str, str]) -> dict:
    return {"metadata": {"name": name, "labels": labels}, "reason": "Test", "message": "This is a test event",
            "type": "Normal", "count": 1, "firstTimestamp": now(), "lastTimestamp": now(),
            "involvedObject": {"kind": "Pod", "namespace": ns, "name": "foo"},
            "source": {"component": "conformance"}}


@conformance("[sig-instrumentation] Events should manage the lifecycle of an event [Conformance]")
def test_core_event_lifecycle(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = unique("event-test")
    core.create_namespaced_event(ns, _core_event(ns, name, {"testevent-constant": "true"}))
    found = core.list_event_for_all_namespaces(label_selector="testevent-constant=true")
    assert [e.metadata.name for e in found.items if e.metadata.namespace == ns] == [name]
    core.patch_namespaced_event(name, ns, {"message": "This is a test event - patched"})
    got = core.read_namespaced_event(name, ns)
    assert got.message == "This is a test event - patched"
    got.series = client.CoreV1EventSeries(count=100, last_observed_time=datetime.datetime.now(datetime.timezone.utc))
    updated = core.replace_namespaced_event(name, ns, got)
    assert updated.series.count == 100
    assert raw(api, "DELETE", f"/api/v1/namespaces/{ns}/events/{name}").status == 200
    left = core.list_event_for_all_namespaces(label_selector="testevent-constant=true")
    assert [e for e in left.items if e.metadata.namespace == ns] == []


@conformance("[sig-instrumentation] Events should delete a collection of events [Conformance]")
def test_core_event_delete_collection(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    for i in range(3):
        core.create_namespaced_event(ns, _core_event(ns, f"test-event-{i}", {"testevent-set": "true"}))
    assert len(core.list_namespaced_event(ns, label_selector="testevent-set=true").items) == 3
    core.delete_collection_namespaced_event(ns, label_selector="testevent-set=true")
    assert core.list_namespaced_event(ns, label_selector="testevent-set=true").items == []


def _new_event(ns: str, name: str, labels: dict[str, str]) -> dict:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": name, "labels": labels},
            "eventTime": stamp, "reportingController": "test-controller", "reportingInstance": "test-node",
            "action": "Do", "reason": "Test", "type": "Normal", "note": "This is a test event",
            "regarding": {"kind": "Pod", "namespace": ns, "name": "foo"}}


@conformance("[sig-instrumentation] Events API should ensure that an event can be fetched, patched, deleted, and listed [Conformance]")
def test_events_api_lifecycle(api, cluster, ns) -> None:  # type: ignore[no-untyped-def]
    ev = client.EventsV1Api(api)
    core = client.CoreV1Api(api)
    other = unique("cf-events2")
    core.create_namespace({"metadata": {"name": other}})
    try:
        name = unique("event-test")
        ev.create_namespaced_event(ns, _new_event(ns, name, {"testevent-constant": "true"}))
        ev.create_namespaced_event(other, _new_event(other, name, {"testevent-constant": "true"}))
        everywhere = ev.list_event_for_all_namespaces(label_selector="testevent-constant=true")
        assert {(e.metadata.namespace, e.metadata.name) for e in everywhere.items} >= {(ns, name), (other, name)}
        before = api.sanitize_for_serialization(ev.read_namespaced_event(name, ns))
        assert before["note"] == "This is a test event"
        # 1.33's test patches the series (a note change through events.k8s.io/v1 is refused as
        # immutable since the strict update validation), then compares the whole object
        series = {"count": 2, "lastObservedTime": "2017-09-19T13:49:11.000000Z"}
        ev.patch_namespaced_event(name, ns, {"series": series})
        after = api.sanitize_for_serialization(ev.read_namespaced_event(name, ns))
        for obj in (before, after):
            obj["metadata"].pop("resourceVersion", None)
            obj["metadata"].pop("managedFields", None)
        assert after == {**before, "series": {"count": 2, "lastObservedTime": "2017-09-19T13:49:11+00:00"}}
        got = ev.read_namespaced_event(name, ns)
        got.series = client.EventsV1EventSeries(count=100, last_observed_time=datetime.datetime(2017, 9, 19, 13, 49, 16, tzinfo=datetime.timezone.utc))
        updated = ev.replace_namespaced_event(name, ns, got)
        assert updated.series.count == 100
        assert raw(api, "DELETE", f"/apis/events.k8s.io/v1/namespaces/{ns}/events/{name}").status == 200
        expect_status(404, ev.read_namespaced_event, name, ns)
        left = ev.list_event_for_all_namespaces(label_selector="testevent-constant=true")
        assert (ns, name) not in {(e.metadata.namespace, e.metadata.name) for e in left.items}
        assert (other, name) in {(e.metadata.namespace, e.metadata.name) for e in left.items}
    finally:
        core.delete_namespace(other)


@conformance("[sig-instrumentation] Events API should delete a collection of events [Conformance]")
def test_events_api_delete_collection(api, ns) -> None:  # type: ignore[no-untyped-def]
    ev = client.EventsV1Api(api)
    for i in range(3):
        ev.create_namespaced_event(ns, _new_event(ns, f"test-event-{i}", {"testevent-set": "true"}))
    assert len(ev.list_namespaced_event(ns, label_selector="testevent-set=true").items) == 3
    ev.delete_collection_namespaced_event(ns, label_selector="testevent-set=true")
    assert ev.list_namespaced_event(ns, label_selector="testevent-set=true").items == []


# --- ServiceAccounts ---------------------------------------------------------------------------

@conformance("[sig-auth] ServiceAccounts should run through the lifecycle of a ServiceAccount [Conformance]")
def test_serviceaccount_lifecycle(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = unique("testserviceaccount")
    core.create_namespaced_service_account(ns, {"metadata": {"name": name, "labels": {"test-serviceaccount-static": "true"}}})
    patched = core.patch_namespaced_service_account(name, ns, {"metadata": {"labels": {"test-serviceaccount": "patched"}},
                                                               "automountServiceAccountToken": False})
    assert patched.automount_service_account_token is False
    assert patched.metadata.labels.get("test-serviceaccount") == "patched"
    found = core.list_service_account_for_all_namespaces(label_selector="test-serviceaccount-static=true")
    assert [s.metadata.name for s in found.items if s.metadata.namespace == ns] == [name]
    core.delete_collection_namespaced_service_account(ns, label_selector="test-serviceaccount-static=true")
    assert core.list_namespaced_service_account(ns, label_selector="test-serviceaccount-static=true").items == []


@conformance("[sig-auth] ServiceAccounts should update a ServiceAccount [Conformance]")
def test_serviceaccount_update(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = unique("e2e-sa")
    core.create_namespaced_service_account(ns, {"metadata": {"name": name}})
    sa = core.read_namespaced_service_account(name, ns)
    sa.automount_service_account_token = True
    updated = core.replace_namespaced_service_account(name, ns, sa)
    assert updated.automount_service_account_token is True
    patched = core.patch_namespaced_service_account(name, ns, {"automountServiceAccountToken": False})
    assert patched.automount_service_account_token is False


def _has_token_volume(pod) -> bool:  # type: ignore[no-untyped-def]
    return any((v.name or "").startswith("kube-api-access-") for v in (pod.spec.volumes or []))


@conformance("[sig-auth] ServiceAccounts should allow opting out of API token automount [Conformance]")
def test_serviceaccount_automount_opt_out(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(ns, {"metadata": {"name": "mount"}, "automountServiceAccountToken": True})
    core.create_namespaced_service_account(ns, {"metadata": {"name": "nomount"}, "automountServiceAccountToken": False})
    cases = [("default", None, True), ("mount", None, True), ("nomount", None, False),
             ("default", True, True), ("mount", True, True), ("nomount", True, True),
             ("default", False, False), ("mount", False, False), ("nomount", False, False)]
    wait_for(lambda: core.read_namespaced_service_account("default", ns), timeout=30, what="default SA")
    for i, (sa, pod_setting, expect) in enumerate(cases):
        spec: dict = {"serviceAccountName": sa, "containers": [{"name": "token-test", "image": "registry.k8s.io/pause:3.10"}],
                      "restartPolicy": "Never", "nodeName": "no-such-node"}
        if pod_setting is not None:
            spec["automountServiceAccountToken"] = pod_setting
        pod = core.create_namespaced_pod(ns, {"metadata": {"name": f"pod-{sa}-{i}"}, "spec": spec})
        assert _has_token_volume(pod) is expect, (sa, pod_setting, [v.name for v in pod.spec.volumes or []])


@conformance("[sig-auth] ServiceAccounts should create a serviceAccountToken and ensure a successful TokenReview [Conformance]")
def test_serviceaccount_token_review(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = unique("e2e-sa")
    core.create_namespaced_service_account(ns, {"metadata": {"name": name}})
    token = core.create_namespaced_service_account_token(name, ns, {"spec": {"audiences": []}}).status.token
    assert token
    review = client.AuthenticationV1Api(api).create_token_review({"spec": {"token": token}})
    assert review.status.authenticated is True
    assert review.status.user.username == f"system:serviceaccount:{ns}:{name}"


@conformance("[sig-auth] ServiceAccounts should guarantee kube-root-ca.crt exist in any namespace [Conformance]")
def test_root_ca_configmap(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_for(lambda: core.read_namespaced_config_map("kube-root-ca.crt", ns).data.get("ca.crt"), timeout=30,
             what="kube-root-ca.crt")
    raw(api, "DELETE", f"/api/v1/namespaces/{ns}/configmaps/kube-root-ca.crt")
    wait_for(lambda: core.read_namespaced_config_map("kube-root-ca.crt", ns).data.get("ca.crt"), timeout=30,
             what="kube-root-ca.crt recreated")
    core.patch_namespaced_config_map("kube-root-ca.crt", ns, {"data": {"ca.crt": "changed"}})
    wait_for(lambda: core.read_namespaced_config_map("kube-root-ca.crt", ns).data.get("ca.crt") != "changed",
             timeout=30, what="kube-root-ca.crt reconciled")


# --- LimitRange --------------------------------------------------------------------------------

@conformance("[sig-scheduling] LimitRange should list, patch and delete a LimitRange by collection [Conformance]")
def test_limitrange_collection(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    other = unique("cf-limitrange2")
    core.create_namespace({"metadata": {"name": other}})
    try:
        name = unique("e2e-limitrange")
        label = {"e2e-test": name}
        body = {"metadata": {"name": name, "labels": label},
                "spec": {"limits": [{"type": "Container", "min": {"cpu": "50m", "memory": "100Mi"},
                                     "max": {"cpu": "500m", "memory": "500Mi"},
                                     "default": {"cpu": "500m", "memory": "500Mi"},
                                     "defaultRequest": {"cpu": "100m", "memory": "200Mi"}}]}}
        core.create_namespaced_limit_range(ns, body)
        core.create_namespaced_limit_range(other, body)
        found = core.list_limit_range_for_all_namespaces(label_selector=f"e2e-test={name}")
        assert len(found.items) == 2
        patched = core.patch_namespaced_limit_range(name, ns, {"metadata": {"labels": {f"{name}": "patched"}},
                                                               "spec": {"limits": [{"type": "Container",
                                                                                    "defaultRequest": {"memory": "100Mi"}}]}})
        assert patched.metadata.labels.get(name) == "patched"
        assert patched.spec.limits[0].default_request["memory"] == "100Mi"
        core.delete_collection_namespaced_limit_range(ns, label_selector=f"e2e-test={name}")
        assert core.list_namespaced_limit_range(ns, label_selector=f"e2e-test={name}").items == []
        assert len(core.list_limit_range_for_all_namespaces(label_selector=f"e2e-test={name}").items) == 1
    finally:
        core.delete_namespace(other)


@conformance("[sig-scheduling] LimitRange should create a LimitRange with defaults and ensure pod has those defaults applied. [Conformance]")
def test_limitrange_defaults(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    core.create_namespaced_limit_range(ns, {"metadata": {"name": "limit-range"},
                                            "spec": {"limits": [{"type": "Container",
                                                                 "min": {"cpu": "100m", "memory": "10Mi", "ephemeral-storage": "100Mi"},
                                                                 "max": {"cpu": "500m", "memory": "500Mi", "ephemeral-storage": "1Gi"},
                                                                 "defaultRequest": {"cpu": "100m", "memory": "200Mi", "ephemeral-storage": "200Mi"},
                                                                 "default": {"cpu": "500m", "memory": "500Mi", "ephemeral-storage": "500Mi"},
                                                                 "maxLimitRequestRatio": {}}]}})

    def pod(name: str, resources: dict) -> dict:
        return {"metadata": {"name": name}, "spec": {"nodeName": "no-such-node", "containers": [
            {"name": "pause", "image": "registry.k8s.io/pause:3.10", "resources": resources}]}}

    created = core.create_namespaced_pod(ns, pod("pod-no-resources", {}))
    res = created.spec.containers[0].resources
    assert res.requests == {"cpu": "100m", "memory": "200Mi", "ephemeral-storage": "200Mi"}
    assert res.limits == {"cpu": "500m", "memory": "500Mi", "ephemeral-storage": "500Mi"}
    partial = core.create_namespaced_pod(ns, pod("pod-partial-resources", {"requests": {"cpu": "300m", "memory": "150Mi"},
                                                                            "limits": {"cpu": "300m"}}))
    res = partial.spec.containers[0].resources
    assert res.requests["cpu"] == "300m" and res.requests["memory"] == "150Mi"
    assert res.limits["cpu"] == "300m" and res.limits["memory"] == "500Mi"
    expect_status(403, core.create_namespaced_pod, ns, pod("pod-too-small", {"requests": {"cpu": "50m"}}))
    expect_status(403, core.create_namespaced_pod, ns, pod("pod-too-big", {"limits": {"cpu": "600m"}}))
    raw(api, "DELETE", f"/api/v1/namespaces/{ns}/limitranges/limit-range")
    wait_for(lambda: expect_status(404, core.read_namespaced_limit_range, "limit-range", ns), timeout=10, what="LR gone")
    core.create_namespaced_pod(ns, pod("pod-too-big", {"limits": {"cpu": "600m"}}))


# --- network API-only -------------------------------------------------------------------------

@conformance("[sig-network] API Server should provide secure master service [Conformance]")
def test_master_service(api) -> None:  # type: ignore[no-untyped-def]
    svc = client.CoreV1Api(api).read_namespaced_service("kubernetes", "default")
    assert any(p.name == "https" and p.port == 443 for p in svc.spec.ports)


@conformance("[sig-network] Services should find a service from listing all namespaces [Conformance]")
def test_service_list_all_namespaces(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    core.create_namespaced_service(ns, {"metadata": {"name": "test-service"},
                                        "spec": {"ports": [{"port": 80, "targetPort": 80}]}})
    found = core.list_service_for_all_namespaces(field_selector="metadata.name=test-service")
    assert (ns, "test-service") in {(s.metadata.namespace, s.metadata.name) for s in found.items}


@conformance("[sig-network] Services should delete a collection of services [Conformance]")
def test_service_delete_collection(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    for i in range(3):
        core.create_namespaced_service(ns, {"metadata": {"name": f"e2e-svc-{i}", "labels": {"e2e-test-service": "delete"}},
                                            "spec": {"type": "ClusterIP", "ports": [{"port": 8080, "targetPort": 8080}]}})
    assert len(core.list_namespaced_service(ns, label_selector="e2e-test-service=delete").items) == 3
    core.delete_collection_namespaced_service(ns, label_selector="e2e-test-service=delete")
    wait_for(lambda: core.list_namespaced_service(ns, label_selector="e2e-test-service=delete").items == [],
             timeout=10, what="services deleted")


@conformance("[sig-network] Services should complete a service status lifecycle [Conformance]")
def test_service_status_lifecycle(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = unique("test-service")
    core.create_namespaced_service(ns, {"metadata": {"name": name, "labels": {"test-service-static": "true"}},
                                        "spec": {"type": "LoadBalancer", "ports": [{"name": "http", "port": 80, "targetPort": 8080}],
                                                 "loadBalancerClass": "example.com/internal-vip"}})
    found = core.list_service_for_all_namespaces(label_selector="test-service-static=true")
    assert name in [s.metadata.name for s in found.items]
    status = core.read_namespaced_service_status(name, ns)
    assert status.metadata.name == name
    patched = core.patch_namespaced_service_status(name, ns, {"metadata": {"annotations": {"patchedstatus": "true"}},
                                                              "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.1"}]}}})
    assert patched.status.load_balancer.ingress[0].ip == "203.0.113.1"
    assert patched.metadata.annotations.get("patchedstatus") == "true"
    current = core.read_namespaced_service_status(name, ns)
    current.status.conditions = [client.V1Condition(type="StatusUpdate", status="True", reason="E2E",
                                                    message="Set from e2e test", last_transition_time=datetime.datetime.now(datetime.timezone.utc))]
    updated = core.replace_namespaced_service_status(name, ns, current)
    assert updated.status.conditions[0].type == "StatusUpdate"
    core.patch_namespaced_service(name, ns, {"metadata": {"labels": {"test-service": "patched"}}})
    assert core.read_namespaced_service(name, ns).metadata.labels.get("test-service") == "patched"
    assert raw(api, "DELETE", f"/api/v1/namespaces/{ns}/services/{name}").status == 200
    wait_for(lambda: expect_status(404, core.read_namespaced_service, name, ns), timeout=10, what="service gone")


@conformance("[sig-network] Endpoints should test the lifecycle of an Endpoint [Conformance]")
def test_endpoints_lifecycle(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = unique("testservice")
    core.create_namespaced_endpoints(ns, {"metadata": {"name": name, "labels": {"test-endpoint-static": "true"}},
                                          "subsets": [{"addresses": [{"ip": "10.0.0.24"}],
                                                       "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}]})
    found = core.list_endpoints_for_all_namespaces(label_selector="test-endpoint-static=true")
    assert name in [e.metadata.name for e in found.items]
    core.patch_namespaced_endpoints(name, ns, {"metadata": {"labels": {"test-service": "patched"}},
                                               "subsets": [{"addresses": [{"ip": "10.0.0.25"}],
                                                            "ports": [{"name": "http-test", "port": 8080, "protocol": "TCP"}]}]})
    got = core.read_namespaced_endpoints(name, ns)
    assert got.subsets[0].addresses[0].ip == "10.0.0.25" and got.subsets[0].ports[0].port == 8080
    core.delete_collection_namespaced_endpoints(ns, label_selector="test-endpoint-static=true")
    assert core.list_namespaced_endpoints(ns, label_selector="test-endpoint-static=true").items == []


@conformance("[sig-network] EndpointSlice should support creating EndpointSlice API operations [Conformance]")
def test_endpointslice_api(api, ns) -> None:  # type: ignore[no-untyped-def]
    disc = client.DiscoveryV1Api(api)
    label = f"e2e-es-{uuid.uuid4().hex[:6]}"
    body = {"metadata": {"generateName": "e2e-example-ing", "labels": {"special-label": label}},
            "addressType": "IPv4", "endpoints": [{"addresses": ["1.2.3.4", "5.6.7.8"]}, {"addresses": ["2.2.3.4"]}]}
    made = [disc.create_namespaced_endpoint_slice(ns, body) for _ in range(3)]
    name = made[0].metadata.name
    assert disc.read_namespaced_endpoint_slice(name, ns).metadata.uid == made[0].metadata.uid
    assert len(disc.list_namespaced_endpoint_slice(ns, label_selector=f"special-label={label}").items) == 3
    assert len(disc.list_endpoint_slice_for_all_namespaces(label_selector=f"special-label={label}").items) == 3
    patched = disc.patch_namespaced_endpoint_slice(name, ns, {"metadata": {"annotations": {"patched": "true"}}})
    assert patched.metadata.annotations.get("patched") == "true"
    current = disc.read_namespaced_endpoint_slice(name, ns)
    current.metadata.annotations["updated"] = "true"
    assert disc.replace_namespaced_endpoint_slice(name, ns, current).metadata.annotations.get("updated") == "true"
    assert raw(api, "DELETE", f"/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices/{name}").status == 200
    expect_status(404, disc.read_namespaced_endpoint_slice, name, ns)
    assert len(disc.list_namespaced_endpoint_slice(ns, label_selector=f"special-label={label}").items) == 2
    disc.delete_collection_namespaced_endpoint_slice(ns, label_selector=f"special-label={label}")
    assert disc.list_namespaced_endpoint_slice(ns, label_selector=f"special-label={label}").items == []


@conformance("[sig-network] IngressClass API should support creating IngressClass API operations [Conformance]")
def test_ingressclass_api(api) -> None:  # type: ignore[no-untyped-def]
    net = client.NetworkingV1Api(api)
    label = f"ic-{uuid.uuid4().hex[:6]}"
    made = [net.create_ingress_class({"metadata": {"generateName": "e2e-example-ingress-class", "labels": {"ingressclass": label}},
                                      "spec": {"controller": "example.com/controller"}}) for _ in range(3)]
    try:
        name = made[0].metadata.name
        assert net.read_ingress_class(name).spec.controller == "example.com/controller"
        assert len(net.list_ingress_class(label_selector=f"ingressclass={label}").items) == 3
        patched = net.patch_ingress_class(name, {"metadata": {"annotations": {"patched": "true"}}})
        assert patched.metadata.annotations.get("patched") == "true"
        current = net.read_ingress_class(name)
        current.metadata.annotations["updated"] = "true"
        assert net.replace_ingress_class(name, current).metadata.annotations.get("updated") == "true"
        assert raw(api, "DELETE", f"/apis/networking.k8s.io/v1/ingressclasses/{name}").status == 200
        expect_status(404, net.read_ingress_class, name)
        net.delete_collection_ingress_class(label_selector=f"ingressclass={label}")
        assert net.list_ingress_class(label_selector=f"ingressclass={label}").items == []
    finally:
        for m in made:
            raw(api, "DELETE", f"/apis/networking.k8s.io/v1/ingressclasses/{m.metadata.name}")


@conformance("[sig-network] Ingress API should support creating Ingress API operations [Conformance]")
def test_ingress_api(api, ns) -> None:  # type: ignore[no-untyped-def]
    net = client.NetworkingV1Api(api)
    label = f"ing-{uuid.uuid4().hex[:6]}"
    body = {"metadata": {"generateName": "e2e-example-ing", "labels": {"special-label": label}},
            "spec": {"defaultBackend": {"service": {"name": "default-backend", "port": {"number": 8080}}},
                     "rules": [{"host": "foo.bar.com", "http": {"paths": [
                         {"path": "/foo", "pathType": "Prefix",
                          "backend": {"service": {"name": "test-backend", "port": {"number": 8080}}}}]}}]}}
    made = [net.create_namespaced_ingress(ns, body) for _ in range(3)]
    name = made[0].metadata.name
    assert net.read_namespaced_ingress(name, ns).metadata.uid == made[0].metadata.uid
    assert len(net.list_namespaced_ingress(ns, label_selector=f"special-label={label}").items) == 3
    assert len(net.list_ingress_for_all_namespaces(label_selector=f"special-label={label}").items) == 3
    patched = net.patch_namespaced_ingress(name, ns, {"metadata": {"annotations": {"patched": "true"}}})
    assert patched.metadata.annotations.get("patched") == "true"
    current = net.read_namespaced_ingress(name, ns)
    current.metadata.annotations["updated"] = "true"
    assert net.replace_namespaced_ingress(name, ns, current).metadata.annotations.get("updated") == "true"
    st = net.patch_namespaced_ingress_status(name, ns, {"status": {"loadBalancer": {"ingress": [{"ip": "169.1.1.1"}]}}})
    assert st.status.load_balancer.ingress[0].ip == "169.1.1.1"
    current = net.read_namespaced_ingress_status(name, ns)
    current.status.load_balancer.ingress = [client.V1IngressLoadBalancerIngress(ip="169.1.1.2")]
    assert net.replace_namespaced_ingress_status(name, ns, current).status.load_balancer.ingress[0].ip == "169.1.1.2"
    assert raw(api, "DELETE", f"/apis/networking.k8s.io/v1/namespaces/{ns}/ingresses/{name}").status == 200
    expect_status(404, net.read_namespaced_ingress, name, ns)
    net.delete_collection_namespaced_ingress(ns, label_selector=f"special-label={label}")
    assert net.list_namespaced_ingress(ns, label_selector=f"special-label={label}").items == []


# --- architecture ------------------------------------------------------------------------------

@conformance("[sig-architecture] Conformance Tests should have at least two untainted nodes [Conformance]")
def test_two_untainted_nodes(api) -> None:  # type: ignore[no-untyped-def]
    nodes = client.CoreV1Api(api).list_node().items
    ready = [n for n in nodes if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
             and not any(t.effect in ("NoSchedule", "NoExecute") for t in n.spec.taints or [])]
    assert len(ready) >= 2, [n.metadata.name for n in nodes]


# --- kubectl -----------------------------------------------------------------------------------

@conformance("[sig-cli] Kubectl client Kubectl api-versions should check if v1 is in available api versions [Conformance]")
def test_kubectl_api_versions(cluster) -> None:  # type: ignore[no-untyped-def]
    out = cluster.kubectl("api-versions").stdout.split()
    assert "v1" in out


@conformance("[sig-cli] Kubectl client Kubectl cluster-info should check if Kubernetes control plane services is included in cluster-info [Conformance]")
def test_kubectl_cluster_info(cluster) -> None:  # type: ignore[no-untyped-def]
    out = cluster.kubectl("cluster-info").stdout
    assert "Kubernetes control plane" in out


@conformance("[sig-cli] Kubectl client Kubectl version should check is all data is printed [Conformance]")
def test_kubectl_version(cluster) -> None:  # type: ignore[no-untyped-def]
    out = cluster.kubectl("version").stdout
    assert "Client Version:" in out and "Server Version:" in out


@conformance("[sig-cli] Kubectl client Kubectl diff should check if kubectl diff finds a difference for Deployments [Conformance]")
def test_kubectl_diff(cluster, ns) -> None:  # type: ignore[no-untyped-def]
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "httpd-deployment", "namespace": ns},
           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "httpd"}},
                    "template": {"metadata": {"labels": {"app": "httpd"}},
                                 "spec": {"containers": [{"name": "httpd", "image": "registry.k8s.io/e2e-test-images/httpd:2.4.38-4"}]}}}}
    cluster.kubectl("apply", "-f", "-", input=json.dumps(dep))
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.k8s.io/e2e-test-images/httpd:2.4.39-4"
    result = cluster.kubectl("diff", "-f", "-", input=json.dumps(dep), check=False)
    assert result.returncode == 1, (result.returncode, result.stderr)
    assert "httpd:2.4.39-4" in result.stdout
    cluster.kubectl("delete", "-f", "-", input=json.dumps(dep))


