"""Event printers, for `events` (core/v1) and `events.events.k8s.io` (events.k8s.io/v1).

kube-apiserver serves both from one store and prints both with the core printer: LAST SEEN,
TYPE, REASON, OBJECT, MESSAGE (wide adds SUBOBJECT, SOURCE, FIRST SEEN, COUNT, NAME). An
events.k8s.io/v1 object reaches the printer in its own shape, so its cells first map the v1 field names
(`regarding`, `note`, `deprecated*`, `reportingController`) onto the core ones, as the
conversion between the two versions does.
"""

from __future__ import annotations

from collections.abc import Callable

from pykube_server.registry.printers.common import (
    NAME, Column, Obj, col, doc, get, since, timestamp, wide,
)


def from_events_v1(o: Obj) -> Obj:
    """An events.k8s.io/v1 Event with the core/v1 field names the printer reads."""
    return {
        "metadata": o.get("metadata") or {},
        "involvedObject": o.get("regarding") or {},
        "message": o.get("note", ""),
        "source": o.get("deprecatedSource") or {},
        "firstTimestamp": o.get("deprecatedFirstTimestamp"),
        "lastTimestamp": o.get("deprecatedLastTimestamp"),
        "count": o.get("deprecatedCount", 0),
        "eventTime": o.get("eventTime"),
        "series": o.get("series"),
        "type": o.get("type", ""),
        "reason": o.get("reason", ""),
        "reportingComponent": o.get("reportingController", ""),
        "reportingInstance": o.get("reportingInstance", ""),
    }


def first_seen(o: Obj, now: float) -> str:
    if timestamp(o.get("firstTimestamp")) is None:
        return since(o.get("eventTime"), now)
    return since(o.get("firstTimestamp"), now)


def last_seen(o: Obj, now: float) -> str:
    series = o.get("series")
    if isinstance(series, dict):
        return since(series.get("lastObservedTime"), now)
    if timestamp(o.get("lastTimestamp")) is None:
        return first_seen(o, now)
    return since(o.get("lastTimestamp"), now)


def event_count(o: Obj, now: float) -> int:
    series = o.get("series")
    if isinstance(series, dict):
        return int(series.get("count") or 0)
    return int(o.get("count") or 0) or 1  # singleton events of the new API carry no count


def event_object(o: Obj, now: float) -> str:
    involved = o.get("involvedObject") or {}
    kind = str(involved.get("kind", "")).lower()
    return f"{kind}/{involved['name']}" if involved.get("name") else kind


def event_source(o: Obj, now: float) -> str:
    component = get(o, "source", "component", default="") or o.get("reportingComponent", "")
    instance = get(o, "source", "host", default="") or o.get("reportingInstance", "")
    return f"{component}, {instance}" if instance else component


def _message(o: Obj, now: float) -> str:
    return str(o.get("message") or "").strip()


def _columns(adapt: Callable[[Obj], Obj]) -> tuple[Column, ...]:
    def on(cell: Callable[[Obj, float], object]) -> Callable[[Obj, float], object]:
        return lambda o, now: cell(adapt(o), now)

    core = "api.core.v1."
    return (
        col("Last Seen", on(last_seen), doc(core + "Event", "lastTimestamp")),
        col("Type", on(lambda o, now: o.get("type", "")), doc(core + "Event", "type")),
        col("Reason", on(lambda o, now: o.get("reason", "")), doc(core + "Event", "reason")),
        col("Object", on(event_object), doc(core + "Event", "involvedObject")),
        wide("Subobject", on(lambda o, now: get(o, "involvedObject", "fieldPath", default="")),
             doc(core + "ObjectReference", "fieldPath")),
        wide("Source", on(event_source), doc(core + "Event", "source")),
        col("Message", on(_message), doc(core + "Event", "message")),
        wide("First Seen", on(first_seen), doc(core + "Event", "firstTimestamp")),
        wide("Count", on(event_count), doc(core + "Event", "count")),
        Column("Name", "string", on(lambda o, now: get(o, "metadata", "name", default="")), NAME.description, 1, "name"),
    )


EVENT_COLUMNS = _columns(lambda o: o)
EVENTS_V1_COLUMNS = _columns(from_events_v1)
