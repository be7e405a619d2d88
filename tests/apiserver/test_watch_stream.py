"""Watch over the real wire: the chunked `{"type","object"}\\n` stream, clean ends on
timeoutSeconds, lossless resumption, bookmarks, selector-driven ADDED/DELETED, watch-list
(`sendInitialEvents`), and 410 Expired once history is compacted.

kube-apiserver facts relied on: a watch with no resourceVersion (or "0") starts with synthetic
ADDED events for the current state, a non-zero one starts strictly after it; an object that
stops matching the selector is sent as DELETED and one that starts matching as ADDED; an RV
older than the kept history gets an in-stream ERROR with a 410 `Expired` Status reading
`too old resource version: RV (OLDEST)`.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.apiserver.test_rest_support import Raw, cm_path, event_summary, unique
from tests.conftest import ServerProcess, start_server


@pytest.fixture
def raw(cluster: ServerProcess) -> Raw:
    return Raw(cluster.kubeconfig)


def make(raw: Raw, namespace: str, name: str, labels: dict[str, str] | None = None) -> dict:
    resp = raw.post(cm_path(namespace), {"metadata": {"name": name, "labels": labels or {}}})
    assert resp.status == 201, resp
    return resp.json()


def test_stream_format_and_clean_end_on_timeout(raw: Raw, namespace: str) -> None:
    make(raw, namespace, "w1")
    started = time.monotonic()
    with raw.watch(cm_path(namespace), {"timeoutSeconds": 1}) as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"] == "application/json"
        assert stream.headers["Transfer-Encoding"] == "chunked"
        assert "Content-Encoding" not in stream.headers
        events = stream.rest(timeout=10)  # ends with the terminating chunk, no error
    assert 0.9 <= time.monotonic() - started < 5
    assert event_summary(events) == [("ADDED", "w1")]
    assert set(events[0]) == {"type", "object"}
    assert events[0]["object"]["kind"] == "ConfigMap" and events[0]["object"]["apiVersion"] == "v1"


def test_resume_from_a_resource_version_loses_and_repeats_nothing(raw: Raw, namespace: str) -> None:
    first = make(raw, namespace, "r0")
    rv0 = first["metadata"]["resourceVersion"]
    with raw.watch(cm_path(namespace), {"resourceVersion": rv0, "timeoutSeconds": 10}) as stream:
        make(raw, namespace, "r1")
        make(raw, namespace, "r2")
        got = stream.events(2)
    assert event_summary(got) == [("ADDED", "r1"), ("ADDED", "r2")]
    last_rv = got[-1]["object"]["metadata"]["resourceVersion"]
    # written while nobody watches
    raw.patch(cm_path(namespace, "r1"), {"data": {"a": "1"}})
    raw.delete(cm_path(namespace, "r0"))
    make(raw, namespace, "r3")
    with raw.watch(cm_path(namespace), {"resourceVersion": last_rv, "timeoutSeconds": 2}) as stream:
        rest = stream.rest()
    assert event_summary(rest) == [("MODIFIED", "r1"), ("DELETED", "r0"), ("ADDED", "r3")]
    revisions = [int(e["object"]["metadata"]["resourceVersion"]) for e in rest]
    assert revisions == sorted(revisions) and revisions[0] > int(last_rv)


def test_watch_without_resource_version_starts_with_the_current_state(raw: Raw, namespace: str) -> None:
    for name in ("s1", "s2"):
        make(raw, namespace, name)
    for rv in ("", "0"):
        query = {"timeoutSeconds": 1, **({"resourceVersion": rv} if rv else {})}
        with raw.watch(cm_path(namespace), query) as stream:
            assert event_summary(stream.rest()) == [("ADDED", "s1"), ("ADDED", "s2")]


def test_bookmark_at_the_end_of_a_timed_out_watch(raw: Raw, namespace: str) -> None:
    created = make(raw, namespace, "b1")
    with raw.watch(cm_path(namespace), {"resourceVersion": created["metadata"]["resourceVersion"],
                                        "timeoutSeconds": 1, "allowWatchBookmarks": "true"}) as stream:
        events = stream.rest()
    assert [e["type"] for e in events] == ["BOOKMARK"]
    bookmark = events[0]["object"]
    assert bookmark["kind"] == "ConfigMap" and bookmark["apiVersion"] == "v1"
    assert int(bookmark["metadata"]["resourceVersion"]) >= int(created["metadata"]["resourceVersion"])
    with raw.watch(cm_path(namespace), {"resourceVersion": created["metadata"]["resourceVersion"],
                                        "timeoutSeconds": 1}) as stream:
        assert stream.rest() == []  # no bookmarks unless asked for


def test_label_selector_watch_sees_objects_leave_as_deleted_and_enter_as_added(raw: Raw, namespace: str) -> None:
    created = make(raw, namespace, "sel", {"app": "a"})
    other = make(raw, namespace, "other", {"app": "b"})
    with raw.watch(cm_path(namespace), {"resourceVersion": other["metadata"]["resourceVersion"],
                                        "labelSelector": "app=a", "timeoutSeconds": 10}) as stream:
        raw.patch(cm_path(namespace, "other"), {"data": {"x": "1"}})      # never matches: unseen
        raw.patch(cm_path(namespace, "sel"), {"data": {"x": "1"}})        # stays in: MODIFIED
        raw.patch(cm_path(namespace, "sel"), {"metadata": {"labels": {"app": "z"}}})  # leaves
        raw.patch(cm_path(namespace, "sel"), {"data": {"x": "2"}})        # outside: unseen
        raw.patch(cm_path(namespace, "other"), {"metadata": {"labels": {"app": "a"}}})  # enters
        events = stream.events(3)
    assert event_summary(events) == [("MODIFIED", "sel"), ("DELETED", "sel"), ("ADDED", "other")]
    assert events[1]["object"]["metadata"]["labels"] == {"app": "z"}  # the object as it is now
    assert created["metadata"]["uid"] == events[1]["object"]["metadata"]["uid"]


def test_field_selector_watch_on_metadata_name(raw: Raw, namespace: str) -> None:
    a = make(raw, namespace, "fa")
    with raw.watch(cm_path(namespace), {"resourceVersion": a["metadata"]["resourceVersion"],
                                        "fieldSelector": "metadata.name=fb", "timeoutSeconds": 10}) as stream:
        raw.patch(cm_path(namespace, "fa"), {"data": {"x": "1"}})
        make(raw, namespace, "fb")
        raw.delete(cm_path(namespace, "fb"))
        assert event_summary(stream.events(2)) == [("ADDED", "fb"), ("DELETED", "fb")]


def test_watch_with_an_unsupported_field_selector_is_400(raw: Raw, namespace: str) -> None:
    stream = raw.watch(cm_path(namespace), {"fieldSelector": "spec.nodeName=x"})
    try:
        assert stream.status == 400
        body = stream.resp.read()
        assert b'is not a known field selector' in body
    finally:
        stream.close()


def test_send_initial_events_ends_with_the_initial_events_end_bookmark(raw: Raw, namespace: str) -> None:
    make(raw, namespace, "i1")
    make(raw, namespace, "i2")
    query = {"sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan", "allowWatchBookmarks": "true",
             "timeoutSeconds": 10}
    with raw.watch(cm_path(namespace), query) as stream:
        events = stream.events(3)
        assert event_summary(events[:2]) == [("ADDED", "i1"), ("ADDED", "i2")]
        assert events[2]["type"] == "BOOKMARK"
        assert events[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
        make(raw, namespace, "i3")
        assert event_summary(stream.events(1)) == [("ADDED", "i3")]


def test_send_initial_events_requires_not_older_than(raw: Raw, namespace: str) -> None:
    resp = raw.get(cm_path(namespace), query={"watch": "true", "sendInitialEvents": "true"})
    assert resp.status == 422
    assert resp.json()["reason"] == "Invalid"


def test_python_client_watch_stream_with_timeout(cluster: ServerProcess, namespace: str) -> None:
    from kubernetes import client, watch

    core = client.CoreV1Api(cluster.api_client())
    listed = core.list_namespaced_config_map(namespace)
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "py"}})
    seen = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
        core.list_namespaced_config_map, namespace, resource_version=listed.metadata.resource_version,
        timeout_seconds=1)]
    assert seen == [("ADDED", "py")]


@pytest.fixture(scope="module")
def compacting(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A server keeping 1 s of history and compacting every 0.3 s."""
    server = start_server(Path(tmp_path_factory.mktemp("compacting")), "--watch-history-seconds", "1",
                          "--compaction-interval-seconds", "0.3", "--components=")
    yield server
    server.stop()


def wait_compacted(raw: Raw, namespace: str, rv: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        resp = raw.get(cm_path(namespace), query={"resourceVersion": rv, "resourceVersionMatch": "Exact"})
        if resp.status == 410:
            return
        time.sleep(0.2)
    raise AssertionError("history was never compacted")


def test_compacted_resource_version_gives_410_in_watch_list_and_continue(compacting: ServerProcess) -> None:
    raw = Raw(compacting.kubeconfig)
    ns = unique("cmp")
    assert raw.post("/api/v1/namespaces", {"metadata": {"name": ns}}).status == 201
    first = make(raw, ns, "c1")
    make(raw, ns, "c2")
    make(raw, ns, "c3")
    old_rv = first["metadata"]["resourceVersion"]
    page = raw.get(cm_path(ns), query={"limit": 1}).json()
    token = page["metadata"]["continue"]
    make(raw, ns, "c4")
    time.sleep(1.2)
    make(raw, ns, "c5")  # writes on both sides of the retention window: compaction passes the token's RV
    wait_compacted(raw, ns, page["metadata"]["resourceVersion"])

    exact = raw.get(cm_path(ns), query={"resourceVersion": old_rv, "resourceVersionMatch": "Exact"}).json()
    assert exact["reason"] == "Expired" and exact["code"] == 410
    assert exact["message"] == "The resourceVersion for the provided list is too old."

    expired = raw.get(cm_path(ns), query={"limit": 1, "continue": token})
    assert expired.status == 410
    body = expired.json()
    assert body["reason"] == "Expired"
    assert body["message"].startswith("The provided continue parameter is too old to display a consistent list result.")
    # the Status offers a token that continues (inconsistently) at the newest state
    resumed = raw.get(cm_path(ns), query={"limit": 10, "continue": body["metadata"]["continue"]}).json()
    assert [i["metadata"]["name"] for i in resumed["items"]] == ["c2", "c3", "c4", "c5"]

    with raw.watch(cm_path(ns), {"resourceVersion": old_rv, "timeoutSeconds": 5}) as stream:
        assert stream.status == 200
        events = stream.rest()
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert status["kind"] == "Status" and status["code"] == 410 and status["reason"] == "Expired"
    assert status["message"].startswith(f"too old resource version: {old_rv} (")

    from kubernetes import client, watch
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(compacting.api_client())
    with pytest.raises(ApiException) as caught:
        list(watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version=old_rv, timeout_seconds=2))
    assert caught.value.status == 410
