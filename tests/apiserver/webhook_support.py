"""Admission webhook servers for the webhook tests: a throwaway CA and an aiohttp HTTPS server.

The server runs on its own event loop in a thread (the tests drive a server process with
blocking clients). Each path is one behaviour a webhook author writes; every review received
is recorded per path so tests can check what kube-apiserver would have sent.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import json
import ssl
import tempfile
import threading
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class WebhookCA:
    """A self-signed CA issuing serving certificates for the given names and IPs."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.timezone.utc)
        subject = _name(f"webhook-test-ca-{uuid.uuid4().hex[:8]}")
        self.cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def bundle(self) -> str:
        """The `caBundle` of a webhook configuration."""
        return base64.b64encode(self.pem).decode()

    def issue(self, *sans: str) -> tuple[bytes, bytes]:
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for san in sans:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(san)))
            except ValueError:
                names.append(x509.DNSName(san))
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(_name(sans[0])).issuer_name(self.cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .sign(self.key, hashes.SHA256()))
        return cert.public_bytes(serialization.Encoding.PEM), _pem_key(key)


def allow(review: dict[str, Any], **response: Any) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "response": {"uid": review["request"]["uid"], "allowed": True, **response}}


def json_patch(ops: list[dict[str, Any]]) -> dict[str, Any]:
    return {"patchType": "JSONPatch", "patch": base64.b64encode(json.dumps(ops).encode()).decode()}


def labels_of(review: dict[str, Any]) -> dict[str, str]:
    obj = review["request"].get("object") or review["request"].get("oldObject") or {}
    return (obj.get("metadata") or {}).get("labels") or {}


async def _deny_labelled(review: dict[str, Any]) -> dict[str, Any]:
    """Refuses objects labelled deny=true, with a warning either way."""
    if labels_of(review).get("deny") == "true":
        return allow(review, allowed=False, status={"message": "objects labelled deny=true are not welcome"})
    return allow(review, warnings=["deny.example.com looked at this object"])


async def _add_label(review: dict[str, Any]) -> dict[str, Any]:
    obj = review["request"]["object"]
    ops: list[dict[str, Any]] = []
    if not (obj.get("metadata") or {}).get("labels"):
        ops.append({"op": "add", "path": "/metadata/labels", "value": {}})
    ops.append({"op": "add", "path": "/metadata/labels/mutated", "value": "by-webhook"})
    return allow(review, **json_patch(ops))


async def _count_calls(review: dict[str, Any]) -> dict[str, Any]:
    """Appends `x` to annotation `calls`: shows how often a webhook was (re)invoked."""
    obj = review["request"]["object"]
    annotations = (obj.get("metadata") or {}).get("annotations")
    if annotations is None:
        return allow(review, **json_patch([{"op": "add", "path": "/metadata/annotations", "value": {"calls": "x"}}]))
    return allow(review, **json_patch([{"op": "add", "path": "/metadata/annotations/calls",
                                         "value": annotations.get("calls", "") + "x"}]))


async def _add_sidecar(review: dict[str, Any]) -> dict[str, Any]:
    return allow(review, **json_patch([{"op": "add", "path": "/spec/containers/-",
                                         "value": {"name": "sidecar", "image": "busybox:1.36"}}]))


async def _forbidden(review: dict[str, Any]) -> dict[str, Any]:
    return allow(review, allowed=False, status={"code": 403, "reason": "Forbidden", "message": "no, by policy"})


async def _bare_deny(review: dict[str, Any]) -> dict[str, Any]:
    return allow(review, allowed=False)


async def _slow(review: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(3)
    return allow(review)


async def _wrong_uid(review: dict[str, Any]) -> dict[str, Any]:
    out = allow(review)
    out["response"]["uid"] = "not-the-uid"
    return out


async def _allow(review: dict[str, Any]) -> dict[str, Any]:
    return allow(review)


BEHAVIOURS = {"/deny": _deny_labelled, "/mutate": _add_label, "/count": _count_calls, "/sidecar": _add_sidecar, "/forbidden": _forbidden,
              "/bare-deny": _bare_deny, "/slow": _slow, "/wrong-uid": _wrong_uid, "/allow": _allow}


class ThreadedServer:
    """An aiohttp server on its own event loop in a daemon thread, for tests whose client code
    (kubectl, the API server in a subprocess) calls it; subclasses write `_start` (which sets
    `self._runner` and `self.port`)."""

    def __init__(self) -> None:
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._runner: web.AppRunner | None = None

    def start(self) -> Any:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    def stop(self) -> None:
        async def cleanup() -> None:
            if self._runner is not None:
                await self._runner.cleanup()
        asyncio.run_coroutine_threadsafe(cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        raise NotImplementedError


class WebhookServer(ThreadedServer):
    """An HTTPS webhook server on 127.0.0.1, serving every behaviour in BEHAVIOURS."""

    def __init__(self, ca: WebhookCA) -> None:
        super().__init__()
        self.ca = ca
        self.reviews: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    async def _start(self) -> None:
        cert, key = self.ca.issue("127.0.0.1", "localhost")
        directory = Path(tempfile.mkdtemp(prefix="webhook-"))
        (directory / "tls.crt").write_bytes(cert)
        (directory / "tls.key").write_bytes(key)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(directory / "tls.crt", directory / "tls.key")
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=ctx)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _handle(self, request: web.Request) -> web.Response:
        review = await request.json()
        self.reviews[request.path].append(review)
        behaviour = BEHAVIOURS.get(request.path)
        if behaviour is None:
            return web.Response(status=404, text="404 page not found")
        return web.json_response(await behaviour(review))
