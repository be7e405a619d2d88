"""core/v1 <-> events.k8s.io/v1 Event conversion (kube's pkg/apis/events/v1 conversion).

Facts: note<->message, regarding<->involvedObject, reportingController<->reportingComponent,
deprecatedSource<->source, deprecated{First,Last}Timestamp/deprecatedCount <->
firstTimestamp/lastTimestamp/count; the rest keeps its name. A scheduler's events.k8s.io Event
read as core shows `firstTimestamp: null`, `source: {}`, `reportingComponent: default-scheduler`
(Go encodes a zero metav1.Time as null and never omits a struct).
"""

from __future__ import annotations

from pykube_server.registry.eventconv import to_core, to_events_v1

SCHEDULED = {
    "kind": "Event", "apiVersion": "events.k8s.io/v1",
    "metadata": {"name": "web.17f", "namespace": "default"},
    "eventTime": "2026-11-27T10:00:00.000000Z",
    "reportingController": "default-scheduler", "reportingInstance": "default-scheduler-node1",
    "action": "Binding", "reason": "Scheduled", "type": "Normal",
    "regarding": {"kind": "Pod", "namespace": "default", "name": "web", "apiVersion": "v1"},
    "note": "Successfully assigned default/web to node1",
}


def test_events_v1_to_core_renames_and_shapes_as_go_encodes() -> None:
    core = to_core(SCHEDULED)
    assert core["apiVersion"] == "v1" and core["kind"] == "Event"
    assert core["message"] == "Successfully assigned default/web to node1"
    assert core["involvedObject"]["name"] == "web"
    assert core["reportingComponent"] == "default-scheduler"
    assert core["reportingInstance"] == "default-scheduler-node1"
    assert core["source"] == {} and core["firstTimestamp"] is None and core["lastTimestamp"] is None
    assert core["eventTime"] == SCHEDULED["eventTime"]
    assert "count" not in core and "note" not in core and "regarding" not in core


def test_core_to_events_v1_and_back_round_trips() -> None:
    kubelet = {"kind": "Event", "apiVersion": "v1", "metadata": {"name": "web.1", "namespace": "default"},
               "involvedObject": {"kind": "Pod", "name": "web"}, "reason": "Pulled", "message": "pulled",
               "source": {"component": "kubelet", "host": "node1"}, "firstTimestamp": "2026-11-27T10:00:00Z",
               "lastTimestamp": "2026-11-27T10:01:00Z", "count": 2, "type": "Normal", "eventTime": None,
               "reportingComponent": "", "reportingInstance": ""}
    ev = to_events_v1(kubelet)
    assert ev["apiVersion"] == "events.k8s.io/v1"
    assert ev["note"] == "pulled" and ev["deprecatedSource"] == {"component": "kubelet", "host": "node1"}
    assert ev["deprecatedCount"] == 2 and ev["deprecatedFirstTimestamp"] == "2026-11-27T10:00:00Z"
    assert ev["eventTime"] is None and ev["regarding"] == {"kind": "Pod", "name": "web"}
    assert "reportingController" not in ev and "reportingInstance" not in ev
    assert to_core(ev) == kubelet
