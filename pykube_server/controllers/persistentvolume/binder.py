"""The PV binder (`persistentvolume-binder-controller`): claims meet volumes, both ways.

Kube's pkg/controller/volume/persistentvolume, as an external-provisioner cluster (kind, k3s)
runs it. Keys are claims (`namespace/name`) and volumes (cluster-scoped `name`):

* an unbound claim takes its pre-bound volume (`spec.volumeName`, or a PV whose claimRef names
  it), else the smallest Available PV that fits (`api/persistentvolume.find_best_match`);
  none fitting: a WaitForFirstConsumer claim waits for the scheduler's selected-node
  annotation (event `WaitForFirstConsumer`), a claim whose class names a provisioner gets the
  `volume.kubernetes.io/storage-provisioner` annotations and the `ExternalProvisioning` event
  (the provisioner then creates a PV pre-bound to it), a claim without class stays Pending;
* binding writes the PV's claimRef (and `bound-by-controller` when the controller chose it),
  PV phase Bound, the claim's volumeName with `bind-completed`, then the claim's status
  (phase, accessModes, capacity), in kube's order, each step idempotent;
* a bound claim whose PV vanished is Lost (`ClaimLost`); a PV whose claim is gone is Released
  and reclaimed: Retain keeps it, Delete of a provisioned PV is the provisioner's job, Delete
  or Recycle of any other PV fails (no in-tree deleter here), as kube reports it;
* a claim without any class gets the default StorageClass later, when one appears
  (retroactive default class assignment, GA in 1.28).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from pykube_server.api import errors
from pykube_server.api import persistentvolume as pvs
from pykube_server.api.types import Obj
from pykube_server.client.events import NORMAL, WARNING, EventRecorder
from pykube_server.client.informer import FuncHandler
from pykube_server.client.rest import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES
from pykube_server.controllers.framework import Context, Controller, Request, Result
from pykube_server.controllers.persistentvolume.common import STORAGECLASSES, claim_ref, with_phase
from pykube_server.controllers.replicaset.controller import RecordingController

log = logging.getLogger(__name__)

NAME = "persistentvolume-binder-controller"
COMPONENT = "persistentvolume-controller"
RESYNC_SECONDS = 15.0
"""kube's --pvclaimbinder-sync-period: pending claims are looked at again this often."""


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def _phase(obj: Obj) -> str:
    return (obj.get("status") or {}).get("phase") or ""


def external_provisioning_message(provisioner: str) -> str:
    return (f"Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually "
            f"by the system administrator. If volume creation is delayed, please verify that the provisioner "
            f"is running and correctly registered.")


class BinderReconciler:
    def __init__(self, ctx: Context, recorder: EventRecorder) -> None:
        self.client, self.clock, self.recorder = ctx.client, ctx.clock, recorder
        self.claims = ctx.informer(PERSISTENTVOLUMECLAIMS)
        self.volumes = ctx.informer(PERSISTENTVOLUMES)
        self.classes = ctx.informer(STORAGECLASSES)
        self.resync = float(ctx.options.get("pvclaimbinder_sync_period_seconds", RESYNC_SECONDS))

    @classmethod
    def create(cls, ctx: Context) -> Controller:
        recorder = EventRecorder(ctx.client, component=COMPONENT, clock=ctx.clock)
        reconciler = cls(ctx, recorder)
        controller = RecordingController(NAME, reconciler, recorder, workers=2, clock=ctx.clock)
        controller.watches(reconciler.claims, claim_requests)
        controller.watches(reconciler.volumes, volume_requests)

        def class_changed(_: Obj) -> None:
            for claim in reconciler.claims.lister.list():
                if not _spec(claim).get("volumeName"):
                    controller.queue.add(Request.of(claim))

        reconciler.classes.add_handler(FuncHandler(add=class_changed, update=lambda old, new: class_changed(new)))
        controller.watches(reconciler.classes, lambda obj: ())
        return controller

    # -- dispatch -------------------------------------------------------------------------
    async def reconcile(self, request: Request) -> Result:
        if request.namespace:
            claim = self.claims.lister.get(request.name, namespace=request.namespace)
            if claim is None:
                return Result()
            return await self.sync_claim(claim)
        volume = self.volumes.lister.get(request.name)
        if volume is None:
            return Result()
        await self.sync_volume(volume)
        return Result()

    def _classes(self) -> dict[str, Obj]:
        return {_meta(sc).get("name", ""): sc for sc in self.classes.lister.list()}

    # -- claims ---------------------------------------------------------------------------
    async def sync_claim(self, claim: Obj) -> Result:
        if await self._assign_default_class(claim):
            return Result()
        if pvs.annotations(claim).get(pvs.ANN_BIND_COMPLETED) is None:
            return await self.sync_unbound_claim(claim)
        await self.sync_bound_claim(claim)
        return Result()

    async def _assign_default_class(self, claim: Obj) -> bool:
        """Retroactive default StorageClass: only claims with no class at all (not "")."""
        spec = _spec(claim)
        if spec.get("storageClassName") is not None or spec.get("volumeName") \
                or pvs.ANN_BETA_STORAGE_CLASS in pvs.annotations(claim) or _phase(claim) not in ("", "Pending"):
            return False
        default = pvs.default_class(self.classes.lister.list())
        if default is None:
            return False
        await self.client.update(PERSISTENTVOLUMECLAIMS, {**claim, "spec": {**spec, "storageClassName": _meta(default)["name"]}})
        return True

    async def sync_unbound_claim(self, claim: Obj) -> Result:
        spec = _spec(claim)
        volume_name = spec.get("volumeName") or ""
        if not volume_name:
            classes = self._classes()
            delayed = pvs.is_delayed_binding(claim, classes)
            volume = pvs.find_best_match(claim, self.volumes.lister.list(), delayed_binding=delayed)
            if volume is not None:
                await self.bind(volume, claim)
                return Result()
            if delayed and not pvs.annotations(claim).get(pvs.ANN_SELECTED_NODE):
                self.recorder.event(claim, NORMAL, "WaitForFirstConsumer",
                                    "waiting for first consumer to be created before binding")
            elif pvs.claim_class(claim):
                await self._provision(claim, classes.get(pvs.claim_class(claim)))
            else:
                self.recorder.event(claim, NORMAL, "FailedBinding",
                                    "no persistent volumes available for this claim and no storage class is set")
            await self._claim_phase(claim, "Pending")
            return Result(requeue_after=self.resync)
        volume = self.volumes.lister.get(volume_name)
        if volume is None:
            await self._claim_phase(claim, "Pending")
            return Result(requeue_after=self.resync)
        if not _spec(volume).get("claimRef"):
            mismatch = pvs.satisfy_mismatch(claim, volume)
            if mismatch:
                self.recorder.event(claim, WARNING, "VolumeMismatch", f'Cannot bind to requested volume "{volume_name}": {mismatch}')
                await self._claim_phase(claim, "Pending")
                return Result(requeue_after=self.resync)
            await self.bind(volume, claim)
        elif pvs.is_bound_to_claim(volume, claim):
            await self.bind(volume, claim)
        else:
            if pvs.annotations(claim).get(pvs.ANN_BOUND_BY_CONTROLLER):
                log.info("claim %s/%s: volume %s bound to another claim; waiting", _meta(claim).get("namespace"),
                         _meta(claim).get("name"), volume_name)
            else:
                self.recorder.event(claim, WARNING, "FailedBinding", f'volume "{volume_name}" already bound to a different claim.')
            await self._claim_phase(claim, "Pending")
            return Result(requeue_after=self.resync)
        return Result()

    async def _provision(self, claim: Obj, sc: Obj | None) -> None:
        """provisionClaim for an external provisioner: say who should provision, and wait."""
        if sc is None:
            self.recorder.event(claim, WARNING, "ProvisioningFailed",
                                f'storageclass.storage.k8s.io "{pvs.claim_class(claim)}" not found')
            return
        provisioner = str(sc.get("provisioner") or "")
        if provisioner == pvs.NO_PROVISIONER:
            return
        ann = pvs.annotations(claim)
        if ann.get(pvs.ANN_STORAGE_PROVISIONER) != provisioner or ann.get(pvs.ANN_BETA_STORAGE_PROVISIONER) != provisioner:
            meta = dict(_meta(claim))
            meta["annotations"] = {**ann, pvs.ANN_BETA_STORAGE_PROVISIONER: provisioner,
                                   pvs.ANN_STORAGE_PROVISIONER: provisioner}
            claim = await self.client.update(PERSISTENTVOLUMECLAIMS, {**claim, "metadata": meta})
        self.recorder.event(claim, NORMAL, "ExternalProvisioning", external_provisioning_message(provisioner))

    async def sync_bound_claim(self, claim: Obj) -> None:
        volume_name = _spec(claim).get("volumeName") or ""
        if not volume_name:
            await self._claim_lost(claim, "ClaimLost", "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
            return
        volume = self.volumes.lister.get(volume_name)
        if volume is None:
            await self._claim_lost(claim, "ClaimLost", "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
            return
        if not _spec(volume).get("claimRef") or pvs.is_bound_to_claim(volume, claim):
            await self.bind(volume, claim)
            return
        await self._claim_lost(claim, "ClaimMisbound", "Two claims are bound to the same volume, this one is bound incorrectly")

    async def _claim_lost(self, claim: Obj, reason: str, message: str) -> None:
        if _phase(claim) != "Lost":
            self.recorder.event(claim, WARNING, reason, message)
        await self._claim_phase(claim, "Lost")

    async def _claim_phase(self, claim: Obj, phase: str) -> Obj:
        if _phase(claim) == phase:
            return claim
        status = {**(claim.get("status") or {}), "phase": phase}
        if phase == "Pending":
            status.pop("capacity", None)
            status.pop("accessModes", None)
        return await self.client.update(PERSISTENTVOLUMECLAIMS, {**claim, "status": status}, subresource="status")

    # -- binding --------------------------------------------------------------------------
    async def bind(self, volume: Obj, claim: Obj) -> None:
        """bind(): PV claimRef, PV phase, claim volumeName + annotations, claim status."""
        volume = await self._bind_volume_to_claim(volume, claim)
        if _phase(volume) != "Bound":
            volume = await self.client.update(PERSISTENTVOLUMES, with_phase(volume, "Bound", self.clock), subresource="status")
        claim = await self._bind_claim_to_volume(claim, volume)
        status = dict(claim.get("status") or {})
        wanted = {"phase": "Bound", "accessModes": list(_spec(volume).get("accessModes") or []),
                  "capacity": dict(_spec(volume).get("capacity") or {})}
        if any(status.get(k) != v for k, v in wanted.items()):
            await self.client.update(PERSISTENTVOLUMECLAIMS, {**claim, "status": {**status, **wanted}}, subresource="status")
        meta = _meta(claim)
        log.info("bound claim %s/%s to volume %s", meta.get("namespace"), meta.get("name"), _meta(volume).get("name"))

    async def _bind_volume_to_claim(self, volume: Obj, claim: Obj) -> Obj:
        ref = _spec(volume).get("claimRef") or {}
        wanted = claim_ref(claim)
        if (ref.get("uid"), ref.get("namespace"), ref.get("name")) == (wanted["uid"], wanted["namespace"], wanted["name"]):
            return volume
        meta = dict(_meta(volume))
        if not pvs.is_bound_to_claim(volume, claim):
            meta["annotations"] = {**pvs.annotations(volume), pvs.ANN_BOUND_BY_CONTROLLER: "yes"}
        updated: Obj = await self.client.update(PERSISTENTVOLUMES, {**volume, "metadata": meta,
                                                                     "spec": {**_spec(volume), "claimRef": wanted}})
        return updated

    async def _bind_claim_to_volume(self, claim: Obj, volume: Obj) -> Obj:
        name = _meta(volume).get("name", "")
        ann = dict(pvs.annotations(claim))
        spec = dict(_spec(claim))
        changed = False
        if spec.get("volumeName") != name:
            spec["volumeName"] = name
            ann[pvs.ANN_BOUND_BY_CONTROLLER] = "yes"
            changed = True
        if ann.get(pvs.ANN_BIND_COMPLETED) != "yes":
            ann[pvs.ANN_BIND_COMPLETED] = "yes"
            changed = True
        if not changed:
            return claim
        updated: Obj = await self.client.update(PERSISTENTVOLUMECLAIMS, {**claim, "metadata": {**_meta(claim), "annotations": ann},
                                                                         "spec": spec})
        return updated

    # -- volumes --------------------------------------------------------------------------
    async def sync_volume(self, volume: Obj) -> None:
        ref = _spec(volume).get("claimRef")
        if not ref or not ref.get("uid"):
            if _phase(volume) != "Available":
                await self._volume_phase(volume, "Available")
            return
        claim = self.claims.lister.get(ref.get("name", ""), namespace=ref.get("namespace", ""))
        if claim is None:
            try:  # the cache may lag behind a claim that was just created
                claim = await self.client.get(PERSISTENTVOLUMECLAIMS, ref.get("name", ""), namespace=ref.get("namespace", ""))
            except errors.NotFound:
                claim = None
        if claim is not None and _meta(claim).get("uid") != ref.get("uid"):
            claim = None
        if claim is None:
            if _phase(volume) not in ("Released", "Failed"):
                volume = await self._volume_phase(volume, "Released")
            await self.reclaim(volume)
            return
        volume_name = _meta(volume).get("name", "")
        claimed = _spec(claim).get("volumeName") or ""
        if not claimed:
            return  # the claim's sync finishes the binding
        if claimed == volume_name:
            if _phase(volume) != "Bound":
                await self._volume_phase(volume, "Bound")
            return
        if pvs.annotations(volume).get(pvs.ANN_BOUND_BY_CONTROLLER):
            meta = dict(_meta(volume))
            meta["annotations"] = {k: v for k, v in pvs.annotations(volume).items() if k != pvs.ANN_BOUND_BY_CONTROLLER}
            spec = {k: v for k, v in _spec(volume).items() if k != "claimRef"}
            volume = await self.client.update(PERSISTENTVOLUMES, {**volume, "metadata": meta, "spec": spec})
            await self._volume_phase(volume, "Available")
            return
        if _phase(volume) not in ("Released", "Failed"):
            volume = await self._volume_phase(volume, "Released")
        await self.reclaim(volume)

    async def reclaim(self, volume: Obj) -> None:
        """reclaimVolume: Retain keeps the volume; the provisioner deletes the ones it made."""
        policy = _spec(volume).get("persistentVolumeReclaimPolicy") or "Retain"
        name = _meta(volume).get("name", "")
        if policy == "Retain" or _phase(volume) == "Failed":
            return
        if policy == "Delete":
            if pvs.annotations(volume).get(pvs.ANN_PROVISIONED_BY):
                return  # an external provisioner's volume: it deletes it
            message = f'error getting deleter volume plugin for volume "{name}": no deletable volume plugin matched'
            self.recorder.event(volume, WARNING, "VolumeFailedDelete", message)
            await self._volume_phase(volume, "Failed", message=message)
            return
        message = "No recycler plugin found for the volume!"
        self.recorder.event(volume, WARNING, "VolumeFailedRecycle", message)
        await self._volume_phase(volume, "Failed", message=message)

    async def _volume_phase(self, volume: Obj, phase: str, *, message: str = "") -> Obj:
        updated: Obj = await self.client.update(PERSISTENTVOLUMES, with_phase(volume, phase, self.clock, message=message),
                                                subresource="status")
        return updated


def claim_requests(claim: Obj) -> Iterable[Request]:
    yield Request.of(claim)
    if _spec(claim).get("volumeName"):
        yield Request("", _spec(claim)["volumeName"])


def volume_requests(volume: Obj) -> Iterable[Request]:
    yield Request("", _meta(volume).get("name", ""))
    ref: Any = _spec(volume).get("claimRef")
    if ref and ref.get("name") and ref.get("namespace"):
        yield Request(ref["namespace"], ref["name"])


def create(ctx: Context) -> Controller:
    return BinderReconciler.create(ctx)
