"""The `Priority` admission plugin: a pod's priority comes from its PriorityClass, never its author.

On pod create it resolves `spec.priorityClassName` (or the cluster's globalDefault class, the
lowest-valued one if a race left several) into `spec.priority` and `spec.preemptionPolicy`, and
refuses a pod that states either value differently; on update it keeps the priority the pod
was admitted with. For PriorityClasses it allows only one globalDefault. The refusals are
kube's 403 texts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pykube_server.api import errors
from pykube_server.apiserver.admission import CREATE, UPDATE, Attributes

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

DEFAULT_PREEMPTION = "PreemptLowerPriority"


def forbidden(attributes: Attributes, reason: str) -> errors.Forbidden:
    """admission.NewForbidden: `<resource> "<name>" is forbidden: <reason>`."""
    name = attributes.name or ((attributes.obj or {}).get("metadata") or {}).get("generateName", "")
    qualified = errors.qualified_resource(attributes.resource, attributes.group)
    details: dict[str, Any] = {"name": name, "kind": attributes.resource}
    if attributes.group:
        details["group"] = attributes.group
    return errors.Forbidden(f'{qualified} "{name}" is forbidden: {reason}', details=details)


class Priority:
    name = "Priority"

    def __init__(self, server: APIServer) -> None:
        self.classes = server.store_for("scheduling.k8s.io", "v1", "priorityclasses")
        self._default: dict[str, Any] | None = None
        self._default_at = -1

    def _class(self, name: str) -> dict[str, Any] | None:
        cached = self.classes.cacher.resource(self.classes.root).objects.get(self.classes.key("", name))
        return cached.decode() if cached is not None else None

    def _default_class(self) -> dict[str, Any] | None:
        """The globalDefault class with the lowest value (read-only), worked out once per change."""
        cache = self.classes.cacher.resource(self.classes.root)
        if self._default_at != cache.revision:
            best = None
            for cached in cache.objects.values():
                pc = cached.decode()
                if pc.get("globalDefault") and (best is None or int(pc.get("value", 0)) < int(best.get("value", 0))):
                    best = pc
            self._default, self._default_at = best, cache.revision
        return self._default

    async def admit(self, attributes: Attributes) -> None:
        if not attributes.is_("", "pods") or attributes.obj is None:
            return
        spec = attributes.obj.setdefault("spec", {})
        if attributes.operation == UPDATE:
            old_priority = ((attributes.old or {}).get("spec") or {}).get("priority")
            if spec.get("priority") is None and old_priority is not None:
                spec["priority"] = old_priority
            return
        if attributes.operation != CREATE:
            return
        class_name = spec.get("priorityClassName") or ""
        if class_name:
            pc = self._class(class_name)
            if pc is None:
                raise forbidden(attributes, f"no PriorityClass with name {class_name} was found")
        else:
            pc = self._default_class()
            if pc is not None:
                spec["priorityClassName"] = pc["metadata"]["name"]
        priority = int(pc.get("value", 0)) if pc is not None else 0
        policy = (pc.get("preemptionPolicy") if pc is not None else None) or DEFAULT_PREEMPTION
        if spec.get("priority") is not None and spec["priority"] != priority:
            raise forbidden(attributes, f"the integer value of priority ({spec['priority']}) must not be provided in pod spec; "
                                        f"priority admission controller computed {priority} from the given PriorityClass name")
        spec["priority"] = priority
        if spec.get("preemptionPolicy") is not None and spec["preemptionPolicy"] != policy:
            raise forbidden(attributes, f"the string value of PreemptionPolicy ({spec['preemptionPolicy']}) must not be provided in pod spec; "
                                        f"priority admission controller computed {policy} from the given PriorityClass name")
        spec["preemptionPolicy"] = policy

    async def validate(self, attributes: Attributes) -> None:
        if not attributes.is_("scheduling.k8s.io", "priorityclasses") or attributes.operation not in (CREATE, UPDATE):
            return
        pc = attributes.obj or {}
        if not pc.get("globalDefault"):
            return
        existing = self._default_class()
        if existing is None:
            return
        if attributes.operation == CREATE or existing["metadata"]["name"] != pc["metadata"]["name"]:
            raise forbidden(attributes, f"PriorityClass {existing['metadata']['name']} is already marked as default. Only one default can exist")
