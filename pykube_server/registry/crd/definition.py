"""The CustomResourceDefinition kind itself: its strategy, names and status conditions.

`CRDStrategy` sets `status.storedVersions` and validates (see `validation`); the API server's
CRD serving (`apiserver/crdserving.py`) decides the accepted names and sets the conditions kube's
naming and establishing controllers set, with their reasons and messages, using the helpers here.
"""

from __future__ import annotations

from typing import Any

from pykube_server.api.fields import FieldError
from pykube_server.registry.crd.resource import storage_version
from pykube_server.registry.crd.validation import validate_crd
from pykube_server.registry.strategy import Strategy, now_rfc3339, spec_changed

Obj = dict[str, Any]

CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


class CRDStrategy(Strategy):
    tracks_generation = True

    def prepare_for_create(self, obj: Obj) -> None:
        obj["status"] = {"acceptedNames": {"kind": "", "plural": ""}, "storedVersions": []}
        stored = storage_version(obj)
        if stored:
            obj["status"]["storedVersions"] = [stored]
        obj["metadata"]["generation"] = 1

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        obj["status"] = old.get("status") or {}
        generation = old["metadata"].get("generation", 1)
        obj["metadata"]["generation"] = generation + 1 if spec_changed(obj, old) else generation
        stored = storage_version(obj)
        versions = obj["status"].setdefault("storedVersions", [])
        if stored and stored not in versions:
            obj["status"] = {**obj["status"], "storedVersions": [*versions, stored]}

    def validate(self, obj: Obj) -> list[FieldError]:
        return validate_crd(obj)

    def validate_update(self, obj: Obj, old: Obj) -> list[FieldError]:
        return validate_crd(obj, old)


def condition(crd: Obj, kind: str) -> Obj | None:
    for c in (crd.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return c
    return None


def set_condition(status: Obj, kind: str, state: str, reason: str, message: str) -> None:
    """Replace or add a condition; its lastTransitionTime moves only when the status changes."""
    conditions = status.setdefault("conditions", [])
    for i, c in enumerate(conditions):
        if c.get("type") == kind:
            when = c.get("lastTransitionTime") if c.get("status") == state else now_rfc3339()
            conditions[i] = {"type": kind, "status": state, "lastTransitionTime": when, "reason": reason, "message": message}
            return
    conditions.append({"type": kind, "status": state, "lastTransitionTime": now_rfc3339(), "reason": reason, "message": message})


def accept_names(crd: Obj, others: list[Obj], builtin: set[tuple[str, str]]) -> tuple[Obj, str, str]:
    """(accepted names, reason, message) as kube's naming controller decides them: names used by
    another CRD of the group (or a built-in resource) are refused, the rest accepted."""
    spec = crd["spec"]
    group, names = spec["group"], dict(spec["names"])
    taken_resources: set[str] = {plural for g, plural in builtin if g == group}
    taken_kinds: set[str] = set()
    for other in others:
        ospec = other.get("spec") or {}
        if ospec.get("group") != group or other["metadata"]["name"] == crd["metadata"]["name"]:
            continue
        accepted = (other.get("status") or {}).get("acceptedNames") or {}
        taken_resources.update(n for n in (accepted.get("plural"), accepted.get("singular")) if n)
        taken_resources.update(accepted.get("shortNames") or [])
        taken_kinds.update(n for n in (accepted.get("kind"), accepted.get("listKind")) if n)
    old = (crd.get("status") or {}).get("acceptedNames") or {}
    for key, reason in (("plural", "PluralConflict"), ("singular", "SingularConflict")):
        if names.get(key) in taken_resources:
            return old, reason, f'"{names[key]}" is already in use'
    for short in names.get("shortNames") or []:
        if short in taken_resources:
            return old, "ShortNamesConflict", f'"{short}" is already in use'
    for key, reason in (("kind", "KindConflict"), ("listKind", "ListKindConflict")):
        if names.get(key) in taken_kinds:
            return old, reason, f'"{names[key]}" is already in use'
    return names, "NoConflicts", "no conflicts found"
