"""Every live API server in the `kubernetes` Service's endpoints: kube's lease endpoint reconciler.

Several API servers share one store. Each one, every `interval` seconds:

* renews its **master lease**, the key `/registry/masterleases/<ip>` kube-apiserver writes
  (an Endpoints-shaped value naming the address). kube gives that key a 15 s etcd TTL; our
  backends have no TTLs, so a lease is live while it keeps changing: each server remembers, per
  lease key, when it first saw the key's current mod_revision (by its own monotonic clock, so
  clocks on different machines need not agree), and a lease not renewed for `ttl` seconds is
  dead and deleted (compare-and-swap on the revision seen, so a renewal that raced wins). A key
  seen for the first time is dated by the renew time written in it, so a lease left by a server
  that stopped long ago is dead at once instead of after one more TTL.
* rewrites the `default/kubernetes` Endpoints and EndpointSlice, when they differ, to list every
  live server's address (one subset, addresses sorted, the shared port). As upstream, an empty
  list is never written: the last server standing keeps its address there when it stops.
* renews its **identity Lease** `kube-system/apiserver-<hash>` (kube 1.26+: labels
  `apiserver.kubernetes.io/identity=kube-apiserver` and `kubernetes.io/hostname`, holder
  `<name>_<uuid>`, leaseDurationSeconds 3600) and, at start and then hourly, deletes identity
  Leases that expired (kube's identity lease garbage collector).

A server that stops cleanly deletes its master lease and reconciles once more without itself,
as kube-apiserver's RemoveEndpoints does, so the others need not wait for the TTL.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import ipaddress
import logging
import socket
import time
import uuid
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import orjson

from pykube_server.api import errors
from pykube_server.storage.backend import Conflict, KeyExists, KeyNotFound, StorageError

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

log = logging.getLogger(__name__)

Obj = dict[str, Any]
MASTER_LEASES_PREFIX = "/registry/masterleases/"
DEFAULT_TTL_SECONDS = 15.0
"""kube-apiserver's DefaultEndpointReconcilerTTL."""
DEFAULT_INTERVAL_SECONDS = 10.0
"""kube-apiserver's DefaultEndpointReconcilerInterval (also its identity lease renew period)."""
IDENTITY_LABEL = "apiserver.kubernetes.io/identity"
IDENTITY_VALUE = "kube-apiserver"
HOSTNAME_LABEL = "kubernetes.io/hostname"
IDENTITY_LEASE_DURATION_SECONDS = 3600
IDENTITY_LEASE_GC_SECONDS = 3600.0
RENEW_ANNOTATION = "pykube.io/renew-time"
"""Wall-clock renew time inside a master lease: only read for a lease seen for the first time."""
LEASES = ("coordination.k8s.io", "v1", "leases")


def microtime(moment: float | None = None) -> str:
    """metav1.MicroTime in UTC (`2006-01-02T15:04:05.000000Z`)."""
    when = datetime.fromtimestamp(time.time() if moment is None else moment, timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_microtime(text: str) -> float | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
    except (TypeError, ValueError):
        try:
            return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        except (TypeError, ValueError):
            return None


def apiserver_id(identity: str) -> str:
    """kube's APIServerID: `apiserver-` and the lower-case unpadded base32 of the first 16 bytes
    of the identity's (upstream: the hostname's) SHA-256."""
    digest = hashlib.sha256(identity.encode()).digest()[:16]
    return "apiserver-" + base64.b32encode(digest).decode("ascii").rstrip("=").lower()


def server_identity(hostname: str, address: str) -> str:
    """The hostname, as upstream; a server on a loopback address other than 127.0.0.1 (several
    servers on one machine, as the tests run them) adds its address so each keeps its own Lease."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return hostname
    if ip.is_loopback and address != "127.0.0.1":
        return f"{hostname}-{address}"
    return hostname


def master_lease_value(ip: str, now: float | None = None) -> bytes:
    """What kube stores under /masterleases/<ip> (an Endpoints naming the address) plus our
    renew time."""
    return orjson.dumps({
        "kind": "Endpoints", "apiVersion": "v1",
        "metadata": {"name": ip, "creationTimestamp": None,
                     "annotations": {RENEW_ANNOTATION: microtime(now)}},
        "subsets": [{"addresses": [{"ip": ip}]}],
    })


class EndpointReconciler:
    """One per API server; `start()` once (writes the lease and the endpoints), then `run()`."""

    def __init__(self, server: APIServer, ip: str, port: int, *, ttl: float = DEFAULT_TTL_SECONDS,
                 interval: float = DEFAULT_INTERVAL_SECONDS, hostname: str | None = None) -> None:
        self.server, self.ip, self.port = server, ip, port
        self.ttl, self.interval = ttl, interval
        self.hostname = hostname or socket.gethostname()
        self.lease_name = apiserver_id(server_identity(self.hostname, ip))
        self.holder = f"{self.lease_name}_{uuid.uuid4()}"
        self._seen: dict[str, tuple[int, float]] = {}
        """lease key -> (mod_revision, monotonic time that revision was first seen)."""
        self._last_gc = -IDENTITY_LEASE_GC_SECONDS

    @property
    def key(self) -> str:
        return MASTER_LEASES_PREFIX + self.ip

    # -- master leases -------------------------------------------------------------------

    async def renew_master_lease(self) -> None:
        backend = self.server.backend
        value = master_lease_value(self.ip)
        try:
            await backend.update(self.key, value, revision=0)
        except KeyNotFound:
            try:
                await backend.create(self.key, value)
            except KeyExists:
                await backend.update(self.key, value, revision=0)

    async def live_ips(self) -> list[str]:
        """Addresses whose master lease was renewed within the TTL; dead leases are deleted."""
        page = await self.server.backend.scan(MASTER_LEASES_PREFIX)
        now = time.monotonic()
        live: list[str] = []
        present = set()
        for kv in page.items:
            present.add(kv.key)
            seen = self._seen.get(kv.key)
            if seen is None or seen[0] != kv.mod_revision:
                seen = (kv.mod_revision, now - self._age_on_first_sight(kv.value) if seen is None else now)
                self._seen[kv.key] = seen
            ip = kv.key[len(MASTER_LEASES_PREFIX):]
            if ip == self.ip or now - seen[1] < self.ttl:
                live.append(ip)
                continue
            log.info("API server %s stopped renewing its lease; removing it from the kubernetes endpoints", ip)
            with contextlib.suppress(KeyNotFound, Conflict):
                await self.server.backend.delete(kv.key, revision=kv.mod_revision)
        for gone in set(self._seen) - present:
            del self._seen[gone]
        return sorted(live, key=_ip_sort_key)

    def _age_on_first_sight(self, value: bytes) -> float:
        try:
            stamp = orjson.loads(value)["metadata"]["annotations"][RENEW_ANNOTATION]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return 0.0
        renewed = parse_microtime(stamp)
        return 0.0 if renewed is None else min(max(time.time() - renewed, 0.0), self.ttl)

    # -- the kubernetes Service's endpoints ----------------------------------------------

    async def reconcile(self) -> None:
        """Renew this server's lease and list every live server in the endpoints."""
        from pykube_server.apiserver.bootstrap_services import write_kubernetes_endpoints

        await self.renew_master_lease()
        await write_kubernetes_endpoints(self.server, await self.live_ips(), self.port)

    async def remove_self(self) -> None:
        """On a clean stop: drop this server's lease and list the others (never nobody)."""
        from pykube_server.apiserver.bootstrap_services import write_kubernetes_endpoints

        # The endpoints first: the watch cache stops with this server, and a write through the
        # registry waits for the cache to be fresh, which our own lease deletion would spoil.
        ips = [ip for ip in await self.live_ips() if ip != self.ip]
        if ips:
            await write_kubernetes_endpoints(self.server, ips, self.port)
        with contextlib.suppress(KeyNotFound):
            await self.server.backend.delete(self.key)

    # -- identity lease ------------------------------------------------------------------

    async def renew_identity_lease(self) -> None:
        store = self.server.store_for(*LEASES)
        labels = {IDENTITY_LABEL: IDENTITY_VALUE, HOSTNAME_LABEL: self.hostname}
        spec = {"holderIdentity": self.holder, "leaseDurationSeconds": IDENTITY_LEASE_DURATION_SECONDS,
                "renewTime": microtime()}

        async def renew(current: Obj | None) -> Obj:
            if current is None:
                raise store.not_found(self.lease_name)
            meta = current["metadata"]
            meta["labels"] = {**(meta.get("labels") or {}), **labels}
            current["spec"] = {**(current.get("spec") or {}), **spec}
            return current

        try:
            await store.update("kube-system", self.lease_name, renew)
        except errors.NotFound:
            lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                     "metadata": {"name": self.lease_name, "namespace": "kube-system", "labels": labels},
                     "spec": spec}
            with contextlib.suppress(errors.AlreadyExists):
                await store.create("kube-system", lease)

    async def collect_identity_leases(self) -> None:
        """Delete identity Leases whose holder stopped renewing more than their duration ago."""
        store = self.server.store_for(*LEASES)
        listed = await store.list("kube-system", label_selector=f"{IDENTITY_LABEL}={IDENTITY_VALUE}")
        now = time.time()
        for item in listed.items:
            spec = item.decode().get("spec") or {}
            renewed = parse_microtime(spec.get("renewTime") or "")
            duration = spec.get("leaseDurationSeconds") or IDENTITY_LEASE_DURATION_SECONDS
            if item.name == self.lease_name or renewed is None or renewed + duration > now:
                continue
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                await store.delete("kube-system", item.name,
                                   {"preconditions": {"resourceVersion": str(item.revision)}})

    # -- the loop ------------------------------------------------------------------------

    async def start(self) -> None:
        """The first round, before the server reports ready."""
        await self.reconcile()
        await self._identity_round()

    async def run(self) -> None:
        """Renew and reconcile every `interval` until cancelled; then remove this server."""
        try:
            while True:
                await asyncio.sleep(self.interval)
                try:
                    await self.reconcile()
                    await self._identity_round()
                except (StorageError, errors.StatusError, OSError) as exc:
                    log.warning("endpoint reconciler: %s", exc)
                except Exception:  # the loop must outlive one bad round (e.g. storage briefly away)
                    log.exception("endpoint reconciler round failed")
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2.0):
                    await self.remove_self()
            raise

    async def _identity_round(self) -> None:
        await self.renew_identity_lease()
        if time.monotonic() - self._last_gc >= IDENTITY_LEASE_GC_SECONDS:
            self._last_gc = time.monotonic()
            await self.collect_identity_leases()


def _ip_sort_key(ip: str) -> tuple[int, Any]:
    try:
        parsed = ipaddress.ip_address(ip)
        return (parsed.version, int(parsed))
    except ValueError:
        return (9, ip)
