"""core/v1 and events.k8s.io/v1 Events are one stored object, converted per API (kube-apiserver
keeps Events once under /registry/events/<ns>/<name> and serves both group-versions from it).

Facts checked: an Event written through either API is read, listed, watched, patched and
deleted through the other, in that API's shape; events.k8s.io field selectors take
`regarding.*`, `reportingController`, `reason`, `type` (kube's events/v1 field label conversion,
no `source`, no `involvedObject.*`: "field label not supported: X"), core's take
`involvedObject.*`, `source`, `reportingComponent`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from pykube_server.registry.sharedstorage import CONVERSIONS, ConvertedResourceStore
from pykube_server.testing import local_cluster

STAMP = "2026-11-27T10:00:00.000000Z"


def _scheduled(name: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
            "eventTime": STAMP, "reportingController": "default-scheduler",
            "reportingInstance": "default-scheduler-node1", "action": "Scheduling", "reason": "Scheduled",
            "type": "Normal", "note": f"Successfully assigned {ns}/web to node1",
            "regarding": {"kind": "Pod", "namespace": ns, "name": "web", "apiVersion": "v1", "uid": "u1"}}


def _kubelet(name: str, ns: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": name, "namespace": ns},
            "involvedObject": {"kind": "Pod", "namespace": ns, "name": "db"}, "reason": "Pulled",
            "message": "pulled", "type": "Normal", "source": {"component": "kubelet", "host": "node1"},
            "firstTimestamp": "2026-11-27T10:00:00Z", "lastTimestamp": "2026-11-27T10:01:00Z", "count": 3,
            # the typed client's EventsV1Event refuses a null eventTime, which is what a core
            # Event without one reads as through events.k8s.io (a zero MicroTime); with one, kube's
            # legacy validation wants the reporting component, instance and action too
            "eventTime": STAMP, "reportingComponent": "kubelet", "reportingInstance": "node1", "action": "Pulling"}


def _status_of(exc: Exception) -> tuple[int, str]:
    return exc.status, json.loads(exc.body)["message"]  # type: ignore[attr-defined]


def _round_trips(kubeconfig: Path) -> dict[str, Any]:
    from kubernetes import client, config, watch
    from kubernetes.client.rest import ApiException

    api = config.new_client_from_config(config_file=str(kubeconfig))
    core, events = client.CoreV1Api(api), client.EventsV1Api(api)
    out: dict[str, Any] = {}
    created = events.create_namespaced_event("default", _scheduled("web.1", "default"))
    out["created_note"] = created.note
    as_core = core.read_namespaced_event("web.1", "default")
    out["core"] = api.sanitize_for_serialization(as_core)
    core.create_namespaced_event("default", _kubelet("db.1", "default"))
    out["events_view"] = api.sanitize_for_serialization(events.read_namespaced_event("db.1", "default"))
    out["events_by_regarding"] = [e.metadata.name for e in events.list_namespaced_event(
        "default", field_selector="regarding.name=web").items]
    out["events_by_controller"] = [e.metadata.name for e in events.list_namespaced_event(
        "default", field_selector="reportingController=default-scheduler").items]
    out["core_by_component"] = [e.metadata.name for e in core.list_namespaced_event(
        "default", field_selector="reportingComponent=default-scheduler").items]
    out["core_by_source"] = [e.metadata.name for e in core.list_namespaced_event(
        "default", field_selector="source=kubelet").items]
    out["core_by_object"] = [e.metadata.name for e in core.list_namespaced_event(
        "default", field_selector="involvedObject.name=web").items]
    for label in ("involvedObject.name=web", "source=kubelet"):
        try:
            events.list_namespaced_event("default", field_selector=label)
            out[label] = None
        except ApiException as exc:
            out[label] = _status_of(exc)
    # (through events.k8s.io the note and count are immutable: kind_validation/events.py)
    core.patch_namespaced_event("db.1", "default", {"message": "pulled again", "count": 4})
    patched = events.read_namespaced_event("db.1", "default")
    out["patched"] = (patched.note, patched.deprecated_count)
    again = core.read_namespaced_event("db.1", "default")
    out["patched_core"] = (again.message, again.count, again.source.component)
    seen = []
    for item in watch.Watch().stream(events.list_namespaced_event, "default", timeout_seconds=2):
        seen.append((item["type"], item["object"].metadata.name, item["object"].note))
        if len(seen) == 2:
            break
    out["watched"] = sorted(seen)
    core.delete_namespaced_event("web.1", "default")
    try:
        events.read_namespaced_event("web.1", "default")
        out["after_delete"] = None
    except ApiException as exc:
        out["after_delete"] = _status_of(exc)
    return out


async def test_events_are_stored_once_and_served_by_both_apis(tmp_path: Path) -> None:
    async with local_cluster(tmp_path) as lc:
        out = await asyncio.to_thread(_round_trips, lc.kubeconfig)
        stored = await lc.server.backend.get("/registry/events/default/db.1")
        assert (await lc.server.backend.scan("/registry/events.k8s.io/")).items == []
    assert out["created_note"] == "Successfully assigned default/web to node1"
    core = out["core"]
    assert core["message"] == "Successfully assigned default/web to node1"
    assert core["reportingComponent"] == "default-scheduler" and core["reportingInstance"] == "default-scheduler-node1"
    assert core["involvedObject"]["name"] == "web" and core["action"] == "Scheduling"
    assert core["apiVersion"] == "v1" and "note" not in core
    view = out["events_view"]
    assert view["apiVersion"] == "events.k8s.io/v1" and view["note"] == "pulled"
    assert view["deprecatedSource"] == {"component": "kubelet", "host": "node1"} and view["deprecatedCount"] == 3
    assert view["regarding"]["name"] == "db" and "message" not in view
    assert out["events_by_regarding"] == ["web.1"]
    assert out["events_by_controller"] == ["web.1"]
    assert out["core_by_component"] == ["web.1"]
    assert out["core_by_source"] == ["db.1"]
    assert out["core_by_object"] == ["web.1"]
    assert out["involvedObject.name=web"] == (400, "field label not supported: involvedObject.name")
    assert out["source=kubelet"] == (400, "field label not supported: source")
    assert out["patched"] == ("pulled again", 4)
    assert out["patched_core"] == ("pulled again", 4, "kubelet")
    assert out["watched"] == [("ADDED", "db.1", "pulled again"),
                              ("ADDED", "web.1", "Successfully assigned default/web to node1")]
    assert out["after_delete"] == (404, 'events.events.k8s.io "web.1" not found')
    body = orjson.loads(stored.value)
    assert body["apiVersion"] == "v1" and body["message"] == "pulled again" and "note" not in body


async def test_events_api_store_is_a_converted_store_over_core_keys(tmp_path: Path) -> None:
    async with local_cluster(tmp_path) as lc:
        served = lc.server.store_for("events.k8s.io", "v1", "events")
        stored = lc.server.store_for("", "v1", "events")
    assert isinstance(served, ConvertedResourceStore)
    assert served.root == stored.root == "/registry/events"
    assert CONVERSIONS[("events.k8s.io", "v1", "events")].stored_as == ("", "v1", "events")
    supported, aliases = served.field_labels()
    assert aliases is not None and aliases["regarding.uid"] == "involvedObject.uid"
    assert supported is not None and "source" not in supported and "reportingController" in supported


@pytest.mark.parametrize("label", ["regarding.kind", "regarding.namespace", "regarding.fieldPath", "type", "reason"])
def test_events_api_field_labels_rename_to_core_labels(label: str) -> None:
    labels = CONVERSIONS[("events.k8s.io", "v1", "events")].field_labels
    assert labels[label] == label.replace("regarding.", "involvedObject.")
