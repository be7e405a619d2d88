"""The `LimitRanger` admission plugin: a namespace's LimitRanges default and bound resources.

Mutating, on pod create: each container (and init container) without a limit or request for a
resource gets the `default` / `defaultRequest` of the namespace's `Container` limits, and the pod
is annotated `kubernetes.io/limit-ranger: LimitRanger plugin set: cpu, memory request for
container c; ...` saying what was set. Validating: `Container` min/max/maxLimitRequestRatio per
container, `Pod` ones on the pod's totals, `PersistentVolumeClaim` min/max on the claim's storage
request (create and update). Pod updates are not looked at: containers cannot change. Refusals
are 403s with kube 1.33's texts (`maximum cpu usage per Container is 1, but limit is 2`), several
joined as `[a, b]`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pykube_server.api.quantity import Quantity
from pykube_server.api.quota import parse_list, pod_resource_totals
from pykube_server.apiserver.admission import CREATE, UPDATE, Attributes
from pykube_server.apiserver.admission.priority import forbidden

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

Obj = dict[str, Any]
ANNOTATION = "kubernetes.io/limit-ranger"
MAX_MILLI_VALUE = (2**63 - 1) // 1000


def _values(req: Quantity | None, lim: Quantity | None, enforced: Quantity) -> tuple[int, int, int]:
    """`requestLimitEnforcedValues`: compare in milli-units unless that would overflow."""
    values = [q.int_value() if q is not None else 0 for q in (req, lim, enforced)]
    if all(v <= MAX_MILLI_VALUE for v in values):
        values = [q.milli_value() if q is not None else 0 for q in (req, lim, enforced)]
    return values[0], values[1], values[2]


def min_constraint(kind: str, name: str, enforced: Quantity, requests: dict[str, Quantity],
                   limits: dict[str, Quantity]) -> str:
    req, lim = requests.get(name), limits.get(name)
    observed_req, observed_lim, value = _values(req, lim, enforced)
    if req is None:
        return f"minimum {name} usage per {kind} is {enforced}.  No request is specified"
    if observed_req < value:
        return f"minimum {name} usage per {kind} is {enforced}, but request is {req}"
    if lim is not None and observed_lim < value:
        return f"minimum {name} usage per {kind} is {enforced}, but limit is {lim}"
    return ""


def max_constraint(kind: str, name: str, enforced: Quantity, requests: dict[str, Quantity],
                   limits: dict[str, Quantity]) -> str:
    req, lim = requests.get(name), limits.get(name)
    observed_req, observed_lim, value = _values(req, lim, enforced)
    if lim is None:
        return f"maximum {name} usage per {kind} is {enforced}.  No limit is specified"
    if observed_lim > value:
        return f"maximum {name} usage per {kind} is {enforced}, but limit is {lim}"
    if req is not None and observed_req > value:
        return f"maximum {name} usage per {kind} is {enforced}, but request is {req}"
    return ""


def max_request_constraint(kind: str, name: str, enforced: Quantity, requests: dict[str, Quantity]) -> str:
    """The max check for kinds whose limits mean nothing (claims)."""
    req = requests.get(name)
    observed_req, _, value = _values(req, None, enforced)
    if req is None:
        return f"maximum {name} usage per {kind} is {enforced}.  No request is specified"
    if observed_req > value:
        return f"maximum {name} usage per {kind} is {enforced}, but request is {req}"
    return ""


def ratio_constraint(kind: str, name: str, enforced: Quantity, requests: dict[str, Quantity],
                     limits: dict[str, Quantity]) -> str:
    req, lim = requests.get(name), limits.get(name)
    observed_req, observed_lim, _ = _values(req, lim, enforced)
    if req is None or observed_req == 0:
        return f"{name} max limit to request ratio per {kind} is {enforced}, but no request is specified or request is 0"
    if lim is None or observed_lim == 0:
        return f"{name} max limit to request ratio per {kind} is {enforced}, but no limit is specified or limit is 0"
    ratio = observed_lim / observed_req
    shown, allowed = ratio, float(enforced.int_value())
    if enforced.int_value() <= MAX_MILLI_VALUE:
        ratio, allowed = ratio * 1000, float(enforced.milli_value())
    if ratio > allowed:
        return f"{name} max limit to request ratio per {kind} is {enforced}, but provided ratio is {shown:f}"
    return ""


def _bounds(item: Obj, requests: dict[str, Quantity], limits: dict[str, Quantity], kind: str) -> list[str]:
    errs = [min_constraint(kind, k, v, requests, limits) for k, v in parse_list(item.get("min")).items()]
    errs += [max_constraint(kind, k, v, requests, limits) for k, v in parse_list(item.get("max")).items()]
    errs += [ratio_constraint(kind, k, v, requests, limits) for k, v in parse_list(item.get("maxLimitRequestRatio")).items()]
    return [e for e in errs if e]


def _resources(container: Obj, which: str) -> dict[str, Quantity]:
    return parse_list((container.get("resources") or {}).get(which))


def validate_pod(limit_range: Obj, pod: Obj) -> list[str]:
    errs: list[str] = []
    spec = pod.get("spec") or {}
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        if item.get("type") == "Container":
            for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
                errs += _bounds(item, _resources(container, "requests"), _resources(container, "limits"), "Container")
        elif item.get("type") == "Pod":
            errs += _bounds(item, pod_resource_totals(pod, "requests", overhead=False),
                            pod_resource_totals(pod, "limits", overhead=False), "Pod")
    return errs


def validate_claim(limit_range: Obj, claim: Obj) -> list[str]:
    errs: list[str] = []
    requests = parse_list(((claim.get("spec") or {}).get("resources") or {}).get("requests"))
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        if item.get("type") != "PersistentVolumeClaim":
            continue
        errs += [min_constraint("PersistentVolumeClaim", k, v, requests, {}) for k, v in parse_list(item.get("min")).items()]
        errs += [max_request_constraint("PersistentVolumeClaim", k, v, requests) for k, v in parse_list(item.get("max")).items()]
    return [e for e in errs if e]


def apply_defaults(limit_range: Obj, pod: Obj) -> None:
    """`PodMutateLimitFunc`: fill in missing limits and requests from the Container defaults and
    say so in the pod's annotation."""
    default_limits: Obj = {}
    default_requests: Obj = {}
    for item in (limit_range.get("spec") or {}).get("limits") or []:
        if item.get("type") == "Container":
            default_requests.update(item.get("defaultRequest") or {})
            default_limits.update(item.get("default") or {})
    if not default_limits and not default_requests:
        return
    notes: list[str] = []
    spec = pod.get("spec") or {}
    for key, prefix in (("containers", "container"), ("initContainers", "init container")):
        for container in spec.get(key) or []:
            resources = container.setdefault("resources", {})
            set_limits = _merge(resources, "limits", default_limits)
            set_requests = _merge(resources, "requests", default_requests)
            if set_requests:
                notes.append(f"{', '.join(sorted(set_requests))} request for {prefix} {container.get('name', '')}")
            if set_limits:
                notes.append(f"{', '.join(sorted(set_limits))} limit for {prefix} {container.get('name', '')}")
    if notes:
        pod.setdefault("metadata", {}).setdefault("annotations", {})[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)


def _merge(resources: Obj, which: str, defaults: Obj) -> list[str]:
    current = resources.get(which) or {}
    added = [name for name in defaults if name not in current]
    if added:
        resources[which] = {**current, **{name: defaults[name] for name in added}}
    return added


def aggregate(errs: list[str]) -> str:
    """utilerrors.NewAggregate's text: one message as is, several as `[a, b]`."""
    return errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]"


class LimitRanger:
    name = "LimitRanger"

    def __init__(self, server: APIServer) -> None:
        self.ranges = server.store_for("", "v1", "limitranges")

    async def _limit_ranges(self, namespace: str) -> list[Obj]:
        await self.ranges.cacher.wait_written(self.ranges.root)  # kube reads an informer here
        cache = self.ranges.cacher.resource(self.ranges.root)
        return [cached.decode() for cached in cache.under(f"{self.ranges.root}/{namespace}/")]

    def _handles(self, attributes: Attributes) -> bool:
        if attributes.subresource or attributes.obj is None or not attributes.namespace:
            return False
        if attributes.is_("", "pods"):
            return attributes.operation == CREATE
        return attributes.is_("", "persistentvolumeclaims") and attributes.operation in (CREATE, UPDATE)

    async def admit(self, attributes: Attributes) -> None:
        if not self._handles(attributes) or not attributes.is_("", "pods"):
            return
        for limit_range in await self._limit_ranges(attributes.namespace):
            apply_defaults(limit_range, attributes.obj or {})

    async def validate(self, attributes: Attributes) -> None:
        if not self._handles(attributes):
            return
        errs: list[str] = []
        for limit_range in await self._limit_ranges(attributes.namespace):
            if attributes.is_("", "pods"):
                errs += validate_pod(limit_range, attributes.obj or {})
            else:
                errs += validate_claim(limit_range, attributes.obj or {})
        if errs:
            raise forbidden(attributes, aggregate(errs))
