"""Object identity and lifecycle over the real wire: uid, resourceVersion, generation,
creationTimestamp, generateName, optimistic concurrency, the standard error Statuses,
namespace existence and termination, finalizers with deletionTimestamp, and the status split.

Each expected text below is kube-apiserver 1.33's (kubectl prints them verbatim), so a
difference here is a difference a user of the real kubectl would see.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest

from tests.apiserver.test_rest_support import Raw, cm_path, event_summary, status_of, unique
from tests.conftest import ServerProcess

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


@pytest.fixture
def raw(cluster: ServerProcess) -> Raw:
    return Raw(cluster.kubeconfig)


def deployment(name: str, replicas: int = 1, image: str = "nginx:1.25") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}}


def test_create_sets_uid_resource_version_timestamp_and_no_generation_for_configmaps(raw: Raw, namespace: str) -> None:
    resp = raw.post(cm_path(namespace), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"},
                                         "data": {"k": "v"}})
    assert resp.status == 201, resp
    meta = resp.json()["metadata"]
    assert uuid.UUID(meta["uid"]).version == 4
    assert int(meta["resourceVersion"]) > 0
    assert RFC3339.match(meta["creationTimestamp"])
    assert "generation" not in meta  # ConfigMap's strategy does not track generation
    assert meta["namespace"] == namespace
    got = raw.get(cm_path(namespace, "a")).json()
    assert got["metadata"] == meta


def test_client_set_uid_and_timestamps_are_replaced_by_the_server(raw: Raw, namespace: str) -> None:
    resp = raw.post(cm_path(namespace), {"metadata": {"name": "b", "uid": "mine", "creationTimestamp": "2001-01-01T00:00:00Z",
                                                      "generation": 7}})
    assert resp.status == 201, resp
    meta = resp.json()["metadata"]
    assert meta["uid"] != "mine" and not meta["creationTimestamp"].startswith("2001")
    assert "generation" not in meta


def test_generation_is_bumped_by_spec_changes_only(raw: Raw, namespace: str) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    created = raw.post(path, deployment("d")).json()
    assert created["metadata"]["generation"] == 1
    labelled = raw.patch(f"{path}/d", {"metadata": {"labels": {"x": "y"}}}).json()
    assert labelled["metadata"]["generation"] == 1
    assert int(labelled["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    status = raw.patch(f"{path}/d/status", {"status": {"observedGeneration": 1, "replicas": 0}}).json()
    assert status["metadata"]["generation"] == 1
    scaled = raw.patch(f"{path}/d", {"spec": {"replicas": 3}}).json()
    assert scaled["metadata"]["generation"] == 2
    scaled_again = raw.patch(f"{path}/d/scale", {"spec": {"replicas": 4}}).json()
    assert scaled_again["spec"]["replicas"] == 4
    assert raw.get(f"{path}/d").json()["metadata"]["generation"] == 3


def test_generate_name_appends_five_characters(raw: Raw, namespace: str) -> None:
    names = set()
    for _ in range(3):
        resp = raw.post(cm_path(namespace), {"metadata": {"generateName": "gen-"}})
        assert resp.status == 201, resp
        meta = resp.json()["metadata"]
        assert re.fullmatch(r"gen-[bcdfghjklmnpqrstvwxz2456789]{5}", meta["name"]), meta["name"]
        assert meta["generateName"] == "gen-"
        names.add(meta["name"])
    assert len(names) == 3


def test_stale_resource_version_in_put_is_conflict(raw: Raw, namespace: str) -> None:
    created = raw.post(cm_path(namespace), {"metadata": {"name": "c"}, "data": {"v": "1"}}).json()
    current = raw.put(cm_path(namespace, "c"), {**created, "data": {"v": "2"}})
    assert current.status == 200, current
    stale = raw.put(cm_path(namespace, "c"), {**created, "data": {"v": "3"}})
    assert stale.status == 409
    assert status_of(stale) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'Operation cannot be fulfilled on configmaps "c": the object has been modified; '
                   "please apply your changes to the latest version and try again",
        "reason": "Conflict", "details": {"name": "c", "kind": "configmaps"}, "code": 409}
    assert raw.get(cm_path(namespace, "c")).json()["data"] == {"v": "2"}


def test_put_without_resource_version_is_an_unconditional_update(raw: Raw, namespace: str) -> None:
    raw.post(cm_path(namespace), {"metadata": {"name": "u"}, "data": {"v": "1"}})
    resp = raw.put(cm_path(namespace, "u"), {"metadata": {"name": "u"}, "data": {"v": "2"}})
    assert resp.status == 200, resp
    assert resp.json()["data"] == {"v": "2"}


def test_put_to_a_missing_configmap_is_not_found(raw: Raw, namespace: str) -> None:
    resp = raw.put(cm_path(namespace, "ghost"), {"metadata": {"name": "ghost"}})
    assert resp.status == 404
    assert status_of(resp)["message"] == 'configmaps "ghost" not found'


def test_already_exists_and_not_found_for_a_group_resource(raw: Raw, namespace: str) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    assert raw.post(path, deployment("dup")).status == 201
    again = raw.post(path, deployment("dup"))
    assert again.status == 409
    assert status_of(again)["reason"] == "AlreadyExists"
    assert again.json()["message"] == 'deployments.apps "dup" already exists'
    assert again.json()["details"] == {"name": "dup", "group": "apps", "kind": "deployments"}
    missing = raw.get(f"{path}/nope")
    assert missing.status == 404
    assert missing.json()["message"] == 'deployments.apps "nope" not found'
    assert missing.json()["details"] == {"name": "nope", "group": "apps", "kind": "deployments"}
    assert raw.delete(f"{path}/nope").status == 404


def test_invalid_name_is_422_with_field_causes(raw: Raw, namespace: str) -> None:
    resp = raw.post(cm_path(namespace), {"metadata": {"name": "Foo_bar"}})
    assert resp.status == 422
    body = status_of(resp)
    assert body["reason"] == "Invalid"
    assert body["message"].startswith('ConfigMap "Foo_bar" is invalid: metadata.name: Invalid value: "Foo_bar": '
                                      "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters")
    assert body["details"]["kind"] == "ConfigMap" and body["details"]["name"] == "Foo_bar"
    assert body["details"]["causes"][0]["reason"] == "FieldValueInvalid"
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    assert raw.get(cm_path(namespace, "Foo_bar")).status == 404


def test_missing_name_is_422_required(raw: Raw, namespace: str) -> None:
    resp = raw.post(cm_path(namespace), {"metadata": {}})
    assert resp.status == 422
    body = resp.json()
    assert body["message"] == 'ConfigMap "" is invalid: metadata.name: Required value: name or generateName is required'


def test_create_in_a_missing_namespace_is_404_naming_the_namespace(raw: Raw) -> None:
    resp = raw.post(cm_path("no-such-ns"), {"metadata": {"name": "x"}})
    assert resp.status == 404
    assert status_of(resp)["message"] == 'namespaces "no-such-ns" not found'
    assert resp.json()["details"] == {"name": "no-such-ns", "kind": "namespaces"}


def test_terminating_namespace_refuses_new_content_and_keeps_old(raw: Raw, cluster: ServerProcess) -> None:
    ns = unique("term")
    assert raw.post("/api/v1/namespaces", {"metadata": {"name": ns}}).status == 201
    assert raw.post(cm_path(ns), {"metadata": {"name": "old"}}).status == 201
    deleted = raw.delete(f"/api/v1/namespaces/{ns}")
    assert deleted.status == 200, deleted
    body = deleted.json()
    # No namespace controller yet: the `kubernetes` finalizer keeps it Terminating.
    assert body["kind"] == "Namespace" and body["status"]["phase"] == "Terminating"
    assert body["spec"]["finalizers"] == ["kubernetes"] and body["metadata"]["deletionTimestamp"]
    refused = raw.post(cm_path(ns), {"metadata": {"name": "new"}})
    assert refused.status == 403
    assert status_of(refused)["message"] == (
        f'configmaps "new" is forbidden: unable to create new content in namespace {ns} because it is being terminated')
    assert refused.json()["reason"] == "Forbidden"
    assert raw.get(cm_path(ns, "old")).status == 200
    assert raw.get(cm_path(ns, "new")).status == 404
    # updates to existing content are still allowed
    assert raw.patch(cm_path(ns, "old"), {"data": {"a": "b"}}).status == 200


def test_finalizer_keeps_object_until_removed_and_watch_sees_modified_then_deleted(raw: Raw, namespace: str) -> None:
    created = raw.post(cm_path(namespace), {"metadata": {"name": "f", "finalizers": ["example.com/hold"]}}).json()
    rv = created["metadata"]["resourceVersion"]
    with raw.watch(cm_path(namespace), {"resourceVersion": rv, "timeoutSeconds": 10}) as stream:
        first = raw.delete(cm_path(namespace, "f"))
        assert first.status == 200, first
        kept = first.json()
        assert kept["kind"] == "ConfigMap" and RFC3339.match(kept["metadata"]["deletionTimestamp"])
        assert kept["metadata"]["deletionGracePeriodSeconds"] == 0
        got = raw.get(cm_path(namespace, "f"))
        assert got.status == 200 and got.json()["metadata"]["deletionTimestamp"] == kept["metadata"]["deletionTimestamp"]
        # a second delete changes nothing while the finalizer stays
        again = raw.delete(cm_path(namespace, "f"))
        assert again.status == 200
        assert again.json()["metadata"]["resourceVersion"] == kept["metadata"]["resourceVersion"]
        # removing the last finalizer completes the deletion
        done = raw.patch(cm_path(namespace, "f"), {"metadata": {"finalizers": None}})
        assert done.status == 200, done
        assert raw.get(cm_path(namespace, "f")).status == 404
        events = stream.events(2)
    assert event_summary(events) == [("MODIFIED", "f"), ("DELETED", "f")]
    assert events[0]["object"]["metadata"]["deletionTimestamp"]


def test_delete_returns_success_status_for_configmaps(raw: Raw, namespace: str) -> None:
    created = raw.post(cm_path(namespace), {"metadata": {"name": "gone"}}).json()
    resp = raw.delete(cm_path(namespace, "gone"))
    assert resp.status == 200
    assert resp.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                           "details": {"name": "gone", "kind": "configmaps", "uid": created["metadata"]["uid"]}}


def test_delete_precondition_on_resource_version(raw: Raw, namespace: str) -> None:
    created = raw.post(cm_path(namespace), {"metadata": {"name": "p"}}).json()
    raw.patch(cm_path(namespace, "p"), {"data": {"a": "1"}})
    resp = raw.delete(cm_path(namespace, "p"), {"preconditions": {"resourceVersion": created["metadata"]["resourceVersion"]}})
    assert resp.status == 409
    assert resp.json()["message"].startswith('Operation cannot be fulfilled on configmaps "p": Precondition failed: ResourceVersion in precondition')
    assert raw.get(cm_path(namespace, "p")).status == 200


# -- status subresource ------------------------------------------------------------------------

def test_put_to_the_object_ignores_status(raw: Raw, namespace: str) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    created = raw.post(path, {**deployment("s"), "status": {"replicas": 9}}).json()
    assert created.get("status", {}).get("replicas") is None
    body = {**created, "status": {"replicas": 5}}
    body["spec"] = {**created["spec"], "replicas": 2}
    updated = raw.put(f"{path}/s", body).json()
    assert updated["spec"]["replicas"] == 2
    assert updated.get("status", {}).get("replicas") is None


def test_status_put_and_patch_change_only_status(raw: Raw, namespace: str) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    created = raw.post(path, deployment("st")).json()
    body = {**created, "status": {"replicas": 1, "observedGeneration": 1}, "metadata": {**created["metadata"], "labels": {"sneaky": "yes"}}}
    body["spec"] = {**created["spec"], "replicas": 7}
    put = raw.put(f"{path}/st/status", body)
    assert put.status == 200, put
    obj = put.json()
    assert obj["status"] == {"replicas": 1, "observedGeneration": 1}
    assert obj["spec"]["replicas"] == 1 and "labels" not in obj["metadata"]
    patched = raw.patch(f"{path}/st/status", {"status": {"readyReplicas": 1}, "spec": {"replicas": 9}}).json()
    assert patched["status"]["readyReplicas"] == 1 and patched["spec"]["replicas"] == 1
    got = raw.get(f"{path}/st/status")
    assert got.status == 200
    assert got.json()["kind"] == "Deployment" and got.json()["status"]["readyReplicas"] == 1


def test_status_writes_may_change_metadata_of_most_builtin_kinds(raw: Raw, namespace: str) -> None:
    """kube's status strategies for services and namespaces reset only spec, so the conformance
    tests' `{"metadata":{"annotations":{"patchedstatus":"true"}},"status":...}` patches stick;
    pods keep their ownerReferences; deployments keep their labels (see test above)."""
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
           "spec": {"ports": [{"port": 80}], "selector": {"a": "b"}}}
    assert raw.post(f"/api/v1/namespaces/{namespace}/services", svc).status == 201
    patched = raw.patch(f"/api/v1/namespaces/{namespace}/services/s/status",
                        {"metadata": {"annotations": {"patchedstatus": "true"}},
                         "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.9"}]}}})
    assert patched.status == 200, patched
    assert patched.json()["metadata"]["annotations"] == {"patchedstatus": "true"}
    assert patched.json()["status"]["loadBalancer"]["ingress"] == [{"ip": "127.0.0.9", "ipMode": "VIP"}]  # defaulted
    ns = raw.patch(f"/api/v1/namespaces/{namespace}/status", {"metadata": {"annotations": {"statuspatch": "yes"}}})
    assert ns.status == 200 and ns.json()["metadata"]["annotations"]["statuspatch"] == "yes"
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    assert raw.post(f"/api/v1/namespaces/{namespace}/pods", pod).status == 201
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "6b1c6b47-2a7c-4a6a-9e43-4e0ad54a5c8e"}
    p = raw.patch(f"/api/v1/namespaces/{namespace}/pods/p/status",
                  {"metadata": {"labels": {"l": "v"}, "ownerReferences": [owner]}})
    assert p.status == 200, p
    assert p.json()["metadata"]["labels"] == {"l": "v"}
    assert "ownerReferences" not in p.json()["metadata"]


def test_status_subresource_of_a_kind_without_one_is_404(raw: Raw, namespace: str) -> None:
    raw.post(cm_path(namespace), {"metadata": {"name": "nostatus"}})
    resp = raw.get(cm_path(namespace, "nostatus") + "/status")
    assert resp.status == 404
    assert resp.json()["message"] == "the server could not find the requested resource"


def test_pod_status_patch_through_the_official_client(cluster: ServerProcess, namespace: str) -> None:
    from kubernetes import client

    core = client.CoreV1Api(cluster.api_client())
    core.create_namespaced_pod(namespace, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    core.patch_namespaced_pod_status("p", namespace, {"status": {"phase": "Running"}})
    assert core.read_namespaced_pod_status("p", namespace).status.phase == "Running"
    replaced = core.read_namespaced_pod("p", namespace)
    replaced.status.phase = "Failed"
    after = core.replace_namespaced_pod("p", namespace, replaced)
    assert after.status.phase == "Running"
    time.sleep(0)
