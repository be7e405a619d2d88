"""Recording events.k8s.io/v1 Events, as client-go's `tools/events` broadcaster does.

kube-scheduler records through this API (kube-controller-manager and the kubelet still use the
core/v1 recorder, `client/events.py`, whose queue, writers and retries this one shares). Like
client-go's:

* an Event is named `<regarding name>.<hex unix nanoseconds>` in the regarding object's
  namespace (`default` for cluster-scoped objects) and carries `eventTime` (microseconds),
  `reportingController`, `reportingInstance` (`<controller>-<hostname>`), `action`, `reason`,
  `regarding`, `related` (when given), `note` and `type`; none of the deprecated core fields;
* events with the same action, reason, reporting controller, regarding and related object are
  one: a repeat within 6 minutes of the last one (client-go's series finish time) is not a new
  object but a `series` (`count`, `lastObservedTime`) merge-patched onto the first; the note
  is not part of that identity, so the first note stays (kube's FailedScheduling events do the
  same); if the Event is gone it is created again, with its series;
* no spam filter (client-go's events library has none).

Unlike client-go, every repeat patches the series at once instead of on a 30-minute heartbeat.
"""

from __future__ import annotations

import socket
from datetime import datetime, timezone
from typing import Any

from pykube_server.api.types import Obj
from pykube_server.client.events import EventRecorder, _Seen, object_reference, unix_nanos
from pykube_server.client.rest import Client, PatchType, Resource

EVENTS_V1 = Resource("events.k8s.io", "v1", "events")
SERIES_FINISH_SECONDS = 360.0
"""client-go's finishTime: a series not observed for 6 minutes is over."""


def micro_time(moment: datetime) -> str:
    """metav1.MicroTime: RFC 3339 in UTC with microseconds."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EventsV1Recorder(EventRecorder):
    """Writes events.k8s.io/v1 Events for one controller (`reportingController`)."""

    resource = EVENTS_V1
    patch_type = PatchType.MERGE

    def __init__(self, client: Client, *, controller: str, instance: str = "", **options: Any) -> None:
        """`instance` defaults to client-go's `<controller>-<hostname>`; `options` are the core
        recorder's (clock, writers, queue size)."""
        super().__init__(client, component=controller, host=instance or f"{controller}-{socket.gethostname()}",
                         **options)

    def make_event(self, obj: Obj, type: str, reason: str, message: str, *, field_path: str = "", action: str = "",
                   related: Obj | None = None) -> Obj:
        ref = object_reference(obj, field_path=field_path)
        now = self._clock.wall()
        event: Obj = {
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": f"{ref.get('name', '')}.{unix_nanos(now):x}",
                         "namespace": ref.get("namespace") or "default"},
            "eventTime": micro_time(now), "reportingController": self.component, "reportingInstance": self.host,
            "action": action, "reason": reason, "regarding": ref, "note": message, "type": type,
        }
        if related is not None:
            event["related"] = object_reference(related)
        return event

    def key_of(self, event: Obj) -> tuple[str, ...]:
        """client-go's eventKey: action, reason, reporting controller, regarding, related."""
        regarding, related = event["regarding"], event.get("related") or {}
        return (event.get("action", ""), event["reason"], event["reportingController"],
                *(regarding.get(f, "") for f in _REFERENCE_FIELDS), *(related.get(f, "") for f in _REFERENCE_FIELDS))

    def folded(self, waiting: Obj, later: Obj) -> Obj:
        return waiting

    def _allowed(self, event: Obj) -> bool:
        return True

    def _recent(self, key: tuple[str, ...]) -> _Seen | None:
        seen = self._seen.get(key)
        if seen is None or self._clock.now() - seen.last_seen > SERIES_FINISH_SECONDS:
            return None
        return seen

    async def record(self, event: Obj, *, occurrences: int = 1) -> Obj | None:
        key = self.key_of(event)
        seen = self._recent(key)
        observed = micro_time(self._clock.wall())
        if seen is None:
            count = occurrences
            if count > 1:
                event = {**event, "series": {"count": count, "lastObservedTime": observed}}
            written = await self._write_with_retries(event, patch=None)
        else:
            count = seen.count + occurrences
            series = {"count": count, "lastObservedTime": observed}
            event = {**event, "metadata": {**event["metadata"], "name": seen.name, "namespace": seen.namespace},
                     "eventTime": seen.first_timestamp, "series": series}
            written = await self._write_with_retries(event, patch={"series": series})
        if written is not None:
            meta = written.get("metadata") or {}
            self._remember(key, _Seen(meta.get("name", ""), meta.get("namespace", ""),
                                      written.get("eventTime") or event["eventTime"],
                                      int((written.get("series") or {}).get("count") or count), self._clock.now()))
        return written


_REFERENCE_FIELDS = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
