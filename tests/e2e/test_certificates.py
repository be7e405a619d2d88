"""CertificateSigningRequests end to end: kubectl creates one, `kubectl certificate approve`
approves it, the signing controller issues a certificate from the cluster CA, and that
certificate authenticates to the API server as the requested user; denial, the per-signer
rules and the API's validation texts are kube's."""

from __future__ import annotations

import base64
import time
from pathlib import Path

import orjson
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.apiserver.test_rest_support import Raw, unique
from tests.conftest import ServerProcess


def make_csr(cn: str, orgs: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.NameAttribute(NameOID.COMMON_NAME, cn), *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs)]
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names)).sign(key, hashes.SHA256())
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return csr.public_bytes(serialization.Encoding.PEM), key_pem


def csr_manifest(name: str, request: bytes, signer: str = "kubernetes.io/kube-apiserver-client",
                 usages: tuple[str, ...] = ("client auth",), **spec: object) -> str:
    return orjson.dumps({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                         "metadata": {"name": name},
                         "spec": {"request": base64.b64encode(request).decode(), "signerName": signer,
                                  "usages": list(usages), **spec}}).decode()


def wait_for(cluster: ServerProcess, name: str, predicate, timeout: float = 20.0) -> dict:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        csr = orjson.loads(cluster.kubectl("get", "csr", name, "-o", "json").stdout)
        if predicate(csr) or time.monotonic() > deadline:
            return csr
        time.sleep(0.2)


def test_approved_csr_gives_a_working_client_certificate(cluster: ServerProcess, tmp_path: Path) -> None:
    name = unique("alice-csr")
    request, key_pem = make_csr("alice", ("developers",))
    cluster.kubectl("create", "-f", "-", input=csr_manifest(name, request, expirationSeconds=3600))
    created = orjson.loads(cluster.kubectl("get", "csr", name, "-o", "json").stdout)
    assert created["spec"]["username"] == "kubernetes-admin"  # the requester, set by the server
    assert "system:masters" in created["spec"]["groups"]
    out = cluster.kubectl("certificate", "approve", name).stdout
    assert out == f"certificatesigningrequest.certificates.k8s.io/{name} approved\n"
    csr = wait_for(cluster, name, lambda c: (c.get("status") or {}).get("certificate"))
    approved = [c for c in csr["status"]["conditions"] if c["type"] == "Approved"]
    assert approved and approved[0]["reason"] == "KubectlApprove"
    cert = x509.load_pem_x509_certificate(base64.b64decode(csr["status"]["certificate"]))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert 3600 <= lifetime.total_seconds() <= 3600 + 6 * 60  # asked-for lifetime, backdated 5 minutes

    # The certificate logs in as alice, in group developers.
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    admin["users"][0]["user"] = {"client-certificate-data": csr["status"]["certificate"],
                                 "client-key-data": base64.b64encode(key_pem).decode()}
    kubeconfig = tmp_path / "alice.yaml"
    kubeconfig.write_text(yaml.safe_dump(admin))
    whoami = cluster.kubectl("auth", "whoami", "-o", "json", "--kubeconfig", str(kubeconfig)).stdout
    info = orjson.loads(whoami)["status"]["userInfo"]
    assert info["username"] == "alice" and "developers" in info["groups"]
    Raw(kubeconfig)  # a client built from the issued pair loads


def test_denied_csr_gets_no_certificate(cluster: ServerProcess) -> None:
    name = unique("denied-csr")
    request, _ = make_csr("mallory")
    cluster.kubectl("create", "-f", "-", input=csr_manifest(name, request))
    assert cluster.kubectl("certificate", "deny", name).stdout.endswith("denied\n")
    time.sleep(1)
    csr = orjson.loads(cluster.kubectl("get", "csr", name, "-o", "json").stdout)
    assert not (csr.get("status") or {}).get("certificate")
    assert [c["type"] for c in csr["status"]["conditions"]] == ["Denied"]
    refused = cluster.kubectl("certificate", "approve", name, check=False)
    assert refused.stderr == f'error: certificate signing request "{name}" is already Denied\n'
    csr["status"]["conditions"].append({"type": "Approved", "status": "True", "reason": "Sneaky"})
    forced = Raw(cluster.kubeconfig).put(f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}/approval", csr)
    assert forced.status == 422  # the server refuses too
    assert "Approved and Denied conditions are mutually exclusive" in forced.json()["message"]


def test_kubelet_signer_refuses_other_subjects(cluster: ServerProcess) -> None:
    name = unique("not-a-node")
    request, _ = make_csr("alice")
    cluster.kubectl("create", "-f", "-", input=csr_manifest(name, request, "kubernetes.io/kube-apiserver-client-kubelet",
                                                            ("digital signature", "client auth")))
    cluster.kubectl("certificate", "approve", name)
    csr = wait_for(cluster, name, lambda c: any(x["type"] == "Failed" for x in (c.get("status") or {}).get("conditions") or []))
    failed = [c for c in csr["status"]["conditions"] if c["type"] == "Failed"]
    assert failed and failed[0]["reason"] == "SignerValidationFailure"
    assert failed[0]["message"] == 'subject common name does not begin with "system:node:"'
    assert not csr["status"].get("certificate")


@pytest.mark.parametrize(("change", "message"), [
    ({"signerName": ""}, "spec.signerName: Required value"),
    ({"usages": ["flying"]}, 'spec.usages[0]: Unsupported value: "flying"'),
    ({"expirationSeconds": 60}, "spec.expirationSeconds: Invalid value: 60: may not specify a duration less than 600 seconds (10 minutes)"),
    ({"request": base64.b64encode(b"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n").decode()},
     "PEM block type must be CERTIFICATE REQUEST"),
])
def test_validation(cluster: ServerProcess, change: dict, message: str) -> None:
    request, _ = make_csr("v")
    body = orjson.loads(csr_manifest(unique("invalid"), request))
    body["spec"].update(change)
    result = cluster.kubectl("create", "-f", "-", input=orjson.dumps(body).decode(), check=False)
    assert result.returncode != 0
    assert message in result.stderr
