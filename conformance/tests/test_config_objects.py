"""ConfigMaps, Secrets, PodTemplates, Leases: test/e2e/common/node/{configmap,secrets,podtemplates,lease}.go,
test/e2e/common/storage/{configmap,secrets}_volume.go (the immutable tests)."""

from __future__ import annotations

import base64
import datetime

from kubernetes import client

from conformance.harness import conformance, expect_status, missing, unique


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- ConfigMap ---------------------------------------------------------------------------------

@conformance("[sig-node] ConfigMap should fail to create ConfigMap with empty key [Conformance]")
def test_configmap_empty_key(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    expect_status(422, core.create_namespaced_config_map, ns,
                  {"metadata": {"name": unique("configmap-test-emptykey")}, "data": {"": "value-1"}})


@conformance("[sig-node] ConfigMap should run through a ConfigMap lifecycle [Conformance]")
def test_configmap_lifecycle(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = unique("e2e-configmap")
    label = {"test-configmap-static": "true"}
    core.create_namespaced_config_map(ns, {"metadata": {"name": name, "labels": label},
                                           "data": {"valueName": "value"}})
    got = core.read_namespaced_config_map(name, ns)
    assert got.data == {"valueName": "value"}
    patched = core.patch_namespaced_config_map(name, ns, {"metadata": {"labels": {"test-configmap": "patched"}},
                                                          "data": {"valueName": "value1"}})
    assert patched.metadata.labels.get("test-configmap") == "patched"
    assert patched.data["valueName"] == "value1"
    found = core.list_config_map_for_all_namespaces(label_selector="test-configmap-static=true")
    mine = [c for c in found.items if c.metadata.name == name and c.metadata.namespace == ns]
    assert len(mine) == 1 and mine[0].data["valueName"] == "value1"
    assert mine[0].metadata.labels.get("test-configmap") == "patched"
    core.delete_collection_namespaced_config_map(ns, label_selector="test-configmap-static=true")
    left = core.list_namespaced_config_map(ns, label_selector="test-configmap-static=true")
    assert left.items == []


@conformance("[sig-node] ConfigMap should update ConfigMap successfully [Conformance] [NodeConformance]")
def test_configmap_update(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = unique("configmap-test-upd")
    core.create_namespaced_config_map(ns, {"metadata": {"name": name}, "data": {"data-1": "value-1"}})
    cm = core.read_namespaced_config_map(name, ns)
    cm.data["data-1"] = "value-2"
    core.replace_namespaced_config_map(name, ns, cm)
    assert core.read_namespaced_config_map(name, ns).data == {"data-1": "value-2"}


def _immutable_flow(api, ns, kind: str) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = unique(f"immutable-{kind}")
    if kind == "configmap":
        create, read, replace, patch, delete = (core.create_namespaced_config_map, core.read_namespaced_config_map,
                                                core.replace_namespaced_config_map, core.patch_namespaced_config_map,
                                                core.delete_namespaced_config_map)
        body = {"metadata": {"name": name}, "data": {"data-1": "value-1"}}
        change = {"data": {"data-1": "value-2"}}
        change_again = {"data": {"data-1": "value-3"}}
    else:
        create, read, replace, patch, delete = (core.create_namespaced_secret, core.read_namespaced_secret,
                                                core.replace_namespaced_secret, core.patch_namespaced_secret,
                                                core.delete_namespaced_secret)
        body = {"metadata": {"name": name}, "data": {"data-1": b64("value-1")}}
        change = {"data": {"data-1": b64("value-2")}}
        change_again = {"data": {"data-1": b64("value-3")}}
    create(ns, body)
    patch(name, ns, change)                      # still mutable: data may change
    patched = patch(name, ns, {"immutable": True})
    assert patched.immutable is True
    expect_status(422, patch, name, ns, change_again)           # data is now frozen
    expect_status(422, patch, name, ns, {"immutable": False})   # and so is the flag
    relabelled = patch(name, ns, {"metadata": {"labels": {"label1": "value1"}}})  # metadata is not
    assert relabelled.metadata.labels == {"label1": "value1"}
    delete(name, ns)
    expect_status(404, read, name, ns)
    del replace


@conformance("[sig-storage] ConfigMap should be immutable if `immutable` field is set [Conformance]")
def test_configmap_immutable(api, ns) -> None:  # type: ignore[no-untyped-def]
    _immutable_flow(api, ns, "configmap")


# --- Secret ------------------------------------------------------------------------------------

@conformance("[sig-node] Secrets should fail to create secret due to empty secret key [Conformance]")
def test_secret_empty_key(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    expect_status(422, core.create_namespaced_secret, ns,
                  {"metadata": {"name": unique("secret-emptykey-test")}, "data": {"": b64("value-1")}})


@conformance("[sig-node] Secrets should patch a secret [Conformance]")
def test_secret_patch(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = unique("e2e-secret")
    core.create_namespaced_secret(ns, {"metadata": {"name": name, "labels": {"testsecret-constant": "true"}},
                                       "type": "Opaque", "data": {"key": b64("value")}})
    found = core.list_secret_for_all_namespaces(label_selector="testsecret-constant=true")
    assert [s.metadata.name for s in found.items if s.metadata.namespace == ns] == [name]
    core.patch_namespaced_secret(name, ns, {"metadata": {"labels": {"testsecret": "true"}},
                                            "data": {"key": b64("value1")}})
    got = core.read_namespaced_secret(name, ns)
    assert base64.b64decode(got.data["key"]).decode() == "value1"
    assert got.metadata.labels.get("testsecret") == "true"
    core.delete_collection_namespaced_secret(ns, label_selector="testsecret-constant=true")
    assert core.list_namespaced_secret(ns, label_selector="testsecret-constant=true").items == []


@conformance("[sig-storage] Secrets should be immutable if `immutable` field is set [Conformance]")
def test_secret_immutable(api, ns) -> None:  # type: ignore[no-untyped-def]
    _immutable_flow(api, ns, "secret")


# --- PodTemplate -------------------------------------------------------------------------------

def _template(name: str, labels: dict[str, str] | None = None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}},
            "template": {"metadata": {"labels": {"e2e": "podtemplate"}},
                         "spec": {"containers": [{"name": "nginx", "image": "registry.k8s.io/e2e-test-images/httpd:2.4.38-4"}]}}}


@conformance("[sig-node] PodTemplates should run the lifecycle of PodTemplates [Conformance]")
def test_podtemplate_lifecycle(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = unique("nginx-pod-template")
    core.create_namespaced_pod_template(ns, _template(name, {"podtemplate-static": "true"}))
    listed = core.list_namespaced_pod_template(ns, label_selector="podtemplate-static=true")
    assert [t.metadata.name for t in listed.items] == [name]
    core.patch_namespaced_pod_template(name, ns, {"metadata": {"labels": {"podtemplate": "patched"}}})
    assert core.read_namespaced_pod_template(name, ns).metadata.labels.get("podtemplate") == "patched"
    core.delete_namespaced_pod_template(name, ns)
    assert core.list_namespaced_pod_template(ns, label_selector="podtemplate-static=true").items == []


@conformance("[sig-node] PodTemplates should delete a collection of pod templates [Conformance]")
def test_podtemplate_delete_collection(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    for i in range(3):
        core.create_namespaced_pod_template(ns, _template(f"test-podtemplate-{i}", {"podtemplate-set": "true"}))
    assert len(core.list_namespaced_pod_template(ns, label_selector="podtemplate-set=true").items) == 3
    core.delete_collection_namespaced_pod_template(ns, label_selector="podtemplate-set=true")
    assert core.list_namespaced_pod_template(ns, label_selector="podtemplate-set=true").items == []


@conformance("[sig-node] PodTemplates should replace a pod template [Conformance]")
def test_podtemplate_replace(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = unique("podtemplate")
    core.create_namespaced_pod_template(ns, _template(name))
    current = core.read_namespaced_pod_template(name, ns)
    current.template.spec.termination_grace_period_seconds = 1
    replaced = core.replace_namespaced_pod_template(name, ns, current)
    assert replaced.template.spec.termination_grace_period_seconds == 1
    assert core.read_namespaced_pod_template(name, ns).template.spec.termination_grace_period_seconds == 1


# --- Lease -------------------------------------------------------------------------------------

@conformance("[sig-node] Lease lease API should be available [Conformance]")
def test_lease_api(api, ns) -> None:  # type: ignore[no-untyped-def]
    coord = client.CoordinationV1Api(api)
    name = unique("lease")
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=123456)
    spec = {"holderIdentity": "holder", "leaseDurationSeconds": 30, "acquireTime": now.isoformat(),
            "renewTime": now.isoformat(), "leaseTransitions": 0}
    created = coord.create_namespaced_lease(ns, {"metadata": {"name": name}, "spec": spec})
    got = coord.read_namespaced_lease(name, ns)
    assert got.spec.holder_identity == "holder" and got.spec.lease_duration_seconds == 30
    assert got.spec.acquire_time == created.spec.acquire_time  # MicroTime round-trips
    assert got.spec.acquire_time.microsecond == 123456
    got.spec.holder_identity = "holder2"
    got.spec.lease_transitions = 1
    updated = coord.replace_namespaced_lease(name, ns, got)
    assert updated.spec.holder_identity == "holder2" and updated.spec.lease_transitions == 1
    later = (now + datetime.timedelta(seconds=5)).isoformat()
    coord.patch_namespaced_lease(name, ns, {"spec": {"holderIdentity": "holder3", "leaseTransitions": 2,
                                                    "renewTime": later}})
    got = coord.read_namespaced_lease(name, ns)
    assert got.spec.holder_identity == "holder3" and got.spec.lease_transitions == 2
    coord.create_namespaced_lease(ns, {"metadata": {"name": name + "-2", "labels": {"deletecollection": "true"}},
                                       "spec": spec})
    assert len(coord.list_namespaced_lease(ns).items) == 2
    everywhere = coord.list_lease_for_all_namespaces()
    assert {(item.metadata.namespace, item.metadata.name) for item in everywhere.items} >= {(ns, name), (ns, name + "-2")}
    coord.delete_collection_namespaced_lease(ns, label_selector="deletecollection=true")
    assert [item.metadata.name for item in coord.list_namespaced_lease(ns).items] == [name]
    coord.delete_namespaced_lease(name, ns)
    expect_status(404, coord.read_namespaced_lease, name, ns)
