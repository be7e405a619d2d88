"""TLS bootstrap: how a kubelet on another machine gets its own credentials from a token.

The `kubeadm join` way, in two steps:
1. Discovery: read `kube-public/cluster-info` anonymously (the connection is not trusted yet),
   check that its `kubeconfig` is signed with the bootstrap token (`jws-kubeconfig-<id>`, so only
   someone holding the token could have published it) and that the CA inside matches one of the
   `--discovery-token-ca-cert-hash` pins (`sha256:<hex of the CA's SubjectPublicKeyInfo>`). From
   here on every connection verifies the API server against that CA.
2. TLS bootstrap: with the token, create a CertificateSigningRequest for
   `kubernetes.io/kube-apiserver-client-kubelet` (CN `system:node:<name>`, O `system:nodes`) with a
   fresh key, wait until it is approved (the CSR approving controller does it for bootstrap
   tokens) and signed, and write a kubeconfig with the issued certificate and key.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
from pathlib import Path

import aiohttp
import orjson
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pykube_server.api import jws

CLUSTER_INFO = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
CSRS = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
KUBELET_CLIENT = "kubernetes.io/kube-apiserver-client-kubelet"


class BootstrapError(Exception):
    pass


def ca_cert_hash(ca_pem: bytes) -> str:
    """kubeadm's pin: sha256 of the CA certificate's DER SubjectPublicKeyInfo."""
    cert = x509.load_pem_x509_certificate(ca_pem)
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def split_token(token: str) -> tuple[str, str]:
    token_id, dot, secret = token.partition(".")
    if not dot or len(token_id) != 6 or len(secret) != 16:
        raise BootstrapError(f'the bootstrap token "{token}" was not of the form "[a-z0-9]{{6}}.[a-z0-9]{{16}}"')
    return token_id, secret


async def discover(server: str, token: str, ca_cert_hashes: list[str], *, unsafe_skip_ca_verification: bool = False) -> bytes:
    """The cluster CA (PEM), trusted through the token's signature and the pinned hash."""
    token_id, secret = split_token(token)
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    async with aiohttp.ClientSession() as session:
        async with session.get(server.rstrip("/") + CLUSTER_INFO, ssl=insecure) as resp:
            if resp.status != 200:
                raise BootstrapError(f"failed to request the cluster-info ConfigMap: {resp.status} {await resp.text()}")
            cm = await resp.json()
    data = cm.get("data") or {}
    kubeconfig = data.get("kubeconfig", "")
    signature = data.get(f"jws-kubeconfig-{token_id}")
    if not signature:
        raise BootstrapError(f'there is no JWS signed token in the cluster-info ConfigMap. This token id "{token_id}" '
                             "is invalid for this cluster, or if this token was just created, please wait a while "
                             "for the cluster-info ConfigMap to be signed")
    if not jws.verify_detached(signature, kubeconfig.encode(), token_id, secret):
        raise BootstrapError("failed to verify JWS signature of received cluster info object, can't trust this API Server")
    doc = yaml.safe_load(kubeconfig)
    ca_pem = base64.b64decode(doc["clusters"][0]["cluster"]["certificate-authority-data"])
    if not unsafe_skip_ca_verification:
        actual = ca_cert_hash(ca_pem)
        if actual not in ca_cert_hashes:
            raise BootstrapError(f"cluster CA found in cluster-info ConfigMap is invalid: none of the public keys "
                                 f"\"{actual}\" are pinned")
    return ca_pem


def _client_csr(common_name: str, organizations: tuple[str, ...]) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([*(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations),
                         x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return csr.public_bytes(serialization.Encoding.PEM), key_pem


async def request_client_certificate(server: str, ca_pem: bytes, token: str, common_name: str,
                                     organizations: tuple[str, ...] = ("system:nodes",), *,
                                     signer: str = KUBELET_CLIENT, timeout: float = 300.0) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for `common_name`, issued through a CSR to `signer`: a node's is
    approved automatically, anything else waits for `kubectl certificate approve`."""
    request, key_pem = _client_csr(common_name, organizations)
    context = ssl.create_default_context(cadata=ca_pem.decode())
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Accept": "application/json"}
    body = {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"generateName": "node-csr-"},
            "spec": {"request": base64.b64encode(request).decode(), "signerName": signer,
                     "usages": ["digital signature", "client auth"]}}
    base = server.rstrip("/")
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.post(base + CSRS, data=orjson.dumps(body), ssl=context) as resp:
            if resp.status != 201:
                raise BootstrapError(f"cannot create certificate signing request: {resp.status} {await resp.text()}")
            name = (await resp.json())["metadata"]["name"]
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            async with session.get(f"{base}{CSRS}/{name}", ssl=context) as resp:
                csr = await resp.json()
            status = csr.get("status") or {}
            for cond in status.get("conditions") or []:
                if cond.get("type") in ("Denied", "Failed"):
                    raise BootstrapError(f"certificate signing request {name} is {cond['type'].lower()}: "
                                         f"{cond.get('reason', '')} {cond.get('message', '')}".strip())
            if status.get("certificate"):
                return base64.b64decode(status["certificate"]), key_pem
            if asyncio.get_running_loop().time() > deadline:
                raise BootstrapError(f"timed out waiting for the certificate of {name} (is it approved?)")
            await asyncio.sleep(0.5)


def write_kubeconfig(path: Path, server: str, ca_pem: bytes, cert_pem: bytes, key_pem: bytes, user: str) -> Path:
    """A kubeconfig for the issued identity, written privately (0600)."""
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": "default",
           "clusters": [{"name": "default", "cluster": {"server": server,
                                                        "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
           "users": [{"name": user, "user": {"client-certificate-data": base64.b64encode(cert_pem).decode(),
                                             "client-key-data": base64.b64encode(key_pem).decode()}}],
           "contexts": [{"name": "default", "context": {"cluster": "default", "user": user}}]}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    os.replace(tmp, path)
    return path


async def bootstrap_kubeconfig(path: Path, server: str, token: str, ca_cert_hashes: list[str], node_name: str,
                               *, unsafe_skip_ca_verification: bool = False) -> Path:
    """Discovery then TLS bootstrap, ending with a kubeconfig at `path`."""
    ca_pem = await discover(server, token, ca_cert_hashes, unsafe_skip_ca_verification=unsafe_skip_ca_verification)
    cert_pem, key_pem = await request_client_certificate(server, ca_pem, token, f"system:node:{node_name}")
    return write_kubeconfig(path, server, ca_pem, cert_pem, key_pem, f"system:node:{node_name}")


async def bootstrap_proxy_kubeconfig(path: Path, server: str, token: str, ca_cert_hashes: list[str], *,
                                     unsafe_skip_ca_verification: bool = False) -> Path:
    """kube-proxy's identity `system:kube-proxy` through a `kube-apiserver-client` CSR; unlike a
    node's, it is not approved automatically: an administrator approves it
    (`kubectl certificate approve`), as for any client certificate."""
    ca_pem = await discover(server, token, ca_cert_hashes, unsafe_skip_ca_verification=unsafe_skip_ca_verification)
    cert_pem, key_pem = await request_client_certificate(server, ca_pem, token, "system:kube-proxy", (),
                                                         signer="kubernetes.io/kube-apiserver-client", timeout=3600)
    return write_kubeconfig(path, server, ca_pem, cert_pem, key_pem, "system:kube-proxy")
