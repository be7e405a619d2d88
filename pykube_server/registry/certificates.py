"""CertificateSigningRequests: what may be written where (kube's certificates strategies).

* create: the request must be a PEM `CERTIFICATE REQUEST`, the signer a qualified name, the
  usages known ones, `expirationSeconds` at least 600; status starts empty; the requester's
  identity (`spec.username`, `uid`, `groups`, `extra`) is filled by the API server from the
  authenticated user, never from the body (`set_requester`).
* update: spec and status never change (a CSR is immutable but for metadata).
* `/status`: conditions other than Approved/Denied, and the certificate (a signer's job).
* `/approval`: the conditions (what `kubectl certificate approve` sends), never the certificate.
Approved and Denied may not both be set, and neither may be removed once set.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from pykube_server.api.fields import FieldError, Path, forbidden, invalid, not_supported, required
from pykube_server.registry.strategy import Strategy, meta_field

Obj = dict[str, Any]
KNOWN_USAGES = ("signing", "digital signature", "content commitment", "key encipherment", "key agreement",
                "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any",
                "server auth", "client auth", "code signing", "email protection", "s/mime", "ipsec end system",
                "ipsec tunnel", "ipsec user", "timestamping", "ocsp signing", "microsoft sgc", "netscape sgc")
APPROVAL_TYPES = ("Approved", "Denied")
_PEM = re.compile(rb"-----BEGIN ([A-Z ]+)-----")
_SIGNER = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def set_requester(csr: Obj, username: str, uid: str, groups: tuple[str, ...], extra: dict[str, tuple[str, ...]]) -> None:
    spec = csr.setdefault("spec", {})
    if not isinstance(spec, dict):
        return
    for field in ("username", "uid", "groups", "extra"):
        spec.pop(field, None)
    spec["username"] = username
    if uid:
        spec["uid"] = uid
    if groups:
        spec["groups"] = list(groups)
    if extra:
        spec["extra"] = {k: list(v) for k, v in extra.items()}


def _go_bytes(data: bytes) -> str:
    return "[]byte{" + ", ".join(f"0x{b:x}" for b in data) + "}"


def _conditions(obj: Obj) -> list[Obj]:
    status = obj.get("status") if isinstance(obj.get("status"), dict) else {}
    return [c for c in status.get("conditions") or [] if isinstance(c, dict)]


def _validate_conditions(obj: Obj, old: Obj | None) -> list[FieldError]:
    errs: list[FieldError] = []
    path = Path("status").child("conditions")
    seen: dict[str, int] = {}
    for i, cond in enumerate(_conditions(obj)):
        kind = cond.get("type", "")
        if not kind:
            errs.append(required(path.index(i).child("type"), ""))
        if kind in seen and kind in (*APPROVAL_TYPES, "Failed"):
            errs.append(invalid(path.index(i).child("type"), kind, "duplicate condition type"))
        seen[kind] = i
        if cond.get("status") not in (None, "True", "False", "Unknown"):
            errs.append(not_supported(path.index(i).child("status"), cond.get("status"), ["False", "True", "Unknown"]))
        if kind in APPROVAL_TYPES and cond.get("status", "True") != "True":
            errs.append(not_supported(path.index(i).child("status"), cond.get("status"), ["True"]))
    if "Approved" in seen and "Denied" in seen:
        errs.append(invalid(path.index(seen["Denied"]).child("type"), "Denied",
                            "Approved and Denied conditions are mutually exclusive"))
    if old is not None:
        had = {c.get("type") for c in _conditions(old)} & set(APPROVAL_TYPES)
        for kind in had - set(seen):
            errs.append(forbidden(path, f"updates may not remove a condition of type \"{kind}\""))
    return errs


class CSRStrategy(Strategy):
    selectable = {"spec.signerName": meta_field("spec", "signerName")}

    def validate(self, obj: Obj) -> list[FieldError]:
        errs = super().validate(obj)
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        path = Path("spec")
        request = spec.get("request")
        if not request:
            errs.append(required(path.child("request"), ""))
        else:
            try:
                raw = base64.b64decode(request, validate=True)
            except (ValueError, TypeError):
                raw = b""
            match = _PEM.search(raw)
            if match is None or match.group(1) != b"CERTIFICATE REQUEST":
                errs.append(invalid(path.child("request"), _go_bytes(raw[:64]),
                                    "PEM block type must be CERTIFICATE REQUEST"))
        signer = spec.get("signerName")
        if not signer:
            errs.append(required(path.child("signerName"), ""))
        elif not _SIGNER.match(str(signer)):
            errs.append(invalid(path.child("signerName"), signer,
                                "must be a fully qualified domain and path of the form 'example.com/signer-name'"))
        usages = spec.get("usages")
        if not usages:
            errs.append(required(path.child("usages"), ""))
        for i, usage in enumerate(usages or []):
            if usage not in KNOWN_USAGES:
                errs.append(not_supported(path.child("usages").index(i), usage, list(KNOWN_USAGES)))
        seconds = spec.get("expirationSeconds")
        if seconds is not None and (not isinstance(seconds, int) or seconds < 600):
            errs.append(invalid(path.child("expirationSeconds"), seconds,
                                "may not specify a duration less than 600 seconds (10 minutes)"))
        return errs + _validate_conditions(obj, None)

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        obj["spec"] = old.get("spec")
        if "status" in old:
            obj["status"] = old["status"]
        else:
            obj.pop("status", None)

    def validate_update(self, obj: Obj, old: Obj) -> list[FieldError]:
        return super().validate(obj)

    def validate_status_update(self, obj: Obj, old: Obj) -> list[FieldError]:
        return validate_status_update(obj, old)

    def for_subresource(self, subresource: str) -> Strategy | None:
        if subresource == "approval":
            return _ApprovalStrategy(self)
        return None


class _ApprovalStrategy(Strategy):
    """`/approval`: the conditions and metadata from the request, spec and certificate as stored
    (kube's csrApprovalStrategy)."""

    def __init__(self, main: CSRStrategy) -> None:
        self.main = main

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        conditions = _conditions(obj)
        meta = obj.get("metadata")
        obj.clear()
        obj.update({k: v for k, v in old.items() if k != "status"})
        if isinstance(meta, dict):
            obj["metadata"] = meta
        status = dict(old.get("status") or {})
        status.pop("conditions", None)
        if conditions:
            status["conditions"] = conditions
        obj["status"] = status

    def validate_update(self, obj: Obj, old: Obj) -> list[FieldError]:
        return _validate_conditions(obj, old)


def validate_status_update(obj: Obj, old: Obj) -> list[FieldError]:
    """`/status` may not change the approval conditions (that is `/approval`'s job)."""
    errs = _validate_conditions(obj, old)
    new = {(c.get("type"), c.get("status", "True")) for c in _conditions(obj) if c.get("type") in APPROVAL_TYPES}
    was = {(c.get("type"), c.get("status", "True")) for c in _conditions(old) if c.get("type") in APPROVAL_TYPES}
    for kind, _ in new - was:
        errs.append(forbidden(Path("status").child("conditions"), f'updates may not add a condition of type "{kind}"'))
    cert = (obj.get("status") or {}).get("certificate")
    if cert:
        try:
            pem = base64.b64decode(cert, validate=True)
        except (ValueError, TypeError):
            pem = b""
        if b"-----BEGIN CERTIFICATE-----" not in pem:
            errs.append(invalid(Path("status").child("certificate"), "<certificate data>",
                                "must contain at least one CERTIFICATE PEM block"))
    return errs
