"""List semantics over the wire: label and field selectors, limit/continue pagination over one
snapshot, and the resourceVersion / resourceVersionMatch rules for get and list.

The rules are kube-apiserver 1.33's (api-concepts "Resource versions" and "Retrieving large
results sets in chunks"): unset = consistent read of the newest state; "0" = any; a number with
NotOlderThan = at least that new; Exact = exactly that revision (served from history, not
only the cache); a revision the server has not reached yet is waited for ~3 s, then 504.
"""

from __future__ import annotations

import time

import pytest

from tests.apiserver.test_rest_support import Raw, cm_path, iter_names, status_of, unique
from tests.conftest import ServerProcess


@pytest.fixture
def raw(cluster: ServerProcess) -> Raw:
    return Raw(cluster.kubeconfig)


@pytest.fixture
def labelled(raw: Raw, namespace: str) -> str:
    """Five ConfigMaps: a(env=prod,tier=web) b(env=dev,tier=web) c(env=qa) d(tier=db) e()."""
    labels = {"a": {"env": "prod", "tier": "web"}, "b": {"env": "dev", "tier": "web"}, "c": {"env": "qa"},
              "d": {"tier": "db"}, "e": {}}
    for name, lab in labels.items():
        assert raw.post(cm_path(namespace), {"metadata": {"name": name, "labels": lab}}).status == 201
    return namespace


def names(raw: Raw, path: str, **query: str) -> list[str]:
    resp = raw.get(path, query=query)
    assert resp.status == 200, resp
    return list(iter_names(resp.json()["items"]))


@pytest.mark.parametrize(("selector", "expected"), [
    ("env=prod", ["a"]),
    ("env==prod", ["a"]),
    ("env!=prod", ["b", "c", "d", "e"]),  # != also matches objects without the label
    ("env in (prod,dev)", ["a", "b"]),
    ("env notin (prod,dev)", ["c", "d", "e"]),
    ("env", ["a", "b", "c"]),
    ("!env", ["d", "e"]),
    ("tier=web,env=dev", ["b"]),
    ("tier,!env", ["d"]),
])
def test_label_selectors(raw: Raw, labelled: str, selector: str, expected: list[str]) -> None:
    assert names(raw, cm_path(labelled), labelSelector=selector) == expected


def test_bad_label_selector_is_400(raw: Raw, labelled: str) -> None:
    resp = raw.get(cm_path(labelled), query={"labelSelector": "env in prod"})
    assert resp.status == 400
    assert status_of(resp)["reason"] == "BadRequest"


def test_field_selectors_on_metadata(raw: Raw, labelled: str) -> None:
    assert names(raw, cm_path(labelled), fieldSelector="metadata.name=c") == ["c"]
    assert names(raw, cm_path(labelled), fieldSelector="metadata.name!=c") == ["a", "b", "d", "e"]
    assert names(raw, cm_path(labelled), fieldSelector="metadata.name==c", labelSelector="env") == ["c"]
    everywhere = names(raw, "/api/v1/configmaps", fieldSelector=f"metadata.namespace={labelled}")
    assert everywhere == ["a", "b", "c", "d", "e"]


def test_unsupported_field_selector_is_400_with_kube_text(raw: Raw, labelled: str) -> None:
    resp = raw.get(cm_path(labelled), query={"fieldSelector": "data.x=1"})
    assert resp.status == 400
    assert status_of(resp)["message"] == '"data.x" is not a known field selector: only "metadata.name", "metadata.namespace"'
    pods = raw.get(f"/api/v1/namespaces/{labelled}/pods", query={"fieldSelector": "spec.bogus=1"})
    assert pods.status == 400
    assert pods.json()["message"] == "field label not supported: spec.bogus"


def test_pod_field_selectors_node_name_and_phase(raw: Raw, namespace: str) -> None:
    pods = f"/api/v1/namespaces/{namespace}/pods"
    for name, node in (("p1", "n1"), ("p2", "n2"), ("p3", "")):
        spec = {"containers": [{"name": "c", "image": "busybox"}]}
        if node:
            spec["nodeName"] = node
        assert raw.post(pods, {"metadata": {"name": name}, "spec": spec}).status == 201
    raw.patch(f"{pods}/p2/status", {"status": {"phase": "Running"}})
    assert names(raw, pods, fieldSelector="spec.nodeName=n1") == ["p1"]
    assert names(raw, pods, fieldSelector="spec.nodeName=") == ["p3"]
    assert names(raw, pods, fieldSelector="status.phase=Running") == ["p2"]
    assert names(raw, pods, fieldSelector="status.phase!=Running,spec.nodeName!=") == ["p1"]
    assert names(raw, pods, fieldSelector="spec.host=n2") == ["p2"]  # the old alias


# -- pagination ------------------------------------------------------------------------------

def test_limit_and_continue_over_a_consistent_snapshot(raw: Raw, labelled: str) -> None:
    first = raw.get(cm_path(labelled), query={"limit": 2}).json()
    assert list(iter_names(first["items"])) == ["a", "b"]
    assert first["metadata"]["remainingItemCount"] == 3
    token = first["metadata"]["continue"]
    snapshot = first["metadata"]["resourceVersion"]
    # changes after the first page are not seen by later pages
    assert raw.post(cm_path(labelled), {"metadata": {"name": "bb"}}).status == 201
    assert raw.delete(cm_path(labelled, "e")).status == 200
    raw.patch(cm_path(labelled, "c"), {"data": {"new": "yes"}})
    second = raw.get(cm_path(labelled), query={"limit": 2, "continue": token}).json()
    assert list(iter_names(second["items"])) == ["c", "d"]
    assert "data" not in second["items"][0]
    assert second["metadata"]["resourceVersion"] == snapshot
    assert second["metadata"]["remainingItemCount"] == 1
    third = raw.get(cm_path(labelled), query={"limit": 2, "continue": second["metadata"]["continue"]}).json()
    assert list(iter_names(third["items"])) == ["e"]
    assert "continue" not in third["metadata"] and "remainingItemCount" not in third["metadata"]
    # a fresh list sees the new state
    assert names(raw, cm_path(labelled)) == ["a", "b", "bb", "c", "d"]


def test_pagination_with_a_selector(raw: Raw, labelled: str) -> None:
    first = raw.get(cm_path(labelled), query={"limit": 1, "labelSelector": "tier"}).json()
    assert list(iter_names(first["items"])) == ["a"]
    # with a selector the remaining count is unknown, so kube leaves remainingItemCount unset
    assert "remainingItemCount" not in first["metadata"] and first["metadata"]["continue"]
    rest = raw.get(cm_path(labelled), query={"limit": 5, "labelSelector": "tier", "continue": first["metadata"]["continue"]}).json()
    assert list(iter_names(rest["items"])) == ["b", "d"]


def test_continue_with_a_resource_version_is_400(raw: Raw, labelled: str) -> None:
    first = raw.get(cm_path(labelled), query={"limit": 2}).json()
    resp = raw.get(cm_path(labelled), query={"limit": 2, "continue": first["metadata"]["continue"],
                                             "resourceVersion": first["metadata"]["resourceVersion"]})
    assert resp.status == 400
    assert status_of(resp)["message"] == "specifying resource version is not allowed when using continue"


def test_malformed_continue_is_400(raw: Raw, labelled: str) -> None:
    resp = raw.get(cm_path(labelled), query={"limit": 2, "continue": "!!notatoken"})
    assert resp.status == 400
    assert status_of(resp)["message"].startswith("continue key is not valid")


# -- resourceVersion rules -----------------------------------------------------------------

def test_resource_version_match_without_resource_version_is_400(raw: Raw, namespace: str) -> None:
    resp = raw.get(cm_path(namespace), query={"resourceVersionMatch": "NotOlderThan"})
    assert resp.status == 400
    assert status_of(resp)["message"] == "resourceVersionMatch is forbidden unless resourceVersion is provided"


def test_exact_match_with_resource_version_zero_is_400(raw: Raw, namespace: str) -> None:
    resp = raw.get(cm_path(namespace), query={"resourceVersionMatch": "Exact", "resourceVersion": "0"})
    assert resp.status == 400
    assert 'resourceVersionMatch "Exact" is forbidden for resourceVersion "0"' in status_of(resp)["message"]


def test_exact_list_serves_an_older_revision_from_history(raw: Raw, namespace: str) -> None:
    first = raw.post(cm_path(namespace), {"metadata": {"name": "h1"}, "data": {"v": "old"}}).json()
    rv = first["metadata"]["resourceVersion"]
    raw.patch(cm_path(namespace, "h1"), {"data": {"v": "new"}})
    raw.post(cm_path(namespace), {"metadata": {"name": "h2"}})
    old = raw.get(cm_path(namespace), query={"resourceVersion": rv, "resourceVersionMatch": "Exact"}).json()
    assert old["metadata"]["resourceVersion"] == rv
    assert [(i["metadata"]["name"], i["data"]["v"]) for i in old["items"]] == [("h1", "old")]
    assert old["items"][0]["metadata"]["resourceVersion"] == rv
    # with a limit and no match, a non-zero resourceVersion is also exact (legacy rule)
    paged = raw.get(cm_path(namespace), query={"resourceVersion": rv, "limit": 10}).json()
    assert list(iter_names(paged["items"])) == ["h1"]
    newer = raw.get(cm_path(namespace), query={"resourceVersion": rv, "resourceVersionMatch": "NotOlderThan"}).json()
    assert int(newer["metadata"]["resourceVersion"]) > int(rv)
    assert list(iter_names(newer["items"])) == ["h1", "h2"]


def test_get_and_list_with_resource_version_zero_and_unset(raw: Raw, namespace: str) -> None:
    created = raw.post(cm_path(namespace), {"metadata": {"name": "z"}}).json()
    for rv in ("0", "", created["metadata"]["resourceVersion"]):
        got = raw.get(cm_path(namespace, "z"), query={"resourceVersion": rv} if rv else None)
        assert got.status == 200 and got.json()["metadata"]["uid"] == created["metadata"]["uid"]
        listed = raw.get(cm_path(namespace), query={"resourceVersion": rv} if rv else None).json()
        assert int(listed["metadata"]["resourceVersion"]) >= int(created["metadata"]["resourceVersion"])


def test_unknown_resource_version_match_is_400(raw: Raw, namespace: str) -> None:
    resp = raw.get(cm_path(namespace), query={"resourceVersion": "1", "resourceVersionMatch": "Newest"})
    assert resp.status == 400


def test_non_numeric_resource_version_is_400(raw: Raw, namespace: str) -> None:
    resp = raw.get(cm_path(namespace), query={"resourceVersion": "abc"})
    assert resp.status == 400
    assert status_of(resp)["reason"] == "BadRequest"


def test_too_large_resource_version_times_out_with_504(raw: Raw, namespace: str) -> None:
    current = int(raw.get(cm_path(namespace)).json()["metadata"]["resourceVersion"])
    future = current + 1_000_000
    started = time.monotonic()
    resp = raw.get(cm_path(namespace), query={"resourceVersion": str(future), "resourceVersionMatch": "NotOlderThan"})
    elapsed = time.monotonic() - started
    assert resp.status == 504
    body = status_of(resp)
    assert body["reason"] == "Timeout"
    assert body["message"].startswith(f"Too large resource version: {future}, current: ")
    assert body["details"]["causes"] == [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]
    assert body["details"]["retryAfterSeconds"] == 1
    assert 2.5 <= elapsed < 8
    got = raw.get(cm_path(namespace, unique()), query={"resourceVersion": str(future)})
    assert got.status == 504
