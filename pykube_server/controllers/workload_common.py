"""Helpers shared by the Job, CronJob, StatefulSet and DaemonSet controllers.

Why a module of its own: the workload controllers build pods from templates with the same
controller ownerReference, read the same pod states (ready, terminal, available) and, for
StatefulSets and DaemonSets, keep their template history in ControllerRevision objects named
and hashed the same way, as kube-controller-manager's `pkg/controller` helpers and
`controller/history` package are shared by its controllers.
"""

from __future__ import annotations

import copy
from datetime import datetime, timezone
from typing import Any

import orjson

from pykube_server.api import errors
from pykube_server.api.selectors import LabelSelector, selector_from_object
from pykube_server.api.types import Obj
from pykube_server.client.clock import Clock
from pykube_server.client.rest import CONTROLLERREVISIONS, Client, PatchType, Resource

REVISION_HASH_LABEL = "controller-revision-hash"
_SAFE_ALPHANUMS = "bcdfghjklmnpqrstvwxz2456789"


# --- time ----------------------------------------------------------------------------------------

def rfc3339(moment: datetime) -> str:
    """metav1.Time as written on the wire (UTC, second precision)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def now_text(clock: Clock) -> str:
    return rfc3339(clock.wall())


# --- object accessors -----------------------------------------------------------------------------

def meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def selector_of(obj: Obj) -> LabelSelector:
    return selector_from_object(spec(obj).get("selector"))


def controller_ref(obj: Obj) -> Obj | None:
    for ref in meta(obj).get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def is_controlled_by(obj: Obj, owner: Obj) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == meta(owner).get("uid")


def owner_reference(owner: Obj, *, api_version: str, kind: str) -> Obj:
    """The controller ownerReference a workload puts on what it creates."""
    m = meta(owner)
    return {"apiVersion": api_version, "kind": kind, "name": m.get("name", ""), "uid": m.get("uid", ""),
            "controller": True, "blockOwnerDeletion": True}


def pod_from_template(template: Obj, owner_ref: Obj) -> Obj:
    """A Pod body from a PodTemplateSpec, owned by `owner_ref` (the caller names it)."""
    tmeta = template.get("metadata") or {}
    pod_meta: Obj = {"ownerReferences": [owner_ref]}
    if tmeta.get("labels"):
        pod_meta["labels"] = dict(tmeta["labels"])
    if tmeta.get("annotations"):
        pod_meta["annotations"] = dict(tmeta["annotations"])
    if tmeta.get("finalizers"):
        pod_meta["finalizers"] = list(tmeta["finalizers"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": copy.deepcopy(template.get("spec") or {})}


# --- pod states ---------------------------------------------------------------------------------

def pod_phase(pod: Obj) -> str:
    return str(status(pod).get("phase") or "")


def is_terminal(pod: Obj) -> bool:
    return pod_phase(pod) in ("Succeeded", "Failed")


def is_deleting(obj: Obj) -> bool:
    return bool(meta(obj).get("deletionTimestamp"))


def is_active(pod: Obj) -> bool:
    """Neither finished nor being deleted (kube's `controller.IsPodActive`)."""
    return not is_terminal(pod) and not is_deleting(pod)


def pod_condition(pod: Obj, kind: str) -> Obj | None:
    for cond in status(pod).get("conditions") or ():
        if cond.get("type") == kind:
            return cond
    return None


def is_ready(pod: Obj) -> bool:
    cond = pod_condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def is_available(pod: Obj, min_ready_seconds: int, now: datetime) -> bool:
    """Ready for at least `min_ready_seconds` (kube's `podutil.IsPodAvailable`)."""
    cond = pod_condition(pod, "Ready")
    if cond is None or cond.get("status") != "True":
        return False
    if min_ready_seconds <= 0:
        return True
    since = parse_time(cond.get("lastTransitionTime"))
    return since is not None and (now - since).total_seconds() >= min_ready_seconds


# --- conditions -------------------------------------------------------------------------------

def find_condition(conditions: list[Obj], kind: str) -> Obj | None:
    for cond in conditions:
        if cond.get("type") == kind:
            return cond
    return None


def condition_true(obj: Obj, kind: str) -> bool:
    cond = find_condition(status(obj).get("conditions") or [], kind)
    return cond is not None and cond.get("status") == "True"


# --- writes ----------------------------------------------------------------------------------------

async def delete_ignoring_missing(client: Client, resource: Resource, obj: Obj, **kwargs: Any) -> bool:
    """Delete `obj` (uid precondition); False if it was already gone."""
    m = meta(obj)
    try:
        await client.delete(resource, m["name"], namespace=m.get("namespace", ""),
                            preconditions={"uid": m["uid"]} if m.get("uid") else None, **kwargs)
    except (errors.NotFound, errors.Conflict):
        return False
    return True


# --- controller revisions --------------------------------------------------------------------------

def safe_encode(text: str) -> str:
    """apimachinery's `rand.SafeEncodeString`: no vowels, no look-alike characters."""
    return "".join(_SAFE_ALPHANUMS[ord(ch) % len(_SAFE_ALPHANUMS)] for ch in text)


def fnv32a(data: bytes) -> int:
    value = 0x811C9DC5
    for byte in data:
        value ^= byte
        value = (value * 0x01000193) & 0xFFFFFFFF
    return value


def compute_hash(data: Obj, collision_count: int = 0) -> str:
    """kube's `controller.ComputeHash`: FNV-32a of the object (and collision count), safe-encoded."""
    raw = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        raw += collision_count.to_bytes(4, "little")
    return safe_encode(str(fnv32a(raw)))


def template_patch(obj: Obj) -> Obj:
    """What a StatefulSet's or DaemonSet's ControllerRevision stores: the template, to replace."""
    template = copy.deepcopy(spec(obj).get("template") or {})
    template["$patch"] = "replace"
    return {"spec": {"template": template}}


def revision_template(revision: Obj) -> Obj:
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def owned_revisions(revisions: list[Obj], owner: Obj) -> list[Obj]:
    """The owner's revisions, oldest first (by revision number, then name)."""
    mine = [r for r in revisions if is_controlled_by(r, owner)]
    return sorted(mine, key=lambda r: (int(r.get("revision") or 0), meta(r).get("name", "")))


async def ensure_revision(client: Client, owner: Obj, revisions: list[Obj], *, kind: str,
                          hash_in_name: bool = True) -> tuple[Obj, list[Obj]]:
    """The ControllerRevision holding the owner's current template, created (or re-numbered to
    the newest) if needed. Returns it and the owner's revisions, oldest first."""
    data = template_patch(owner)
    revisions = owned_revisions(revisions, owner)
    for rev in revisions:
        if rev.get("data") == data:
            newest = int(revisions[-1].get("revision") or 0)
            if rev is not revisions[-1] and int(rev.get("revision") or 0) != newest:
                rev = await client.patch(CONTROLLERREVISIONS, meta(rev)["name"], {"revision": newest + 1},
                                         namespace=meta(owner)["namespace"])
                revisions = [r for r in revisions if meta(r)["name"] != meta(rev)["name"]] + [rev]
            return rev, revisions
    number = int(revisions[-1].get("revision") or 0) + 1 if revisions else 1
    collisions = int(status(owner).get("collisionCount") or 0)
    digest = compute_hash(data, collisions)
    labels = dict((spec(owner).get("template") or {}).get("metadata", {}).get("labels") or {})
    labels[REVISION_HASH_LABEL] = digest
    body = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": f"{meta(owner)['name']}-{digest}", "namespace": meta(owner)["namespace"],
                         "labels": labels,
                         "ownerReferences": [owner_reference(owner, api_version="apps/v1", kind=kind)]},
            "data": data, "revision": number}
    try:
        created = await client.create(CONTROLLERREVISIONS, body)
    except errors.AlreadyExists:
        created = await client.get(CONTROLLERREVISIONS, body["metadata"]["name"], namespace=meta(owner)["namespace"])
        if created.get("data") != data:
            raise
        if int(created.get("revision") or 0) != number:
            created = await client.patch(CONTROLLERREVISIONS, body["metadata"]["name"], {"revision": number},
                                         namespace=meta(owner)["namespace"], patch_type=PatchType.MERGE)
    return created, revisions + [created]


def revision_hash(revision: Obj) -> str:
    return str((meta(revision).get("labels") or {}).get(REVISION_HASH_LABEL) or "")


async def truncate_history(client: Client, owner: Obj, revisions: list[Obj], live: set[str]) -> None:
    """Delete the oldest revisions beyond `revisionHistoryLimit` that no pod uses and that are
    not in `live` (revision names still current or updating)."""
    limit = int(spec(owner).get("revisionHistoryLimit", 10))
    old = [r for r in revisions if meta(r)["name"] not in live]
    for rev in old[: max(len(old) - limit, 0)]:
        await delete_ignoring_missing(client, CONTROLLERREVISIONS, rev)
