"""What the cluster benchmarks (scheduler, kubelet, controllers) share: a cluster of separate
processes, an admin HTTPS client with a resilient watch, and the summary table.

The API server runs alone (`pykube-server up --components=`); each other component is started
by the benchmark as its own `pykube-server <component>` process with the admin kubeconfig and
the client QPS/burst the benchmark asks for. `up` starts components with their default client
limits (50 QPS / 100 burst, as kube's), which would hold a scheduler to 50 requests/s shared by
its bindings and their `Scheduled` events, and a kubelet of 1,000 nodes below what its Lease
renewals alone need (a GET and an update per node every 10 s), so a benchmark that wants the
components' own speed must raise them; `--qps 50 --burst 100` reproduces the stock set-up.

The generic parts (the server child process, the kubeconfig's certificates, percentiles, the
platform line) come from `api.py`, the model these scripts follow.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import aiohttp
import orjson

# log, pct and platform_line are re-exported for the scripts
from api import ROOT, ServerProcess, Target, client_ssl, log, pct, platform_line, target_from_kubeconfig  # noqa: F401

STOP_GRACE_SECONDS = 15.0
MAX_RETRIES = 10
"""client-go's limit on retries of a request answered 429 with Retry-After."""
WATCH_TIMEOUT_SECONDS = 1800
NODE_PREFIX = "pykube-node-"
"""The kubelet's default node names: `<prefix><i>`."""
LEASE_NAMESPACE = "kube-node-lease"
PATCH_TYPES = {"merge": "application/merge-patch+json", "strategic": "application/strategic-merge-patch+json"}


# -- processes -------------------------------------------------------------------------------------


class Component:
    """One `pykube-server <component>` child; its output goes to a file shown if it dies."""

    def __init__(self, name: str, argv: list[str], log_file: Path) -> None:
        self.name = name
        self.log_file = log_file
        self._out = log_file.open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "pykube_server", name, *argv], cwd=ROOT,
                                     stdout=self._out, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def report_warnings(self, shown: int = 3) -> None:
        """Its log is in a temporary directory that goes away: say how many warnings it logged
        and show the last few, since they often explain a slow figure (429s, retries)."""
        try:
            lines = self.log_file.read_text(errors="replace").splitlines()
        except OSError:
            return
        bad = [line for line in lines if " WARNING " in line or " ERROR " in line or "Traceback" in line]
        if bad:
            log(f"  {self.name} logged {len(bad):,} warnings/errors; the last {min(shown, len(bad))}:")
            for line in bad[-shown:]:
                log(f"    {line[:300]}")

    def cpu_seconds(self) -> float:
        try:
            fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


class Cluster:
    """The API server alone plus the components a benchmark starts, all stopped together."""

    def __init__(self, tmp: Path, *, qps: float, burst: int) -> None:
        self.tmp = tmp
        self.qps = qps
        self.burst = burst
        self.kubeconfig = tmp / "admin.kubeconfig"
        self.server: ServerProcess | None = None
        self.components: list[Component] = []
        self.target: Target | None = None

    def start_api_server(self) -> Target:
        log("starting the API server alone (`up --components=`, SQLite in a temp dir) ...")
        self.server = ServerProcess([sys.executable, "-m", "pykube_server", "up", "--data-dir", str(self.tmp / "data"),
                                     "--port", "0", "--kubeconfig", str(self.kubeconfig), "--log-level", "WARNING",
                                     "--components=",
                                     # pods must not wait for `default` ServiceAccounts no controller makes here
                                     "--disable-admission-plugins=ServiceAccount"], "pykube ready: ")
        self.target = target_from_kubeconfig(self.kubeconfig, self.tmp)
        log(f"  API server pid {self.server.pid} at {self.target.url}")
        return self.target

    def start(self, name: str, *extra: str) -> Component:
        """Start one component with the admin kubeconfig and the benchmark's client limits."""
        argv = ["--kubeconfig", str(self.kubeconfig), "--log-level", "WARNING", "--kube-api-qps", str(self.qps),
                "--kube-api-burst", str(self.burst), *extra]
        if name in ("scheduler", "controller-manager"):
            argv += ["--leader-elect", "false"]
        component = Component(name, argv, self.tmp / f"{name}.log")
        self.components.append(component)
        log(f"  started {name} (pid {component.pid}, client {self.qps:g} QPS / {self.burst} burst)"
            + (f": {' '.join(extra)}" if extra else ""))
        return component

    def check(self) -> None:
        """Fail loudly when a component died: its figures would otherwise read as slowness."""
        for component in self.components:
            if not component.alive():
                raise RuntimeError(f"{component.name} exited with {component.proc.returncode}:\n{component.tail()}")
        if self.server is not None and self.server.proc.poll() is not None:
            raise RuntimeError("the API server exited:\n" + "".join(self.server.output[-30:]))

    def cpu(self) -> dict[str, float]:
        out = {c.name: c.cpu_seconds() for c in self.components}
        if self.server is not None:
            out["apiserver"] = self.server.cpu_seconds()
        return out

    def cpu_line(self, before: dict[str, float], seconds: float) -> str:
        """Each process's share of one core since `before`: who was the bottleneck."""
        now = self.cpu()
        parts = [f"{name} {(now[name] - before.get(name, 0.0)) / max(seconds, 1e-9):.0%}" for name in now]
        return "CPU of one core: " + ", ".join(parts)

    def stop(self) -> None:
        for component in reversed(self.components):
            component.stop()
            component.report_warnings()
        if self.server is not None:
            self.server.stop()


# -- the admin client --------------------------------------------------------------------------------


class ApiError(RuntimeError):
    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {path}: {status} {body[:300].decode(errors='replace')}")
        self.status = status


class Api:
    """Plain aiohttp over keep-alive HTTPS with the admin certificate; bodies are dicts."""

    def __init__(self, target: Target, connections: int = 32) -> None:
        self.url = target.url
        self.retries_429 = 0
        connector = aiohttp.TCPConnector(limit=connections, ssl=client_ssl(target))
        self.session = aiohttp.ClientSession(connector=connector)
        self._watch_session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, ssl=client_ssl(target)),
            timeout=aiohttp.ClientTimeout(total=None, sock_read=None))

    async def close(self) -> None:
        await self.session.close()
        await self._watch_session.close()

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def request(self, method: str, path: str, body: Any = None, *, ok: Iterable[int] = (200, 201, 202),
                      content_type: str = "application/json") -> Any:
        """One call; a 429 is retried after its Retry-After, up to 10 times, as client-go does, so a
        server shedding load shows up as latency and in `retries_429`, not as failed work."""
        headers = {"Accept": "application/json", "Content-Type": content_type}
        data = orjson.dumps(body) if body is not None else None
        for attempt in range(MAX_RETRIES + 1):
            async with self.session.request(method, self.url + path, data=data, headers=headers) as resp:
                raw = await resp.read()
                if resp.status == 429 and attempt < MAX_RETRIES:
                    self.retries_429 += 1
                    delay = float(resp.headers.get("Retry-After") or 1)
                elif resp.status not in ok:
                    raise ApiError(method, path, resp.status, raw)
                else:
                    return orjson.loads(raw) if raw else None
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def get(self, path: str) -> Any:
        return await self.request("GET", path)

    async def get_or_none(self, path: str) -> Any:
        try:
            return await self.get(path)
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def create(self, path: str, body: Any) -> Any:
        return await self.request("POST", path, body, ok=(201,))

    async def patch(self, path: str, body: Any, kind: str = "merge") -> Any:
        return await self.request("PATCH", path, body, content_type=PATCH_TYPES[kind])

    async def delete(self, path: str, body: Any = None) -> Any:
        return await self.request("DELETE", path, body, ok=(200, 202))

    async def ensure_namespace(self, name: str) -> None:
        """The namespace and its `default` ServiceAccount: ServiceAccount admission refuses pods
        until it exists, and without the controller manager nothing else creates it."""
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        await self.request("POST", "/api/v1/namespaces", body, ok=(201, 409))
        account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": name}}
        await self.request("POST", f"/api/v1/namespaces/{name}/serviceaccounts", account, ok=(201, 409))

    async def watch(self, path: str, resource_version: str) -> AsyncIterator[dict[str, Any]]:
        """Events of `path` after `resource_version`, reconnecting from the last one seen when the
        server ends a watch (timeouts), as informers do; a 410 (history compacted) is an error."""
        rv = resource_version
        sep = "&" if "?" in path else "?"
        while True:
            url = f"{self.url}{path}{sep}watch=1&allowWatchBookmarks=true&resourceVersion={rv}" \
                  f"&timeoutSeconds={WATCH_TIMEOUT_SECONDS}"
            async with self._watch_session.get(url, headers={"Accept": "application/json"}) as resp:
                if resp.status != 200:
                    raise ApiError("WATCH", path, resp.status, await resp.read())
                while True:
                    line = await resp.content.readline()
                    if not line:
                        break
                    event = orjson.loads(line)
                    if event["type"] == "ERROR":
                        raise ApiError("WATCH", path, int(event["object"].get("code") or 500), line)
                    rv = event["object"]["metadata"].get("resourceVersion") or rv
                    if event["type"] != "BOOKMARK":
                        yield event


def parse_time(text: str) -> float:
    """A metav1.Time or MicroTime (`...Z`, with or without fractional seconds) as a Unix time."""
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if "." in text else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()


# -- nodes of a simulated kubelet ----------------------------------------------------------------------


def is_ready(node: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


async def wait_for_nodes(api: Api, cluster: Cluster, count: int, timeout: float) -> float:
    log(f"waiting for {count:,} nodes to register and report Ready ...")
    progress = Progress()
    while True:
        nodes = (await api.get("/api/v1/nodes"))["items"]
        ready = sum(1 for n in nodes if n["metadata"]["name"].startswith(NODE_PREFIX) and is_ready(n))
        leases = len((await api.get(f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"))["items"])
        if ready >= count and leases >= count:
            break
        cluster.check()
        if progress.elapsed > timeout:
            raise RuntimeError(f"only {ready}/{count} nodes Ready ({leases} Leases) after {timeout:.0f}s")
        if progress.due():
            log(f"  {progress.elapsed:5.1f}s: {ready:,} Ready, {leases:,} Leases")
        await asyncio.sleep(0.5)
    log(f"  all {count:,} nodes Ready with Leases after {progress.elapsed:.1f}s")
    return progress.elapsed


# -- progress and the summary --------------------------------------------------------------------------


class Progress:
    """Prints a line at most every `every` seconds while a phase runs."""

    def __init__(self, every: float = 2.0) -> None:
        self.every = every
        self.start = time.monotonic()
        self._last = self.start

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            return True
        return False

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start


def summary_table(rows: list[tuple[str, str, str]], json_path: str = "", results: Any = None) -> None:
    width = max([len(name) for name, _, _ in rows] + [30]) + 2
    log("")
    log(f"{'summary':<{width}}{'measured':>18}    target")
    for name, value, goal in rows:
        log(f"{name:<{width}}{value:>18}    {goal}")
    if json_path:
        Path(json_path).write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))


def fmt_seconds(value: float) -> str:
    return "n/a" if value != value else f"{value:.2f} s"  # NaN when nothing was measured
