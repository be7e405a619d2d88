"""Several `pykube-server apiserver` processes on one store, for the multi-server tests.

Each server has its own data directory, as each control-plane machine would, holding a copy of
the first one's CA and service-account key pair (what kubeadm copies when a control-plane node
joins); each issues its own serving certificate for its own address. Servers listen on their
own loopback address (127.0.0.2, 127.0.0.3, ...) and one shared port, and are stopped by PID.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from pykube_server.apiserver import certs
from pykube_server.apiserver.serviceaccount import keys as sa_keys

READY_PREFIX = "pykube ready: "
SHARED_FILES = ("ca.crt", "ca.key", "sa.key", "sa.pub")


def shared_pki(root: Path, count: int) -> list[Path]:
    """`count` data directories whose pki/ share one CA and service-account key pair."""
    first = root / "apiserver-0"
    certs.ensure_pki(first / "pki")
    sa_keys.ensure_key_pair(first / "pki")
    dirs = [first]
    for i in range(1, count):
        other = root / f"apiserver-{i}"
        (other / "pki").mkdir(parents=True, mode=0o700)
        for name in SHARED_FILES:
            shutil.copy2(first / "pki" / name, other / "pki" / name)
        dirs.append(other)
    return dirs


def free_port(hosts: list[str]) -> int:
    """A port free on every one of `hosts`."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((hosts[0], 0))
            port = int(s.getsockname()[1])
        try:
            for host in hosts[1:]:
                with socket.socket() as s:
                    s.bind((host, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free on all of " + ", ".join(hosts))


@dataclass
class APIServerProcess:
    data_dir: Path
    address: str
    port: int
    storage: str
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None
    output: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://{self.address}:{self.port}"

    def launch(self) -> None:
        args = [sys.executable, "-m", "pykube_server", "apiserver", "--data-dir", str(self.data_dir),
                "--bind-address", self.address, "--port", str(self.port), "--storage", self.storage,
                "--log-level", "WARNING", *self.extra]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def wait_ready(self, timeout: float = 60.0) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        for line in self.proc.stdout:
            self.output.append(line)
            if line.startswith(READY_PREFIX):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("API server not ready in time:\n" + "".join(self.output[-40:]))
        else:
            raise RuntimeError("API server exited before it was ready:\n" + "".join(self.output[-40:]))
        stream = self.proc.stdout
        threading.Thread(target=lambda: [self.output.append(line) for line in stream], daemon=True).start()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def start_servers(dirs: list[Path], addresses: list[str], storage: str, *extra: str) -> list[APIServerProcess]:
    """Start one server per (dir, address) at the same time (their bootstraps race)."""
    port = free_port(addresses)
    servers = [APIServerProcess(d, a, port, storage, list(extra)) for d, a in zip(dirs, addresses)]
    for s in servers:
        s.launch()
    try:
        for s in servers:
            s.wait_ready()
    except BaseException:
        stop_servers(servers)
        raise
    return servers


def stop_servers(servers: list[APIServerProcess]) -> None:
    for s in servers:
        s.kill(signal.SIGTERM)


class Client:
    """A minimal admin client (client certificate from the shared CA) for one server."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url

    async def request(self, method: str, path: str, body: Any = None, *,
                      token: str = "") -> tuple[int, dict[str, Any]]:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = orjson.dumps(body) if body is not None else None
        async with self.session.request(method, self.url + path, data=data, headers=headers) as resp:
            return resp.status, orjson.loads(await resp.read() or b"{}")

    async def ok(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        status, answer = await self.request(method, path, body)
        assert 200 <= status < 300, (method, path, status, answer)
        return answer

    async def watch(self, path: str) -> AsyncIterator[dict[str, Any]]:
        async with self.session.get(self.url + path, timeout=aiohttp.ClientTimeout(total=None)) as resp:
            assert resp.status == 200, await resp.text()
            async for line in resp.content:
                if line.strip():
                    yield orjson.loads(line)


@asynccontextmanager
async def admin_session(pki_dir: Path, *, token: bool = False) -> AsyncIterator[aiohttp.ClientSession]:
    """An aiohttp session trusting the shared CA, presenting an admin client certificate."""
    ca = certs.ensure_pki(pki_dir).ca
    cert_pem, key_pem = certs.issue_client_cert(ca, certs.ADMIN_COMMON_NAME, [certs.ADMIN_ORGANIZATION])
    cert_file, key_file = pki_dir.parent / "admin.crt", pki_dir.parent / "admin.key"
    cert_file.write_bytes(cert_pem)
    key_file.write_bytes(key_pem)
    ctx = certs.client_ssl_context(ca_file=pki_dir / "ca.crt",
                                   cert_file=None if token else cert_file, key_file=None if token else key_file)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session:
        yield session


async def poll(check: Any, timeout: float = 20.0, interval: float = 0.1) -> Any:
    """Await `check()` until it returns something truthy; the last value is returned."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(interval)
