"""Startup, liveness and readiness probes: one small loop per container instance and kind.

As in the kubelet's prober workers: a probe waits `initialDelaySeconds`, then runs every
`periodSeconds` (`timeoutSeconds` each); `failureThreshold` consecutive failures flip the
result to failure and `successThreshold` consecutive successes flip it back. Liveness and
readiness do not run until the startup probe (if any) succeeded. Readiness starts as failure,
liveness as success, startup as unknown (False until it succeeds). Every failed attempt is
reported (the worker turns it into an `Unhealthy` Warning event: "Liveness probe failed: ...");
every change of result calls `on_change` so the pod worker syncs at once. What to do with a
failure (kill and restart, mark unready) is the pod worker's policy, not the prober's.

Handlers: exec (through the runtime's `exec_sync`), httpGet (aiohttp; 2xx/3xx succeed),
tcpSocket (a connect). grpc is not implemented and counts as success.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from pykube_server.api.types import Obj
from pykube_server.client.clock import REAL_CLOCK, Clock
from pykube_server.kubelet.runtime import ExecRuntime

log = logging.getLogger(__name__)

STARTUP, LIVENESS, READINESS = "Startup", "Liveness", "Readiness"
SPEC_FIELDS = {STARTUP: "startupProbe", LIVENESS: "livenessProbe", READINESS: "readinessProbe"}


@dataclass
class ProbeResults:
    """Results of one container instance's probes; read by the pod worker."""

    started: bool = True
    live: bool = True
    ready: bool = False
    liveness_failed: bool = False
    startup_failed: bool = False
    has: set[str] = field(default_factory=set)


def resolve_port(port: object, container: Obj) -> int:
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    return int(str(port))


async def run_probe(probe: Obj, *, container: Obj, container_id: str, pod_ip: str, runtime: object) -> tuple[bool, str]:
    """One attempt: (success, failure output)."""
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        async with asyncio.timeout(timeout):
            if "exec" in probe:
                return await _exec(probe["exec"], container_id, runtime, timeout)
            if "httpGet" in probe:
                return await _http(probe["httpGet"], container, pod_ip)
            if "tcpSocket" in probe:
                return await _tcp(probe["tcpSocket"], container, pod_ip)
    except TimeoutError:
        if "exec" in probe:
            cmd = " ".join((probe["exec"].get("command") or []))
            return False, f'command "{cmd}" timed out'
        return False, f"probe timed out after {timeout:g}s (context deadline exceeded)"
    except Exception as exc:  # a probe never takes the kubelet down: it failed, and says why
        return False, str(exc)
    return True, ""


async def _exec(handler: Obj, container_id: str, runtime: object, timeout: float) -> tuple[bool, str]:
    if not isinstance(runtime, ExecRuntime):
        return True, ""
    result = await runtime.exec_sync(container_id, [str(a) for a in handler.get("command") or []],
                                     timeout=timeout)
    output = (result.stdout + result.stderr).decode("utf-8", "replace")
    return result.exit_code == 0, output


async def _http(handler: Obj, container: Obj, pod_ip: str) -> tuple[bool, str]:
    scheme = (handler.get("scheme") or "HTTP").lower()
    host = handler.get("host") or pod_ip
    port = resolve_port(handler.get("port"), container)
    path = handler.get("path") or "/"
    url = f"{scheme}://{host}:{port}{path if path.startswith('/') else '/' + path}"
    headers = {h["name"]: h.get("value", "") for h in handler.get("httpHeaders") or []}
    headers.setdefault("User-Agent", "kube-probe/1.33")
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(url, headers=headers, ssl=False, allow_redirects=False) as resp:
                if 200 <= resp.status < 400:
                    return True, ""
                return False, f"HTTP probe failed with statuscode: {resp.status}"
    except aiohttp.ClientConnectorError:
        return False, f'Get "{url}": dial tcp {host}:{port}: connect: connection refused'
    except aiohttp.ClientError as exc:
        return False, f'Get "{url}": {exc}'


async def _tcp(handler: Obj, container: Obj, pod_ip: str) -> tuple[bool, str]:
    host = handler.get("host") or pod_ip
    port = resolve_port(handler.get("port"), container)
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False, f"dial tcp {host}:{port}: connect: connection refused"
    writer.close()
    return True, ""


class Prober:
    """Runs one probe kind for one container instance until cancelled."""

    def __init__(self, kind: str, probe: Obj, *, container: Obj, container_id: str, pod_ip: str, runtime: object,
                 results: ProbeResults, on_change: Callable[[], None], on_failure: Callable[[str, str], None],
                 clock: Clock = REAL_CLOCK) -> None:
        self.kind, self.probe = kind, probe
        self._container, self._cid, self._ip, self._runtime = container, container_id, pod_ip, runtime
        self._results, self._on_change, self._on_failure, self._clock = results, on_change, on_failure, clock

    def _get(self) -> bool:
        return {STARTUP: self._results.started, LIVENESS: self._results.live, READINESS: self._results.ready}[self.kind]

    def _set(self, ok: bool) -> None:
        if self.kind == STARTUP:
            self._results.started, self._results.startup_failed = ok, not ok
        elif self.kind == LIVENESS:
            self._results.live, self._results.liveness_failed = ok, not ok
        else:
            self._results.ready = ok
        self._on_change()

    async def run(self) -> None:
        period = float(self.probe.get("periodSeconds") or 10)
        failures_needed = int(self.probe.get("failureThreshold") or 3)
        successes_needed = int(self.probe.get("successThreshold") or 1)
        await self._clock.sleep(float(self.probe.get("initialDelaySeconds") or 0))
        fails = oks = 0
        while True:
            if self.kind == STARTUP or self._results.started:
                ok, output = await run_probe(self.probe, container=self._container, container_id=self._cid,
                                             pod_ip=self._ip, runtime=self._runtime)
                fails, oks = (0, oks + 1) if ok else (fails + 1, 0)
                if not ok:
                    self._on_failure(self.kind, output.strip())
                if ok and oks >= successes_needed and not self._get():
                    self._set(True)
                elif not ok and fails >= failures_needed and (self._get() or self.kind != READINESS):
                    self._set(False)
                    if self.kind != READINESS:
                        return  # the worker restarts the container; a new instance gets a new prober
                if self.kind == STARTUP and self._results.started:
                    return
            await self._clock.sleep(period)
