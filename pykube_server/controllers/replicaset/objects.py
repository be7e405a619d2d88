"""Reading the objects the workload controllers share: ownership, pod readiness and
availability, timestamps, conditions, and claiming (upstream's ControllerRefManager).

Claiming lives here because the deployment controller claims ReplicaSets exactly the way the
ReplicaSet controller claims pods: adopt matching orphans with a strategic-merge patch that adds
a controllerRef, release owned objects that stopped matching with a patch that deletes it, and
adopt only after re-reading the owner from the server (it must not be on its way out).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pykube_server.api import errors
from pykube_server.api.selectors import LabelSelector
from pykube_server.api.types import Obj
from pykube_server.client.clock import Clock
from pykube_server.client.events import format_time
from pykube_server.client.rest import Client, PatchType, Resource


def meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def key_of(obj: Obj) -> str:
    return f"{meta(obj).get('namespace', '')}/{meta(obj).get('name', '')}"


def controller_ref(obj: Obj) -> Obj | None:
    return next((ref for ref in meta(obj).get("ownerReferences") or () if ref.get("controller")), None)


def new_controller_ref(owner: Obj) -> Obj:
    return {"apiVersion": owner.get("apiVersion", ""), "kind": owner.get("kind", ""), "name": meta(owner)["name"],
            "uid": meta(owner)["uid"], "controller": True, "blockOwnerDeletion": True}


def now_time(clock: Clock) -> str:
    return format_time(clock.wall())


def parse_time(value: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if value else None
    except ValueError:
        return None


def is_pod_active(pod: Obj) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not meta(pod).get("deletionTimestamp")


def ready_condition(pod: Obj) -> Obj | None:
    return next((c for c in (pod.get("status") or {}).get("conditions") or () if c.get("type") == "Ready"), None)


def is_pod_ready(pod: Obj) -> bool:
    cond = ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def is_pod_available(pod: Obj, min_ready_seconds: int, now: datetime) -> bool:
    """Ready, and Ready for longer than minReadySeconds (upstream's IsPodAvailable)."""
    if not is_pod_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = parse_time((ready_condition(pod) or {}).get("lastTransitionTime"))
    return since is not None and since + timedelta(seconds=min_ready_seconds) < now


def set_condition(status: Obj, cond: Obj) -> None:
    """Upstream's SetCondition: same status and reason keeps the old one; the new one goes last."""
    conds = status.get("conditions") or []
    current = next((c for c in conds if c.get("type") == cond["type"]), None)
    if current and current.get("status") == cond["status"] and current.get("reason") == cond.get("reason"):
        return
    if current and current.get("status") == cond["status"]:
        cond = {**cond, "lastTransitionTime": current.get("lastTransitionTime")}
    status["conditions"] = [c for c in conds if c.get("type") != cond["type"]] + [cond]


def remove_condition(status: Obj, kind: str) -> None:
    conds = [c for c in status.get("conditions") or [] if c.get("type") != kind]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)


@dataclass
class RefManager:
    """Adopts matching orphans and releases non-matching children of one controller."""

    client: Client
    owner: Obj
    owner_resource: Resource
    child_resource: Resource
    selector: LabelSelector
    _can_adopt: bool | None = None

    async def claim(self, children: Iterable[Obj]) -> list[Obj]:
        claimed = []
        for child in children:
            try:
                if await self._claim_one(child):
                    claimed.append(child)
            except errors.NotFound:
                continue  # the child is gone: nothing to claim
        return claimed

    async def _claim_one(self, child: Obj) -> bool:
        ref, owner_meta = controller_ref(child), meta(self.owner)
        matches = self.selector.matches(meta(child).get("labels") or {})
        if ref is not None:
            if ref.get("uid") != owner_meta.get("uid"):
                return False
            if matches:
                return True
            if not owner_meta.get("deletionTimestamp"):
                await self._patch(child, {"$patch": "delete", "uid": owner_meta["uid"]})
            return False
        if owner_meta.get("deletionTimestamp") or not matches or meta(child).get("deletionTimestamp"):
            return False
        if meta(child).get("namespace") != owner_meta.get("namespace") or not await self._recheck():
            return False
        await self._patch(child, new_controller_ref(self.owner))
        return True

    async def _recheck(self) -> bool:
        """Adopt only if the owner, read fresh from the server, is the same and not being deleted."""
        if self._can_adopt is None:
            fresh = await self.client.get(self.owner_resource, meta(self.owner)["name"],
                                          namespace=meta(self.owner).get("namespace", ""))
            self._can_adopt = (meta(fresh).get("uid") == meta(self.owner).get("uid")
                               and not meta(fresh).get("deletionTimestamp"))
        return self._can_adopt

    async def _patch(self, child: Obj, ref: Obj) -> None:
        body = {"metadata": {"ownerReferences": [ref], "uid": meta(child).get("uid")}}
        await self.client.patch(self.child_resource, meta(child)["name"], body, namespace=meta(child)["namespace"],
                                patch_type=PatchType.STRATEGIC)
