"""Strategies for the kinds that need more than the generic one, and the table binding them.

Each entry is small on purpose: defaults, selectable fields and the few validations the API
core needs. A kind that grows past ~150 lines moves to its own module under registry/<group>/.
"""

from __future__ import annotations

import base64

from contextvars import ContextVar
from typing import Any

from pykube_server.api.fields import FieldError
from pykube_server.registry.crd.definition import CRDStrategy
from pykube_server.registry.ephemeralcontainers import EphemeralContainersStrategy
from pykube_server.registry.kind_validation import validate_object
from pykube_server.registry.kind_validation.events import validate_event_update
from pykube_server.registry.printers import columns_for
from pykube_server.registry.servicealloc import ServiceAllocator, drop_type_dependent_fields, patch_allocated_values
from pykube_server.registry.spec import ResourceSpec
from pykube_server.registry.strategy import Strategy, meta_field
from pykube_server.registry.validation import validate_object_meta, validate_path_segment_name

Obj = dict[str, Any]


def qos_class(spec: Obj) -> str:
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    requests_any = limits_all = False
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        req, lim = res.get("requests") or {}, res.get("limits") or {}
        if req or lim:
            requests_any = True
        for name in ("cpu", "memory"):
            if name not in lim or req.get(name, lim.get(name)) != lim.get(name):
                guaranteed = False
        limits_all = limits_all or bool(lim)
    if not requests_any:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


class PodStrategy(Strategy):
    selectable = {
        "spec.nodeName": meta_field("spec", "nodeName"),
        "spec.restartPolicy": meta_field("spec", "restartPolicy"),
        "spec.schedulerName": meta_field("spec", "schedulerName"),
        "spec.serviceAccountName": meta_field("spec", "serviceAccountName"),
        "spec.hostNetwork": lambda o: "true" if (o.get("spec") or {}).get("hostNetwork") else "false",
        "status.phase": meta_field("status", "phase"),
        "status.podIP": meta_field("status", "podIP"),
        "status.nominatedNodeName": meta_field("status", "nominatedNodeName"),
    }

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"phase": "Pending", "qosClass": qos_class(obj.get("spec") or {})}

    def for_subresource(self, subresource: str) -> Strategy | None:
        if subresource == "ephemeralcontainers":
            return EphemeralContainersStrategy(self)
        return None



class NamespaceStrategy(Strategy):
    initial_status = {"phase": "Active"}
    selectable = {"status.phase": meta_field("status", "phase")}

    def default(self, obj: Obj) -> None:
        super().default(obj)
        meta = obj["metadata"]
        if meta.get("name"):
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])


class SecretStrategy(Strategy):
    selectable = {"type": meta_field("type")}

    def default(self, obj: Obj) -> None:
        # stringData is write-only: the v1 conversion merges it into data (base64), overriding
        # keys that are in both, and it is never stored or returned.
        string_data = obj.pop("stringData", None)
        if isinstance(string_data, dict):
            data = obj.setdefault("data", {}) or {}
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data
        super().default(obj)


class NodeStrategy(Strategy):
    selectable = {"spec.unschedulable": lambda o: "true" if (o.get("spec") or {}).get("unschedulable") else "false"}

    def prepare_for_create(self, obj: Obj) -> None:
        status = obj.get("status")
        super().prepare_for_create(obj)
        if status is not None:  # kube's nodeStrategy keeps status on create: kubelets register with it
            obj["status"] = status


class EventStrategy(Strategy):
    selectable = {
        **{f"involvedObject.{f}": meta_field("involvedObject", f)
           for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")},
        "reason": meta_field("reason"),
        "reportingComponent": meta_field("reportingComponent"),
        "source": lambda o: (o.get("source") or {}).get("component", ""),
        "type": meta_field("type"),
    }

    def validate(self, obj: Obj) -> list[FieldError]:
        """kube's order: the Event rules of the request's group-version (`kind_validation/events.py`;
        events.k8s.io/v1 checks names as DNS subdomains there), then, only if they pass, the generic
        metadata check, for which a core Event's name need only be a path segment."""
        errs = validate_object(self.group, self.version, self.kind, obj) if self.kind else []
        return errs or validate_object_meta(obj, namespaced=True, name_rule=validate_path_segment_name)

    def validate_update(self, obj: Obj, old: Obj) -> list[FieldError]:
        """The generic metadata check first, then ValidateEventUpdate (not the create rules)."""
        errs = validate_object_meta(obj, namespaced=True, name_rule=validate_path_segment_name)
        return errs + validate_event_update(self.group, obj, old)


_ALLOCATING: ContextVar[tuple[Obj, Obj | None] | None] = ContextVar("service_allocating", default=None)


class ServiceStrategy(Strategy):
    """ClusterIPs and NodePorts come from `allocator` (set by the API server; None: no
    allocation) once the object validated; `_ALLOCATING` remembers which write the main hooks
    prepared, so a /status write (whose canonicalize also runs) never allocates. It is a context
    variable, one per request task: the strategy is shared, and concurrent creates await
    (admission, namespace checks) between prepare and canonicalize."""

    selectable = {"spec.clusterIP": meta_field("spec", "clusterIP"), "spec.type": meta_field("spec", "type")}
    allocator: ServiceAllocator | None = None

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        _ALLOCATING.set((obj, None))

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        super().prepare_for_update(obj, old)
        patch_allocated_values(obj, old)
        drop_type_dependent_fields(obj, old)
        _ALLOCATING.set((obj, old))

    def canonicalize(self, obj: Obj) -> None:
        pending = _ALLOCATING.get()
        _ALLOCATING.set(None)
        if self.allocator is not None and pending is not None and pending[0] is obj:
            self.allocator.allocate(obj, pending[1])


class ReplicaSetStrategy(Strategy):
    tracks_generation = True
    initial_status = {"replicas": 0}   # int32 without omitempty: a new ReplicaSet shows it as 0
    selectable = {"status.replicas": lambda o: str((o.get("status") or {}).get("replicas", 0))}


class JobStrategy(Strategy):
    tracks_generation = True
    selectable = {"status.successful": lambda o: str((o.get("status") or {}).get("succeeded", 0))}


class GenerationStrategy(Strategy):
    tracks_generation = True


class ReplicasStatusStrategy(GenerationStrategy):
    """ReplicationController and StatefulSet: `status.replicas` has no omitempty, so a new object
    shows it as 0 before its controller first writes status."""

    initial_status = {"replicas": 0}


class DaemonSetStrategy(GenerationStrategy):
    """The four int32 counts of DaemonSetStatus have no omitempty: 0 until the controller writes."""

    initial_status = {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                      "numberReady": 0}


class VolumeAttachmentStrategy(Strategy):
    """`status.attached` is a bool without omitempty: a new attachment shows `false`."""

    initial_status = {"attached": False}


class PodDisruptionBudgetStrategy(GenerationStrategy):
    """A new budget's status shows its four counts as 0 (int32 fields without omitempty) until
    the disruption controller fills them in."""

    initial_status = {"currentHealthy": 0, "desiredHealthy": 0, "disruptionsAllowed": 0, "expectedPods": 0}


from pykube_server.registry.certificates import CSRStrategy  # noqa: E402 - a kind with a module of its own
from pykube_server.registry.apiservice import APIServiceStrategy  # noqa: E402 - a kind with a module of its own

STRATEGIES: dict[tuple[str, str], type[Strategy]] = {
    ("", "pods"): PodStrategy,
    ("", "namespaces"): NamespaceStrategy,
    ("", "secrets"): SecretStrategy,
    ("", "nodes"): NodeStrategy,
    ("", "events"): EventStrategy,
    ("events.k8s.io", "events"): EventStrategy,
    ("", "services"): ServiceStrategy,
    ("", "replicationcontrollers"): ReplicasStatusStrategy,
    ("apps", "replicasets"): ReplicaSetStrategy,
    ("apps", "deployments"): GenerationStrategy,
    ("apps", "statefulsets"): ReplicasStatusStrategy,
    ("apps", "daemonsets"): DaemonSetStrategy,
    ("batch", "jobs"): JobStrategy,
    ("batch", "cronjobs"): GenerationStrategy,
    ("autoscaling", "horizontalpodautoscalers"): GenerationStrategy,
    ("policy", "poddisruptionbudgets"): PodDisruptionBudgetStrategy,
    ("storage.k8s.io", "volumeattachments"): VolumeAttachmentStrategy,
    ("networking.k8s.io", "networkpolicies"): GenerationStrategy,
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"): GenerationStrategy,
    ("admissionregistration.k8s.io", "validatingadmissionpolicybindings"): GenerationStrategy,
    ("apiextensions.k8s.io", "customresourcedefinitions"): CRDStrategy,
    ("certificates.k8s.io", "certificatesigningrequests"): CSRStrategy,
    ("apiregistration.k8s.io", "apiservices"): APIServiceStrategy,
}


def strategy_for(spec: ResourceSpec) -> Strategy:
    cls = STRATEGIES.get((spec.group, spec.plural), Strategy)
    strategy = cls(group=spec.group, plural=spec.plural, namespaced=spec.namespaced, has_status=spec.has_status)
    strategy.version, strategy.kind = spec.version, spec.kind
    strategy.columns = columns_for(spec.group, spec.plural)
    return strategy
