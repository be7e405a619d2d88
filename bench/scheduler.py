"""Scheduler throughput and binding latency: pods bound onto simulated nodes through the API.

The API server runs alone (`up --components=`) and the scheduler as its own process
(`pykube-server scheduler`, client limits from `--qps`/`--burst`); there is no kubelet. Nodes
are Node objects created through the API with capacity, allocatable and a Ready condition (32
CPUs, 256Gi, 110 pods; `topology.kubernetes.io/zone` one of `--zones`). Then three runs, each
in its own namespace, each starting from empty nodes (the previous run's pods are deleted with
grace period 0 first):

* basic: pods with small requests;
* anti-affinity: groups of `--group-size` pods, each required to be anti-affine to its own group
  by `kubernetes.io/hostname` (so a group needs that many distinct nodes);
* spread: one topology spread constraint over the zones (maxSkew 1, DoNotSchedule).

`--clients` coroutines create the pods (as fast as they can, or at `--create-rate` pods/s),
stamping each name with the time just before its create was sent (creationTimestamp has only
whole seconds, and the acknowledgement may be read after the watch saw the binding); one watch on the namespace stamps
the moment it first sees `spec.nodeName`. Figures: pods/s bound (pods bound over the time from
the first create sent to the last binding seen, so a create rate below the scheduler's caps it:
the create rate is printed beside it), the scheduler's CPU seconds per pod bound (comparable
across runs on a shared machine, where pods/s is not) and p50/p99 from creation to binding; each run also checks
its constraint held (no group sharing a node; the zones' skew). A benchmark, not a test: it
asserts nothing.

    .venv/bin/python bench/scheduler.py [--nodes 1000] [--pods 10000] [--affinity-pods N] [--spread-pods N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Api, Cluster, Progress, fmt_seconds, log, pct, platform_line, summary_table  # noqa: E402

IMAGE = "registry.k8s.io/pause:3.10"
ZONE_LABEL = "topology.kubernetes.io/zone"
HOSTNAME_LABEL = "kubernetes.io/hostname"
NODE_CAPACITY = {"cpu": "32", "memory": "256Gi", "pods": "110", "ephemeral-storage": "100Gi"}
RUNS = ("basic", "anti-affinity", "spread")
TARGET_PODS_PER_SECOND = 300


def node(i: int, zones: int) -> dict[str, Any]:
    name = f"sim-node-{i}"
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {HOSTNAME_LABEL: name, "kubernetes.io/os": "linux",
                                              "kubernetes.io/arch": "amd64", ZONE_LABEL: f"zone-{i % zones}"}},
        "spec": {},
        "status": {"capacity": NODE_CAPACITY, "allocatable": NODE_CAPACITY,
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                   "message": "kubelet is posting ready status", "lastHeartbeatTime": now,
                                   "lastTransitionTime": now}],
                   "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
                   "nodeInfo": {"architecture": "amd64", "operatingSystem": "linux", "kubeletVersion": "v1.33.0",
                                "containerRuntimeVersion": "simulated://0", "kernelVersion": "", "osImage": "",
                                "kubeProxyVersion": "", "machineID": "", "systemUUID": "", "bootID": ""}},
    }


def pod(run: str, i: int, group_size: int) -> dict[str, Any]:
    labels = {"app": f"bench-{run}"}
    spec: dict[str, Any] = {"containers": [{"name": "app", "image": IMAGE,
                                            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}
    if run == "anti-affinity":
        labels["group"] = f"g{i // group_size}"
        spec["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"labelSelector": {"matchLabels": {"group": labels["group"]}}, "topologyKey": HOSTNAME_LABEL}]}}
    elif run == "spread":
        spec["topologySpreadConstraints"] = [{"maxSkew": 1, "topologyKey": ZONE_LABEL,
                                              "whenUnsatisfiable": "DoNotSchedule",
                                              "labelSelector": {"matchLabels": labels}}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p-{i}", "labels": labels}, "spec": spec}


async def create_nodes(api: Api, count: int, zones: int, clients: int) -> float:
    log(f"creating {count:,} Nodes through the API ({zones} zones) ...")
    t0 = time.perf_counter()
    numbers = iter(range(count))

    async def creator() -> None:
        for i in numbers:
            await api.request("POST", "/api/v1/nodes", node(i, zones), ok=(201, 409))

    await asyncio.gather(*(creator() for _ in range(clients)))
    elapsed = time.perf_counter() - t0
    log(f"  {count:,} nodes in {elapsed:.1f}s ({count / elapsed:,.0f}/s)")
    return elapsed


async def warm_up(api: Api, cluster: Cluster, timeout: float = 60.0) -> float:
    """Wait until the scheduler binds one pod, so no run pays for its start and first lists."""
    t0 = time.perf_counter()
    ns = "sched-warm-up"
    await api.ensure_namespace(ns)
    body = pod("basic", 0, 1)
    await api.create(f"/api/v1/namespaces/{ns}/pods", body)
    path = f"/api/v1/namespaces/{ns}/pods/{body['metadata']['name']}"
    while not (await api.get(path))["spec"].get("nodeName"):
        cluster.check()
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"the scheduler bound nothing in {timeout:.0f}s")
        await asyncio.sleep(0.05)
    await api.delete(path, {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0})
    elapsed = time.perf_counter() - t0
    log(f"  the scheduler bound its first pod {elapsed:.1f}s after it started")
    return elapsed


class Run:
    """One namespace's pods: created, watched until bound, then checked and deleted."""

    def __init__(self, api: Api, cluster: Cluster, args: argparse.Namespace, name: str, pods: int) -> None:
        self.api, self.cluster, self.args, self.name, self.pods = api, cluster, args, name, pods
        self.ns = f"sched-{name}"
        self.sent: dict[str, float] = {}
        self.acked: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self.node_of: dict[str, str] = {}
        self.labels: dict[str, dict[str, str]] = {}
        self.failed_creates = 0
        self.created_at = 0.0
        self.all_bound = asyncio.Event()

    async def watch(self, rv: str) -> None:
        async for event in self.api.watch(f"/api/v1/namespaces/{self.ns}/pods", rv):
            if event["type"] == "DELETED":
                continue
            obj = event["object"]
            name = obj["metadata"]["name"]
            node_name = obj["spec"].get("nodeName")
            if node_name and name not in self.bound:
                self.bound[name] = time.perf_counter()
                self.node_of[name] = node_name
                self.labels[name] = obj["metadata"].get("labels") or {}
                if len(self.bound) >= self.pods:
                    self.all_bound.set()

    async def create(self) -> None:
        numbers = iter(range(self.pods))
        rate = self.args.create_rate
        t0 = time.perf_counter()
        path = f"/api/v1/namespaces/{self.ns}/pods"

        async def creator() -> None:
            for i in numbers:
                if rate > 0:
                    await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
                body = pod(self.name, i, self.args.group_size)
                name = body["metadata"]["name"]
                self.sent[name] = time.perf_counter()
                try:
                    await self.api.create(path, body)
                except Exception as exc:  # counted and shown: a failed create is a finding, not a crash
                    self.failed_creates += 1
                    if self.failed_creates <= 3:
                        log(f"  create {name} failed: {exc}")
                    continue
                self.acked[name] = time.perf_counter()

        await asyncio.gather(*(creator() for _ in range(self.args.clients)))
        self.created_at = time.perf_counter()

    async def execute(self) -> dict[str, Any]:
        args = self.args
        await self.api.ensure_namespace(self.ns)
        listed = await self.api.get(f"/api/v1/namespaces/{self.ns}/pods?limit=1")
        watcher = asyncio.create_task(self.watch(listed["metadata"]["resourceVersion"]))
        await asyncio.sleep(0.1)
        log(f"run {self.name}: {self.pods:,} pods by {args.clients} clients"
            + (f" at {args.create_rate:g}/s" if args.create_rate > 0 else " as fast as they can") + " ...")
        cpu0, t_start = self.cluster.cpu(), time.perf_counter()
        creates = asyncio.create_task(self.create())
        progress = Progress()
        deadline = time.monotonic() + args.cap_seconds
        while not self.all_bound.is_set() and time.monotonic() < deadline:
            if creates.done():
                creates.result()
            try:
                await asyncio.wait_for(self.all_bound.wait(), 0.25)
            except TimeoutError:
                pass
            if watcher.done():
                watcher.result()
            self.cluster.check()
            if progress.due():
                log(f"  {progress.elapsed:5.1f}s: created {len(self.acked):,}, bound {len(self.bound):,}")
        if not creates.done():
            creates.cancel()
        await asyncio.gather(creates, return_exceptions=True)
        created_at = self.created_at or time.perf_counter()
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        elapsed = time.perf_counter() - t_start
        cpu_line = self.cluster.cpu_line(cpu0, elapsed)
        scheduler_cpu = self.cluster.cpu().get("scheduler", 0.0) - cpu0.get("scheduler", 0.0)
        return self.figures(t_start, created_at, cpu_line, scheduler_cpu)

    def figures(self, t_start: float, created_at: float, cpu_line: str, scheduler_cpu: float) -> dict[str, Any]:
        bound = len(self.bound)
        last = max(self.bound.values(), default=t_start)
        latencies = [t - self.sent[n] for n, t in self.bound.items() if n in self.acked]
        create_rate = len(self.acked) / max(created_at - t_start, 1e-9)
        out = {"pods": self.pods, "bound": bound, "failed_creates": self.failed_creates,
               "bound_per_second": bound / max(last - t_start, 1e-9), "create_per_second": create_rate,
               "p50_s": pct(latencies, 0.5), "p99_s": pct(latencies, 0.99), "violations": self.violations(),
               "scheduler_cpu_ms_per_pod": 1000 * scheduler_cpu / max(bound, 1)}
        log(f"  bound {bound:,}/{self.pods:,}: {out['bound_per_second']:,.0f} pods/s (creates {create_rate:,.0f}/s);"
            f" creation to binding p50 {fmt_seconds(out['p50_s'])}, p99 {fmt_seconds(out['p99_s'])};"
            f" constraint violations {out['violations']}")
        log(f"  {cpu_line}; scheduler CPU per pod bound {out['scheduler_cpu_ms_per_pod']:.2f} ms"
            f" (a machine shared with other work slows pods/s, not this)")
        return out

    def violations(self) -> int:
        """Pods placed against the run's constraint (0 when the scheduler honoured it)."""
        if self.name == "anti-affinity":
            per_node: Counter[tuple[str, str]] = Counter(
                (self.labels[n].get("group", ""), node_name) for n, node_name in self.node_of.items())
            return sum(count - 1 for count in per_node.values() if count > 1)
        if self.name == "spread":
            zones = Counter(f"zone-{int(node_name.rsplit('-', 1)[1]) % self.args.zones}"
                            for node_name in self.node_of.values())
            counts = [zones.get(f"zone-{z}", 0) for z in range(min(self.args.zones, self.args.nodes))]
            return max(0, max(counts, default=0) - min(counts, default=0) - 1)
        return 0

    async def delete_pods(self) -> None:
        """Grace period 0: there is no kubelet to confirm a graceful stop."""
        t0 = time.perf_counter()
        path = f"/api/v1/namespaces/{self.ns}/pods"
        await self.api.delete(path, {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0})
        while True:
            listed = await self.api.get(f"{path}?limit=1")
            if not listed["items"]:
                break
            await asyncio.sleep(0.5)
        log(f"  deleted the run's pods in {time.perf_counter() - t0:.1f}s")


async def bench(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    cluster = Cluster(tmp, qps=args.qps, burst=args.burst)
    results: dict[str, Any] = {"nodes": args.nodes}
    try:
        target = cluster.start_api_server()
        async with Api(target, connections=args.clients + 4) as api:
            results["node_create_seconds"] = await create_nodes(api, args.nodes, args.zones, args.clients)
            cluster.start("scheduler")
            results["scheduler_ready_seconds"] = await warm_up(api, cluster)
            sizes = {"basic": args.pods, "anti-affinity": args.affinity_pods, "spread": args.spread_pods}
            for name in RUNS:
                if sizes[name] <= 0:
                    continue
                run = Run(api, cluster, args, name, sizes[name])
                results[name] = await run.execute()
                if name != RUNS[-1]:
                    await run.delete_pods()
            results["client_429_retries"] = api.retries_429
    finally:
        cluster.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000, help="simulated Node objects")
    parser.add_argument("--pods", type=int, default=10_000, help="pods in the basic run")
    parser.add_argument("--affinity-pods", type=int, default=None,
                        help="pods in the anti-affinity run (default --pods)")
    parser.add_argument("--spread-pods", type=int, default=None, help="pods in the spread run (default --pods)")
    parser.add_argument("--group-size", type=int, default=10, help="pods per anti-affinity group")
    parser.add_argument("--zones", type=int, default=10, help="zones the nodes are spread over")
    parser.add_argument("--clients", type=int, default=8, help="concurrent creating clients")
    parser.add_argument("--create-rate", type=float, default=0.0, help="pods/s to create at (0: as fast as possible)")
    parser.add_argument("--qps", type=float, default=2000.0, help="the scheduler's client QPS")
    parser.add_argument("--burst", type=int, default=4000, help="the scheduler's client burst")
    parser.add_argument("--cap-seconds", type=float, default=300.0, help="give up on a run after this long")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args()
    args.affinity_pods = args.pods if args.affinity_pods is None else args.affinity_pods
    args.spread_pods = args.pods if args.spread_pods is None else args.spread_pods
    if args.group_size > args.nodes:
        parser.error("--group-size cannot exceed --nodes (a group needs that many distinct nodes)")
    t0 = time.monotonic()
    log(f"machine: {os.cpu_count()} CPUs, {platform_line()}")
    with tempfile.TemporaryDirectory(prefix="pykube-bench-sched-") as tmp:
        results = asyncio.run(bench(args, Path(tmp)))
    rows = []
    for name in RUNS:
        r = results.get(name)
        if not r:
            continue
        goal = f">= {TARGET_PODS_PER_SECOND}" if name == "basic" else ""
        rows.append((f"{name}: pods/s bound ({r['bound']:,}/{r['pods']:,})", f"{r['bound_per_second']:,.0f}", goal))
        rows.append((f"{name}: creation to binding p50 / p99",
                     f"{r['p50_s']:.2f} / {r['p99_s']:.2f} s", ""))
        rows.append((f"{name}: scheduler CPU per pod (pods/s one core allows)",
                     f"{r['scheduler_cpu_ms_per_pod']:.2f} ms ({1000 / max(r['scheduler_cpu_ms_per_pod'], 1e-9):,.0f})", ""))
        if name != "basic":
            rows.append((f"{name}: constraint violations", f"{r['violations']}", "0"))
    rows.append((f"{args.nodes:,} Node creates", f"{results['node_create_seconds']:.1f} s", ""))
    rows.append(("429 answers the bench's own client retried", f"{results['client_429_retries']:,}", ""))
    summary_table(rows, args.json, results)
    log(f"(run took {time.monotonic() - t0:.0f}s)")


if __name__ == "__main__":
    main()
