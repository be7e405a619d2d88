"""Which admission plugins exist, in kube-apiserver's order, and which are on by default.

Each entry maps a plugin's kube name to a factory taking the APIServer. Factories import their
module when called, so a plugin may use anything in the API server without import cycles.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pykube_server.apiserver.admission import Plugin
    from pykube_server.apiserver.app import APIServer


def _lazy(module: str, cls: str) -> Any:
    def factory(server: APIServer) -> Plugin:
        return getattr(importlib.import_module(f"pykube_server.apiserver.admission.{module}"), cls)(server)
    return factory


# kube's AllOrderedPlugins, restricted to the ones we have.
ORDERED: dict[str, Any] = {
    "LimitRanger": _lazy("limitranger", "LimitRanger"),
    "ServiceAccount": _lazy("serviceaccount", "ServiceAccount"),
    "NodeRestriction": _lazy("noderestriction", "NodeRestriction"),
    "Priority": _lazy("priority", "Priority"),
    "DefaultTolerationSeconds": _lazy("tolerations", "DefaultTolerationSeconds"),
    "DefaultStorageClass": _lazy("defaultstorageclass", "DefaultStorageClass"),
    "StorageObjectInUseProtection": _lazy("storageprotection", "StorageObjectInUseProtection"),
    "RuntimeClass": _lazy("runtimeclass", "RuntimeClass"),
    "MutatingAdmissionWebhook": _lazy("webhook.dispatch", "MutatingAdmissionWebhook"),
    "ValidatingAdmissionPolicy": _lazy("validatingpolicy", "ValidatingAdmissionPolicy"),
    "ValidatingAdmissionWebhook": _lazy("webhook.dispatch", "ValidatingAdmissionWebhook"),
    "ResourceQuota": _lazy("resourcequota", "ResourceQuota"),
}

# kube-apiserver 1.33's default-on set, restricted to the ones we have.
DEFAULT_ON: tuple[str, ...] = (
    "LimitRanger",
    "ServiceAccount",
    "Priority",
    "DefaultTolerationSeconds",
    "DefaultStorageClass",
    "StorageObjectInUseProtection",
    "RuntimeClass",
    "MutatingAdmissionWebhook",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionWebhook",
    "ResourceQuota",
)
