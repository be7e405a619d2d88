"""The process runtime's stand-ins for the nginx and httpd images' servers: which images get
one (by the last path component of the reference only), and the stand-in server itself run
through the runtime and its shim (pod IP, image port, default pages, access log, stop)."""

from __future__ import annotations

import asyncio
import http.client
import itertools
import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from pykube_server.kubelet.runtime import ContainerConfig, ContainerState, Mount, SandboxConfig
from pykube_server.kubelet.runtimes.process import PLACEHOLDER, ProcessRuntime
from pykube_server.kubelet.runtimes.standins import (
    HTTPD, NGINX, NGINX_UNPRIVILEGED, covers_docroot, standin_argv, standin_for,
)

# nginx's "combined" log format: addr - user [time] "request" status bytes "referer" "agent"
COMBINED = re.compile(r'^(\S+) - - \[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] '
                      r'"([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$')


@pytest.mark.parametrize(("image", "expected"), [
    ("nginx", NGINX),
    ("nginx:1.27-alpine", NGINX),
    ("nginx:latest", NGINX),
    ("library/nginx", NGINX),
    ("docker.io/library/nginx:1.27", NGINX),
    ("docker.io/library/nginx@sha256:" + "a" * 64, NGINX),
    ("docker.io/library/nginx:1.27@sha256:" + "b" * 64, NGINX),
    ("localhost:5000/nginx", NGINX),
    ("mirror.gcr.io/library/nginx:stable", NGINX),
    ("nginxinc/nginx-unprivileged:stable-alpine", NGINX_UNPRIVILEGED),
    ("httpd", HTTPD),
    ("httpd:2.4", HTTPD),
    ("docker.io/library/httpd:2.4-alpine", HTTPD),
    ("registry.k8s.io/e2e-test-images/httpd:2.4.38-4", HTTPD),
    ("registry.k8s.io/nginx-slim:0.8", None),
    ("nginx/nginx-ingress:3.0", None),
    ("nginx-prometheus-exporter", None),
    ("busybox", None),
    ("localhost:5000/busybox", None),
    ("python:3", None),
    ("", None),
])
def test_standin_for_image_spellings(image: str, expected: object) -> None:
    assert standin_for(image) == expected


def test_ports_and_document_roots() -> None:
    assert (NGINX.port, NGINX.docroot) == (80, "/usr/share/nginx/html")
    assert (NGINX_UNPRIVILEGED.port, NGINX_UNPRIVILEGED.docroot) == (8080, "/usr/share/nginx/html")
    assert (HTTPD.port, HTTPD.docroot) == (80, "/usr/local/apache2/htdocs")


def test_docroot_is_served_only_under_a_volume() -> None:
    """Mount points are made on the host, so a docroot that merely exists is not the pod's."""
    assert covers_docroot(NGINX, ["/usr/share/nginx/html"])
    assert covers_docroot(NGINX, ["/usr/share/nginx/html/"])
    assert covers_docroot(NGINX, ["/usr/share/nginx"])
    assert not covers_docroot(NGINX, ["/usr/share/nginx/html2", "/etc/nginx/conf.d", "/usr/share/nginx/html/x"])
    assert not covers_docroot(HTTPD, [])
    assert "--docroot" not in standin_argv(NGINX, "127.0.0.9", [])
    argv = standin_argv(HTTPD, "127.0.0.9", ["/usr/local/apache2/htdocs"])
    assert argv[argv.index("--docroot") + 1] == "/usr/local/apache2/htdocs"
    assert argv[argv.index("--port") + 1] == "80" and argv[argv.index("--ip") + 1] == "127.0.0.9"


# --- the server, through the process runtime and its shim ------------------------------------

_HOSTS = itertools.count(2)


def _ip() -> str:
    """A fresh loopback address (the loopback network plugin's pods live in 127.244/16)."""
    return f"127.233.{os.getpid() % 250 + 1}.{next(_HOSTS)}"


async def _request(ip: str, port: int, method: str = "GET", path: str = "/",
                   headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    def go() -> tuple[int, dict[str, str], bytes]:
        deadline = time.monotonic() + 10
        while True:
            conn = http.client.HTTPConnection(ip, port, timeout=5)
            try:
                conn.request(method, path, headers=headers or {})
                resp = conn.getresponse()
                return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
            except ConnectionRefusedError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
            finally:
                conn.close()
    return await asyncio.to_thread(go)


async def _start(rt: ProcessRuntime, image: str, ip: str, mounts: tuple[Mount, ...] = ()) -> str:
    sid = await rt.run_pod_sandbox(SandboxConfig(uid=f"u-{ip}", namespace="ns", name="web", ip=ip))
    cid = await rt.create_container(sid, ContainerConfig(name="web", image=image, mounts=mounts))
    await rt.start_container(cid)
    return cid


def _log_lines(rt: ProcessRuntime, cid: str) -> list[tuple[str, str]]:
    """(stream, text) of each line of the container's CRI log."""
    path = Path(json.loads((rt.root / "containers" / cid / "config.json").read_text())["log_path"])
    out = []
    for line in path.read_text().splitlines():
        _, stream, _, text = line.split(" ", 3)
        out.append((stream, text))
    return out


async def _exit_code(rt: ProcessRuntime, cid: str, timeout: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in await rt.list_containers():
            if c.id == cid and c.state is ContainerState.EXITED:
                return int(c.exit_code or 0)
        await asyncio.sleep(0.05)
    raise AssertionError("the stand-in did not exit")


async def test_nginx_standin_serves_default_page_and_logs_combined(runtime: ProcessRuntime) -> None:
    ip = _ip()
    cid = await _start(runtime, "nginx:1.27-alpine", ip)
    status, headers, body = await _request(ip, 80, headers={"User-Agent": "probe/1.0", "Referer": "http://x/"})
    assert status == 200 and headers["server"] == "nginx" and headers["content-type"] == "text/html"
    assert b"<title>Welcome to nginx!</title>" in body and b"<h1>Welcome to nginx!</h1>" in body
    assert int(headers["content-length"]) == len(body)
    assert headers["etag"].startswith('"') and headers["etag"].endswith(f'-{len(body):x}"')
    assert headers["last-modified"].endswith(" GMT") and headers["date"].endswith(" GMT")
    status, headers, body = await _request(ip, 80, "HEAD", "/index.html")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0
    status, _, body = await _request(ip, 80, path="/missing")
    assert status == 404 and b"404 Not Found" in body

    lines = [text for stream, text in _log_lines(runtime, cid) if stream == "stdout"]
    parsed = [COMBINED.match(line) for line in lines]
    assert all(parsed), lines
    got = [(m.group(2), m.group(3), m.group(5), m.group(6)) for m in parsed if m]
    assert got[0] == ("GET / HTTP/1.1", "200", "http://x/", "probe/1.0")
    assert got[1][:2] == ("HEAD /index.html HTTP/1.1", "200") and parsed[1] and parsed[1].group(4) == "0"
    assert got[2][:2] == ("GET /missing HTTP/1.1", "404")
    assert parsed[0] and parsed[0].group(1) == "127.0.0.1" and int(parsed[0].group(4)) == len(
        (await _request(ip, 80))[2])

    began = time.monotonic()
    await runtime.stop_container(cid, timeout=10)
    assert time.monotonic() - began < 2
    assert await _exit_code(runtime, cid) == 0


async def test_keep_alive_connection_serves_several_requests(runtime: ProcessRuntime) -> None:
    ip = _ip()
    await _start(runtime, "nginx", ip)
    await _request(ip, 80)  # up

    def two_on_one() -> list[int]:
        conn = http.client.HTTPConnection(ip, 80, timeout=5)
        codes = []
        for _ in range(2):
            conn.request("GET", "/")
            resp = conn.getresponse()
            resp.read()
            codes.append(resp.status)
        sock_still_open = conn.sock is not None
        conn.close()
        return codes + [int(sock_still_open)]

    assert await asyncio.to_thread(two_on_one) == [200, 200, 1]


async def test_httpd_standin_page_and_sigquit(runtime: ProcessRuntime) -> None:
    ip = _ip()
    cid = await _start(runtime, "docker.io/library/httpd:2.4", ip)
    status, headers, body = await _request(ip, 80)
    assert (status, headers["server"], body) == (200, "Apache", b"<html><body><h1>It works!</h1></body></html>\n")
    state = json.loads((runtime.root / "containers" / cid / "state.json").read_text())
    os.kill(int(state["pid"]), signal.SIGQUIT)  # nginx's and httpd's graceful stop
    assert await _exit_code(runtime, cid) == 0


async def test_nginx_unprivileged_listens_on_8080(runtime: ProcessRuntime) -> None:
    ip = _ip()
    await _start(runtime, "nginxinc/nginx-unprivileged:stable", ip)
    status, _, body = await _request(ip, 8080)
    assert status == 200 and b"<h1>Welcome to nginx!</h1>" in body


async def test_other_images_keep_the_placeholder(runtime: ProcessRuntime) -> None:
    sid = await runtime.run_pod_sandbox(SandboxConfig(uid="u", namespace="ns", name="p", ip=_ip()))
    cid = await runtime.create_container(sid, ContainerConfig(name="c", image="registry.k8s.io/nginx-slim:0.8"))
    config = json.loads((runtime.root / "containers" / cid / "config.json").read_text())
    assert config["argv"] == list(PLACEHOLDER)
    cid = await runtime.create_container(sid, ContainerConfig(name="d", image="nginx", command=("sleep", "1")))
    config = json.loads((runtime.root / "containers" / cid / "config.json").read_text())
    assert config["argv"] == ["sleep", "1"]  # a command wins over the stand-in


@pytest.mark.skipif(os.geteuid() != 0, reason="volumes are bound into containers only as root (mount namespaces)")
async def test_volume_over_docroot_is_served(runtime: ProcessRuntime, tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "sub").mkdir(parents=True)
    (site / "index.html").write_text("<p>ours</p>")
    (site / "sub" / "index.html").write_text("<p>sub</p>")
    (site / "style.css").write_text("p{}")
    (site / "empty").mkdir()
    ip = _ip()
    cid = await _start(runtime, "nginx", ip, (Mount(str(site), "/usr/share/nginx/html", True),))
    if runtime.isolation_problem(cid):
        pytest.skip(f"no mount namespace here: {runtime.isolation_problem(cid)}")
    assert (await _request(ip, 80))[::2] == (200, b"<p>ours</p>")
    assert (await _request(ip, 80, path="/sub/"))[::2] == (200, b"<p>sub</p>")
    status, headers, _ = await _request(ip, 80, path="/sub")
    assert (status, headers["location"]) == (301, "/sub/")
    status, headers, body = await _request(ip, 80, path="/style.css")
    assert (status, headers["content-type"], body) == (200, "text/css", b"p{}")
    assert (await _request(ip, 80, path="/empty/"))[0] == 403  # no index.html, no autoindex
    assert (await _request(ip, 80, path="/nope.html"))[0] == 404
    assert (await _request(ip, 80, path="/../../etc/passwd"))[0] == 404
