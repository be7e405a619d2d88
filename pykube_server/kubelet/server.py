"""The kubelet's HTTPS endpoint: what the API server proxies `pods/log`, `exec` and `attach` to.

Like a kubelet started without `--tls-cert-file`, it serves a self-signed certificate it makes
on first start (kept under the data dir), on loopback. One server answers for every node this
process runs (they all advertise its port in `daemonEndpoints`); the pod is found by namespace
and name among the nodes' pods.

`GET /containerLogs/{namespace}/{pod}/{container}` takes kubelet's query parameters: follow,
previous, tailLines, timestamps, limitBytes, sinceSeconds, sinceTime. Logs are kept in the CRI
format and turned back into the text the container wrote (with `timestamps=true` each line is
prefixed by its RFC 3339 timestamp). Errors are plain text with the kubelet's messages.

`/exec/{namespace}/{pod}/{container}` and `/attach/...` (GET or POST) upgrade to WebSocket and
speak the channel protocols (`streaming.py`).

`GET /stats/summary` is the Summary API (cpu and memory) the API server's metrics come from (`stats.py`).

Authentication of the API server (the real kubelet checks its client certificate and asks
for a SubjectAccessReview) is not done: the endpoint listens on loopback only.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from pykube_server.kubelet import portforward, stats, streaming
from pykube_server.kubelet.kubelet import Kubelet
from pykube_server.kubelet.runtime import ContainerState, ContainerStatus, LogsRuntime, StreamingRuntime


def self_signed(directory: Path, host: str = "127.0.0.1") -> ssl.SSLContext:
    cert_path, key_path = directory / "kubelet.crt", directory / "kubelet.key"
    if not cert_path.exists() or not key_path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{host}@pykube")])
        now = dt.datetime.now(dt.timezone.utc)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=365))
                .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host)),
                                                            x509.DNSName("localhost")]), critical=False)
                .sign(key, hashes.SHA256()))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        key_path.chmod(0o600)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_path, key_path)
    return ctx


def parse_cri_line(line: bytes) -> tuple[str, bytes]:
    """(timestamp, text with its newline unless the line was partial)."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 4:
        return "", line
    stamp, _stream, tag, text = parts
    return stamp.decode(), text + (b"" if tag == b"P" else b"\n")


def _since_ok(stamp: str, since: dt.datetime | None) -> bool:
    if since is None or not stamp:
        return True
    try:
        moment = dt.datetime.fromisoformat(stamp[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return True
    return moment >= since


class LogServer:
    def __init__(self, kubelets: Sequence[Kubelet], *, cert_dir: Path) -> None:
        self.kubelets = kubelets
        self.cert_dir = cert_dir
        self.port = 0
        self._runner: web.AppRunner | None = None
        self.stats = stats.StatsEndpoint(kubelets)
        """`/stats/summary`: the Summary API metrics come from (`stats.py`)."""

    async def start(self, port: int = 0) -> int:
        app = web.Application()
        app.router.add_get("/containerLogs/{namespace}/{pod}/{container}", self.container_logs)
        app.router.add_get("/healthz", lambda _r: _text("ok", 200))
        app.router.add_get("/stats/summary", self.stats.handle)
        app.router.add_get("/portForward/{namespace}/{pod}", lambda r: portforward.serve(r, self.kubelets))
        for kind in ("exec", "attach"):
            for method in ("GET", "POST"):
                app.router.add_route(method, f"/{kind}/{{namespace}}/{{pod}}/{{container}}", self.stream_handler(kind))
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port, ssl_context=self_signed(self.cert_dir))
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def aclose(self) -> None:
        await self.stats.aclose()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def _instances(self, namespace: str, pod_name: str, container: str) -> tuple[Kubelet, list[ContainerStatus]] | None:
        for kubelet in self.kubelets:
            pod = kubelet.find_pod(namespace, pod_name)
            if pod is None:
                continue
            uid = pod["metadata"]["uid"]
            sandboxes = {s.id for s in await kubelet.runtime.list_pod_sandboxes() if s.uid == uid}
            found = [c for c in await kubelet.runtime.list_containers()
                     if c.sandbox_id in sandboxes and c.name == container]
            return kubelet, sorted(found, key=lambda c: c.attempt)
        return None

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        ns, pod, name = (request.match_info[k] for k in ("namespace", "pod", "container"))
        q = request.query
        found = await self._instances(ns, pod, name)
        if found is None:
            return _text(f'pod "{pod}" not found', 404)
        kubelet, instances = found
        previous = q.get("previous") == "true"
        if previous:
            if len(instances) < 2:
                return _text(f'previous terminated container "{name}" in pod "{pod}" not found', 400)
            target = instances[-2]
        elif not instances or instances[-1].state is ContainerState.CREATED:
            reason = _waiting_reason(kubelet, ns, pod, name)
            return _text(f'container "{name}" in pod "{pod}" is waiting to start: {reason}', 400)
        else:
            target = instances[-1]
        if not isinstance(kubelet.runtime, LogsRuntime):
            return _text("logs are not supported by this runtime", 400)
        follow = q.get("follow") == "true" and target.state is ContainerState.RUNNING and not previous
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        await _stream(resp, kubelet.runtime.container_logs(target.id, follow=follow), q)
        await resp.write_eof()
        return resp


    def stream_handler(self, kind: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.stream(request, kind)
        return handle

    async def stream(self, request: web.Request, kind: str) -> web.StreamResponse:
        """`/exec` and `/attach`: the latest running instance of the container (the kubelet
        looks among running containers only, hence its `container not found` for one that is
        waiting or has exited)."""
        ns, pod, name = (request.match_info[k] for k in ("namespace", "pod", "container"))
        found = await self._instances(ns, pod, name)
        if found is None:
            return streaming.error_response("pod does not exist", 404)
        kubelet, instances = found
        running = [c for c in instances if c.state is ContainerState.RUNNING]
        if not running:
            return streaming.error_response(f'container not found ("{name}")', 404)
        try:
            opts = streaming.parse_options(request.query)
        except ValueError as exc:
            return streaming.error_response(str(exc), 400)
        if not isinstance(kubelet.runtime, StreamingRuntime):
            return streaming.error_response(f"{kind} is not supported by this runtime", 500)
        return await streaming.serve(request, kubelet.runtime, running[-1].id, kind=kind, opts=opts)


def _waiting_reason(kubelet: Kubelet, ns: str, pod: str, name: str) -> str:
    obj = kubelet.find_pod(ns, pod) or {}
    status = obj.get("status") or {}
    for cs in (status.get("containerStatuses") or []) + (status.get("initContainerStatuses") or []):
        if cs.get("name") == name:
            return str(((cs.get("state") or {}).get("waiting") or {}).get("reason") or "ContainerCreating")
    return "ContainerCreating"


async def _stream(resp: web.StreamResponse, chunks: AsyncIterator[bytes], q: Mapping[str, str]) -> None:
    timestamps = q.get("timestamps") == "true"
    limit = int(q["limitBytes"]) if q.get("limitBytes") else None
    tail = int(q["tailLines"]) if q.get("tailLines") not in (None, "", "-1") else None
    since: dt.datetime | None = None
    if q.get("sinceSeconds"):
        since = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=int(q["sinceSeconds"]))
    elif q.get("sinceTime"):
        since = dt.datetime.fromisoformat(q["sinceTime"].replace("Z", "+00:00"))
    sent = 0
    buf = b""
    first = True
    async for chunk in chunks:
        buf += chunk
        lines, _, buf = buf.rpartition(b"\n")
        if not lines:
            buf = lines + buf
            continue
        out = _render(lines.split(b"\n"), timestamps=timestamps, since=since)
        if first and tail is not None:
            out = out[len(out) - tail:] if tail < len(out) else out
        first = False
        data = b"".join(out)
        if limit is not None:
            data = data[: max(limit - sent, 0)]
        if data:
            await resp.write(data)
            sent += len(data)
        if limit is not None and sent >= limit:
            return


def _render(lines: list[bytes], *, timestamps: bool, since: dt.datetime | None) -> list[bytes]:
    out = []
    for line in lines:
        stamp, text = parse_cri_line(line)
        if not _since_ok(stamp, since):
            continue
        out.append((stamp.encode() + b" " if timestamps and stamp else b"") + text)
    return out


def _text(message: str, status: int) -> web.Response:
    return web.Response(text=message, status=status, content_type="text/plain")


