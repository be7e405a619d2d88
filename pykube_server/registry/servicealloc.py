"""What the Service REST storage adds to the generic store: ClusterIPs and NodePorts.

kube-apiserver allocates in the Service registry around the store's write; here the Service
strategy calls `ServiceAllocator.allocate` once the object validated (its `canonicalize`
step), and a refusal is the same 422 (`spec.clusterIPs: Invalid value: ...: failed to allocate
IP ...`) or 500 (range full) as upstream.

In memory, releasing needs no hook: the allocator follows the watch cache (a watcher it drains
before every allocation, rebuilt from the cached objects if it ever overflows), so a Service
that is deleted, or whose type no longer needs its ClusterIP or NodePorts, frees them as soon
as the cache has the change, and a restart rebuilds every allocation from the stored Services.
The values are then claimed (and later freed) in storage by `serviceclaims.py`, which may swap
a value picked here that another API server took meanwhile (`picked` says which were picked).

The update helpers (`patch_allocated_values`, `drop_type_dependent_fields`) are the
registry's rules for a PUT that omits allocated values or changes the type.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import orjson

from pykube_server.api import errors
from pykube_server.api.fields import FieldError, forbidden, invalid
from pykube_server.registry.ipallocator import AllocationError, IPRange
from pykube_server.registry.kind_validation.common import go_string_slice, invalid_go
from pykube_server.registry.portallocator import PortRange
from pykube_server.storage.cacher import CachedObject, Cacher, Watcher

Obj = dict[str, Any]
AUTO_MEMORY = 4096
"""At most this many owners' `picked` values are remembered (dry runs leave theirs behind)."""
INVALID_IP = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def _spec(obj: Obj | None) -> Obj:
    spec = (obj or {}).get("spec")
    return spec if isinstance(spec, dict) else {}


def owner_of(obj: Obj) -> str:
    """`namespace/name`: who holds a Service's values in the allocators."""
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def needs_cluster_ip(obj: Obj) -> bool:
    return _spec(obj).get("type") != "ExternalName"


def needs_node_ports(obj: Obj) -> bool:
    return _spec(obj).get("type") in ("NodePort", "LoadBalancer")


def auto_node_ports(obj: Obj) -> bool:
    spec = _spec(obj)
    return spec.get("type") == "NodePort" or (
        spec.get("type") == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True) is not False)


def needs_health_check_port(obj: Obj) -> bool:
    spec = _spec(obj)
    return spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def held_ips(obj: Obj) -> list[str]:
    spec = _spec(obj)
    ips = [ip for ip in spec.get("clusterIPs") or [] if isinstance(ip, str)]
    if not ips and spec.get("clusterIP"):
        ips = [spec["clusterIP"]]
    return [ip for ip in ips if ip and ip != "None"]


def held_ports(obj: Obj) -> set[int]:
    spec = _spec(obj)
    ports = {p.get("nodePort") for p in spec.get("ports") or [] if isinstance(p, dict)}
    ports.add(spec.get("healthCheckNodePort"))
    return {p for p in ports if isinstance(p, int) and p > 0}


# -- update rules -----------------------------------------------------------------------------
def patch_allocated_values(new: Obj, old: Obj) -> None:
    """A PUT that omits allocated values keeps the old ones (kube's patchAllocatedValues and
    normalizeClusterIPs): old clients send only clusterIP, kubectl replace may send neither."""
    spec, prev = _spec(new), _spec(old)
    if needs_cluster_ip(old) and needs_cluster_ip(new):
        if not spec.get("clusterIP") and prev.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIP"] = prev["clusterIP"]
        if not spec.get("clusterIPs") and prev.get("clusterIPs") and spec.get("clusterIP") == prev.get("clusterIP"):
            spec["clusterIPs"] = list(prev["clusterIPs"])
        if spec.get("clusterIP") != prev.get("clusterIP") and spec.get("clusterIP") and \
                spec.get("clusterIPs") == prev.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]
    if needs_node_ports(old) and needs_node_ports(new):
        new_ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
        used = held_ports({"spec": {"ports": new_ports}})
        by_name = {p.get("name", ""): p.get("nodePort") for p in prev.get("ports") or [] if isinstance(p, dict)}
        for port in new_ports:
            old_port = by_name.get(port.get("name", ""))
            if not port.get("nodePort") and old_port and old_port not in used:
                port["nodePort"] = old_port
                used.add(old_port)
    if needs_health_check_port(old) and needs_health_check_port(new) and not spec.get("healthCheckNodePort"):
        if prev.get("healthCheckNodePort"):
            spec["healthCheckNodePort"] = prev["healthCheckNodePort"]


def drop_type_dependent_fields(new: Obj, old: Obj) -> None:
    """Wipe what the old type needed and the new one does not, when the client left it as it
    was (kube's dropTypeDependentFields)."""
    spec, prev = _spec(new), _spec(old)
    if not needs_cluster_ip(new) and spec.get("clusterIP") == prev.get("clusterIP") and \
            (spec.get("clusterIPs") or []) == (prev.get("clusterIPs") or []):
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
        if spec.get("ipFamilies") == prev.get("ipFamilies"):
            spec.pop("ipFamilies", None)
        if spec.get("ipFamilyPolicy") == prev.get("ipFamilyPolicy"):
            spec.pop("ipFamilyPolicy", None)
    new_ports = [p.get("nodePort") for p in spec.get("ports") or [] if isinstance(p, dict)]
    old_ports = [p.get("nodePort") for p in prev.get("ports") or [] if isinstance(p, dict)]
    if not needs_node_ports(new) and new_ports == old_ports:
        for port in spec.get("ports") or []:
            if isinstance(port, dict):
                port.pop("nodePort", None)
    if not needs_health_check_port(new) and spec.get("healthCheckNodePort") == prev.get("healthCheckNodePort"):
        spec.pop("healthCheckNodePort", None)
    if spec.get("type") != "LoadBalancer":
        spec.pop("allocateLoadBalancerNodePorts", None)
    externally = spec.get("type") in ("NodePort", "LoadBalancer") or bool(spec.get("externalIPs"))
    if not externally and spec.get("externalTrafficPolicy") == prev.get("externalTrafficPolicy"):
        spec.pop("externalTrafficPolicy", None)


# -- the allocator ----------------------------------------------------------------------------
class ServiceAllocator:
    """ClusterIPs and NodePorts of every Service, kept equal to the watch cache plus the
    reservations of writes in flight. Synchronous: the store calls it between awaits."""

    def __init__(self, ips: IPRange, ports: PortRange) -> None:
        self.ips = ips
        self.ports = ports
        self._cacher: Cacher | None = None
        self._root = ""
        self._watcher: Watcher | None = None
        self._auto: dict[str, tuple[set[str], set[int]]] = {}
        """Owner -> the ClusterIPs and NodePorts its last `allocate` picked itself (not asked
        for): the storage claim (`serviceclaims.py`) may swap those, never requested ones."""

    def follow(self, cacher: Cacher, root: str) -> None:
        """Track the Services under `root`; takes effect once the cache is ready."""
        self._cacher, self._root = cacher, root
        self.sync()

    def sync(self) -> None:
        """Apply every cache change since the last call (rebuild if the watcher overflowed)."""
        cacher = self._cacher
        if cacher is None or not cacher.ready:
            return
        if self._watcher is None or self._watcher.overflowed:
            if self._watcher is not None:
                cacher.stop_watch(self._root, self._watcher)
            self.ips.offsets.clear()
            self.ports.offsets.clear()
            self._watcher = cacher.watch(self._root, namespace="", matcher=lambda _: True, since=None)
        assert self._watcher is not None
        while batch := self._watcher.drain():
            for kind, cached in batch:
                self._observe(kind, cached)

    def _observe(self, kind: str, cached: CachedObject) -> None:
        owner = f"{cached.namespace}/{cached.name}"
        obj = {} if kind == "DELETED" else orjson.loads(cached.raw)
        self.ips.commit(owner, held_ips(obj))
        self.ports.commit(owner, held_ports(obj))

    # -- allocation ---------------------------------------------------------------------------
    def allocate(self, obj: Obj, old: Obj | None = None) -> None:
        """Fill in and reserve the Service's ClusterIP(s) and NodePorts. Raises Invalid (422)
        for a requested value that cannot be had, InternalError (500) when a range is full;
        nothing stays reserved by a call that raised."""
        self.sync()
        owner = owner_of(obj)
        taken: list[tuple[IPRange | PortRange, Any]] = []
        picked: tuple[set[str], set[int]] = (set(), set())
        try:
            self._allocate_ips(obj, owner, taken, picked[0])
            self._allocate_node_ports(obj, owner, taken, picked[1])
        except BaseException:
            for allocator, value in taken:
                allocator.release(value, owner)
            raise
        if len(self._auto) >= AUTO_MEMORY:  # dry runs never collect theirs
            self._auto.pop(next(iter(self._auto)))
        self._auto[owner] = picked

    def picked(self, owner: str) -> tuple[set[str], set[int]]:
        """What the last `allocate` for `owner` chose by itself (forgotten once asked)."""
        return self._auto.pop(owner, (set(), set()))

    def release(self, owner: str, ips: list[str], ports: set[int]) -> None:
        """Drop `owner`'s reservations (a write that failed after `allocate`)."""
        for ip in ips:
            self.ips.release(ip, owner)
        for port in ports:
            self.ports.release(port, owner)

    def _invalid(self, obj: Obj, errs: list[FieldError]) -> errors.Invalid:
        return errors.Invalid.from_errors("Service", "", (obj.get("metadata") or {}).get("name", ""), errs)

    def _allocate_ips(self, obj: Obj, owner: str, taken: list[tuple[Any, Any]], picked: set[str]) -> None:
        spec = _spec(obj)
        if not needs_cluster_ip(obj):
            return
        ips = [ip for ip in spec.get("clusterIPs") or [] if isinstance(ip, str)]
        ip = spec.get("clusterIP") or (ips[0] if ips else "")
        if ip == "None":
            spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
            return
        if not ip:
            try:
                ip = self.ips.allocate_next(owner)
            except AllocationError as exc:
                raise _internal(f"failed to allocate a serviceIP: {exc}") from None
            taken.append((self.ips, ip))
            picked.add(ip)
            spec["clusterIP"], spec["clusterIPs"] = ip, [ip]
            return
        if not _valid_ip(ip):
            raise self._invalid(obj, [invalid("spec.clusterIPs[0]", ip, INVALID_IP)])
        spec["clusterIP"] = ip
        if not ips:
            spec["clusterIPs"] = ips = [ip]
        try:
            if self.ips.allocate(ip, owner):
                taken.append((self.ips, ip))
        except AllocationError as exc:
            raise self._invalid(obj, [invalid_go("spec.clusterIPs", go_string_slice(ips),
                                                 f"failed to allocate IP {ip}: {exc}")]) from None

    def _allocate_node_ports(self, obj: Obj, owner: str, taken: list[tuple[Any, Any]], picked: set[int]) -> None:
        spec = _spec(obj)
        ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
        if not needs_node_ports(obj):
            bad = [forbidden(f"spec.ports[{i}].nodePort", f"may not be used when `type` is '{spec.get('type')}'")
                   for i, p in enumerate(ports) if p.get("nodePort")]
            if bad:
                raise self._invalid(obj, bad)
            return
        mine: set[int] = set()
        for i, port in enumerate(ports):
            requested = port.get("nodePort")
            if requested:
                if requested not in mine:
                    self._take_port(obj, owner, requested, f"spec.ports[{i}].nodePort", taken)
                    mine.add(requested)
        for port in ports:
            if not port.get("nodePort") and auto_node_ports(obj):
                port["nodePort"] = self._next_port(owner, taken)
                mine.add(port["nodePort"])
                picked.add(port["nodePort"])
        if needs_health_check_port(obj):
            requested = spec.get("healthCheckNodePort")
            if requested:
                self._take_port(obj, owner, requested, "spec.healthCheckNodePort", taken)
            else:
                spec["healthCheckNodePort"] = self._next_port(owner, taken)
                picked.add(spec["healthCheckNodePort"])

    def _take_port(self, obj: Obj, owner: str, port: int, path: str, taken: list[tuple[Any, Any]]) -> None:
        try:
            if self.ports.allocate(port, owner):
                taken.append((self.ports, port))
        except AllocationError as exc:
            raise self._invalid(obj, [invalid(path, port, str(exc))]) from None

    def _next_port(self, owner: str, taken: list[tuple[Any, Any]]) -> int:
        try:
            port = self.ports.allocate_next(owner)
        except AllocationError as exc:
            raise _internal(f"failed to allocate a nodePort: {exc}") from None
        taken.append((self.ports, port))
        return port


def _valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _internal(message: str) -> errors.InternalError:
    return errors.InternalError(f"Internal error occurred: {message}", details={"causes": [{"message": message}]})
