"""serviceaccount-controller: a `default` ServiceAccount in every active namespace.

kube-controller-manager's ServiceAccountsController, level-triggered over two informers: a
namespace that appears (or changes while Active) and a ServiceAccount named `default` that
disappears both enqueue the namespace, and reconcile creates the account when the cache lacks
it. Namespaces that are not Active are left alone, and a create refused because the namespace
began terminating meanwhile is not an error, as in kube.
"""

from __future__ import annotations

import logging

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.cache import Lister
from pykube_server.client.rest import NAMESPACES, SERVICEACCOUNTS, Client
from pykube_server.controllers.framework import Context, Controller, Request, Result

log = logging.getLogger(__name__)

DEFAULT_SERVICE_ACCOUNT = "default"
NAMESPACE_TERMINATING_CAUSE = "NamespaceTerminating"
WORKERS = 5
"""kube-controller-manager's --concurrent-serviceaccount-token-syncs default."""


def terminating_refusal(exc: errors.StatusError) -> bool:
    """Was a create refused because its namespace is being deleted (kube's NamespaceTerminatingCause)?"""
    causes = (exc.details or {}).get("causes") or []
    return any(cause.get("reason") == NAMESPACE_TERMINATING_CAUSE for cause in causes)


class ServiceAccountReconciler:
    def __init__(self, client: Client, namespaces: Lister, accounts: Lister) -> None:
        self.client = client
        self.namespaces = namespaces
        self.accounts = accounts

    async def reconcile(self, request: Request) -> Result:
        namespace = self.namespaces.get(request.name)
        if namespace is None or (namespace.get("status") or {}).get("phase") != "Active":
            return Result()
        if self.accounts.get(DEFAULT_SERVICE_ACCOUNT, namespace=request.name) is not None:
            return Result()
        account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEFAULT_SERVICE_ACCOUNT}}
        try:
            await self.client.create(SERVICEACCOUNTS, account, namespace=request.name)
        except errors.AlreadyExists:
            pass
        except errors.StatusError as exc:
            if not terminating_refusal(exc):
                raise
        return Result()


def _namespace_of_default_account(obj: Obj) -> list[Request]:
    meta = obj.get("metadata") or {}
    if meta.get("name") != DEFAULT_SERVICE_ACCOUNT:
        return []
    return [Request("", meta.get("namespace", ""))]


def create(ctx: Context) -> Controller:
    """The `serviceaccount-controller` factory."""
    namespaces = ctx.informer(NAMESPACES)
    accounts = ctx.informer(SERVICEACCOUNTS)
    reconciler = ServiceAccountReconciler(ctx.client, namespaces.lister, accounts.lister)
    controller = Controller("serviceaccount-controller", reconciler, workers=WORKERS, clock=ctx.clock)
    controller.watches(namespaces, lambda obj: [Request("", (obj.get("metadata") or {}).get("name", ""))])
    controller.watches(accounts, _namespace_of_default_account)
    return controller
