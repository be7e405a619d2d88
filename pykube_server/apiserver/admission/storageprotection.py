"""The `StorageObjectInUseProtection` admission plugin: new claims and volumes carry their
protection finalizer from the start.

Why at admission: a claim deleted right after it was created, while a pod already uses it,
must not vanish before the pvc-protection controller ever saw it. So on create a
PersistentVolumeClaim gets `kubernetes.io/pvc-protection` and a PersistentVolume
`kubernetes.io/pv-protection`; the protection controllers remove them once nothing uses the
object.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pykube_server.api import persistentvolume as pvs
from pykube_server.apiserver.admission import CREATE, Attributes

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

FINALIZERS = {"persistentvolumeclaims": pvs.PVC_PROTECTION_FINALIZER, "persistentvolumes": pvs.PV_PROTECTION_FINALIZER}


class StorageObjectInUseProtection:
    name = "StorageObjectInUseProtection"

    def __init__(self, server: APIServer) -> None:
        self.server = server

    async def admit(self, attributes: Attributes) -> None:
        if attributes.operation != CREATE or attributes.group or attributes.subresource or attributes.obj is None:
            return
        finalizer = FINALIZERS.get(attributes.resource)
        if finalizer is None:
            return
        meta = attributes.obj.setdefault("metadata", {})
        finalizers = list(meta.get("finalizers") or [])
        if finalizer not in finalizers:
            meta["finalizers"] = [*finalizers, finalizer]
