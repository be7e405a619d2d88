"""The storage a fresh cluster starts with: the default StorageClass `standard` and the
CSIDriver of the built-in local-path provisioner.

Why: kind and k3s clusters come with a default class backed by local-path, so PVCs (a
StatefulSet's volumeClaimTemplates, Helm charts) just work; pykube does the same. The objects
are made on the first start only, so a user who deleted or replaced the class keeps it that way.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from pykube_server.api import errors
from pykube_server.api import persistentvolume as pvs

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

DEFAULT_CLASS_NAME = "standard"
LOCAL_PATH_PROVISIONER = "local-path.pykube.io"
"""The provisioner name of the controller manager's local-path provisioner (a CSIDriver name
must be a DNS subdomain, so it is spelled like a CSI driver rather than `rancher.io/local-path`)."""

STORAGE_CLASS = {
    "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
    "metadata": {"name": DEFAULT_CLASS_NAME, "annotations": {pvs.ANN_DEFAULT_CLASS: "true"}},
    "provisioner": LOCAL_PATH_PROVISIONER,
    "reclaimPolicy": "Delete",
    "volumeBindingMode": pvs.WAIT_FOR_FIRST_CONSUMER,
}

CSI_DRIVER = {
    "apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
    "metadata": {"name": LOCAL_PATH_PROVISIONER},
    "spec": {"attachRequired": False, "podInfoOnMount": False, "volumeLifecycleModes": ["Persistent"],
             "storageCapacity": False, "fsGroupPolicy": "File"},
}


async def bootstrap_storage(server: APIServer) -> None:
    for resource, obj in (("storageclasses", STORAGE_CLASS), ("csidrivers", CSI_DRIVER)):
        try:
            await server.store_for("storage.k8s.io", "v1", resource).create("", copy.deepcopy(obj))
        except errors.AlreadyExists:
            pass
