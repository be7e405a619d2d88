"""Conversion between core/v1 Events and events.k8s.io/v1 Events.

kube-apiserver keeps one Event behind both group-versions: a scheduler's events.k8s.io Event
(`note`, `reportingController`) is what `kubectl get events` lists through core/v1 (`message`,
`reportingComponent`), and a kubelet's core Event is readable as events.k8s.io. The fields map
one to one (kube's pkg/apis/events/v1 conversion):

| events.k8s.io/v1 | core/v1 |
|---|---|
| note | message |
| regarding | involvedObject |
| reportingController | reportingComponent |
| deprecatedSource | source |
| deprecatedFirstTimestamp / deprecatedLastTimestamp / deprecatedCount | firstTimestamp / lastTimestamp / count |
| eventTime, series, action, reason, type, related, reportingInstance, metadata | the same |

Each side is then shaped as Go's encoding of its struct shows it: a zero time is `null`, an
empty struct `{}`, an `omitempty` string or count is left out (core's `reportingComponent` and
`reportingInstance` have no omitempty and are always there).

These functions are pure and total over both shapes; `registry/sharedstorage.py` runs them on
every object the events.k8s.io API writes to or reads from the shared core storage.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

_RENAMED = (
    ("note", "message"),
    ("regarding", "involvedObject"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
)
_SAME = ("metadata", "eventTime", "series", "action", "reason", "type", "related", "reportingInstance")
_CORE_ALWAYS: Obj = {"involvedObject": {}, "source": {}, "firstTimestamp": None, "lastTimestamp": None,
                     "eventTime": None, "reportingComponent": "", "reportingInstance": ""}
_CORE_OMITTED = ("reason", "message", "type", "action", "count")
_EVENTS_ALWAYS: Obj = {"eventTime": None, "regarding": {}, "deprecatedSource": {}, "deprecatedFirstTimestamp": None,
                       "deprecatedLastTimestamp": None}
_EVENTS_OMITTED = ("reportingController", "reportingInstance", "action", "reason", "note", "type", "deprecatedCount")


def _shaped(out: Obj, always: Obj, omitted: tuple[str, ...]) -> Obj:
    for name, zero in always.items():
        if out.get(name) is None and zero is not None:
            out[name] = type(zero)()
        else:
            out.setdefault(name, zero)
    for name in omitted:
        if name in out and out[name] in ("", 0, None):
            del out[name]
    for name in ("series", "related"):
        if name in out and out[name] is None:
            del out[name]
    return out


def to_core(event: Obj) -> Obj:
    """An events.k8s.io/v1 Event as core/v1 stores and serves it."""
    out: Obj = {"kind": "Event", "apiVersion": "v1"}
    for name in _SAME:
        if name in event:
            out[name] = event[name]
    for new, old in _RENAMED:
        if new in event:
            out[old] = event[new]
    return _shaped(out, _CORE_ALWAYS, _CORE_OMITTED)


def to_events_v1(event: Obj) -> Obj:
    """A core/v1 Event as events.k8s.io/v1 serves it."""
    out: Obj = {"kind": "Event", "apiVersion": "events.k8s.io/v1"}
    for name in _SAME:
        if name in event:
            out[name] = event[name]
    for new, old in _RENAMED:
        if old in event:
            out[new] = event[old]
    return _shaped(out, _EVENTS_ALWAYS, _EVENTS_OMITTED)
