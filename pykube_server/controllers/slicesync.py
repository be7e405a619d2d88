"""Turning desired endpoints into EndpointSlice writes, for the two slice controllers.

Both the endpointslice controller (Services with selectors) and the mirroring controller
(selector-less Services with hand-written Endpoints) end in the same step: endpoints grouped
by their port list must be spread over slices of at most `max_per_slice` endpoints, changing
as few existing slices as possible. `plan` keeps every endpoint that is still wanted in the
slice that already holds it, fills free room in existing slices before creating new ones,
and deletes slices left empty (the way kube's reconciler limits churn).

The informer cache lags behind our own writes, so `SliceSyncer` remembers what it wrote per
Service (names with resourceVersions, or deletions) and reports `settled()` False until the
cache shows them; reconciling against an older view would create duplicate slices. An
expectation older than EXPECTATION_SECONDS is dropped (the write was lost or overwritten).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import orjson

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.cache import Lister
from pykube_server.client.clock import Clock
from pykube_server.client.rest import ENDPOINTSLICES, Client

MAX_ENDPOINTS_PER_SLICE = 100
"""kube-controller-manager's --max-endpoints-per-slice default."""
EXPECTATION_SECONDS = 10.0
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"


def port_key(ports: list[Obj] | None) -> bytes:
    return orjson.dumps(ports or [], option=orjson.OPT_SORT_KEYS)


def endpoint_key(endpoint: Obj) -> str:
    addresses = endpoint.get("addresses") or []
    return str(addresses[0]) if addresses else ""


@dataclass
class Plan:
    creates: list[tuple[list[Obj], list[Obj]]] = field(default_factory=list)
    """(ports, endpoints) of each slice to create."""
    updates: list[tuple[Obj, list[Obj], list[Obj]]] = field(default_factory=list)
    """(existing slice, ports, endpoints) whose endpoints change."""
    deletes: list[Obj] = field(default_factory=list)
    keeps: list[Obj] = field(default_factory=list)


def plan(existing: list[Obj], groups: dict[bytes, tuple[list[Obj], list[Obj]]], *,
         max_per_slice: int = MAX_ENDPOINTS_PER_SLICE, placeholder: bool = True) -> Plan:
    """Slices for `groups` (port key -> (ports, endpoints)) given the `existing` slices."""
    result = Plan()
    by_key: dict[bytes, list[Obj]] = {}
    for slice_ in sorted(existing, key=lambda s: s["metadata"]["name"]):
        by_key.setdefault(port_key(slice_.get("ports")), []).append(slice_)
    for key, (ports, endpoints) in groups.items():
        _plan_group(result, by_key.pop(key, []), ports, endpoints, max_per_slice)
    for leftovers in by_key.values():
        result.deletes.extend(leftovers)
    if placeholder and not result.creates and not result.updates and not result.keeps:
        empty = [s for s in result.deletes if not s.get("endpoints") and not s.get("ports")]
        if empty:
            result.deletes.remove(empty[0])
            result.keeps.append(empty[0])
        else:
            result.creates.append(([], []))
    return result


def _plan_group(result: Plan, slices: list[Obj], ports: list[Obj], endpoints: list[Obj], max_per_slice: int) -> None:
    wanted = {endpoint_key(e): e for e in endpoints}
    placed: set[str] = set()
    contents: list[list[Obj]] = []
    for slice_ in slices:
        kept = []
        for endpoint in slice_.get("endpoints") or []:
            key = endpoint_key(endpoint)
            if key in wanted and key not in placed and len(kept) < max_per_slice:
                kept.append(wanted[key])
                placed.add(key)
        contents.append(kept)
    remaining = [e for e in endpoints if endpoint_key(e) not in placed]
    for slice_, kept in zip(slices, contents):
        room = max_per_slice - len(kept)
        if room > 0 and remaining:
            kept.extend(remaining[:room])
            remaining = remaining[room:]
        if not kept:
            result.deletes.append(slice_)
        elif kept == (slice_.get("endpoints") or []) and (slice_.get("ports") or []) == ports:
            result.keeps.append(slice_)
        else:
            result.updates.append((slice_, ports, kept))
    for i in range(0, len(remaining), max_per_slice):
        result.creates.append((ports, remaining[i:i + max_per_slice]))


class SliceSyncer:
    """Applies plans through the API and tracks our writes until the cache shows them."""

    def __init__(self, client: Client, slices: Lister, clock: Clock) -> None:
        self.client = client
        self.slices = slices
        self.clock = clock
        self._expected: dict[tuple[str, str], dict[str, tuple[int | None, float]]] = {}

    def trigger_time(self) -> str:
        return self.clock.wall().strftime("%Y-%m-%dT%H:%M:%SZ")

    def settled(self, namespace: str, service: str) -> bool:
        pending = self._expected.get((namespace, service))
        if not pending:
            return True
        now = time.monotonic()
        for name, (rv, since) in list(pending.items()):
            current = self.slices.get(name, namespace=namespace)
            seen = current is None if rv is None else (current is not None and _rv(current) >= rv)
            if seen or now - since > EXPECTATION_SECONDS:
                del pending[name]
        if not pending:
            del self._expected[(namespace, service)]
        return not pending

    def _expect(self, namespace: str, service: str, name: str, rv: int | None) -> None:
        self._expected.setdefault((namespace, service), {})[name] = (rv, time.monotonic())

    async def apply(self, namespace: str, service: str, the_plan: Plan, *, template: Obj) -> None:
        """Write `the_plan`; `template` is the slice body without ports and endpoints (its
        metadata holds generateName, labels, annotations and ownerReferences)."""
        for slice_ in the_plan.keeps:
            if _meta_differs(slice_, template):
                await self._update(namespace, service, slice_, slice_.get("ports"), slice_.get("endpoints"), template)
        for slice_, ports, endpoints in the_plan.updates:
            await self._update(namespace, service, slice_, ports, endpoints, template)
        for ports, endpoints in the_plan.creates:
            meta = dict(template["metadata"])
            meta["annotations"] = _stamped(template, self.trigger_time())
            body = {**template, "metadata": meta, **_content(ports, endpoints)}
            created = await self.client.create(ENDPOINTSLICES, body, namespace=namespace)
            self._expect(namespace, service, created["metadata"]["name"], _rv(created))
        for slice_ in the_plan.deletes:
            name = slice_["metadata"]["name"]
            try:
                await self.client.delete(ENDPOINTSLICES, name, namespace=namespace,
                                         preconditions={"uid": slice_["metadata"]["uid"]})
            except errors.NotFound:
                pass
            self._expect(namespace, service, name, None)

    async def _update(self, namespace: str, service: str, slice_: Obj, ports: Any, endpoints: Any, template: Obj) -> None:
        meta = dict(slice_["metadata"])
        for field_name in ("labels", "ownerReferences"):
            if field_name in template["metadata"]:
                meta[field_name] = template["metadata"][field_name]
            else:
                meta.pop(field_name, None)
        meta["annotations"] = _stamped(template, self.trigger_time())
        body = {**slice_, **{k: v for k, v in template.items() if k != "metadata"}, "metadata": meta,
                **_content(ports or [], endpoints or [])}
        updated = await self.client.update(ENDPOINTSLICES, body)
        self._expect(namespace, service, meta["name"], _rv(updated))


def _content(ports: list[Obj], endpoints: list[Obj]) -> Obj:
    """An empty slice (the placeholder) has null ports and endpoints, as kube's does."""
    return {"endpoints": endpoints or None, "ports": ports or None}


def _stamped(template: Obj, when: str) -> dict[str, str]:
    return {**(template["metadata"].get("annotations") or {}), TRIGGER_TIME_ANNOTATION: when}


def _meta_differs(slice_: Obj, template: Obj) -> bool:
    meta, want = slice_.get("metadata") or {}, template["metadata"]
    have_annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != TRIGGER_TIME_ANNOTATION}
    return any((meta.get(f) or None) != (want.get(f) or None) for f in ("labels", "ownerReferences")) \
        or have_annotations != (want.get("annotations") or {}) or slice_.get("addressType") != template.get("addressType")


def _rv(obj: Obj) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0
