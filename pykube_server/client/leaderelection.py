"""Leader election on a `coordination.k8s.io/v1` Lease, as client-go's `leaderelection` does it.

Why copy client-go exactly: a pykube controller manager or scheduler may share a Lease with the
real one (`kube-system/kube-controller-manager`), so both must read and write the record the
same way. The algorithm (`try_acquire_or_renew`):

* no Lease yet: create it holding it ourselves;
* the record changed since we last looked: remember it and *our* clock's time of seeing it
  (holders' clocks are never compared, only how long the record stayed unchanged);
* someone else holds it and it was renewed within `lease_duration`: give up this round;
* otherwise write ourselves in (keeping acquireTime and leaseTransitions when renewing,
  incrementing leaseTransitions when taking over) with an update, which the server's
  resourceVersion check turns into a compare-and-swap.

`run()` tries every `retry_period` (jittered) until it acquires, calls `on_started_leading`
in a task, then renews every `retry_period`; if it cannot renew within `renew_deadline` it stops
leading: the leading task is cancelled, `on_stopped_leading` runs and `run()` returns (the
component should then exit, as kube-controller-manager does). With `release_on_cancel`, a
cancelled leader clears holderIdentity so a successor need not wait out the lease.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.clock import REAL_CLOCK, Clock
from pykube_server.client.rest import LEASES, Client, TransportError

log = logging.getLogger(__name__)

MICROTIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
JITTER_FACTOR = 1.2


def format_microtime(moment: datetime) -> str:
    """`2006-01-02T15:04:05.000000Z` (metav1.MicroTime in UTC)."""
    return moment.astimezone(timezone.utc).strftime(MICROTIME_FORMAT)


@dataclass(frozen=True)
class LeaderElectionConfig:
    namespace: str
    name: str
    identity: str
    """Unique per candidate; client-go uses `<hostname>_<uuid>`."""
    lease_duration: float = 15.0
    """Seconds a non-leader waits after the last observed change before taking over."""
    renew_deadline: float = 10.0
    """Seconds the leader keeps retrying a renewal before it gives up leading."""
    retry_period: float = 2.0
    """Seconds between attempts."""
    jitter_factor: float = JITTER_FACTOR
    """Attempts wait `retry_period * (1 + random * jitter_factor)` while not leading."""
    release_on_cancel: bool = True

    def __post_init__(self) -> None:
        if not self.identity:
            raise ValueError("leader election requires an identity")
        if self.lease_duration <= self.renew_deadline:
            raise ValueError("lease_duration must be greater than renew_deadline")
        if self.renew_deadline <= JITTER_FACTOR * self.retry_period:
            raise ValueError("renew_deadline must be greater than retry_period * 1.2")


@dataclass(frozen=True)
class LeaderElectionRecord:
    holder_identity: str
    lease_duration_seconds: int
    acquire_time: str
    renew_time: str
    lease_transitions: int

    def spec(self) -> Obj:
        return {"holderIdentity": self.holder_identity, "leaseDurationSeconds": self.lease_duration_seconds,
                "acquireTime": self.acquire_time, "renewTime": self.renew_time,
                "leaseTransitions": self.lease_transitions}

    @classmethod
    def from_spec(cls, spec: Obj) -> LeaderElectionRecord:
        return cls(spec.get("holderIdentity") or "", int(spec.get("leaseDurationSeconds") or 0),
                   spec.get("acquireTime") or "", spec.get("renewTime") or "", int(spec.get("leaseTransitions") or 0))


class LeaderElector:
    """One candidate. `run()` returns when leadership is lost; cancel it to stop campaigning."""

    def __init__(self, client: Client, config: LeaderElectionConfig, *,
                 on_started_leading: Callable[[], Awaitable[None]],
                 on_stopped_leading: Callable[[], None] | None = None,
                 on_new_leader: Callable[[str], None] | None = None,
                 clock: Clock = REAL_CLOCK, rand: Callable[[], float] = random.random) -> None:
        self.config = config
        self._client = client
        self._clock = clock
        self._rand = rand
        self._on_started = on_started_leading
        self._on_stopped = on_stopped_leading
        self._on_new_leader = on_new_leader
        self._observed: LeaderElectionRecord | None = None
        self._observed_raw: Obj | None = None
        self._observed_time = 0.0
        self._lease: Obj | None = None
        self._reported_leader = ""
        self._ever_led = False

    @property
    def leader(self) -> str:
        """The holder we last observed ("" if none)."""
        return self._observed.holder_identity if self._observed else ""

    def is_leader(self) -> bool:
        return self.leader == self.config.identity

    async def run(self) -> None:
        try:
            await self._acquire()
            async with asyncio.TaskGroup() as tg:
                leading = tg.create_task(self._on_started())
                await self._renew()
                leading.cancel()
        except asyncio.CancelledError:
            if self.config.release_on_cancel and self.is_leader():
                await asyncio.shield(self._release())
            raise
        finally:
            if self._on_stopped is not None and self._ever_led:
                self._on_stopped()

    async def _acquire(self) -> None:
        while not await self.try_acquire_or_renew():
            period = self.config.retry_period * (1 + self._rand() * self.config.jitter_factor)
            await self._clock.sleep(period)
        self._ever_led = True
        log.info("%s: acquired lease %s/%s", self.config.identity, self.config.namespace, self.config.name)

    async def _renew(self) -> None:
        """Renew every retry_period until a renewal fails for renew_deadline."""
        while True:
            deadline = self._clock.now() + self.config.renew_deadline
            while not await self.try_acquire_or_renew():
                if self._clock.now() + self.config.retry_period > deadline:
                    log.info("%s: failed to renew lease %s/%s", self.config.identity,
                             self.config.namespace, self.config.name)
                    return
                await self._clock.sleep(self.config.retry_period)
            await self._clock.sleep(self.config.retry_period)

    async def try_acquire_or_renew(self) -> bool:
        """One attempt; True when we hold the lease afterwards. Never raises API errors."""
        now_wall = format_microtime(self._clock.wall())
        desired = LeaderElectionRecord(self.config.identity, int(self.config.lease_duration), now_wall, now_wall, 0)
        try:
            lease = await self._client.get(LEASES, self.config.name, namespace=self.config.namespace)
        except errors.NotFound:
            return await self._create(desired)
        except (errors.StatusError, TransportError) as exc:
            log.warning("error retrieving lease %s/%s: %s", self.config.namespace, self.config.name, exc)
            return False
        self._observe(lease)
        assert self._observed is not None
        if self._held_by_other():
            return False
        if self.is_leader():
            desired = replace(desired, acquire_time=self._observed.acquire_time,
                            lease_transitions=self._observed.lease_transitions)
        else:
            desired = replace(desired, lease_transitions=self._observed.lease_transitions + 1)
        return await self._update(lease, desired)

    def _observe(self, lease: Obj) -> None:
        spec = lease.get("spec") or {}
        if spec != self._observed_raw:
            self._observed_raw = spec
            self._observed = LeaderElectionRecord.from_spec(spec)
            self._observed_time = self._clock.now()
            self._report_leader()
        self._lease = lease

    def _held_by_other(self) -> bool:
        assert self._observed is not None
        valid_until = self._observed_time + self._observed.lease_duration_seconds
        return bool(self._observed.holder_identity) and valid_until > self._clock.now() and not self.is_leader()

    async def _create(self, record: LeaderElectionRecord) -> bool:
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.config.name, "namespace": self.config.namespace}, "spec": record.spec()}
        try:
            lease = await self._client.create(LEASES, body, namespace=self.config.namespace)
        except (errors.StatusError, TransportError) as exc:
            log.warning("error initially creating lease %s/%s: %s", self.config.namespace, self.config.name, exc)
            return False
        self._set_observed(lease, record)
        return True

    async def _update(self, lease: Obj, record: LeaderElectionRecord) -> bool:
        body = {**lease, "spec": {**(lease.get("spec") or {}), **record.spec()}}
        try:
            updated = await self._client.update(LEASES, body)
        except (errors.StatusError, TransportError) as exc:
            log.info("failed to update lease %s/%s: %s", self.config.namespace, self.config.name, exc)
            return False
        self._set_observed(updated, record)
        return True

    def _set_observed(self, lease: Obj, record: LeaderElectionRecord) -> None:
        self._lease = lease
        self._observed = record
        self._observed_raw = lease.get("spec") or {}
        self._observed_time = self._clock.now()
        self._report_leader()

    def _report_leader(self) -> None:
        holder = self.leader
        if holder and holder != self._reported_leader:
            self._reported_leader = holder
            if self._on_new_leader is not None:
                self._on_new_leader(holder)

    async def _release(self) -> None:
        """Give the lease up: empty holder, leaseDurationSeconds 1, transitions kept."""
        if self._lease is None or self._observed is None:
            return
        now_wall = format_microtime(self._clock.wall())
        record = LeaderElectionRecord("", 1, now_wall, now_wall, self._observed.lease_transitions)
        if await self._update(self._lease, record):
            log.info("%s: released lease %s/%s", self.config.identity, self.config.namespace, self.config.name)
