"""The `RuntimeClass` admission plugin: a pod inherits what its RuntimeClass says it costs and needs.

A RuntimeClass may declare a fixed per-pod overhead (`overhead.podFixed`, e.g. a VM sandbox's
memory) and where its handler exists (`scheduling.nodeSelector`, `scheduling.tolerations`).
The scheduler, the kubelet and quota read those from the pod itself, so on pod create kube's
plugin copies them in: the overhead into `spec.overhead`, the selector merged into
`spec.nodeSelector`, the tolerations merged into `spec.tolerations`. A pod naming a class that
does not exist, stating an overhead of its own, or selecting nodes the class rules out is
refused with kube's 403 texts. Only creates are judged: the fields are immutable afterwards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pykube_server.api.quota import parse_list
from pykube_server.apiserver.admission import CREATE, Attributes
from pykube_server.apiserver.admission.priority import forbidden

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

Obj = dict[str, Any]

OVERHEAD_MISMATCH = "pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead"
OVERHEAD_WITHOUT_CLASS = "pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead"


def same_resources(a: Obj | None, b: Obj | None) -> bool:
    """Semantic equality of two ResourceLists: the same names, quantities equal by value."""
    left, right = parse_list(a), parse_list(b)
    return left.keys() == right.keys() and all(left[k].value == right[k].value for k in left)


def toleration_covers(wide: Obj, narrow: Obj) -> bool:
    """Whether toleration `wide` tolerates everything `narrow` does (kube's isSuperset), so a
    merge may drop `narrow`."""
    if wide == narrow:
        return True
    wide_effect, narrow_effect = wide.get("effect") or "", narrow.get("effect") or ""
    if wide_effect and wide_effect != narrow_effect:
        return False
    if wide_effect == "NoExecute" or (not wide_effect and narrow_effect == "NoExecute"):
        wide_seconds, narrow_seconds = wide.get("tolerationSeconds"), narrow.get("tolerationSeconds")
        if wide_seconds is not None and (narrow_seconds is None or narrow_seconds > wide_seconds):
            return False
    wide_op = wide.get("operator") or "Equal"
    narrow_op = narrow.get("operator") or "Equal"
    if (wide.get("key") or "") != (narrow.get("key") or ""):
        return not wide.get("key") and wide_op == "Exists"
    if wide_op == "Exists":
        return True
    return narrow_op == "Equal" and (wide.get("value") or "") == (narrow.get("value") or "")


def merge_tolerations(first: list[Obj], second: list[Obj]) -> list[Obj]:
    """The union of two toleration lists without the ones another already covers (kube's
    MergeTolerations)."""
    merged: list[Obj] = []
    for toleration in [*first, *second]:
        if any(toleration_covers(kept, toleration) for kept in merged):
            continue
        merged = [kept for kept in merged if not toleration_covers(toleration, kept)]
        merged.append(toleration)
    return merged


class RuntimeClass:
    name = "RuntimeClass"

    def __init__(self, server: APIServer) -> None:
        self.classes = server.store_for("node.k8s.io", "v1", "runtimeclasses")

    async def _class(self, name: str) -> Obj | None:
        """The RuntimeClass as this server last wrote it (kube reads an informer, then the API)."""
        await self.classes.cacher.wait_written(self.classes.root)
        cached = self.classes.cacher.resource(self.classes.root).objects.get(self.classes.key("", name))
        return cached.decode() if cached is not None else None

    @staticmethod
    def _pod_create(attributes: Attributes) -> bool:
        return attributes.is_("", "pods") and attributes.operation == CREATE and attributes.obj is not None

    async def _resolve(self, attributes: Attributes) -> Obj | None:
        class_name = ((attributes.obj or {}).get("spec") or {}).get("runtimeClassName")
        if not class_name:
            return None
        runtime_class = await self._class(class_name)
        if runtime_class is None:
            raise forbidden(attributes, f'pod rejected: RuntimeClass "{class_name}" not found')
        return runtime_class

    async def admit(self, attributes: Attributes) -> None:
        if not self._pod_create(attributes):
            return
        runtime_class = await self._resolve(attributes)
        if runtime_class is None:
            return
        spec = (attributes.obj or {}).setdefault("spec", {})
        pod_fixed = (runtime_class.get("overhead") or {}).get("podFixed")
        if pod_fixed is not None:
            if spec.get("overhead") is not None and not same_resources(spec["overhead"], pod_fixed):
                raise forbidden(attributes, OVERHEAD_MISMATCH)
            spec["overhead"] = dict(pod_fixed)
        scheduling = runtime_class.get("scheduling")
        if not scheduling:
            return
        selector = dict(spec.get("nodeSelector") or {})
        for key, value in (scheduling.get("nodeSelector") or {}).items():
            if key in selector and selector[key] != value:
                raise forbidden(attributes, f"conflict: runtimeClass.scheduling.nodeSelector[{key}] = {value}; "
                                            f"pod.spec.nodeSelector[{key}] = {selector[key]}")
            selector[key] = value
        if selector:
            spec["nodeSelector"] = selector
        extra = scheduling.get("tolerations") or []
        if extra:
            spec["tolerations"] = merge_tolerations(list(spec.get("tolerations") or []), list(extra))

    async def validate(self, attributes: Attributes) -> None:
        """The overhead must still be exactly the class's after every mutating plugin ran."""
        if not self._pod_create(attributes):
            return
        runtime_class = await self._resolve(attributes)
        overhead = ((attributes.obj or {}).get("spec") or {}).get("overhead")
        pod_fixed = ((runtime_class or {}).get("overhead") or {}).get("podFixed")
        if pod_fixed is not None:
            if not same_resources(overhead, pod_fixed):
                raise forbidden(attributes, OVERHEAD_MISMATCH)
        elif overhead is not None:
            raise forbidden(attributes, OVERHEAD_WITHOUT_CLASS)
