"""Shared fixtures: a real `pykube-server up` process, kubectl, and the official client.

The server runs as a subprocess (as a user runs it), because the official client and kubectl
are blocking: they must not share an event loop with the server they talk to.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

KUBECTL = "/usr/bin/kubectl"
READY_PREFIX = "pykube ready: "


@dataclass
class ServerProcess:
    data_dir: Path
    kubeconfig: Path
    url: str = ""
    proc: subprocess.Popen[str] | None = None
    extra_args: list[str] = field(default_factory=list)
    home: Path = Path()

    def start(self, timeout: float = 60.0) -> None:
        args = [sys.executable, "-m", "pykube_server", "up", "--data-dir", str(self.data_dir), "--port", "0",
                "--kubeconfig", str(self.kubeconfig), *self.extra_args]
        if self.url:  # a restart keeps its port, so clients' kubeconfigs stay valid
            args[args.index("--port") + 1] = self.url.rsplit(":", 1)[1]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.proc.stdout is not None
        lines = []
        for line in self.proc.stdout:
            lines.append(line)
            if line.startswith(READY_PREFIX):
                self.url = line[len(READY_PREFIX):].split()[0]
                break
        else:
            raise RuntimeError("pykube-server exited before it was ready:\n" + "".join(lines))
        # keep draining output so the server never blocks on a full pipe
        import threading
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()  # type: ignore[union-attr]

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code

    def kubectl(self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        if not os.path.exists(KUBECTL):
            pytest.skip(f"{KUBECTL} is not installed on this machine")
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "HOME": str(self.home)}
        result = subprocess.run([KUBECTL, *args], capture_output=True, text=True, input=input, env=env, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def api_client(self):  # type: ignore[no-untyped-def]
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))


def start_server(tmp: Path, *extra: str) -> ServerProcess:
    home = tmp / "home"
    home.mkdir(parents=True, exist_ok=True)
    server = ServerProcess(tmp / "data", tmp / "kubeconfig" / "admin.yaml", extra_args=list(extra), home=home)
    server.start()
    return server


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("cluster"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def api_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The API server alone (`up --components=`): for tests of API semantics that need a quiet
    cluster, where no controller adds objects (kube-root-ca.crt, default ServiceAccounts) and no
    scheduler or kubelet moves pods along."""
    # No controller manager makes `default` ServiceAccounts here, so the ServiceAccount admission
    # plugin is off, as envtest runs kube-apiserver (tests/apiserver/test_serviceaccount_tokens.py
    # covers it on a server of its own).
    server = start_server(tmp_path_factory.mktemp("api-cluster"), "--components=",
                          "--disable-admission-plugins=ServiceAccount")
    yield server
    server.stop()


def _new_namespace(server: ServerProcess, *, settled: bool = False) -> str:
    """A fresh namespace; with `settled`, returned once the controllers made its `default`
    ServiceAccount (pods are refused before it exists, as on a real cluster, where the e2e
    framework waits for it too)."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    import time

    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    core = client.CoreV1Api(server.api_client())
    core.create_namespace({"metadata": {"name": name}})
    deadline = time.monotonic() + 30
    while settled:
        try:
            core.read_namespaced_service_account("default", name)
            break
        except ApiException as exc:
            if exc.status != 404 or time.monotonic() > deadline:
                raise
        time.sleep(0.1)
    return name


@pytest.fixture
def namespace(cluster: ServerProcess) -> str:
    return _new_namespace(cluster, settled=True)


@pytest.fixture
def api_namespace(api_cluster: ServerProcess) -> str:
    return _new_namespace(api_cluster)


def have_kubectl() -> bool:
    return os.path.exists(KUBECTL) and shutil.which(KUBECTL) is not None


requires_kubectl = pytest.mark.skipif(not have_kubectl(), reason=f"{KUBECTL} is not installed on this machine")


def read_until_closed(sock: Any, seconds: float = 20.0) -> bytes:
    """Everything a port-forwarded socket (the official client's `portforward(...).socket(port)`)
    sends until the far end closes it, or what came within `seconds`."""
    import select

    sock.setblocking(True)
    data = b""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([sock], [], [], 1)
        if ready:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    sock.close()
    return data


T = TypeVar("T")


def wait_until(check: Callable[[], T], *, what: str, timeout: float = 60.0, interval: float = 0.1) -> T:
    """Poll `check` until it returns something true, and return that; fail the test after
    `timeout` seconds naming `what` was awaited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")
