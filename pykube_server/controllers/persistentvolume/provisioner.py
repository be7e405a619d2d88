"""The built-in local-path provisioner: dynamic PersistentVolumes as directories on the node.

What rancher's local-path-provisioner does for kind and k3s, run inside the controller
manager (every pykube node lives on this machine, so the directory the kubelet mounts is one
the provisioner can make and remove itself):

* a claim whose class names `PROVISIONER`, which the PV binder has annotated with
  `volume.kubernetes.io/storage-provisioner` and, for WaitForFirstConsumer classes, the
  scheduler with `volume.kubernetes.io/selected-node`, gets a PV `pvc-<claim uid>`: a hostPath
  (`DirectoryOrCreate`) directory `<root>/<pv>_<namespace>_<claim>`, node affinity to the
  selected node (an Immediate class takes the first Ready node), capacity = the request, the
  class's reclaim policy and mount options, and a claimRef to the claim, so the binder binds
  them; events `Provisioning` and `ProvisioningSucceeded` (or `ProvisioningFailed`);
* a Released PV it provisioned with reclaim policy Delete loses its directory, then the PV is
  deleted (the PV protection finalizer lets it go once it is not Bound).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
from pathlib import Path

from pykube_server.api import errors
from pykube_server.api import persistentvolume as pvs
from pykube_server.api.types import Obj
from pykube_server.client.events import NORMAL, WARNING, EventRecorder
from pykube_server.client.rest import NODES, PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES
from pykube_server.controllers.framework import Context, Controller, Request, Result
from pykube_server.controllers.persistentvolume.common import STORAGECLASSES, claim_ref
from pykube_server.controllers.replicaset.controller import RecordingController
from pykube_server.controllers.workload_common import condition_true

log = logging.getLogger(__name__)

NAME = "local-path-provisioner"
PROVISIONER = "local-path.pykube.io"
HOSTNAME_LABEL = "kubernetes.io/hostname"
DEFAULT_ROOT = ".pykube/local-path"


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def volume_name(claim: Obj) -> str:
    return f"pvc-{_meta(claim).get('uid', '')}"


class ProvisionerReconciler:
    def __init__(self, ctx: Context, recorder: EventRecorder) -> None:
        self.client, self.recorder = ctx.client, recorder
        self.root = Path(str(ctx.options.get("local_path_dir") or DEFAULT_ROOT)).resolve()
        self.claims = ctx.informer(PERSISTENTVOLUMECLAIMS)
        self.volumes = ctx.informer(PERSISTENTVOLUMES)
        self.classes = ctx.informer(STORAGECLASSES)
        self.nodes = ctx.informer(NODES)

    @classmethod
    def create(cls, ctx: Context) -> Controller:
        recorder = EventRecorder(ctx.client, component=f"{PROVISIONER}_{socket.gethostname()}", clock=ctx.clock)
        reconciler = cls(ctx, recorder)
        controller = RecordingController(NAME, reconciler, recorder, workers=2, clock=ctx.clock)
        controller.watches(reconciler.claims)
        controller.watches(reconciler.volumes, lambda pv: (Request("", _meta(pv).get("name", "")),))
        controller.watches(reconciler.classes, lambda obj: ())
        controller.watches(reconciler.nodes, lambda obj: ())
        return controller

    async def reconcile(self, request: Request) -> Result:
        if request.namespace:
            claim = self.claims.lister.get(request.name, namespace=request.namespace)
            if claim is not None:
                await self.maybe_provision(claim)
            return Result()
        volume = self.volumes.lister.get(request.name)
        if volume is not None:
            await self.maybe_delete(volume)
        return Result()

    # -- provisioning ---------------------------------------------------------------------
    def _class_for(self, claim: Obj) -> Obj | None:
        name = pvs.claim_class(claim)
        sc = self.classes.lister.get(name) if name else None
        return sc if sc is not None and sc.get("provisioner") == PROVISIONER else None

    def _should_provision(self, claim: Obj, sc: Obj) -> bool:
        ann = pvs.annotations(claim)
        if _spec(claim).get("volumeName") or _meta(claim).get("deletionTimestamp"):
            return False
        if (ann.get(pvs.ANN_STORAGE_PROVISIONER) or ann.get(pvs.ANN_BETA_STORAGE_PROVISIONER)) != PROVISIONER:
            return False
        if sc.get("volumeBindingMode") == pvs.WAIT_FOR_FIRST_CONSUMER and not ann.get(pvs.ANN_SELECTED_NODE):
            return False
        return self.volumes.lister.get(volume_name(claim)) is None

    def _node_for(self, claim: Obj) -> Obj | None:
        selected = pvs.annotations(claim).get(pvs.ANN_SELECTED_NODE)
        if selected:
            return self.nodes.lister.get(selected) or {"metadata": {"name": selected}}
        ready = sorted((n for n in self.nodes.lister.list() if condition_true(n, "Ready")),
                       key=lambda n: _meta(n).get("name", ""))
        return ready[0] if ready else None

    async def maybe_provision(self, claim: Obj) -> None:
        sc = self._class_for(claim)
        if sc is None or not self._should_provision(claim, sc):
            return
        meta = _meta(claim)
        key = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        self.recorder.event(claim, NORMAL, "Provisioning", f'External provisioner is provisioning volume for claim "{key}"')
        if _spec(claim).get("selector") is not None:
            self.recorder.event(claim, WARNING, "ProvisioningFailed", "claim Selector is not supported")
            return
        node = self._node_for(claim)
        if node is None:
            self.recorder.event(claim, WARNING, "ProvisioningFailed",
                                "failed to provision volume with StorageClass "
                                f'"{_meta(sc).get("name", "")}": configuration error, no node was specified')
            raise RuntimeError("no node to provision on yet")
        name = volume_name(claim)
        path = self.root / f"{name}_{meta.get('namespace', '')}_{meta.get('name', '')}"
        try:
            await asyncio.to_thread(_make_dir, path)
        except OSError as exc:
            self.recorder.event(claim, WARNING, "ProvisioningFailed",
                                f'failed to provision volume with StorageClass "{_meta(sc).get("name", "")}": {exc}')
            raise
        try:
            await self.client.create(PERSISTENTVOLUMES, self.volume_for(claim, sc, node, path))
        except errors.AlreadyExists:
            return
        self.recorder.event(claim, NORMAL, "ProvisioningSucceeded", f"Successfully provisioned volume {name}")

    @staticmethod
    def volume_for(claim: Obj, sc: Obj, node: Obj, path: Path) -> Obj:
        """The PV local-path would create for `claim` on `node`."""
        spec = _spec(claim)
        node_meta = _meta(node)
        hostname = (node_meta.get("labels") or {}).get(HOSTNAME_LABEL) or node_meta.get("name", "")
        volume_spec: Obj = {
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "capacity": {"storage": ((spec.get("resources") or {}).get("requests") or {}).get("storage", "0")},
            "claimRef": claim_ref(claim),
            "hostPath": {"path": str(path), "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": HOSTNAME_LABEL, "operator": "In", "values": [hostname]}]}]}},
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
            "storageClassName": _meta(sc).get("name", ""),
            "volumeMode": spec.get("volumeMode") or "Filesystem",
        }
        if sc.get("mountOptions"):
            volume_spec["mountOptions"] = list(sc["mountOptions"])
        return {"apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": volume_name(claim),
                             "annotations": {pvs.ANN_PROVISIONED_BY: PROVISIONER,
                                             "pykube.io/local-path-selected-node": node_meta.get("name", "")}},
                "spec": volume_spec}

    # -- deleting -------------------------------------------------------------------------
    async def maybe_delete(self, volume: Obj) -> None:
        if pvs.annotations(volume).get(pvs.ANN_PROVISIONED_BY) != PROVISIONER:
            return
        if (volume.get("status") or {}).get("phase") != "Released" \
                or _spec(volume).get("persistentVolumeReclaimPolicy") != "Delete" or _meta(volume).get("deletionTimestamp"):
            return
        path = Path(str((_spec(volume).get("hostPath") or _spec(volume).get("local") or {}).get("path", "")))
        if path.parent == self.root:  # never remove anything we did not make
            try:
                await asyncio.to_thread(shutil.rmtree, path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                self.recorder.event(volume, WARNING, "VolumeFailedDelete", f"failed to delete volume {path}: {exc}")
                raise
        try:
            await self.client.delete(PERSISTENTVOLUMES, _meta(volume).get("name", ""),
                                     preconditions={"uid": _meta(volume).get("uid", "")})
        except (errors.NotFound, errors.Conflict):
            pass
        log.info("deleted volume %s and its directory %s", _meta(volume).get("name"), path)


def _make_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o777)


def create(ctx: Context) -> Controller:
    return ProvisionerReconciler.create(ctx)
