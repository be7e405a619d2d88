"""The PVC and PV protection controllers: in-use storage is not deleted from under a pod.

`persistentvolumeclaim-protection-controller`: a claim being deleted keeps its
`kubernetes.io/pvc-protection` finalizer while a scheduled pod that has not finished uses it
(checked against a live pod list, as kube does, because the cache may lag a new pod); the
finalizer is added to claims that lack it. `persistentvolume-protection-controller`: a PV
being deleted keeps `kubernetes.io/pv-protection` while it is Bound. The finalizers are put on
new objects by the StorageObjectInUseProtection admission plugin.
"""

from __future__ import annotations

from collections.abc import Iterable

from pykube_server.api import errors
from pykube_server.api import persistentvolume as pvs
from pykube_server.api.types import Obj
from pykube_server.client.rest import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, PODS, Client, Resource
from pykube_server.controllers.framework import Context, Controller, Request, Result

PVC_NAME = "persistentvolumeclaim-protection-controller"
PV_NAME = "persistentvolume-protection-controller"


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def claim_names(pod: Obj) -> list[str]:
    """The claims a pod's volumes use (generic ephemeral volumes name theirs `<pod>-<volume>`)."""
    names = []
    for volume in (pod.get("spec") or {}).get("volumes") or ():
        if volume.get("persistentVolumeClaim"):
            names.append(volume["persistentVolumeClaim"].get("claimName", ""))
        elif volume.get("ephemeral"):
            names.append(f"{_meta(pod).get('name', '')}-{volume.get('name', '')}")
    return names


def pod_blocks(pod: Obj, claim: str) -> bool:
    """podUsesPVC: scheduled, not finished, and naming the claim."""
    if not (pod.get("spec") or {}).get("nodeName"):
        return False
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    return claim in claim_names(pod)


async def _set_finalizer(client: Client, resource: Resource, obj: Obj, finalizer: str, present: bool) -> None:
    meta = dict(_meta(obj))
    finalizers = [f for f in meta.get("finalizers") or [] if f != finalizer]
    if present:
        finalizers.append(finalizer)
    meta["finalizers"] = finalizers
    try:
        await client.update(resource, {**obj, "metadata": meta})
    except errors.NotFound:
        pass


class PVCProtectionReconciler:
    def __init__(self, ctx: Context) -> None:
        self.client = ctx.client
        self.claims = ctx.informer(PERSISTENTVOLUMECLAIMS)
        self.pods = ctx.informer(PODS)

    @classmethod
    def create(cls, ctx: Context) -> Controller:
        reconciler = cls(ctx)
        controller = Controller(PVC_NAME, reconciler, workers=1, clock=ctx.clock)
        controller.watches(reconciler.claims)
        controller.watches(reconciler.pods, pod_claim_requests)
        return controller

    async def reconcile(self, request: Request) -> Result:
        claim = self.claims.lister.get(request.name, namespace=request.namespace)
        if claim is None:
            return Result()
        has = pvs.PVC_PROTECTION_FINALIZER in (_meta(claim).get("finalizers") or [])
        if not _meta(claim).get("deletionTimestamp"):
            if not has:
                await _set_finalizer(self.client, PERSISTENTVOLUMECLAIMS, claim, pvs.PVC_PROTECTION_FINALIZER, True)
            return Result()
        if not has:
            return Result()
        if any(pod_blocks(p, request.name) for p in self.pods.lister.list(namespace=request.namespace)):
            return Result()
        live = await self.client.list(PODS, namespace=request.namespace)
        if any(pod_blocks(p, request.name) for p in live.get("items") or []):
            return Result()
        await _set_finalizer(self.client, PERSISTENTVOLUMECLAIMS, claim, pvs.PVC_PROTECTION_FINALIZER, False)
        return Result()


def pod_claim_requests(pod: Obj) -> Iterable[Request]:
    ns = _meta(pod).get("namespace", "")
    return [Request(ns, name) for name in claim_names(pod)]


class PVProtectionReconciler:
    def __init__(self, ctx: Context) -> None:
        self.client = ctx.client
        self.volumes = ctx.informer(PERSISTENTVOLUMES)

    @classmethod
    def create(cls, ctx: Context) -> Controller:
        reconciler = cls(ctx)
        return Controller(PV_NAME, reconciler, workers=1, clock=ctx.clock).watches(reconciler.volumes)

    async def reconcile(self, request: Request) -> Result:
        volume = self.volumes.lister.get(request.name)
        if volume is None:
            return Result()
        has = pvs.PV_PROTECTION_FINALIZER in (_meta(volume).get("finalizers") or [])
        if not _meta(volume).get("deletionTimestamp"):
            if not has:
                await _set_finalizer(self.client, PERSISTENTVOLUMES, volume, pvs.PV_PROTECTION_FINALIZER, True)
            return Result()
        if has and (volume.get("status") or {}).get("phase") != "Bound":
            await _set_finalizer(self.client, PERSISTENTVOLUMES, volume, pvs.PV_PROTECTION_FINALIZER, False)
        return Result()


def create_pvc_protection(ctx: Context) -> Controller:
    return PVCProtectionReconciler.create(ctx)


def create_pv_protection(ctx: Context) -> Controller:
    return PVProtectionReconciler.create(ctx)
