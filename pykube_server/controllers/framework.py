"""The controller runner: informers feed keys into a work queue, workers reconcile keys.

Level-triggered, as client-go and controller-runtime controllers are: event handlers only map
an event to a `Request` (namespace/name) and enqueue it; `reconcile` re-reads the current state
from the informer caches and drives the world towards it. Raising re-queues the key with
per-item exponential back-off; `TerminalError` drops it; `Result.requeue_after` re-checks later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from pykube_server.api.types import Obj
from pykube_server.client.clock import REAL_CLOCK, Clock
from pykube_server.client.events import EventRecorder
from pykube_server.client.informer import FuncHandler, Informer, InformerFactory
from pykube_server.client.ratelimit import default_controller_rate_limiter
from pykube_server.client.rest import Client, Resource
from pykube_server.client.workqueue import QueueShutDown, WorkQueue

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, order=True)
class Request:
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: Obj) -> Request:
        meta = obj.get("metadata") or {}
        return cls(meta.get("namespace", ""), meta.get("name", ""))

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True)
class Result:
    requeue_after: float | None = None
    """Seconds until the key is looked at again; None = wait for the next event."""


class TerminalError(Exception):
    """Reconcile failed and retrying cannot help; the key is not re-queued."""


class Reconciler(Protocol):
    async def reconcile(self, request: Request) -> Result:
        """Drive the object named by `request` towards its spec. Must be idempotent: read from
        listers, write through the client. Raising re-queues with back-off."""
        ...


@dataclass
class Context:
    """What every controller gets: the client, shared informers, an event recorder, a clock."""

    client: Client
    informers: InformerFactory
    recorder: EventRecorder
    clock: Clock = REAL_CLOCK
    options: dict[str, Any] = field(default_factory=dict)

    def informer(self, resource: Resource, **kwargs: Any) -> Informer:
        return self.informers.informer(resource, **kwargs)


Mapper = Callable[[Obj], Iterable[Request]]


def owner_requests(kind: str, *, controller_only: bool = True) -> Mapper:
    """Map an object to its owner of `kind` (e.g. Pods -> their ReplicaSet)."""

    def mapper(obj: Obj) -> Iterable[Request]:
        meta = obj.get("metadata") or {}
        for ref in meta.get("ownerReferences") or ():
            if ref.get("kind") == kind and (ref.get("controller") or not controller_only):
                yield Request(meta.get("namespace", ""), ref.get("name", ""))

    return mapper


class Controller:
    """Runs one reconciler with `workers` concurrent workers over a shared work queue."""

    def __init__(self, name: str, reconciler: Reconciler, *, workers: int = 2, clock: Clock = REAL_CLOCK) -> None:
        self.name = name
        self.reconciler = reconciler
        self.workers = workers
        self.queue: WorkQueue[Request] = WorkQueue(clock=clock, rate_limiter=default_controller_rate_limiter())
        self._informers: list[Informer] = []

    def watches(self, informer: Informer, mapper: Mapper | None = None) -> Controller:
        """Enqueue the requests `mapper` derives from every change (default: the object itself)."""
        to_requests = mapper or (lambda obj: (Request.of(obj),))

        def enqueue(obj: Obj) -> None:
            for request in to_requests(obj):
                self.queue.add(request)

        def changed(old: Obj, new: Obj) -> None:
            enqueue(old)
            enqueue(new)

        informer.add_handler(FuncHandler(add=enqueue, update=changed, delete=enqueue))
        self._informers.append(informer)
        return self

    async def run(self) -> None:
        for informer in self._informers:
            await informer.wait_synced()
        try:
            async with asyncio.TaskGroup() as tg:
                for i in range(self.workers):
                    tg.create_task(self._worker(), name=f"{self.name}-worker-{i}")
        finally:
            self.queue.shutdown()

    async def _worker(self) -> None:
        while True:
            try:
                request = await self.queue.get()
            except QueueShutDown:
                return
            try:
                await self._process(request)
            finally:
                self.queue.done(request)

    async def _process(self, request: Request) -> None:
        try:
            result = await self.reconciler.reconcile(request)
        except asyncio.CancelledError:
            raise
        except TerminalError:
            log.exception("%s: reconcile %s failed permanently", self.name, request)
            self.queue.forget(request)
        except Exception:
            log.warning("%s: reconcile %s failed; retrying", self.name, request, exc_info=log.isEnabledFor(logging.DEBUG))
            self.queue.add_rate_limited(request)
        else:
            self.queue.forget(request)
            if result.requeue_after is not None:
                self.queue.add_after(request, result.requeue_after)
