"""The CSR approving controller: kubelet client certificates approve themselves, within RBAC.

kube-controller-manager's `csrapproving` controller auto-approves a CertificateSigningRequest for
the `kubernetes.io/kube-apiserver-client-kubelet` signer when it is a well-formed node client
request (CN `system:node:<name>`, O `system:nodes`, no SANs, usages key encipherment or digital
signature plus client auth) and a SubjectAccessReview says its requester may `create`
`certificatesigningrequests/nodeclient` (a new node bootstrapping with a token) or, when the
requester is the node itself, `certificatesigningrequests/selfnodeclient` (renewal). Anything
else waits for a human (`kubectl certificate approve`).
"""

from __future__ import annotations

import base64
import datetime as dt

from cryptography import x509
from cryptography.x509.oid import NameOID

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.rest import Resource
from pykube_server.controllers.framework import Context, Controller, Request, Result

CSRS = Resource("certificates.k8s.io", "v1", "certificatesigningrequests", namespaced=False)
SUBJECT_ACCESS_REVIEWS = Resource("authorization.k8s.io", "v1", "subjectaccessreviews", namespaced=False)
KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
MESSAGE = "Auto approving kubelet client certificate after SubjectAccessReview."
ALLOWED_USAGES = ({"client auth", "digital signature", "key encipherment"}, {"client auth", "digital signature"},
                  {"client auth", "key encipherment"}, {"client auth"})


def node_client_name(csr: Obj) -> str | None:
    """The node a well-formed node client CSR is for, or None."""
    spec = csr.get("spec") or {}
    if spec.get("signerName") != KUBELET_CLIENT or set(spec.get("usages") or []) not in ALLOWED_USAGES:
        return None
    try:
        request = x509.load_pem_x509_csr(base64.b64decode(spec.get("request", "")))
    except ValueError:
        return None
    cns = [str(a.value) for a in request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    orgs = [str(a.value) for a in request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    if len(cns) != 1 or not cns[0].startswith("system:node:") or orgs != ["system:nodes"]:
        return None
    try:
        if len(request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value):
            return None
    except x509.ExtensionNotFound:
        pass
    return cns[0]


class CSRApprovingReconciler:
    def __init__(self, ctx: Context) -> None:
        self.client = ctx.client
        self.clock = ctx.clock
        self.csrs = ctx.informer(CSRS).lister

    async def _allowed(self, csr: Obj, subresource: str) -> bool:
        spec = csr.get("spec") or {}
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                  "spec": {"user": spec.get("username", ""), "uid": spec.get("uid", ""),
                           "groups": spec.get("groups") or [], "extra": spec.get("extra") or {},
                           "resourceAttributes": {"group": "certificates.k8s.io", "resource": "certificatesigningrequests",
                                                  "verb": "create", "subresource": subresource}}}
        answer = await self.client.create(SUBJECT_ACCESS_REVIEWS, review)
        return bool((answer.get("status") or {}).get("allowed"))

    async def reconcile(self, request: Request) -> Result:
        csr = self.csrs.get(request.name)
        if csr is None or (csr.get("status") or {}).get("certificate"):
            return Result()
        if any(c.get("type") in ("Approved", "Denied") for c in (csr.get("status") or {}).get("conditions") or []):
            return Result()
        node = node_client_name(csr)
        if node is None:
            return Result()
        requester = (csr.get("spec") or {}).get("username", "")
        subresource = "selfnodeclient" if requester == node else "nodeclient"
        if not await self._allowed(csr, subresource):
            return Result()
        stamp = self.clock.wall().astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        status = dict(csr.get("status") or {})
        status["conditions"] = [*(status.get("conditions") or []), {
            "type": "Approved", "status": "True", "reason": "AutoApproved", "message": MESSAGE,
            "lastUpdateTime": stamp, "lastTransitionTime": stamp}]
        try:
            await self.client.update(CSRS, {**csr, "status": status}, subresource="approval")
        except errors.NotFound:
            pass
        return Result()


def create(ctx: Context) -> Controller:
    return Controller("certificatesigningrequest-approving-controller", CSRApprovingReconciler(ctx), workers=1,
                      clock=ctx.clock).watches(ctx.informer(CSRS))
