"""Quota accounting: what an object costs a ResourceQuota, and resource-list arithmetic.

Shared by the `ResourceQuota` admission plugin (which charges a new object's cost into the
quota's status.used) and the `resourcequota` controller (which recomputes status.used from every
object in the namespace), so both count exactly alike, as kube's quota evaluators make them.
Facts kept here (kube 1.33, pkg/quota/v1/evaluator/core): a pod always counts for
`count/pods`, but for `pods` and compute resources only while it is not Succeeded/Failed and
not past its deletion grace period; a pod's request is the larger of the sum over its containers
and each init container (plus overhead); scopes Terminating/NotTerminating (activeDeadlineSeconds),
BestEffort/NotBestEffort (QoS), PriorityClass (scopeSelector on spec.priorityClassName) and
CrossNamespacePodAffinity apply to pods only; a quota with scopes matches no other kind. Usage
sums take the format of the first non-zero term, so memory stays `128Mi` and cpu `500m`.
Pure, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from typing import Any

from pykube_server.api.quantity import Quantity, QuantityError, parse_quantity

Obj = dict[str, Any]
ResourceList = dict[str, Quantity]

ZERO = Quantity(Fraction(0), "DecimalSI")
ONE = Quantity(Fraction(1), "DecimalSI")

# The legacy object-count names some kinds answer to besides `count/<resource>`.
LEGACY_COUNT_NAMES = {
    ("", "pods"): "pods", ("", "services"): "services", ("", "configmaps"): "configmaps",
    ("", "secrets"): "secrets", ("", "persistentvolumeclaims"): "persistentvolumeclaims",
    ("", "replicationcontrollers"): "replicationcontrollers", ("", "resourcequotas"): "resourcequotas",
}
POD_RESOURCES = frozenset({
    "count/pods", "pods", "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory",
    "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage",
})
SERVICE_RESOURCES = frozenset({"count/services", "services", "services.nodeports", "services.loadbalancers"})
PVC_RESOURCES = frozenset({"count/persistentvolumeclaims", "persistentvolumeclaims", "requests.storage"})
STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
# Resources whose presence in a quota makes every container state them (a historical quirk kube keeps).
CONTAINER_CONSTRAINED = frozenset({"cpu", "memory", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"})
POD_SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass",
              "CrossNamespacePodAffinity")


# --- resource lists -----------------------------------------------------------------------------

def parse_list(wire: Mapping[str, Any] | None) -> ResourceList:
    """A wire `ResourceList` ({"cpu": "500m"}) as quantities; unparsable entries are skipped."""
    out: ResourceList = {}
    for name, text in (wire or {}).items():
        try:
            out[name] = parse_quantity(text)
        except (QuantityError, TypeError):
            continue
    return out


def to_wire(resources: Mapping[str, Quantity]) -> dict[str, str]:
    return {name: str(q) for name, q in sorted(resources.items())}


def add_quantity(a: Quantity, b: Quantity) -> Quantity:
    """`Quantity.Add`: a zero takes the other's format, so `0 + 128Mi` prints as `128Mi`."""
    fmt = b.format if a.value == 0 else a.format
    return Quantity(a.value + b.value, fmt)


def add(a: Mapping[str, Quantity], b: Mapping[str, Quantity]) -> ResourceList:
    out = dict(a)
    for name, q in b.items():
        out[name] = add_quantity(out[name], q) if name in out else q
    return out


def subtract(a: Mapping[str, Quantity], b: Mapping[str, Quantity]) -> ResourceList:
    out = dict(a)
    for name, q in b.items():
        base = out.get(name, ZERO)
        out[name] = Quantity(base.value - q.value, base.format if base.value else q.format)
    return out


def mask(resources: Mapping[str, Quantity], names: Iterable[str]) -> ResourceList:
    keep = set(names)
    return {name: q for name, q in resources.items() if name in keep}


def exceeded(used: Mapping[str, Quantity], hard: Mapping[str, Quantity]) -> list[str]:
    """The names in `used` above their `hard` value (`quota.LessThanOrEqual`'s second answer)."""
    return sorted(name for name, q in used.items() if name in hard and q.value > hard[name].value)


def is_zero(resources: Mapping[str, Quantity]) -> bool:
    return all(q.value == 0 for q in resources.values())


def pretty(resources: Mapping[str, Quantity]) -> str:
    """`k=v,k=v` sorted by name, the form of quota error messages."""
    return ",".join(f"{name}={resources[name]}" for name in sorted(resources))


# --- what a kind tracks -------------------------------------------------------------------------

def count_name(group: str, plural: str) -> str:
    return f"count/{plural}.{group}" if group else f"count/{plural}"


def _is_extended_request(name: str) -> bool:
    return name.startswith("requests.") and "/" in name and not name.startswith("requests.kubernetes.io/")


def matching_resources(group: str, plural: str, names: Iterable[str]) -> list[str]:
    """The quota resources (of `names`) that objects of group/plural are charged for."""
    out = []
    for name in names:
        if name == count_name(group, plural) or name == LEGACY_COUNT_NAMES.get((group, plural)):
            out.append(name)
        elif (group, plural) == ("", "pods") and (
                name in POD_RESOURCES or name.startswith(("hugepages-", "requests.hugepages-")) or _is_extended_request(name)):
            out.append(name)
        elif (group, plural) == ("", "services") and name in SERVICE_RESOURCES:
            out.append(name)
        elif (group, plural) == ("", "persistentvolumeclaims") and (
                name in PVC_RESOURCES or STORAGE_CLASS_SUFFIX in name):
            out.append(name)
    return sorted(set(out))


# --- pods ---------------------------------------------------------------------------------------

def _containers(pod: Obj, key: str) -> list[Obj]:
    return [c for c in ((pod.get("spec") or {}).get(key) or []) if isinstance(c, dict)]


def _resources(container: Obj, which: str) -> ResourceList:
    return parse_list(((container.get("resources") or {}).get(which)))


def _max(a: ResourceList, b: ResourceList) -> ResourceList:
    out = dict(a)
    for name, q in b.items():
        if name not in out or q.value > out[name].value:
            out[name] = q
    return out


def pod_resource_totals(pod: Obj, which: str, *, overhead: bool = True) -> ResourceList:
    """`resourcehelper.PodRequests/PodLimits`: the sum over containers and restartable (sidecar)
    init containers, raised to any single init container's need (with the sidecars started
    before it), plus the pod overhead."""
    total: ResourceList = {}
    for container in _containers(pod, "containers"):
        total = add(total, _resources(container, which))
    sidecars: ResourceList = {}
    init_max: ResourceList = {}
    for container in _containers(pod, "initContainers"):
        own = _resources(container, which)
        if container.get("restartPolicy") == "Always":
            sidecars = add(sidecars, own)
            init_max = _max(init_max, sidecars)
        else:
            init_max = _max(init_max, add(own, sidecars))
    total = _max(add(total, sidecars), init_max)
    extra = parse_list((pod.get("spec") or {}).get("overhead")) if overhead else {}
    if extra:
        total = add(total, {k: v for k, v in extra.items() if which == "requests" or k in total})
    return total


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def pod_counts(pod: Obj, now: datetime | None = None) -> bool:
    """`QuotaV1Pod`: a pod uses compute quota unless it finished or is past its deletion grace."""
    if ((pod.get("status") or {}).get("phase")) in ("Succeeded", "Failed"):
        return False
    meta = pod.get("metadata") or {}
    deleted = _parse_time(meta.get("deletionTimestamp"))
    grace = meta.get("deletionGracePeriodSeconds")
    if deleted is not None and grace is not None:
        now = now or datetime.now(timezone.utc)
        if now > deleted + timedelta(seconds=int(grace)):
            return False
    return True


def pod_usage(pod: Obj, now: datetime | None = None) -> ResourceList:
    """What one pod costs (`PodUsageFunc`)."""
    usage: ResourceList = {"count/pods": ONE}
    if not pod_counts(pod, now):
        return usage
    usage["pods"] = ONE
    requests = pod_resource_totals(pod, "requests")
    limits = pod_resource_totals(pod, "limits")
    for name, q in requests.items():
        if name in ("cpu", "memory", "ephemeral-storage"):
            usage[name] = q
            usage[f"requests.{name}"] = q
        elif name.startswith("hugepages-"):
            usage[name] = q
            usage[f"requests.{name}"] = q
        elif "/" in name:
            usage[f"requests.{name}"] = q
    for name, q in limits.items():
        if name in ("cpu", "memory", "ephemeral-storage"):
            usage[f"limits.{name}"] = q
    return usage


def container_usage_names(container: Obj) -> set[str]:
    """The compute quota names a container states (`podComputeUsageHelper` over one container)."""
    names = set()
    for name in _resources(container, "requests"):
        if name in ("cpu", "memory"):
            names |= {name, f"requests.{name}"}
    for name in _resources(container, "limits"):
        if name in ("cpu", "memory"):
            names.add(f"limits.{name}")
    return names


def pod_constraints(pod: Obj, required: Iterable[str]) -> str:
    """The podEvaluator's `Constraints`: "" when every container states each required compute
    resource, else `must specify <res> for: <containers>; ...`."""
    wanted = set(required) & CONTAINER_CONSTRAINED
    if not wanted:
        return ""
    missing: dict[str, set[str]] = {}
    for container in _containers(pod, "containers") + _containers(pod, "initContainers"):
        for name in wanted - container_usage_names(container):
            missing.setdefault(name, set()).add(str(container.get("name", "")))
    if not missing:
        return ""
    return "must specify " + "; ".join(f"{name} for: {','.join(sorted(missing[name]))}" for name in sorted(missing))


def is_best_effort(pod: Obj) -> bool:
    """QoS BestEffort: no container (init included) requests or limits cpu or memory."""
    for container in _containers(pod, "containers") + _containers(pod, "initContainers"):
        for which in ("requests", "limits"):
            for name, q in _resources(container, which).items():
                if name in ("cpu", "memory") and q.value != 0:
                    return False
    return True


def _cross_namespace_affinity(pod: Obj) -> bool:
    affinity = (pod.get("spec") or {}).get("affinity") or {}
    for kind in ("podAffinity", "podAntiAffinity"):
        terms = affinity.get(kind) or {}
        for term in terms.get("requiredDuringSchedulingIgnoredDuringExecution") or []:
            if term.get("namespaces") or term.get("namespaceSelector") is not None:
                return True
        for weighted in terms.get("preferredDuringSchedulingIgnoredDuringExecution") or []:
            term = weighted.get("podAffinityTerm") or {}
            if term.get("namespaces") or term.get("namespaceSelector") is not None:
                return True
    return False


def _pod_has_scope(pod: Obj, scope: str) -> bool:
    spec = pod.get("spec") or {}
    deadline = spec.get("activeDeadlineSeconds")
    terminating = deadline is not None and int(deadline) >= 0
    return {
        "Terminating": terminating, "NotTerminating": not terminating,
        "BestEffort": is_best_effort(pod), "NotBestEffort": not is_best_effort(pod),
        "CrossNamespacePodAffinity": _cross_namespace_affinity(pod),
    }.get(scope, False)


def scope_selectors(quota: Obj) -> list[Obj]:
    """spec.scopes as `Exists` requirements, then spec.scopeSelector's expressions."""
    spec = quota.get("spec") or {}
    selectors = [{"scopeName": s, "operator": "Exists"} for s in spec.get("scopes") or []]
    selectors += list(((spec.get("scopeSelector") or {}).get("matchExpressions")) or [])
    return selectors


def _pod_matches_selector(pod: Obj, selector: Obj) -> bool:
    scope, op = selector.get("scopeName", ""), selector.get("operator", "")
    if scope != "PriorityClass":
        return _pod_has_scope(pod, scope) if op in ("Exists", "") else False
    value = (pod.get("spec") or {}).get("priorityClassName") or ""
    values = selector.get("values") or []
    return {"In": value in values, "NotIn": value not in values, "Exists": True, "DoesNotExist": False}.get(op, False)


def quota_matches(quota: Obj, hard: Iterable[str], group: str, plural: str, obj: Obj) -> bool:
    """Whether `obj` is charged to `quota` (`Evaluator.Matches`): the quota's `hard` names track
    something the kind is charged for, and the object is in every scope the quota names."""
    if not matching_resources(group, plural, hard):
        return False
    selectors = scope_selectors(quota)
    if not selectors:
        return True
    if (group, plural) != ("", "pods"):
        return False
    return all(_pod_matches_selector(obj, s) for s in selectors)


# --- services and claims -------------------------------------------------------------------------

def service_usage(service: Obj) -> ResourceList:
    spec = service.get("spec") or {}
    ports = spec.get("ports") or []
    usage: ResourceList = {"count/services": ONE, "services": ONE}
    kind = spec.get("type") or "ClusterIP"
    if kind == "NodePort":
        usage["services.nodeports"] = Quantity(Fraction(len(ports)))
    elif kind == "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") is False:
            usage["services.nodeports"] = Quantity(Fraction(sum(1 for p in ports if p.get("nodePort"))))
        else:
            usage["services.nodeports"] = Quantity(Fraction(len(ports)))
        usage["services.loadbalancers"] = ONE
    return usage


def pvc_usage(claim: Obj) -> ResourceList:
    spec = claim.get("spec") or {}
    usage: ResourceList = {"count/persistentvolumeclaims": ONE, "persistentvolumeclaims": ONE}
    request = parse_list((spec.get("resources") or {}).get("requests")).get("storage")
    allocated = parse_list((claim.get("status") or {}).get("allocatedResources")).get("storage")
    if allocated is not None and (request is None or allocated.value > request.value):
        request = allocated
    storage_class = spec.get("storageClassName") or ""
    if storage_class:
        usage[f"{storage_class}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"] = ONE
    if request is not None:
        usage["requests.storage"] = request
        if storage_class:
            usage[f"{storage_class}{STORAGE_CLASS_SUFFIX}requests.storage"] = request
    return usage


def usage_of(group: str, plural: str, obj: Obj, now: datetime | None = None) -> ResourceList:
    """What one object of group/plural costs; kinds without an evaluator count as one object."""
    if (group, plural) == ("", "pods"):
        return pod_usage(obj, now)
    if (group, plural) == ("", "services"):
        return service_usage(obj)
    if (group, plural) == ("", "persistentvolumeclaims"):
        return pvc_usage(obj)
    usage: ResourceList = {count_name(group, plural): ONE}
    legacy = LEGACY_COUNT_NAMES.get((group, plural))
    if legacy:
        usage[legacy] = ONE
    return usage


def parse_count_name(name: str) -> tuple[str, str] | None:
    """`count/deployments.apps` -> ("apps", "deployments"); `count/pods` -> ("", "pods")."""
    if not name.startswith("count/"):
        return None
    plural, _, group = name[len("count/"):].partition(".")
    return (group, plural) if plural else None
