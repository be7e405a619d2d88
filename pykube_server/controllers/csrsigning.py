"""The CSR signing controller: approved CertificateSigningRequests get their certificate.

kube-controller-manager's `certificatesigningrequest-signing-controller` with the built-in
signers, signing with the cluster CA (`--cluster-signing-cert-file`/`--cluster-signing-key-file`):
* `kubernetes.io/kube-apiserver-client`: client certificates the API server accepts (the
  subject's CN is the user, its Os the groups);
* `kubernetes.io/kube-apiserver-client-kubelet`: a kubelet's client certificate, only for
  `system:node:<name>` in `system:nodes` with the usages kube allows;
* `kubernetes.io/kubelet-serving`: a kubelet's serving certificate, same subject rule, with
  DNS/IP names only.
A request a signer may not sign gets the `Failed` condition with reason `SignerValidationFailure`
and kube's message; others (e.g. `kubernetes.io/legacy-unknown`, third-party signers) are left
alone. The certificate lives `spec.expirationSeconds` (at least 10 minutes) or
`--cluster-signing-duration` (a year), never past the CA's own expiry, and is backdated five
minutes for clock skew, as kube's signer does.
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.rest import Resource
from pykube_server.controllers.framework import Context, Controller, Request, Result

log = logging.getLogger(__name__)

CSRS = Resource("certificates.k8s.io", "v1", "certificatesigningrequests", namespaced=False)
CLIENT = "kubernetes.io/kube-apiserver-client"
KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"
KUBELET_SERVING = "kubernetes.io/kubelet-serving"
SIGNERS = (CLIENT, KUBELET_CLIENT, KUBELET_SERVING)
DEFAULT_DURATION = 365 * 24 * 3600.0
BACKDATE = dt.timedelta(minutes=5)
USAGE_EKU = {"client auth": ExtendedKeyUsageOID.CLIENT_AUTH, "server auth": ExtendedKeyUsageOID.SERVER_AUTH}
ALLOWED_USAGES = {
    CLIENT: ({"client auth"}, {"digital signature", "key encipherment", "client auth"}),
    KUBELET_CLIENT: ({"client auth"}, {"digital signature", "key encipherment", "client auth"}),
    KUBELET_SERVING: ({"server auth"}, {"digital signature", "key encipherment", "server auth"}),
}


class SigningError(ValueError):
    """The signer may not sign this request (becomes the Failed condition's message)."""


def _condition(csr: Obj, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status", "True") == "True"
               for c in (csr.get("status") or {}).get("conditions") or [])


def check_request(signer: str, usages: list[str], request: x509.CertificateSigningRequest) -> None:
    """kube's per-signer rules (certificates/authority + csr validation in the signer)."""
    required, allowed = ALLOWED_USAGES[signer]
    usage_set = set(usages)
    if not required <= usage_set or not usage_set <= allowed:
        raise SigningError(f"invalid usage for {signer.rsplit('/', 1)[1]} certificate: {sorted(usage_set - allowed) or sorted(required - usage_set)}")
    if signer in (KUBELET_CLIENT, KUBELET_SERVING):
        cns = [a.value for a in request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        orgs = [a.value for a in request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        if len(cns) != 1 or not str(cns[0]).startswith("system:node:") or len(str(cns[0])) <= len("system:node:"):
            raise SigningError('subject common name does not begin with "system:node:"')
        if orgs != ["system:nodes"]:
            raise SigningError('subject organization is not system:nodes')
    if signer == KUBELET_CLIENT or signer == CLIENT:
        try:
            san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            if signer == KUBELET_CLIENT and len(san.value):
                raise SigningError("DNS, URI, Email and IP subjectAltNames are not allowed")
        except x509.ExtensionNotFound:
            pass


class Signer:
    def __init__(self, cert_file: str, key_file: str, duration: float = DEFAULT_DURATION) -> None:
        self.ca = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
        self.key = serialization.load_pem_private_key(Path(key_file).read_bytes(), password=None)
        self.duration = duration

    def sign(self, csr: Obj, now: dt.datetime) -> bytes:
        spec = csr.get("spec") or {}
        try:
            request = x509.load_pem_x509_csr(base64.b64decode(spec.get("request", "")))
        except ValueError as exc:
            raise SigningError(f"unable to parse csr: {exc}") from None
        if not request.is_signature_valid:
            raise SigningError("signature verification failed")
        usages = list(spec.get("usages") or [])
        check_request(spec.get("signerName", ""), usages, request)
        seconds = spec.get("expirationSeconds")
        lifetime = dt.timedelta(seconds=max(int(seconds), 600) if seconds else self.duration)
        not_before = now - BACKDATE
        not_after = min(now + lifetime, self.ca.not_valid_after_utc)
        builder = (x509.CertificateBuilder().subject_name(request.subject).issuer_name(self.ca.subject)
                   .public_key(request.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(not_before).not_valid_after(not_after)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca.public_key()), critical=False))
        if "digital signature" in usages or "key encipherment" in usages:  # no bits: no extension, as Go omits it
            builder = builder.add_extension(x509.KeyUsage(
                digital_signature="digital signature" in usages, key_encipherment="key encipherment" in usages,
                content_commitment=False, data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        ekus = [USAGE_EKU[u] for u in usages if u in USAGE_EKU]
        if ekus:
            builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
        try:
            san = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            builder = builder.add_extension(san.value, critical=False)
        except x509.ExtensionNotFound:
            pass
        cert = builder.sign(self.key, hashes.SHA256())  # type: ignore[arg-type]
        return cert.public_bytes(serialization.Encoding.PEM)


class CSRSigningReconciler:
    def __init__(self, ctx: Context, signer: Signer | None) -> None:
        self.client = ctx.client
        self.clock = ctx.clock
        self.csrs = ctx.informer(CSRS).lister
        self.signer = signer

    async def reconcile(self, request: Request) -> Result:
        csr = self.csrs.get(request.name)
        if csr is None or not _condition(csr, "Approved") or _condition(csr, "Failed") or _condition(csr, "Denied"):
            return Result()
        spec = csr.get("spec") or {}
        if self.signer is None or spec.get("signerName") not in SIGNERS or (csr.get("status") or {}).get("certificate"):
            return Result()
        status = dict(csr.get("status") or {})
        now = self.clock.wall()
        try:
            status["certificate"] = base64.b64encode(self.signer.sign(csr, now)).decode()
        except SigningError as exc:
            stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
            status["conditions"] = [*(status.get("conditions") or []), {
                "type": "Failed", "status": "True", "reason": "SignerValidationFailure", "message": str(exc),
                "lastUpdateTime": stamp, "lastTransitionTime": stamp}]
        body = {**csr, "status": status}
        try:
            await self.client.update(CSRS, body, subresource="status")
        except errors.NotFound:
            pass  # deleted meanwhile; a Conflict propagates and the key is retried with back-off
        return Result()


def create(ctx: Context) -> Controller:
    """Signs only when the controller manager has the CA to sign with (as kube's, which needs
    --cluster-signing-cert-file and --cluster-signing-key-file); without it, it says so once."""
    cert, key = ctx.options.get("cluster_signing_cert_file"), ctx.options.get("cluster_signing_key_file")
    signer = None
    if cert and key:
        signer = Signer(cert, key, float(ctx.options.get("cluster_signing_duration_seconds") or DEFAULT_DURATION))
    else:
        log.warning("certificatesigningrequest-signing-controller: no --cluster-signing-cert-file/"
                    "--cluster-signing-key-file, approved CSRs will not be signed")
    return Controller("certificatesigningrequest-signing-controller", CSRSigningReconciler(ctx, signer),
                      workers=1, clock=ctx.clock).watches(ctx.informer(CSRS))
