"""The `DefaultStorageClass` admission plugin: a claim that names no class gets the default one.

On PersistentVolumeClaim create, a claim whose `spec.storageClassName` is absent (not `""`,
which asks for no class) and without the beta storage-class annotation gets the StorageClass
annotated `storageclass.kubernetes.io/is-default-class: "true"` (the newest, when several are),
so `kubectl get pvc` shows `standard` as on kind. Classes are read from the watch cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pykube_server.api import persistentvolume as pvs
from pykube_server.apiserver.admission import CREATE, Attributes

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer


class DefaultStorageClass:
    name = "DefaultStorageClass"

    def __init__(self, server: APIServer) -> None:
        self.classes = server.store_for("storage.k8s.io", "v1", "storageclasses")

    async def admit(self, attributes: Attributes) -> None:
        if attributes.operation != CREATE or not attributes.is_("", "persistentvolumeclaims") or attributes.obj is None:
            return
        claim = attributes.obj
        spec = claim.setdefault("spec", {})
        if spec.get("storageClassName") is not None or pvs.ANN_BETA_STORAGE_CLASS in pvs.annotations(claim):
            return
        cached = self.classes.cacher.resource(self.classes.root).objects.values()
        default = pvs.default_class(c.decode() for c in cached)
        if default is not None:
            spec["storageClassName"] = default["metadata"]["name"]
