"""Real etcd processes for tests: single members and small clusters on loopback ports.

Every member listens on 127.0.0.1 only, on ports the kernel handed out a moment before, with its
data directory under the test's tmp_path; members are stopped by their own PID. The timing flags
are shortened (heartbeat 10-25 ms) so a fresh member is ready in well under a second and a
cluster elects a new leader quickly after one is killed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

INSTALL_HINT = "etcd binary not found: run tools/install-etcd.sh as root (apt-get install etcd-server)"


def etcd_binary() -> str | None:
    found = shutil.which("etcd")
    if found:
        return found
    return "/usr/bin/etcd" if os.access("/usr/bin/etcd", os.X_OK) else None


def require_etcd() -> str:
    """The etcd binary, or skip the calling test saying how to install it."""
    binary = etcd_binary()
    if binary is None:
        pytest.skip(INSTALL_HINT)
    return binary


def free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


@dataclass
class EtcdMember:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log_path = self.data_dir.parent / f"{self.name}.log"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def start(self, binary: str, initial_cluster: str, *, heartbeat_ms: int, election_ms: int,
              token: str = "pykube-test") -> None:
        client = f"http://{self.endpoint}"
        args = [
            binary, "--name", self.name, "--data-dir", str(self.data_dir),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", initial_cluster, "--initial-cluster-state", "new",
            "--initial-cluster-token", token,
            "--heartbeat-interval", str(heartbeat_ms), "--election-timeout", str(election_ms),
            "--logger", "zap", "--log-level", "warn",
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.endpoint}/health", timeout=1) as resp:
                return json.loads(resp.read()).get("health") == "true"
        except (OSError, ValueError, urllib.error.URLError):
            return False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to this member's own PID and reap it."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


class EtcdCluster:
    """`size` members started together; `stop()` ends every one still running."""

    def __init__(self, root: Path, size: int = 1, *, heartbeat_ms: int = 10, election_ms: int = 100) -> None:
        self.binary = require_etcd()
        self.root = root
        self.size, self.heartbeat_ms, self.election_ms = size, heartbeat_ms, election_ms
        self.members: list[EtcdMember] = []

    @property
    def endpoints(self) -> list[str]:
        return [m.endpoint for m in self.members]

    def start(self, timeout: float = 20.0) -> EtcdCluster:
        for attempt in range(3):  # a port taken between choosing and binding: choose again
            ports = free_ports(2 * self.size)
            self.members = [
                EtcdMember(f"m{i}", ports[2 * i], ports[2 * i + 1], self.root / f"attempt{attempt}-m{i}")
                for i in range(self.size)
            ]
            initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
            token = f"pykube-test-{ports[0]}"
            for m in self.members:
                m.start(self.binary, initial, heartbeat_ms=self.heartbeat_ms, election_ms=self.election_ms,
                        token=token)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if not all(m.alive() for m in self.members):
                    break
                if all(m.healthy() for m in self.members):
                    return self
                time.sleep(0.02)
            logs = "\n".join(m.log_tail() for m in self.members)
            self.stop()
            if "address already in use" not in logs:
                raise RuntimeError(f"etcd did not become healthy in {timeout} s:\n{logs}")
        raise RuntimeError("etcd did not start after 3 attempts")

    def stop(self) -> None:
        for m in self.members:
            m.kill(signal.SIGTERM)
