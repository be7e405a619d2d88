"""The scheduling queue: active (by priority), back-off, and the unschedulable pool.

* activeQ is a heap ordered as PrioritySort orders it: higher `spec.priority` first, then the
  time the pod entered the queue.
* A pod that failed goes to the unschedulable pool, remembering which plugins rejected it. A
  cluster event (node added or changed, assigned pod deleted, ...) moves the pods that a
  relevant plugin rejected back: to backoffQ while their back-off lasts, else to activeQ. A pod
  that failed while such an event happened during its own cycle goes straight to back-off,
  since the event may already have helped it.
* Back-off is 1 s doubling per attempt up to 10 s, counted from the last failure; a timer on
  the injected clock moves a pod to activeQ when it expires. Pods left in the unschedulable
  pool for 5 minutes are retried anyway.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pykube_server.api.types import Obj
from pykube_server.client.clock import REAL_CLOCK, Clock, Timer
from pykube_server.scheduler.framework import PodInfo, key_of

INITIAL_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 10.0
MAX_IN_UNSCHEDULABLE_SECONDS = 300.0
UNSCHEDULABLE_FLUSH_SECONDS = 30.0
ANY_PLUGIN = "*"


def priority_of(pod: Obj) -> int:
    return int((pod.get("spec") or {}).get("priority") or 0)


@dataclass
class QueuedPodInfo:
    info: PodInfo
    timestamp: float
    attempts: int = 0
    unschedulable_plugins: set[str] = field(default_factory=set)
    cycle: int = 0

    @property
    def pod(self) -> Obj:
        return self.info.pod

    @property
    def key(self) -> str:
        return self.info.key


class QueueClosed(Exception):
    pass


class SchedulingQueue:
    def __init__(self, *, clock: Clock = REAL_CLOCK, initial_backoff: float = INITIAL_BACKOFF_SECONDS,
                 max_backoff: float = MAX_BACKOFF_SECONDS) -> None:
        self._clock = clock
        self._initial = initial_backoff
        self._max = max_backoff
        self._active: list[tuple[int, float, int, str]] = []
        self._seq = itertools.count()
        self._pods: dict[str, QueuedPodInfo] = {}
        self._where: dict[str, str] = {}
        """key -> "active" | "backoff" | "unschedulable" | "inflight"."""
        self._unschedulable: dict[str, None] = {}
        """The keys in the unschedulable pool, in arrival order: cluster events scan only these
        (every bound pod is such an event, so scanning every queued pod was quadratic)."""
        self._timers: dict[str, Timer] = {}
        self._cycle = 0
        self._move_request_cycle = -1
        self._changed = asyncio.Event()
        self._closed = False

    # -- introspection (tests, metrics) ---------------------------------------------------
    def where(self, key: str) -> str:
        return self._where.get(key, "")

    def __len__(self) -> int:
        return len(self._pods)

    @property
    def scheduling_cycle(self) -> int:
        return self._cycle

    # -- adding and removing --------------------------------------------------------------
    def add(self, pod: Obj) -> None:
        """A new pending pod: straight to activeQ."""
        key = key_of(pod)
        if key in self._pods:
            self.update(pod)
            return
        self._pods[key] = QueuedPodInfo(PodInfo.of(pod), self._clock.now())
        self._to_active(key)

    def update(self, pod: Obj) -> None:
        """A pending pod changed: keep it where it is, except that a change may make an
        unschedulable pod schedulable, so it is retried (after its back-off)."""
        key = key_of(pod)
        queued = self._pods.get(key)
        if queued is None:
            self.add(pod)
            return
        changed = _scheduling_relevant(queued.pod) != _scheduling_relevant(pod)
        queued.info = PodInfo.of(pod)
        place = self._where.get(key)
        if place == "active":
            self._push_active(key)  # priority may have changed; stale heap entries are skipped
        elif place == "unschedulable" and changed:
            self._requeue(key)

    def delete(self, pod: Obj) -> None:
        key = key_of(pod)
        self._pods.pop(key, None)
        self._clear_place(key)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()

    def close(self) -> None:
        self._closed = True
        self._changed.set()

    # -- popping --------------------------------------------------------------------------
    async def pop(self) -> QueuedPodInfo:
        """The highest-priority active pod (waits for one); it is in flight until requeued or
        `done()`."""
        while True:
            while self._active:
                _, _, _, key = heapq.heappop(self._active)
                if self._where.get(key) == "active":
                    self._cycle += 1
                    queued = self._pods[key]
                    queued.attempts += 1
                    queued.cycle = self._cycle
                    self._set_place(key, "inflight")
                    return queued
            if self._closed:
                raise QueueClosed
            self._changed.clear()
            await self._changed.wait()

    def done(self, key: str) -> None:
        """The pod was scheduled (assumed) or is no longer wanted."""
        if self._where.get(key) == "inflight":
            self._pods.pop(key, None)
            self._clear_place(key)

    def add_unschedulable(self, queued: QueuedPodInfo, plugins: Iterable[str]) -> None:
        """After a failed attempt: the unschedulable pool, or back-off if a move request came
        in during the pod's cycle."""
        key = queued.key
        if self._where.get(key) != "inflight":
            return
        queued.timestamp = self._clock.now()
        queued.unschedulable_plugins = set(plugins)
        if self._move_request_cycle >= queued.cycle:
            self._to_backoff(key)
        else:
            self._set_place(key, "unschedulable")

    def add_backoff(self, queued: QueuedPodInfo) -> None:
        """After an error (not a rejection), e.g. a failed bind: retry after the back-off."""
        key = queued.key
        self._pods[key] = queued
        queued.timestamp = self._clock.now()
        self._to_backoff(key)

    # -- cluster events -------------------------------------------------------------------
    def move_all(self, plugins: Iterable[str] | None = None,
                 pod_filter: Callable[[QueuedPodInfo], bool] | None = None) -> int:
        """Retry unschedulable pods rejected by any of `plugins` (None: every pod)."""
        wanted = None if plugins is None else set(plugins)
        self._move_request_cycle = self._cycle
        moved = 0
        for key in list(self._unschedulable):
            queued = self._pods[key]
            rejected = queued.unschedulable_plugins
            if wanted is not None and rejected and not rejected & wanted:
                continue
            if pod_filter is not None and not pod_filter(queued):
                continue
            self._requeue(key)
            moved += 1
        return moved

    def flush_unschedulable_leftover(self) -> None:
        now = self._clock.now()
        for key in list(self._unschedulable):
            if now - self._pods[key].timestamp >= MAX_IN_UNSCHEDULABLE_SECONDS:
                self._requeue(key)

    async def run(self) -> None:
        """Retry long-unschedulable pods every 30 s, until cancelled."""
        while True:
            await self._clock.sleep(UNSCHEDULABLE_FLUSH_SECONDS)
            self.flush_unschedulable_leftover()

    # -- internals ------------------------------------------------------------------------
    def _set_place(self, key: str, place: str) -> None:
        self._where[key] = place
        if place == "unschedulable":
            self._unschedulable[key] = None
        else:
            self._unschedulable.pop(key, None)

    def _clear_place(self, key: str) -> None:
        self._where.pop(key, None)
        self._unschedulable.pop(key, None)

    def backoff_duration(self, attempts: int) -> float:
        duration = self._initial
        for _ in range(1, attempts):
            duration *= 2
            if duration >= self._max:
                return self._max
        return min(duration, self._max)

    def _backoff_remaining(self, key: str) -> float:
        queued = self._pods[key]
        return queued.timestamp + self.backoff_duration(queued.attempts) - self._clock.now()

    def _requeue(self, key: str) -> None:
        if self._backoff_remaining(key) > 0:
            self._to_backoff(key)
        else:
            self._to_active(key)

    def _to_backoff(self, key: str) -> None:
        self._set_place(key, "backoff")
        old = self._timers.pop(key, None)
        if old is not None:
            old.cancel()
        self._timers[key] = self._clock.call_later(max(self._backoff_remaining(key), 0.0),
                                                   lambda: self._backoff_expired(key))

    def _backoff_expired(self, key: str) -> None:
        self._timers.pop(key, None)
        if self._where.get(key) == "backoff":
            self._to_active(key)

    def _to_active(self, key: str) -> None:
        self._set_place(key, "active")
        self._push_active(key)

    def _push_active(self, key: str) -> None:
        queued = self._pods[key]
        heapq.heappush(self._active, (-priority_of(queued.pod), queued.timestamp, next(self._seq), key))
        self._changed.set()


def _scheduling_relevant(pod: Obj) -> tuple[object, ...]:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    return (meta.get("labels"), spec.get("nodeSelector"), spec.get("affinity"), spec.get("tolerations"),
            spec.get("containers"), spec.get("initContainers"), spec.get("topologySpreadConstraints"),
            spec.get("schedulingGates"), spec.get("priority"))
