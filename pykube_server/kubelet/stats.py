"""Resource usage the kubelet measures: what its Summary API (`/stats/summary`) reports.

The real kubelet reads cgroups through cAdvisor or the CRI; here a container is a local process
group (the shim starts each container in its own session, so the main process leads a group
that holds all its children). CPU is the cumulative user+system time of every process in that
group (children already reaped count through their parent's `cutime`/`cstime`), memory the sum
of their resident sets (`VmRSS`), the nearest thing to a cgroup's working set.

A rate needs two readings: `Sampler` keeps a short history of cumulative readings per
container and for the node (`/proc/stat`), taken in the background every `interval` seconds and
again when asked, and reports the average rate over the oldest reading no older than the
window (what metrics-server's 10-15 s window means). A counter that went down (a process of
the group exited without being reaped into it) gives a rate of zero rather than a negative one.

Simulated containers (the simulated runtime) have no processes: they report the usage their
pod asks for in annotations, `pykube.io/simulate-cpu` (a CPU quantity, e.g. `250m`) and
`pykube.io/simulate-memory` (e.g. `64Mi`), a `.<container>` suffix narrowing one to a
container, as the simulated runtime's other annotations do (zero where absent). The same
annotations pin a real process container's reported usage too, so autoscaling can be shown
and tested on any runtime without burning CPU.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol, runtime_checkable

import orjson
from aiohttp import web

from pykube_server.api.quantity import QuantityError, parse_quantity
from pykube_server.kubelet.runtime import ContainerState, SandboxState

SIMULATE_CPU_ANNOTATION = "pykube.io/simulate-cpu"
SIMULATE_MEMORY_ANNOTATION = "pykube.io/simulate-memory"
NANO = 1_000_000_000
Obj = dict[str, Any]


@runtime_checkable
class PidRuntime(Protocol):
    """A runtime whose containers are local processes (the process runtime)."""

    def container_pid(self, container_id: str) -> int | None: ...


# -- /proc readings ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ProcStat:
    pid: int
    pgrp: int
    cpu_ticks: int
    """utime + stime + cutime + cstime, in clock ticks."""


def parse_proc_stat(text: str) -> ProcStat | None:
    """One `/proc/<pid>/stat` line; the command name may hold spaces and parentheses."""
    head, _, rest = text.rpartition(")")
    if not head:
        return None
    fields = rest.split()
    try:
        pid = int(head.split("(", 1)[0])
        # after the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime
        return ProcStat(pid, int(fields[2]), sum(int(fields[i]) for i in (11, 12, 13, 14)))
    except (IndexError, ValueError):
        return None


def parse_vmrss_bytes(status_text: str) -> int:
    for line in status_text.splitlines():
        if line.startswith("VmRSS:"):
            parts = line.split()
            return int(parts[1]) * 1024 if len(parts) > 1 else 0
    return 0


def parse_node_cpu_ticks(stat_text: str) -> int:
    """Busy ticks of all CPUs from `/proc/stat`: everything but idle and iowait (guest time is
    already inside user)."""
    for line in stat_text.splitlines():
        if line.startswith("cpu "):
            values = [int(v) for v in line.split()[1:]]
            user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
            return user + nice + system + irq + softirq + steal
    return 0


def parse_meminfo(text: str) -> dict[str, int]:
    """`/proc/meminfo` in bytes."""
    out = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return out


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


TICK_NS = NANO // (os.sysconf("SC_CLK_TCK") or 100)


def process_groups(proc: str = "/proc") -> dict[int, list[ProcStat]]:
    """Every process on the machine by process group, read once per sample."""
    groups: dict[int, list[ProcStat]] = {}
    try:
        names = os.listdir(proc)
    except OSError:
        return groups
    for name in names:
        if name.isdigit():
            stat = parse_proc_stat(_read(f"{proc}/{name}/stat"))
            if stat is not None:
                groups.setdefault(stat.pgrp, []).append(stat)
    return groups


def group_usage(members: Iterable[ProcStat], proc: str = "/proc") -> tuple[int, int]:
    """(cumulative CPU nanoseconds, resident bytes) of one process group."""
    cpu = rss = 0
    for member in members:
        cpu += member.cpu_ticks * TICK_NS
        rss += parse_vmrss_bytes(_read(f"{proc}/{member.pid}/status"))
    return cpu, rss


# -- rates ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Reading:
    at: float
    """time.time() of the reading."""
    cpu_ns: int
    memory_bytes: int


class Series:
    """A few cumulative readings of one thing, and the rate over the window they span."""

    def __init__(self, window_seconds: float) -> None:
        self.window = window_seconds
        self.readings: deque[Reading] = deque()

    def add(self, reading: Reading) -> None:
        self.readings.append(reading)
        while len(self.readings) > 2 and reading.at - self.readings[1].at >= self.window:
            self.readings.popleft()

    def nano_cores(self) -> int | None:
        """Average usage in nanocores between the oldest and newest reading, None with one."""
        if len(self.readings) < 2:
            return None
        first, last = self.readings[0], self.readings[-1]
        elapsed = last.at - first.at
        if elapsed <= 0:
            return None
        return max(0, int((last.cpu_ns - first.cpu_ns) / elapsed))

    @property
    def latest(self) -> Reading | None:
        return self.readings[-1] if self.readings else None


def simulated_usage(annotations: Mapping[str, str], container: str) -> tuple[int | None, int | None]:
    """(nanocores, bytes) a container's pod pins with annotations; None where it does not."""
    def one(key: str, scale: int) -> int | None:
        text = annotations.get(f"{key}.{container}", annotations.get(key))
        if not text:
            return None
        try:
            return max(0, int(parse_quantity(text).value * scale))
        except QuantityError:
            return None
    return one(SIMULATE_CPU_ANNOTATION, NANO), one(SIMULATE_MEMORY_ANNOTATION, 1)


def rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the sampler ---------------------------------------------------------------------------------
class Sampler:
    """Readings for one node's containers and the machine, and the Summary built from them.

    `runtime` is the node's runtime; `pod_lookup(namespace, name)` gives the pod object (for the
    simulated annotations and start time); `node_name` names the node in the Summary.
    """

    def __init__(self, node_name: str, runtime: Any, pod_lookup: Callable[[str, str], Obj | None], *,
                 interval_seconds: float = 10.0, window_seconds: float = 10.0, proc: str = "/proc") -> None:
        self.node_name = node_name
        self.runtime = runtime
        self.pod_lookup = pod_lookup
        self.interval = interval_seconds
        self.window = window_seconds
        self.proc = proc
        self.node = Series(window_seconds)
        self.containers: dict[str, Series] = {}
        self.started = time.time()
        self._last_sample = 0.0
        self._lock = asyncio.Lock()

    async def run(self) -> None:
        """Sample every `interval` seconds, so a rate is always at hand (a simulated node has no
        rates to keep)."""
        if not isinstance(self.runtime, PidRuntime):
            return
        while True:
            await self.sample()
            await asyncio.sleep(self.interval)

    async def sample(self) -> None:
        if not isinstance(self.runtime, PidRuntime):
            return  # simulated: usage is what the pods' annotations say, no readings needed
        async with self._lock:
            now = time.time()
            if now - self._last_sample < 1.0:  # a rate over less than a second is noise
                return
            self._last_sample = now
            groups = await asyncio.to_thread(process_groups, self.proc)
            stat, meminfo = _read(f"{self.proc}/stat"), parse_meminfo(_read(f"{self.proc}/meminfo"))
            working = meminfo.get("MemTotal", 0) - meminfo.get("MemAvailable", 0)
            self.node.add(Reading(now, parse_node_cpu_ticks(stat) * TICK_NS, max(working, 0)))
            running = {c.id for c in await self.runtime.list_containers() if c.state is ContainerState.RUNNING}
            for cid in running:
                pid = self.runtime.container_pid(cid)
                if pid is None:
                    continue
                cpu, rss = group_usage(groups.get(pid, ()), self.proc)
                self.containers.setdefault(cid, Series(self.window)).add(Reading(now, cpu, rss))
            for gone in set(self.containers) - running:
                del self.containers[gone]

    async def summary(self) -> Obj:
        """The Summary API document (stats/v1alpha1), cpu and memory only."""
        simulated = not isinstance(self.runtime, PidRuntime)
        await self.sample()
        if not simulated and len(self.node.readings) < 2:  # the first request: a second reading for a rate
            await asyncio.sleep(1.05)
            await self.sample()
        sandboxes = {s.id: s for s in await self.runtime.list_pod_sandboxes() if s.state is SandboxState.READY}
        by_sandbox: dict[str, list[Any]] = {}
        for c in await self.runtime.list_containers():
            if c.state is ContainerState.RUNNING and c.sandbox_id in sandboxes:
                by_sandbox.setdefault(c.sandbox_id, []).append(c)
        now = time.time()
        pods = []
        total_cpu = total_mem = 0
        for sid, containers in by_sandbox.items():
            sandbox = sandboxes[sid]
            pod = self.pod_lookup(sandbox.namespace, sandbox.name) or {}
            annotations = (pod.get("metadata") or {}).get("annotations") or {}
            entries: list[Obj] = []
            complete = True
            for c in sorted(containers, key=lambda c: c.name):
                pinned_cpu, pinned_memory = simulated_usage(annotations, c.name)
                series = None if simulated else self.containers.get(c.id)
                rate = series.nano_cores() if series else None
                latest = series.latest if series else None
                if not simulated and (rate is None or latest is None) and (pinned_cpu is None or pinned_memory is None):
                    complete = False  # no rate yet: the pod is left out until its second reading
                    break
                cores = pinned_cpu if pinned_cpu is not None else (rate or 0)
                memory = pinned_memory if pinned_memory is not None else (latest.memory_bytes if latest else 0)
                if latest is not None and pinned_cpu is None:
                    cpu_stats: Obj = {"time": rfc3339(latest.at), "usageNanoCores": cores,
                                      "usageCoreNanoSeconds": latest.cpu_ns}
                else:
                    cpu_stats = {"time": rfc3339(now), "usageNanoCores": cores,
                                 "usageCoreNanoSeconds": int(cores * max(now - (c.started_at or now), 0))}
                total_cpu += cores
                total_mem += memory
                entries.append({"name": c.name, "startTime": rfc3339(c.started_at or c.created_at or now),
                                "cpu": cpu_stats,
                                "memory": {"time": cpu_stats["time"], "workingSetBytes": memory, "rssBytes": memory,
                                           "usageBytes": memory}})
            if not entries or not complete:
                continue
            pods.append({
                "podRef": {"name": sandbox.name, "namespace": sandbox.namespace, "uid": sandbox.uid},
                "startTime": (pod.get("status") or {}).get("startTime") or rfc3339(sandbox.created_at),
                "containers": entries,
                "cpu": {"time": rfc3339(now), "usageNanoCores": sum(e["cpu"]["usageNanoCores"] for e in entries)},
                "memory": {"time": rfc3339(now), "workingSetBytes": sum(e["memory"]["workingSetBytes"] for e in entries)},
            })
        return {"node": self._node_stats(now, simulated, total_cpu, total_mem), "pods": pods}

    def _node_stats(self, now: float, simulated: bool, pods_cpu: int, pods_memory: int) -> Obj:
        """The machine's usage for a node of real processes; for a simulated node, what its pods
        report (the machine is not what such a node pretends to be)."""
        if simulated:
            cores, memory = pods_cpu, pods_memory
        else:
            cores = self.node.nano_cores() or 0
            memory = self.node.latest.memory_bytes if self.node.latest else 0
        return {"nodeName": self.node_name, "startTime": rfc3339(self.started),
                "cpu": {"time": rfc3339(now), "usageNanoCores": cores},
                "memory": {"time": rfc3339(now), "workingSetBytes": memory, "usageBytes": memory}}


class StatsEndpoint:
    """`GET /stats/summary[?node=<name>]` on the kubelet's HTTPS server.

    One server answers for every node this process runs, so `node` picks one (the first when
    absent: a real kubelet is one node). Each node's sampler starts with the first request
    for it and then keeps sampling in the background.
    """

    def __init__(self, kubelets: Sequence[Any]) -> None:
        self.kubelets = kubelets
        self.samplers: dict[str, Sampler] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def sampler(self, kubelet: Any) -> Sampler:
        found = self.samplers.get(kubelet.name)
        if found is None:
            found = self.samplers[kubelet.name] = Sampler(kubelet.name, kubelet.runtime, kubelet.find_pod)
            task = asyncio.get_running_loop().create_task(found.run(), name=f"stats-{kubelet.name}")
            self._tasks.add(task)
        return found

    async def handle(self, request: web.Request) -> web.Response:
        wanted = request.query.get("node", "")
        kubelet = next((k for k in self.kubelets if not wanted or k.name == wanted), None)
        if kubelet is None:
            return web.Response(status=404, text=f'node "{wanted}" not found', content_type="text/plain")
        body = await self.sampler(kubelet).summary()
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
