"""root-ca-certificate-publisher-controller: the `kube-root-ca.crt` ConfigMap in every namespace.

kube-controller-manager's root CA publisher. Pods read the cluster CA from this ConfigMap (the
projected service account volume mounts it) to trust the API server at its internal address.
The CA is the one the controller manager itself trusts: kube takes `--root-ca-file`, else the
CA of its own kubeconfig, and so do we (`client.config.ca_data`).

Each namespace is one key. Reconcile creates the ConfigMap when missing; when present it
rewrites it only if `data` is not exactly `{"ca.crt": CA}` or the description annotation is
missing; then `data` is replaced (other keys go) and other annotations stay, as in kube.
A create refused because the namespace is gone or terminating is not retried.
"""

from __future__ import annotations

import copy
import logging

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.cache import Lister
from pykube_server.client.rest import CONFIGMAPS, NAMESPACES, Client
from pykube_server.controllers.framework import Context, Controller, Request, Result
from pykube_server.controllers.serviceaccount import terminating_refusal

log = logging.getLogger(__name__)

ROOT_CA_CONFIGMAP = "kube-root-ca.crt"
DESCRIPTION_ANNOTATION = "kubernetes.io/description"
DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
               "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
               "distributions of Kubernetes clusters.")
WORKERS = 1
"""kube's root CA publisher runs a single worker."""


class RootCAReconciler:
    def __init__(self, client: Client, configmaps: Lister, root_ca: str) -> None:
        self.client = client
        self.configmaps = configmaps
        self.root_ca = root_ca

    async def reconcile(self, request: Request) -> Result:
        data = {"ca.crt": self.root_ca}
        current = self.configmaps.get(ROOT_CA_CONFIGMAP, namespace=request.name)
        if current is None:
            await self._create(request.name, data)
            return Result()
        annotations = (current.get("metadata") or {}).get("annotations") or {}
        if current.get("data") == data and annotations.get(DESCRIPTION_ANNOTATION):
            return Result()
        updated = copy.deepcopy(current)
        updated["data"] = data
        updated["metadata"].setdefault("annotations", {})[DESCRIPTION_ANNOTATION] = DESCRIPTION
        await self.client.update(CONFIGMAPS, updated)
        return Result()

    async def _create(self, namespace: str, data: dict[str, str]) -> None:
        configmap = {"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": ROOT_CA_CONFIGMAP, "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                     "data": data}
        try:
            await self.client.create(CONFIGMAPS, configmap, namespace=namespace)
        except errors.NotFound:
            pass
        except errors.StatusError as exc:
            if not terminating_refusal(exc):
                raise


def _namespace_name(obj: Obj) -> list[Request]:
    return [Request("", (obj.get("metadata") or {}).get("name", ""))]


def _namespace_of_root_ca(obj: Obj) -> list[Request]:
    meta = obj.get("metadata") or {}
    return [Request("", meta.get("namespace", ""))] if meta.get("name") == ROOT_CA_CONFIGMAP else []


def create(ctx: Context) -> Controller:
    """The `root-ca-certificate-publisher-controller` factory (needs a CA in the kubeconfig)."""
    root_ca = ctx.options.get("root_ca") or ctx.client.config.ca_data
    if not root_ca:
        raise ValueError("root-ca-certificate-publisher-controller needs a root CA (--root-ca-file or kubeconfig CA)")
    pem = root_ca.decode() if isinstance(root_ca, bytes) else str(root_ca)
    namespaces = ctx.informer(NAMESPACES)
    configmaps = ctx.informer(CONFIGMAPS)
    reconciler = RootCAReconciler(ctx.client, configmaps.lister, pem)
    controller = Controller("root-ca-certificate-publisher-controller", reconciler, workers=WORKERS, clock=ctx.clock)
    controller.watches(namespaces, _namespace_name)
    controller.watches(configmaps, _namespace_of_root_ca)
    return controller
