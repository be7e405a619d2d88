"""Claiming children for a controller: upstream's ControllerRefManager, shared by every
workload controller (ReplicaSet/ReplicationController claim pods, Deployment claims
ReplicaSets, Job claims pods).

Claiming adopts matching orphans with a strategic-merge patch that adds a controllerRef, and
releases owned children that stopped matching with a patch that deletes it. Adoption happens
only after re-reading the owner from the server once per claim (RecheckDeletionTimestamp): an
owner that is being deleted, or was deleted and re-created under the same name, must not adopt.
A manager built with `finalizers` adds them on adoption and removes them on release, as the Job
controller does with its pod-tracking finalizer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pykube_server.api import errors
from pykube_server.api.selectors import LabelSelector
from pykube_server.api.types import Obj
from pykube_server.client.rest import Client, PatchType, Resource


def meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def controller_ref(obj: Obj) -> Obj | None:
    return next((ref for ref in meta(obj).get("ownerReferences") or () if ref.get("controller")), None)


def new_controller_ref(owner: Obj) -> Obj:
    return {"apiVersion": owner.get("apiVersion", ""), "kind": owner.get("kind", ""), "name": meta(owner)["name"],
            "uid": meta(owner)["uid"], "controller": True, "blockOwnerDeletion": True}


@dataclass
class RefManager:
    """Adopts matching orphans and releases non-matching children of one controller."""

    client: Client
    owner: Obj
    owner_resource: Resource
    child_resource: Resource
    selector: LabelSelector
    finalizers: tuple[str, ...] = field(default=())
    _can_adopt: bool | None = None

    async def claim(self, children: Iterable[Obj]) -> list[Obj]:
        """The children this owner controls after adopting and releasing; children that vanish
        while being patched are left out."""
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
                await self._release(child)
            return False
        if owner_meta.get("deletionTimestamp") or not matches or meta(child).get("deletionTimestamp"):
            return False
        if meta(child).get("namespace") != owner_meta.get("namespace") or not await self._recheck():
            return False
        await self._adopt(child)
        return True

    async def _recheck(self) -> bool:
        """Adopt only if the owner, read fresh from the server, is the same and not being deleted."""
        if self._can_adopt is None:
            fresh = await self.client.get(self.owner_resource, meta(self.owner)["name"],
                                          namespace=meta(self.owner).get("namespace", ""))
            self._can_adopt = (meta(fresh).get("uid") == meta(self.owner).get("uid")
                               and not meta(fresh).get("deletionTimestamp"))
        return self._can_adopt

    async def _adopt(self, child: Obj) -> None:
        body: Obj = {"metadata": {"ownerReferences": [new_controller_ref(self.owner)], "uid": meta(child).get("uid")}}
        if self.finalizers:
            body["metadata"]["finalizers"] = list(self.finalizers)
        await self._patch(child, body)
        child_meta = child.setdefault("metadata", {})
        child_meta["ownerReferences"] = [*(child_meta.get("ownerReferences") or ()), new_controller_ref(self.owner)]
        if self.finalizers:
            present = child_meta.get("finalizers") or []
            child_meta["finalizers"] = [*present, *(f for f in self.finalizers if f not in present)]

    async def _release(self, child: Obj) -> None:
        ref = {"$patch": "delete", "uid": meta(self.owner)["uid"]}
        body: Obj = {"metadata": {"ownerReferences": [ref], "uid": meta(child).get("uid")}}
        if self.finalizers:
            body["metadata"]["$deleteFromPrimitiveList/finalizers"] = list(self.finalizers)
        await self._patch(child, body)

    async def _patch(self, child: Obj, body: Obj) -> None:
        await self.client.patch(self.child_resource, meta(child)["name"], body, namespace=meta(child)["namespace"],
                                patch_type=PatchType.STRATEGIC)
