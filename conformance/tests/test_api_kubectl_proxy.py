"""test/e2e/kubectl/kubectl.go, "Proxy server": `kubectl proxy` on an ephemeral port and on a unix
socket relays /api/ from the API server."""

from __future__ import annotations

import http.client
import json
import os
import re
import selectors
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conformance.conftest import KUBECTL
from conformance.harness import conformance

SERVING = re.compile(r"Starting to serve on 127\.0\.0\.1:([0-9]+)")


@contextmanager
def kubectl_proxy(cluster, *args: str) -> Iterator[tuple[subprocess.Popen, str]]:  # type: ignore[no-untyped-def]
    """Start `kubectl proxy <args>`, yield it with its first line of output; killed afterwards."""
    if not os.path.exists(KUBECTL):
        pytest.skip(f"kubectl not found at {KUBECTL}")
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HOME": str(cluster.home)}
    proc = subprocess.Popen([KUBECTL, "proxy", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env, text=True)
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
        if not sel.select(timeout=30):
            raise AssertionError("no output from kubectl proxy within 30s")
        yield proc, proc.stdout.readline()  # type: ignore[union-attr]
    finally:
        proc.kill()
        proc.wait(timeout=10)


def _api_versions(conn: http.client.HTTPConnection, path: str = "/api/") -> dict:
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    assert resp.status == 200, body[:200]
    return json.loads(body)


class _UnixConnection(http.client.HTTPConnection):
    """curlUnix: HTTP over a unix socket. Upstream's URL host is `unused` and it only checks that a
    reply came; kubectl's request filter (on by default) answers 403 to a Host other than localhost,
    so the request names localhost to get /api relayed and checks the reply as the --port 0 test does."""

    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=10)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self._path)


@conformance("[sig-cli] Kubectl client Proxy server should support proxy with --port 0 [Conformance]")
def test_kubectl_proxy_port_zero(cluster) -> None:  # type: ignore[no-untyped-def]
    with kubectl_proxy(cluster, "-p", "0", "--disable-filter") as (_, line):
        match = SERVING.search(line)
        assert match, f"unexpected kubectl proxy output: {line!r}"
        versions = _api_versions(http.client.HTTPConnection("localhost", int(match.group(1)), timeout=10))
        assert len(versions["versions"]) >= 1, versions


@conformance("[sig-cli] Kubectl client Proxy server should support --unix-socket=/path [Conformance]")
def test_kubectl_proxy_unix_socket(cluster) -> None:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory(prefix="kubectl-proxy-unix") as tmp:
        path = str(Path(tmp) / "test")
        with kubectl_proxy(cluster, f"--unix-socket={path}") as (_, line):
            assert line, "expected output from kubectl proxy"
            deadline = time.monotonic() + 10
            while not os.path.exists(path) and time.monotonic() < deadline:
                time.sleep(0.1)
            versions = _api_versions(_UnixConnection(path), "/api")
            assert len(versions["versions"]) >= 1, versions
