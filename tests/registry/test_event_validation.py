"""Event validation per request group-version, as kube-apiserver 1.33 does it.

Facts (kube's pkg/apis/core/validation/events.go and the event registry strategy):
* every write passes the legacy rules on the core-shaped object: with no `eventTime` the
  involved object's namespace must equal the Event's (an empty one only in `default`), else
  "involvedObject.namespace: Invalid value: ...: does not match event.namespace"; with an
  `eventTime` the involved namespace may be empty only in `default`/`kube-system`, and the
  reporting controller (a qualified name), reporting instance, action and reason are
  "Required value", instance/action/reason longer than 128 bytes and the message longer than
  1024 are `Invalid value: "": can have at most N characters`;
* through core/v1 that is all, and the reporting controller's path is `reportingComponent`;
  through events.k8s.io/v1 it is `reportingController`, the other paths stay internal
  (`involvedObject`, `message`, `count`, `source`);
* events.k8s.io/v1 creates add: DNS-subdomain names, `eventTime` required, `type` must be
  Normal or Warning (`Invalid value: "": has invalid value: X`), deprecated fields
  "needs to be unset", `series.count` "should be at least 2", `series.lastObservedTime`
  required;
* events.k8s.io/v1 updates may not change the involved object, reason (checked twice), message,
  source, timestamps, count, type, eventTime (to the microsecond), action, related or the
  reporting fields: "field is immutable", shown with Go's rendering of the internal value;
* the generic metadata check lets a core Event be named anything that is a path segment, and
  runs only once the Event rules pass; a 422 names the kind `Event` (no group) from both APIs;
  its message lists a repeated error once while the causes keep each.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pykube_server.api.errors import Invalid
from pykube_server.registry.kind_validation import events as ev
from pykube_server.registry.kinds import strategy_for
from pykube_server.registry.resources import RESOURCES

STAMP = "2026-11-27T10:00:00.123456Z"
QUALIFIED_REGEX_ERR = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                       "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                       "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")


def causes(errs: list[Any]) -> list[tuple[str, str, str]]:
    return [(e.field, e.reason, e.body()) for e in errs]


def core_event(**fields: Any) -> dict[str, Any]:
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "pod.1", "namespace": "ns1"},
             "involvedObject": {"kind": "Pod", "namespace": "ns1", "name": "pod"}, "reason": "Pulled",
             "message": "pulled", "type": "Normal", "source": {"component": "kubelet", "host": "node1"},
             "firstTimestamp": "2026-11-27T10:00:00Z", "lastTimestamp": "2026-11-27T10:00:00Z", "count": 1}
    event.update(fields)
    return event


def v1_event(**fields: Any) -> dict[str, Any]:
    event = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "pod.1", "namespace": "ns1"},
             "eventTime": STAMP, "reportingController": "default-scheduler",
             "reportingInstance": "default-scheduler-node1", "action": "Binding", "reason": "Scheduled",
             "type": "Normal", "note": "assigned", "regarding": {"kind": "Pod", "namespace": "ns1", "name": "pod"}}
    event.update(fields)
    return event


def strategy(group: str) -> Any:
    spec = next(r for r in RESOURCES if (r.group, r.plural, r.version) == (group, "events", "v1"))
    return strategy_for(spec)


# --- core/v1: legacy rules only -------------------------------------------------------------------

def test_core_event_passes_as_kubelet_writes_it() -> None:
    assert ev.validate_core_event(core_event()) == []


def test_core_involved_namespace_must_match() -> None:
    errs = ev.validate_core_event(core_event(involvedObject={"kind": "Pod", "namespace": "other", "name": "p"}))
    assert causes(errs) == [("involvedObject.namespace", "FieldValueInvalid",
                             'Invalid value: "other": does not match event.namespace')]


def test_core_empty_involved_namespace_only_in_default() -> None:
    node_ref = {"kind": "Node", "name": "node1"}
    assert ev.validate_core_event(core_event(involvedObject=node_ref,
                                             metadata={"name": "n.1", "namespace": "default"})) == []
    errs = ev.validate_core_event(core_event(involvedObject=node_ref))
    assert causes(errs) == [("involvedObject.namespace", "FieldValueInvalid",
                             'Invalid value: "": does not match event.namespace')]


def test_core_event_without_event_time_has_no_strict_rules() -> None:
    """No eventTime, an odd type, deprecated fields set: core/v1 takes it, for old clients."""
    assert ev.validate_core_event(core_event(type="Odd", reason="", message="x" * 5000)) == []


def test_core_event_time_requires_reporting_fields_under_core_names() -> None:
    errs = ev.validate_core_event(core_event(eventTime=STAMP, reason=""))
    assert causes(errs) == [
        ("reportingComponent", "FieldValueRequired", "Required value"),
        ("reportingComponent", "FieldValueInvalid", 'Invalid value: "": name part must be non-empty'),
        ("reportingComponent", "FieldValueInvalid", f'Invalid value: "": {QUALIFIED_REGEX_ERR}'),
        ("reportingInstance", "FieldValueRequired", "Required value"),
        ("action", "FieldValueRequired", "Required value"),
        ("reason", "FieldValueRequired", "Required value"),
    ]


def test_core_event_time_length_limits() -> None:
    errs = ev.validate_core_event(core_event(
        eventTime=STAMP, reportingComponent="kubelet", reportingInstance="i" * 129, action="a" * 129,
        reason="r" * 129, message="é" * 513))  # 1026 bytes, 513 characters: Go counts bytes
    assert causes(errs) == [
        ("reportingInstance", "FieldValueInvalid", 'Invalid value: "": can have at most 128 characters'),
        ("action", "FieldValueInvalid", 'Invalid value: "": can have at most 128 characters'),
        ("reason", "FieldValueInvalid", 'Invalid value: "": can have at most 128 characters'),
        ("message", "FieldValueInvalid", 'Invalid value: "": can have at most 1024 characters'),
    ]
    at_limit = core_event(eventTime=STAMP, reportingComponent="kubelet", reportingInstance="i" * 128,
                          action="a" * 128, reason="r" * 128, message="m" * 1024)
    assert ev.validate_core_event(at_limit) == []


def test_core_event_time_reporting_component_must_be_qualified() -> None:
    errs = ev.validate_core_event(core_event(eventTime=STAMP, reportingComponent="bad name!",
                                             reportingInstance="i", action="a"))
    assert causes(errs) == [("reportingComponent", "FieldValueInvalid", f'Invalid value: "bad name!": {QUALIFIED_REGEX_ERR}')]


def test_core_event_time_empty_involved_namespace_in_kube_system_or_default_only() -> None:
    base = {"eventTime": STAMP, "reportingComponent": "kubelet", "reportingInstance": "i", "action": "a",
            "involvedObject": {"kind": "Node", "name": "n"}}
    for ns in ("default", "kube-system"):
        assert ev.validate_core_event(core_event(**base, metadata={"name": "e", "namespace": ns})) == []
    assert [e.field for e in ev.validate_core_event(core_event(**base))] == ["involvedObject.namespace"]
    # with an eventTime a set involved namespace is not compared with the Event's
    other = {**base, "involvedObject": {"kind": "Pod", "namespace": "elsewhere", "name": "p"}}
    assert ev.validate_core_event(core_event(**other)) == []


def test_core_update_checks_only_the_new_object() -> None:
    old = core_event()
    new = core_event(message="changed", count=7, reason="Other", type="Odd")
    assert ev.validate_core_event_update(new, old) == []
    bad = core_event(involvedObject={"kind": "Pod", "namespace": "x", "name": "p"})
    assert [e.field for e in ev.validate_core_event_update(bad, old)] == ["involvedObject.namespace"]


# --- events.k8s.io/v1 creates ---------------------------------------------------------------------

def test_v1_event_as_scheduler_writes_it_passes() -> None:
    assert ev.validate_events_v1_event(v1_event()) == []
    series = {"count": 2, "lastObservedTime": STAMP}
    assert ev.validate_events_v1_event(v1_event(series=series)) == []


def test_v1_missing_event_time_and_type() -> None:
    """Without eventTime the legacy branch is the namespace one: no reporting checks."""
    errs = ev.validate_events_v1_event(v1_event(eventTime=None, type=None, reportingController=None))
    assert causes(errs) == [
        ("eventTime", "FieldValueRequired", "Required value"),
        ("type", "FieldValueInvalid", 'Invalid value: "": has invalid value: '),
    ]


def test_v1_reporting_controller_path_and_other_internal_paths() -> None:
    errs = ev.validate_events_v1_event(v1_event(reportingController="", reportingInstance="", action="",
                                                reason="", note="n" * 1025, type="Info", regarding={}))
    assert causes(errs) == [
        ("involvedObject.namespace", "FieldValueInvalid", 'Invalid value: "": does not match event.namespace'),
        ("reportingController", "FieldValueRequired", "Required value"),
        ("reportingController", "FieldValueInvalid", 'Invalid value: "": name part must be non-empty'),
        ("reportingController", "FieldValueInvalid", f'Invalid value: "": {QUALIFIED_REGEX_ERR}'),
        ("reportingInstance", "FieldValueRequired", "Required value"),
        ("action", "FieldValueRequired", "Required value"),
        ("reason", "FieldValueRequired", "Required value"),
        ("message", "FieldValueInvalid", 'Invalid value: "": can have at most 1024 characters'),
        ("type", "FieldValueInvalid", 'Invalid value: "": has invalid value: Info'),
    ]


def test_v1_deprecated_fields_need_to_be_unset() -> None:
    errs = ev.validate_events_v1_event(v1_event(
        deprecatedFirstTimestamp="2026-11-27T10:00:00Z", deprecatedLastTimestamp="2026-11-27T10:00:00Z",
        deprecatedCount=3, deprecatedSource={"host": "node1"}))
    assert causes(errs) == [(f, "FieldValueInvalid", 'Invalid value: "": needs to be unset')
                            for f in ("firstTimestamp", "lastTimestamp", "count", "source")]


def test_v1_series_rules() -> None:
    errs = ev.validate_events_v1_event(v1_event(series={"count": 1}))
    assert causes(errs) == [("series.count", "FieldValueInvalid", 'Invalid value: "": should be at least 2'),
                            ("series.lastObservedTime", "FieldValueRequired", "Required value")]


def test_v1_name_must_be_a_dns_subdomain() -> None:
    errs = ev.validate_events_v1_event(v1_event(metadata={"name": "Pod_1", "namespace": "ns1"}))
    assert [(e.field, e.reason) for e in errs] == [("metadata.name", "FieldValueInvalid")]
    assert "a lowercase RFC 1123 subdomain" in errs[0].detail


# --- events.k8s.io/v1 updates ---------------------------------------------------------------------

def test_v1_update_of_mutable_parts_passes() -> None:
    old = v1_event()
    new = copy.deepcopy(old)
    new["metadata"]["labels"] = {"a": "b"}
    new["series"] = {"count": 2, "lastObservedTime": STAMP}
    new["eventTime"] = "2026-11-27T10:00:00.123456+00:00"  # the same instant, written otherwise
    assert ev.validate_events_v1_event_update(new, old) == []


def test_v1_update_validates_a_changed_series() -> None:
    old = v1_event(series={"count": 2, "lastObservedTime": STAMP})
    new = v1_event(series={"count": 1, "lastObservedTime": STAMP})
    assert causes(ev.validate_events_v1_event_update(new, old)) == [
        ("series.count", "FieldValueInvalid", 'Invalid value: "": should be at least 2')]


def test_v1_update_immutable_fields_in_kubes_order_and_rendering() -> None:
    old = v1_event()
    new = v1_event(
        regarding={"kind": "Pod", "namespace": "ns1", "name": "other", "uid": "u-1"}, reason="Moved", note="changed",
        deprecatedSource={"component": "me"}, deprecatedFirstTimestamp="2026-11-27T10:00:00Z",
        deprecatedLastTimestamp="2026-11-27T11:00:00.000000Z", deprecatedCount=2, type="Warning",
        eventTime="2026-11-27T10:00:01.5Z", action="Other", related={"kind": "Node", "name": "n"},
        reportingController="other-controller", reportingInstance="other-1")
    assert causes(ev.validate_events_v1_event_update(new, old)) == [
        ("involvedObject", "FieldValueInvalid",
         'Invalid value: core.ObjectReference{Kind:"Pod", Namespace:"ns1", Name:"other", UID:"u-1", APIVersion:"", '
         'ResourceVersion:"", FieldPath:""}: field is immutable'),
        ("reason", "FieldValueInvalid", 'Invalid value: "Moved": field is immutable'),
        ("message", "FieldValueInvalid", 'Invalid value: "changed": field is immutable'),
        ("source", "FieldValueInvalid", 'Invalid value: core.EventSource{Component:"me", Host:""}: field is immutable'),
        ("firstTimestamp", "FieldValueInvalid", "Invalid value: 2026-11-27 10:00:00 +0000 UTC: field is immutable"),
        ("lastTimestamp", "FieldValueInvalid", "Invalid value: 2026-11-27 11:00:00 +0000 UTC: field is immutable"),
        ("count", "FieldValueInvalid", "Invalid value: 2: field is immutable"),
        ("reason", "FieldValueInvalid", 'Invalid value: "Moved": field is immutable'),
        ("type", "FieldValueInvalid", 'Invalid value: "Warning": field is immutable'),
        ("eventTime", "FieldValueInvalid", "Invalid value: 2026-11-27 10:00:01.5 +0000 UTC: field is immutable"),
        ("action", "FieldValueInvalid", 'Invalid value: "Other": field is immutable'),
        ("related", "FieldValueInvalid",
         'Invalid value: core.ObjectReference{Kind:"Node", Namespace:"", Name:"n", UID:"", APIVersion:"", '
         'ResourceVersion:"", FieldPath:""}: field is immutable'),
        ("reportingController", "FieldValueInvalid", 'Invalid value: "other-controller": field is immutable'),
        ("reportingInstance", "FieldValueInvalid", 'Invalid value: "other-1": field is immutable'),
    ]


def test_v1_update_dropping_related_shows_null() -> None:
    old = v1_event(related={"kind": "Node", "name": "n"})
    errs = ev.validate_events_v1_event_update(v1_event(), old)
    assert causes(errs) == [("related", "FieldValueInvalid", "Invalid value: null: field is immutable")]


def test_invalid_message_lists_a_repeated_error_once_but_causes_keep_both() -> None:
    errs = ev.validate_events_v1_event_update(v1_event(reason="Moved"), v1_event())
    status = Invalid.from_errors("Event", "", "pod.1", errs)
    body = status.status()
    assert body["message"] == 'Event "pod.1" is invalid: reason: Invalid value: "Moved": field is immutable'
    assert [c["field"] for c in body["details"]["causes"]] == ["reason", "reason"]


# --- the strategies -------------------------------------------------------------------------------

def test_core_strategy_names_need_only_be_path_segments() -> None:
    core = strategy("")
    assert core.validate(core_event(metadata={"name": "Pod_Name.17ABC", "namespace": "ns1"})) == []
    errs = core.validate(core_event(metadata={"name": "a%b", "namespace": "ns1"}))
    assert causes(errs) == [("metadata.name", "FieldValueInvalid", "Invalid value: \"a%b\": may not contain '%'")]


def test_core_strategy_runs_metadata_check_only_after_event_rules_pass() -> None:
    core = strategy("")
    event = core_event(metadata={"name": "a%b", "namespace": "ns1"},
                       involvedObject={"kind": "Pod", "namespace": "x", "name": "p"})
    assert [e.field for e in core.validate(event)] == ["involvedObject.namespace"]


def test_events_strategy_validates_per_request_group() -> None:
    events = strategy("events.k8s.io")
    assert events.validate(v1_event()) == []
    assert [e.field for e in events.validate(v1_event(eventTime=None))] == ["eventTime"]
    old = v1_event()
    assert [e.field for e in events.validate_update(v1_event(note="x"), old)] == ["message"]
    # the same change through core/v1 is allowed
    core = strategy("")
    from pykube_server.registry.eventconv import to_core
    assert core.validate_update(to_core(v1_event(note="x")), to_core(old)) == []


@pytest.mark.parametrize("value,rendered", [
    ("2026-11-27T10:00:00Z", "2026-11-27 10:00:00 +0000 UTC"),
    ("2026-11-27T12:00:00.100000+02:00", "2026-11-27 10:00:00.1 +0000 UTC"),
    (None, "0001-01-01 00:00:00 +0000 UTC"),
])
def test_go_time_rendering(value: Any, rendered: str) -> None:
    assert ev.go_time(value) == rendered


def test_v1_update_tolerates_sub_microsecond_event_time_changes() -> None:
    """kube compares eventTime truncated to microseconds (clients that send nanoseconds)."""
    old = v1_event(eventTime="2026-11-27T10:00:00.123456Z")
    new = v1_event(eventTime="2026-11-27T10:00:00.123456789Z")
    assert ev.validate_events_v1_event_update(new, old) == []


def test_scheduler_truncates_failed_scheduling_notes_to_pass() -> None:
    """kube-scheduler's truncateMessage: 1024 bytes at most, ending in " ..." when cut."""
    from pykube_server.scheduler.scheduler import truncate_note

    long = "0/2000 nodes are available: " + "1 node(s) had untolerated taint. " * 60
    note = truncate_note(long)
    assert len(note.encode()) == 1024 and note.endswith(" ...") and long.startswith(note[:-4])
    assert truncate_note("short") == "short"
    assert ev.validate_events_v1_event(v1_event(note=long))[0].field == "message"
    assert ev.validate_events_v1_event(v1_event(note=note)) == []
