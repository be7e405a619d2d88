"""metadata.managedFields: who owns which field, kept on every write, and server-side apply.

Modelled on kube-apiserver's field manager stack (`fieldmanager/internal`):
- entries are keyed by manager, operation, subresource and, for `Update`, apiVersion; an
  `Apply` entry keeps its key across versions;
- an `Update` (create, update, patch) adds what it changed to its entry and takes those fields
  from everyone else; its time moves only when it changed something;
- an `Apply` owns exactly the applied configuration's fields; fields it applied before and no
  longer applies are removed when nobody else owns them; fields it would change that others
  own are conflicts (409) unless forced, which moves them over;
- the identity and bookkeeping fields of metadata are never owned (kube's strip set), and the
  fields a request cannot change (status on the main resource, everything but status on
  /status) are not recorded;
- an object that has no managedFields is not tracked on update (kube's skip-non-applied rule);
  its first apply hands all existing fields to `before-first-apply`.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from pykube_server.api import errors
from pykube_server.api.memo import BoundedMemo
from pykube_server.registry.managedfields import fieldpath as fp
from pykube_server.registry.managedfields import typed
from pykube_server.registry.managedfields.fieldpath import FieldSet, Path
from pykube_server.registry.managedfields.typed import ABSENT, Node
from pykube_server.registry.managedfields.zero import shared_zero_object, zero_object

Obj = dict[str, Any]
ManagedHook = Callable[[Obj | None, Obj], None]
"""Called by the store with (stored object or None, new object) once the new object is final;
sets `metadata.managedFields` on the new object in place."""

FIELD_MANAGER_MAX_LENGTH = 128
BEFORE_FIRST_APPLY = "before-first-apply"
_META = fp.field("metadata")
STRIPPED: FieldSet = {(fp.field("apiVersion"),), (fp.field("kind"),), (_META,)} | {
    (_META, fp.field(name)) for name in ("name", "namespace", "creationTimestamp", "selfLink", "uid",
                                         "clusterName", "generation", "managedFields", "resourceVersion")}


@functools.lru_cache(maxsize=256)  # a server sees few distinct User-Agents
def manager_from_user_agent(user_agent: str) -> str:
    """kube's default field manager: the User-Agent up to its first `/`, without unprintable
    characters, cut to 128 bytes (`kubectl/v1.33.1 (linux/amd64) ...` -> `kubectl`)."""
    out = ""
    size = 0
    for ch in user_agent.split("/", 1)[0]:
        if not ch.isprintable():
            continue
        width = len(ch.encode())
        if size + width > FIELD_MANAGER_MAX_LENGTH:
            break
        out += ch
        size += width
    return out


@dataclass(slots=True)
class Entry:
    manager: str
    operation: str
    api_version: str
    subresource: str = ""
    time: str | None = None
    fields: FieldSet = field(default_factory=set)

    @property
    def key(self) -> tuple[str, str, str, str]:
        version = "" if self.operation == "Apply" else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def encode(self) -> Obj:
        out: Obj = {"manager": self.manager, "operation": self.operation, "apiVersion": self.api_version}
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = "FieldsV1"
        out["fieldsV1"] = fp.to_fields_v1(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out


def decode(entries: Any) -> list[Entry]:
    """Entries from `metadata.managedFields`; ValueError when they are malformed."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ValueError("managedFields must be a list")
    out = []
    for raw in entries:
        if not isinstance(raw, dict) or raw.get("fieldsType", "FieldsV1") != "FieldsV1":
            raise ValueError("invalid managedFields entry")
        out.append(Entry(str(raw.get("manager", "")), str(raw.get("operation", "")), str(raw.get("apiVersion", "")),
                         str(raw.get("subresource", "")), raw.get("time"), fp.from_fields_v1(raw.get("fieldsV1") or {})))
    return out


def encode(entries: list[Entry]) -> list[Obj]:
    """Non-empty entries in kube's order: operation, time, manager, apiVersion, subresource."""
    kept = [e for e in entries if e.fields]
    kept.sort(key=lambda e: (e.operation, e.time or "", e.manager, e.api_version, e.subresource))
    return [e.encode() for e in kept]


@dataclass(frozen=True, slots=True)
class Kind:
    """What the field manager needs to know about the kind being written."""

    api_version: str
    kind: str
    definition: str = ""
    has_status: bool = False

    @property
    def schema(self) -> Node:
        return typed.root(self.definition)

    def zero(self) -> Obj:
        return zero_object(self.definition, self.api_version, self.kind)

    def zero_shared(self) -> Obj:
        """The zero object without the copy: for read-only use."""
        return shared_zero_object(self.definition, self.api_version, self.kind)

    def ignored(self, paths: FieldSet, subresource: str) -> FieldSet:
        """The paths a write through `subresource` cannot own (kube's reset fields)."""
        status = fp.field("status")
        if subresource == "status":
            return {p for p in paths if not p or p[0] != status}
        if subresource == "" and self.has_status:
            return {p for p in paths if p and p[0] == status}
        return set()


def _without_managed(obj: Obj) -> Obj:
    out = dict(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        out["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    return out


def _find(entries: list[Entry], key: tuple[str, str, str, str]) -> Entry | None:
    return next((e for e in entries if e.key == key), None)


def _set_managed(obj: Obj, entries: list[Entry]) -> None:
    meta = obj.setdefault("metadata", {})
    encoded = encode(entries)
    if encoded:
        meta["managedFields"] = encoded
    else:
        meta.pop("managedFields", None)


# -- Update ----------------------------------------------------------------------------------
def _starting_entries(old: Obj | None, new: Obj, subresource: str) -> list[Entry]:
    """kube takes managedFields from the request body when it sends some (so clients can
    rewrite or, with `[{}]`, reset them), else from the stored object."""
    sent = (new.get("metadata") or {}).get("managedFields")
    if not subresource and sent:
        if sent == [{}]:
            return []
        try:
            return decode(sent)
        except ValueError:
            pass
    try:
        return decode((old or {}).get("metadata", {}).get("managedFields"))
    except ValueError:
        return []


def update_managed_fields(old: Obj | None, new: Obj, manager: str, operation: str = "Update", subresource: str = "",
                          time: str = "", *, kind: Kind) -> Obj:
    """Record a create/update/patch by `manager` on `new` (in place, also returned)."""
    entries = _starting_entries(old, new, subresource)
    new.setdefault("metadata", {}).pop("managedFields", None)
    if old is not None and not entries:
        return new
    if old is None and not entries:
        return _record_create(new, manager, operation, subresource, time, kind)
    base = kind.zero() if old is None else _without_managed(old)
    diff = typed.compare(base, new, kind.schema)
    changed = diff.changed - STRIPPED
    changed -= kind.ignored(changed, subresource)
    taken = diff.changed | diff.removed
    for entry in entries:
        entry.fields -= taken
    if changed:
        mine = _find(entries, (manager, operation, kind.api_version, subresource))
        if mine is None:
            mine = Entry(manager, operation, kind.api_version, subresource)
            entries.append(mine)
        mine.fields |= changed
        mine.time = time
    _set_managed(new, entries)
    return new


CREATE_MEMO_ENTRIES = 512
"""Create entries remembered by the created object's shape (see `_create_shape`)."""
_create_memo: BoundedMemo[tuple[Kind, str, str, str, bytes], bytes] = BoundedMemo(CREATE_MEMO_ENTRIES)

_VALUE_FREE_META = frozenset({"name", "generateName", "namespace", "uid", "creationTimestamp", "resourceVersion"})
"""ObjectMeta fields whose string value never shapes a create's FieldsV1: the zero ObjectMeta
lacks them (or has null), so any string there is owned as a whole, whatever it says."""


def _create_shape(new: Obj) -> bytes:
    """The created object with its name-like metadata values blanked out: two creates with the
    same shape get the same managedFields tree. Controllers create many objects from one
    template (a ReplicaSet's pods differ in name only), so this skips the schema walk for all
    but the first."""
    meta = new.get("metadata")
    if isinstance(meta, dict):
        new = {**new, "metadata": {k: (True if k in _VALUE_FREE_META and isinstance(v, str) else v)
                                   for k, v in meta.items()}}
    return orjson.dumps(new)


def _record_create(new: Obj, manager: str, operation: str, subresource: str, time: str, kind: Kind) -> Obj:
    """The common create: one entry owning everything that differs from the zero object."""
    memo_key = (kind, manager, operation, subresource, _create_shape(new))
    known = _create_memo.get(memo_key)
    if known is not None:
        tree = orjson.loads(known)
    else:
        tree = _create_tree(new, subresource, kind)
        _create_memo.put(memo_key, orjson.dumps(tree))
    if tree:
        entry: Obj = {"manager": manager, "operation": operation, "apiVersion": kind.api_version}
        if time:
            entry["time"] = time
        entry["fieldsType"] = "FieldsV1"
        entry["fieldsV1"] = tree
        if subresource:
            entry["subresource"] = subresource
        new["metadata"]["managedFields"] = [entry]
    return new


def _create_tree(new: Obj, subresource: str, kind: Kind) -> Obj:
    """A create's FieldsV1, written straight from the comparison with the zero object (the same
    result as the general path, which tests/registry/test_managedfields_create.py checks, at a
    fraction of its cost)."""
    tree = typed.changed_fields_v1(kind.zero_shared(), new, kind.schema)
    for name in ("f:apiVersion", "f:kind"):
        if tree.get(name) == {}:
            del tree[name]
    meta = tree.get("f:metadata")
    if meta is not None:
        meta.pop(".", None)
        for name in _STRIPPED_META:
            if meta.get(name) == {}:
                del meta[name]
        if not meta:
            del tree["f:metadata"]
    if subresource == "status":
        tree = {"f:status": tree["f:status"]} if "f:status" in tree else {}
    elif subresource == "" and kind.has_status:
        tree.pop("f:status", None)
    return tree


_STRIPPED_META = tuple(fp.element_to_fields_v1(path[1]) for path in STRIPPED if len(path) == 2)


# -- Apply -----------------------------------------------------------------------------------
def apply(current: Obj | None, manifest: Obj, manager: str, force: bool, *, kind: Kind, subresource: str = "",
          time: str = "") -> Obj:
    """Server-side apply of `manifest` by `manager` onto `current` (None: create). Returns the
    new object with its managedFields; raises a 409 Conflict naming each conflicting field."""
    if (manifest.get("metadata") or {}).get("managedFields") is not None:
        raise errors.BadRequest("metadata.managedFields must be nil")
    schema = kind.schema
    live = kind.zero() if current is None else _without_managed(current)
    entries = [] if current is None else _stored_entries(current)
    if current is not None and not entries:
        entries = _before_first_apply(live, kind, subresource, time)
    applied_all = typed.field_set(manifest, schema)
    applied_all -= kind.ignored(applied_all, subresource)
    key = (manager, "Apply", "", subresource)
    previous = _find(entries, key)
    others = [e for e in entries if e.key != key]
    merged = typed.merge(live, manifest, schema)
    if previous is not None:
        merged = _prune(merged, previous.fields, others, applied_all, schema)
    merged = _drop_nulls(merged)
    diff = typed.compare(live, merged, schema)
    _resolve_conflicts(others, diff, force)
    applier = previous or Entry(manager, "Apply", kind.api_version, subresource)
    applier.api_version = kind.api_version
    applier.fields = applied_all - STRIPPED
    if previous is None or merged != live:
        applier.time = time
    _set_managed(merged, [*others, applier])
    return merged


def _stored_entries(obj: Obj) -> list[Entry]:
    try:
        return decode(obj.get("metadata", {}).get("managedFields"))
    except ValueError:
        return []


def _before_first_apply(live: Obj, kind: Kind, subresource: str, time: str) -> list[Entry]:
    diff = typed.compare(kind.zero(), live, kind.schema)
    owned = diff.changed - STRIPPED
    owned -= kind.ignored(owned, subresource)
    return [Entry(BEFORE_FIRST_APPLY, "Update", kind.api_version, subresource, time, owned)] if owned else []


def _prune(merged: Obj, last: FieldSet, others: list[Entry], applied: FieldSet, schema: Node) -> Obj:
    """Remove what the applier owned before and neither it nor anybody else owns now."""
    owned = set(applied)
    for entry in others:
        owned |= entry.fields
    owned = typed.named_ancestors(owned, schema)
    present = typed.named_ancestors(typed.field_set(merged, schema), schema)
    doomed = (typed.named_ancestors(last, schema) & present) - owned - STRIPPED
    return typed.remove_items(merged, doomed, schema)  # type: ignore[no-any-return]


def _drop_nulls(val: Any) -> Any:
    if isinstance(val, dict):
        return {k: _drop_nulls(v) for k, v in val.items() if v is not None}
    if isinstance(val, list):
        return [_drop_nulls(v) for v in val]
    return val


def _resolve_conflicts(others: list[Entry], diff: typed.Comparison, force: bool) -> None:
    changed = diff.changed
    conflicts = [(e, sorted(e.fields & changed, key=_path_order)) for e in others]
    conflicts = [(e, paths) for e, paths in conflicts if paths]
    if conflicts and not force:
        raise conflict_error(conflicts)
    for entry in others:
        entry.fields -= changed | diff.removed


def _path_order(path: Path) -> tuple[Any, ...]:
    return tuple(fp.element_order(pe) for pe in path)


# -- conflicts -------------------------------------------------------------------------------
def describe_manager(entry: Entry) -> str:
    """`"kubectl-scale" with subresource "scale" using apps/v1`, as kube prints a manager."""
    text = fp.json_text(entry.manager)
    if entry.subresource:
        text += f" with subresource {fp.json_text(entry.subresource)}"
    if entry.operation == "Update":
        text += f" using {entry.api_version}"
    return text


def conflict_error(conflicts: list[tuple[Entry, list[Path]]]) -> errors.StatusError:
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {describe_manager(e)}",
               "field": fp.path_string(p)} for e, paths in conflicts for p in paths]
    total = len(causes)
    if total == 1:
        entry, paths = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {describe_manager(entry)}: {fp.path_string(paths[0])}"
    else:
        lines = []
        for entry, paths in sorted(conflicts, key=lambda c: _identifier(c[0])):
            lines.append(f"conflicts with {describe_manager(entry)}:")
            lines.extend(f"- {fp.path_string(p)}" for p in paths)
        message = f"Apply failed with {total} conflicts: " + "\n".join(lines)
    return errors.StatusError(message, code=409, reason="Conflict", details={"causes": causes})


def _identifier(entry: Entry) -> str:
    """kube sorts conflicting managers by their JSON identifier."""
    body: Obj = {"manager": entry.manager, "operation": entry.operation}
    if entry.operation != "Apply":
        body["apiVersion"] = entry.api_version
    if entry.subresource:
        body["subresource"] = entry.subresource
    return fp.json_text(body)


# -- hooks for the store ---------------------------------------------------------------------
def update_hook(kind: Kind, manager: str, subresource: str, now: Callable[[], str]) -> ManagedHook:
    def record(old: Obj | None, new: Obj) -> None:
        update_managed_fields(old, new, manager, "Update", subresource, now(), kind=kind)

    return record


def keep_hook(entries: list[Obj] | None) -> ManagedHook:
    """For apply: the entries were computed with the merge; put them back after the strategy."""
    def record(old: Obj | None, new: Obj) -> None:
        meta = new.setdefault("metadata", {})
        if entries:
            meta["managedFields"] = copy.deepcopy(entries)
        else:
            meta.pop("managedFields", None)

    return record


__all__ = ["ABSENT", "BEFORE_FIRST_APPLY", "Entry", "Kind", "ManagedHook", "apply", "conflict_error", "decode",
           "describe_manager", "encode", "keep_hook", "manager_from_user_agent", "update_hook",
           "update_managed_fields"]
