"""Authentication and certificates: test/e2e/auth/certificates.go."""

from __future__ import annotations

import base64
import datetime
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from kubernetes import client, watch

from conformance.harness import api_status, conformance, raw, unique


def _csr_pem(common_name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False))
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def _self_signed(common_name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM)


@conformance("[sig-auth] Certificates API [Privileged:ClusterAdmin] should support CSR API operations [Conformance]")
def test_csr_api_operations(api) -> None:  # type: ignore[no-untyped-def]
    certs = client.CertificatesV1Api(api)
    signer = f"example.com/e2e-{unique('csr')}"
    template = {"metadata": {"generateName": "e2e-example-csr-"},
                "spec": {"request": base64.b64encode(_csr_pem("e2e.example.com")).decode(), "signerName": signer,
                         "expirationSeconds": 3600, "usages": ["digital signature", "key encipherment", "server auth"]}}
    certificate = base64.b64encode(_self_signed("e2e.example.com")).decode()

    groups = client.ApisApi(api).get_api_versions().groups
    assert any(g.name == "certificates.k8s.io" and any(v.version == "v1" for v in g.versions) for g in groups)
    group = client.CertificatesApi(api).get_api_group()
    assert any(v.version == "v1" for v in group.versions)
    names = {r.name for r in certs.get_api_resources().resources}
    assert {"certificatesigningrequests", "certificatesigningrequests/approval",
            "certificatesigningrequests/status"} <= names

    certs.create_certificate_signing_request(template)
    certs.create_certificate_signing_request(template)
    created = certs.create_certificate_signing_request(template)
    name = created.metadata.name
    got = certs.read_certificate_signing_request(name)
    assert got.metadata.uid == created.metadata.uid and got.spec.expiration_seconds == 3600
    listed = certs.list_certificate_signing_request(field_selector=f"spec.signerName={signer}")
    assert len(listed.items) == 3

    events: list[dict] = []
    w = watch.Watch()

    def follow() -> None:
        for event in w.stream(certs.list_certificate_signing_request, resource_version=listed.metadata.resource_version,
                              field_selector=f"metadata.name={name}", timeout_seconds=30, _request_timeout=35):
            events.append(event)
            if (event["object"].metadata.annotations or {}).get("patched") == "true":
                w.stop()

    watcher = threading.Thread(target=follow, daemon=True)
    watcher.start()
    patched = certs.patch_certificate_signing_request(name, {"metadata": {"annotations": {"patched": "true"}}})
    assert patched.metadata.annotations["patched"] == "true"
    patched.metadata.annotations["updated"] = "true"
    updated = certs.replace_certificate_signing_request(name, patched)
    assert updated.metadata.annotations["updated"] == "true"
    watcher.join(35)
    assert events and all(e["type"] == "MODIFIED" for e in events)
    assert events[-1]["object"].metadata.annotations["patched"] == "true"

    approval = raw(api, "GET", f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}/approval").json()
    assert approval["kind"] == "CertificateSigningRequest" and approval["metadata"]["uid"] == created.metadata.uid
    patched_approval = certs.patch_certificate_signing_request_approval(name, {
        "metadata": {"annotations": {"patchedapproval": "true"}},
        "status": {"conditions": [{"type": "ApprovalPatch", "status": "True", "reason": "e2e"}]}})
    assert [c.type for c in patched_approval.status.conditions] == ["ApprovalPatch"]
    assert patched_approval.metadata.annotations["patchedapproval"] == "true"
    patched_approval.status.conditions.append(client.V1CertificateSigningRequestCondition(
        type="Approved", status="True", reason="E2E", message="Set from an e2e test"))
    updated_approval = certs.replace_certificate_signing_request_approval(name, patched_approval)
    assert [c.type for c in updated_approval.status.conditions] == ["ApprovalPatch", "Approved"]

    status = raw(api, "GET", f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}/status").json()
    assert status["kind"] == "CertificateSigningRequest" and status["metadata"]["uid"] == created.metadata.uid
    patched_status = certs.patch_certificate_signing_request_status(name, {
        "metadata": {"annotations": {"patchedstatus": "true"}}, "status": {"certificate": certificate}})
    assert patched_status.status.certificate == certificate
    assert patched_status.metadata.annotations["patchedstatus"] == "true"
    patched_status.status.conditions.append(client.V1CertificateSigningRequestCondition(
        type="StatusUpdate", status="True", reason="E2E", message="Set from an e2e test"))
    updated_status = certs.replace_certificate_signing_request_status(name, patched_status)
    assert len(updated_status.status.conditions) == len(patched_status.status.conditions)
    assert updated_status.status.conditions[-1].type == "StatusUpdate"

    certs.delete_certificate_signing_request(name)
    try:
        certs.read_certificate_signing_request(name)
        raise AssertionError("the deleted CSR is still there")
    except client.ApiException as exc:
        assert api_status(exc) == 404
    assert len(certs.list_certificate_signing_request(field_selector=f"spec.signerName={signer}").items) == 2
    certs.delete_collection_certificate_signing_request(field_selector=f"spec.signerName={signer}")
    assert certs.list_certificate_signing_request(field_selector=f"spec.signerName={signer}").items == []
