"""The scheduler's view of storage: claims, volumes and classes for the VolumeBinding plugin.

Why a seam: the plugin decides from informer caches during the (synchronous) scheduling cycle
and writes through the API in PreBind; tests give it plain dicts instead (`VolumeStore`).
"""

from __future__ import annotations

from typing import Protocol

from pykube_server.api.types import Obj
from pykube_server.client.informer import Informer, InformerFactory
from pykube_server.client.rest import PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, Client, PatchType, Resource

STORAGECLASSES = Resource("storage.k8s.io", "v1", "storageclasses", namespaced=False)


class VolumeStore(Protocol):
    def claim(self, namespace: str, name: str) -> Obj | None: ...

    def volume(self, name: str) -> Obj | None: ...

    def volumes(self) -> list[Obj]: ...

    def storage_class(self, name: str) -> Obj | None: ...

    async def update_volume(self, volume: Obj) -> Obj: ...

    async def annotate_claim(self, namespace: str, name: str, annotations: dict[str, str]) -> Obj: ...


class InformerVolumeStore:
    """Reads from the scheduler's shared informers, writes through the client."""

    def __init__(self, client: Client, informers: InformerFactory) -> None:
        self._client = client
        self.claims: Informer = informers.informer(PERSISTENTVOLUMECLAIMS, namespace="")
        self.pvs: Informer = informers.informer(PERSISTENTVOLUMES)
        self.classes: Informer = informers.informer(STORAGECLASSES)

    def claim(self, namespace: str, name: str) -> Obj | None:
        return self.claims.lister.get(name, namespace=namespace)

    def volume(self, name: str) -> Obj | None:
        return self.pvs.lister.get(name)

    def volumes(self) -> list[Obj]:
        return self.pvs.lister.list()

    def storage_class(self, name: str) -> Obj | None:
        return self.classes.lister.get(name)

    async def update_volume(self, volume: Obj) -> Obj:
        updated: Obj = await self._client.update(PERSISTENTVOLUMES, volume)
        return updated

    async def annotate_claim(self, namespace: str, name: str, annotations: dict[str, str]) -> Obj:
        patched: Obj = await self._client.patch(PERSISTENTVOLUMECLAIMS, name, {"metadata": {"annotations": annotations}},
                                                namespace=namespace, patch_type=PatchType.STRATEGIC)
        return patched
