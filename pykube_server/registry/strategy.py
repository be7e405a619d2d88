"""Strategy: what one kind means to the generic REST store.

A base class rather than a protocol because the value is in its defaults: most kinds need
nothing but these. Hook order, for every kind (the one generic store calls them):

  create: prepare_for_create -> default -> validate -> canonicalize
  update: prepare_for_update -> default -> validate_update -> canonicalize

`prepare_*` and `default` may mutate the object; `validate*` must not mutate anything and
return every problem at once as a list of FieldErrors.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from pykube_server.api.fields import FieldError
from pykube_server.registry.defaults import default_object
from pykube_server.registry.kind_validation import validate_changes, validate_object
from pykube_server.registry.validation import name_rule_for, validate_object_meta

Obj = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: Literal["string", "integer", "number", "boolean", "date"]
    value: Callable[[Obj, float], object]
    """(object, now) -> the cell."""
    description: str = ""
    priority: int = 0
    """0 = always shown, 1 = only with -o wide."""
    format: str = ""


def parse_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def human_duration(seconds: float) -> str:
    """kubectl's `duration.HumanDuration`: 45s, 5m12s, 3h4m, 5d, 2y30d."""
    s = int(seconds)
    if s < 0:
        s = 0
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rem = s % 60
        return f"{minutes}m{rem}s" if rem else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rem = (s % 3600) // 60
        return f"{hours}h{rem}m" if rem else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rem = hours % 24
        return f"{hours // 24}d{rem}h" if rem else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def age(obj: Obj, now: float) -> str:
    created = (obj.get("metadata") or {}).get("creationTimestamp")
    if not created:
        return "<unknown>"
    return human_duration(now - parse_time(created))


NAME = Column(
    "Name", "string", lambda o, now: o["metadata"].get("name", ""),
    "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    format="name",
)
AGE = Column(
    "Age", "string", age,
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
)


_last_second: list[Any] = [-1, ""]


def now_rfc3339() -> str:
    """The current second as kube writes timestamps; formatted once a second, not per object."""
    second = int(time.time())
    if second != _last_second[0]:
        _last_second[1] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        _last_second[0] = second
    return _last_second[1]


class Strategy:
    """Per-kind policy used by the generic ResourceStore; every method has a safe default."""

    columns: Sequence[Column] = (NAME, AGE)
    tracks_generation: bool = False
    """metadata.generation starts at 1 and is bumped on every change outside metadata/status."""
    initial_status: Obj | None = None
    """The status a new object starts with when the kind has a status subresource."""
    selectable: Mapping[str, Callable[[Obj], str]] = {}
    """Kind-specific field selector fields (metadata.name/namespace are always there)."""
    version: str = ""
    kind: str = ""
    """Set by `kinds.strategy_for`; with them the base hooks apply the kind's scheme defaults
    (`registry.defaults`) and validation (`registry.kind_validation`)."""

    def __init__(self, *, group: str, plural: str, namespaced: bool, has_status: bool) -> None:
        self.group = group
        self.plural = plural
        self.namespaced = namespaced
        self.has_status = has_status
        self._name_rule = name_rule_for(group, plural)

    # -- create -----------------------------------------------------------------------------
    def prepare_for_create(self, obj: Obj) -> None:
        if self.has_status:
            obj["status"] = dict(self.initial_status or {})
        if self.tracks_generation:
            obj["metadata"]["generation"] = 1

    def default(self, obj: Obj) -> None:
        """Fill defaulted fields; runs on create and update."""
        if self.kind:
            default_object(self.group, self.version, self.kind, obj)

    def validate(self, obj: Obj) -> list[FieldError]:
        errs = validate_object_meta(obj, namespaced=self.namespaced, name_rule=self._name_rule)
        return errs + validate_object(self.group, self.version, self.kind, obj) if self.kind else errs

    def canonicalize(self, obj: Obj) -> None:
        """Normalise after validation (e.g. sort a list that has no meaning in its order)."""

    # -- update -----------------------------------------------------------------------------
    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        if self.has_status:
            if "status" in old:
                obj["status"] = old["status"]
            else:
                obj.pop("status", None)
        if self.tracks_generation:
            generation = old["metadata"].get("generation", 1)
            if spec_changed(obj, old):
                generation += 1
            obj["metadata"]["generation"] = generation

    def validate_update(self, obj: Obj, old: Obj) -> list[FieldError]:
        errs = self.validate(obj)
        return errs + validate_changes(self.group, self.version, self.kind, obj, old) if self.kind else errs

    def validate_status_update(self, obj: Obj, old: Obj) -> list[FieldError]:
        """What a `/status` write may not do beyond the kind's validation (none by default)."""
        return []

    def for_subresource(self, subresource: str) -> Strategy | None:
        """The strategy of a writable subresource other than status (CSR `approval`), if any."""
        return None

    # -- fields -----------------------------------------------------------------------------
    def selectable_fields(self, obj: Obj) -> dict[str, str]:
        return {name: fn(obj) for name, fn in self.selectable.items()}

    def supported_fields(self) -> set[str]:
        return {"metadata.name", "metadata.namespace", *self.selectable}


RESET_ALL_METADATA = None
"""A `/status` rule: metadata cannot change at all (kube's `ResetObjectMetaForStatus`)."""
# Built-in kinds whose status strategy resets some metadata (the rest of their metadata may
# change through /status, which kube's conformance tests rely on for services and namespaces).
STATUS_METADATA_RESETS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "pods"): ("ownerReferences",),  # old kubelets corrupted them
    ("apps", "deployments"): ("labels",),
    ("extensions", "deployments"): ("labels",),
}
# Newer built-in kinds use ResetObjectMetaForStatus, as custom resources do.
RESET_ALL_METADATA_GROUPS = frozenset({"admissionregistration.k8s.io", "resource.k8s.io", "storagemigration.k8s.io",
                                       "internal.apiserver.k8s.io"})


def status_metadata_rule(group: str, plural: str, *, custom: bool = False) -> tuple[str, ...] | None:
    """What a write through `<resource>/status` may not change in metadata: a tuple of
    metadata fields kept from the stored object, or `RESET_ALL_METADATA`."""
    if custom or group in RESET_ALL_METADATA_GROUPS:
        return RESET_ALL_METADATA
    return STATUS_METADATA_RESETS.get((group, plural), ())


class StatusStrategy:
    """For `<resource>/status`: everything outside status and metadata stays as stored; of
    metadata, what the kind's rule keeps (custom resources and the newer kinds keep all of it,
    kube's `ResetObjectMetaForStatus`; most built-ins let labels and annotations change)."""

    def __init__(self, main: Strategy, metadata_rule: tuple[str, ...] | None = RESET_ALL_METADATA) -> None:
        self.main = main
        self.metadata_rule = metadata_rule

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        status = obj.get("status")
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        obj.clear()
        obj.update({k: v for k, v in old.items() if k != "status"})
        if self.metadata_rule is RESET_ALL_METADATA:
            obj["metadata"] = dict(old["metadata"])
        else:
            kept = dict(meta)
            for name in self.metadata_rule:
                if name in old["metadata"]:
                    kept[name] = old["metadata"][name]
                else:
                    kept.pop(name, None)
            obj["metadata"] = kept
        if status is not None:
            obj["status"] = status

    def validate_update(self, obj: Obj, old: Obj) -> list[FieldError]:
        return self.main.validate(obj) + self.main.validate_status_update(obj, old)


def spec_changed(obj: Obj, old: Obj) -> bool:
    """Everything but metadata and status counts as spec (as most kinds' strategies do)."""
    keys = (set(obj) | set(old)) - {"metadata", "status", "apiVersion", "kind"}
    return any(obj.get(k) != old.get(k) for k in keys)


def meta_field(*path: str) -> Callable[[Obj], str]:
    def get(obj: Obj) -> str:
        cur: Any = obj
        for part in path:
            if not isinstance(cur, dict):
                return ""
            cur = cur.get(part)
        if cur is None:
            return ""
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return str(cur)

    return get
