"""Many simulated nodes in one kubelet process: Lease renewals on time, and pod startup latency.

The API server runs alone (`up --components=`); the scheduler and ONE kubelet process
(`pykube-server kubelet --runtime simulated --nodes N`) run as their own processes with the
client limits `--qps`/`--burst` (the kubelet's client is shared by all its nodes). Once every
node is Ready:

* pods are created at `--rate` pods/s (default 3,000 at 100/s) by a paced client, each stamped
  with the time just before its create was sent (the acknowledgement can be read after the
  watch already saw the pod bound); one watch on the namespace stamps the moment it
  first sees `spec.nodeName` and `status.phase == Running`. Figures: startup latency (creation to
  Running) p50/p99, and the part of it spent before binding;
* meanwhile one watch on `kube-node-lease` follows every node's Lease for at least
  `--lease-window` seconds. A kubelet renews every 10 s; a Lease is late when two successive
  `renewTime`s, or the last one and the end of the window, are more than 10 s + `--lease-slack`
  apart. Figures: late Leases, the largest and p99 gap.

A benchmark, not a test: it asserts nothing.

    .venv/bin/python bench/kubelet.py [--nodes 1000] [--pods 3000] [--rate 100] [--lease-window 40]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    LEASE_NAMESPACE, NODE_PREFIX, Api, Cluster, Progress, fmt_seconds, log, parse_time, pct, platform_line,
    summary_table, wait_for_nodes,
)

IMAGE = "registry.k8s.io/pause:3.10"
RENEW_SECONDS = 10.0
NAMESPACE = "kubelet-bench"
TARGET_P99_SECONDS = 5.0


def pod(i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p-{i}", "labels": {"app": "kubelet-bench"}},
            "spec": {"containers": [{"name": "app", "image": IMAGE,
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


class LeaseWatch:
    """Every observed renewTime per Lease, from a list and then a watch."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.renewals: dict[str, list[float]] = {}
        self.start = 0.0

    def _note(self, lease: dict[str, Any]) -> None:
        renew = (lease.get("spec") or {}).get("renewTime")
        if not renew:
            return
        times = self.renewals.setdefault(lease["metadata"]["name"], [])
        moment = parse_time(renew)
        if not times or moment != times[-1]:
            times.append(moment)

    async def prime(self) -> str:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases"
        listed = await self.api.get(path)
        self.start = time.time()
        for lease in listed["items"]:
            self._note(lease)
        return listed["metadata"]["resourceVersion"]

    async def run(self, rv: str) -> None:
        async for event in self.api.watch(f"/apis/coordination.k8s.io/v1/namespaces/{LEASE_NAMESPACE}/leases", rv):
            if event["type"] in ("ADDED", "MODIFIED"):
                self._note(event["object"])

    def figures(self, names: list[str], end: float, slack: float) -> dict[str, Any]:
        """Gaps between successive renewals within the window, and from the last one to its end."""
        limit = RENEW_SECONDS + slack
        gaps: list[float] = []
        late: list[str] = []
        renewed = 0
        for name in names:
            times = [t for t in self.renewals.get(name, []) if t <= end]
            if not times:
                late.append(name)
                continue
            in_window = [t for t in times if t >= self.start]
            renewed += 1 if in_window else 0
            # from the last renewal before the window (or its start) through the window's end
            before = [t for t in times if t < self.start]
            points = (before[-1:] or [self.start]) + in_window + [end]
            worst = max(b - a for a, b in zip(points, points[1:]))
            gaps.append(worst)
            if worst > limit:
                late.append(name)
        return {"leases": len(names), "renewed_in_window": renewed, "late": len(late), "late_examples": late[:5],
                "max_gap_s": max(gaps, default=float("nan")), "p99_gap_s": pct(gaps, 0.99),
                "window_s": end - self.start, "limit_s": limit}


class PodLoad:
    """Paced creates; one watch records binding and Running per pod."""

    def __init__(self, api: Api, count: int, rate: float) -> None:
        self.api, self.count, self.rate = api, count, rate
        self.sent: dict[str, float] = {}
        self.acked: dict[str, float] = {}
        self.bound: dict[str, float] = {}
        self.running: dict[str, float] = {}
        self.failed = 0
        self.all_running = asyncio.Event()

    async def watch(self, rv: str) -> None:
        async for event in self.api.watch(f"/api/v1/namespaces/{NAMESPACE}/pods", rv):
            obj = event["object"]
            name = obj["metadata"]["name"]
            now = time.perf_counter()
            if obj["spec"].get("nodeName") and name not in self.bound:
                self.bound[name] = now
            if (obj.get("status") or {}).get("phase") == "Running" and name not in self.running:
                self.running[name] = now
                if len(self.running) >= self.count:
                    self.all_running.set()

    async def create(self) -> None:
        path = f"/api/v1/namespaces/{NAMESPACE}/pods"
        limit = asyncio.Semaphore(64)
        t0 = time.perf_counter()

        async def one(i: int) -> None:
            async with limit:
                self.sent[f"p-{i}"] = time.perf_counter()
                try:
                    await self.api.create(path, pod(i))
                except Exception as exc:  # counted and shown: a failed create is a finding
                    self.failed += 1
                    if self.failed <= 3:
                        log(f"  create p-{i} failed: {exc}")
                    return
                self.acked[f"p-{i}"] = time.perf_counter()

        tasks = []
        for i in range(self.count):
            await asyncio.sleep(max(0.0, t0 + i / self.rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)

    def figures(self) -> dict[str, Any]:
        startup = [t - self.sent[n] for n, t in self.running.items() if n in self.acked]
        to_bind = [t - self.sent[n] for n, t in self.bound.items() if n in self.acked]
        return {"pods": self.count, "running": len(self.running), "failed_creates": self.failed,
                "p50_s": pct(startup, 0.5), "p99_s": pct(startup, 0.99),
                "bind_p50_s": pct(to_bind, 0.5), "bind_p99_s": pct(to_bind, 0.99)}


async def bench(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    cluster = Cluster(tmp, qps=args.qps, burst=args.burst)
    results: dict[str, Any] = {"nodes": args.nodes, "qps": args.qps}
    try:
        target = cluster.start_api_server()
        async with Api(target, connections=72) as api:
            await api.ensure_namespace(NAMESPACE)
            cluster.start("scheduler")
            kubelet = cluster.start("kubelet", "--nodes", str(args.nodes), "--runtime", "simulated",
                                    "--data-dir", str(tmp / "kubelet"))
            results["nodes_ready_seconds"] = await wait_for_nodes(api, cluster, args.nodes, args.cap_seconds)
            leases = LeaseWatch(api)
            lease_task = asyncio.create_task(leases.run(await leases.prime()))
            load = PodLoad(api, args.pods, args.rate)
            listed = await api.get(f"/api/v1/namespaces/{NAMESPACE}/pods?limit=1")
            pod_task = asyncio.create_task(load.watch(listed["metadata"]["resourceVersion"]))
            log(f"creating {args.pods:,} pods at {args.rate:g}/s; watching {args.nodes:,} Leases for at least"
                f" {args.lease_window:g}s ...")
            cpu0, t0 = cluster.cpu(), time.perf_counter()
            creates = asyncio.create_task(load.create())
            progress = Progress()
            window_end = time.monotonic() + args.lease_window
            deadline = time.monotonic() + args.cap_seconds
            while time.monotonic() < deadline and not (load.all_running.is_set() and time.monotonic() >= window_end):
                await asyncio.sleep(0.25)
                for task in (lease_task, pod_task):
                    if task.done():
                        task.result()
                cluster.check()
                if progress.due():
                    log(f"  {progress.elapsed:5.1f}s: created {len(load.acked):,}, bound {len(load.bound):,},"
                        f" Running {len(load.running):,}; kubelet RSS {kubelet.rss_bytes() / 2**20:,.0f} MiB")
            end = time.time()
            elapsed = time.perf_counter() - t0
            log(f"  {cluster.cpu_line(cpu0, elapsed)}")
            for task in (creates, lease_task, pod_task):
                task.cancel()
            await asyncio.gather(creates, lease_task, pod_task, return_exceptions=True)
            names = [f"{NODE_PREFIX}{i}" for i in range(1, args.nodes + 1)]
            results["pods"] = load.figures()
            results["leases"] = leases.figures(names, end, args.lease_slack)
            results["kubelet_rss_mib"] = kubelet.rss_bytes() / 2**20
            results["client_429_retries"] = api.retries_429
    finally:
        cluster.stop()
    p, le = results["pods"], results["leases"]
    log(f"  pods Running {p['running']:,}/{p['pods']:,}: creation to Running p50 {fmt_seconds(p['p50_s'])},"
        f" p99 {fmt_seconds(p['p99_s'])} (to binding p50 {fmt_seconds(p['bind_p50_s'])},"
        f" p99 {fmt_seconds(p['bind_p99_s'])})")
    log(f"  Leases over {le['window_s']:.0f}s: {le['late']} late of {le['leases']:,} (limit {le['limit_s']:g}s),"
        f" {le['renewed_in_window']:,} renewed in the window; largest gap {fmt_seconds(le['max_gap_s'])},"
        f" p99 {fmt_seconds(le['p99_gap_s'])}" + (f"; late e.g. {le['late_examples']}" if le["late"] else ""))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000, help="simulated nodes in the one kubelet process")
    parser.add_argument("--pods", type=int, default=3000, help="pods to create")
    parser.add_argument("--rate", type=float, default=100.0, help="pods created per second")
    parser.add_argument("--lease-window", type=float, default=40.0, help="watch the Leases at least this long")
    parser.add_argument("--lease-slack", type=float, default=2.0, help="seconds beyond 10 s a renewal may take")
    parser.add_argument("--qps", type=float, default=2000.0, help="client QPS of the kubelet and the scheduler")
    parser.add_argument("--burst", type=int, default=4000, help="client burst of the kubelet and the scheduler")
    parser.add_argument("--cap-seconds", type=float, default=300.0, help="give up on a phase after this long")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args()
    t0 = time.monotonic()
    log(f"machine: {os.cpu_count()} CPUs, {platform_line()}")
    with tempfile.TemporaryDirectory(prefix="pykube-bench-kubelet-") as tmp:
        results = asyncio.run(bench(args, Path(tmp)))
    p, le = results["pods"], results["leases"]
    summary_table([
        (f"pods Running ({p['running']:,}/{p['pods']:,} at {args.rate:g}/s)",
         f"{p['p50_s']:.2f} / {p['p99_s']:.2f} s", f"p99 < {TARGET_P99_SECONDS:g} s"),
        ("  of which creation to binding p50 / p99", f"{p['bind_p50_s']:.2f} / {p['bind_p99_s']:.2f} s", ""),
        (f"late Leases ({le['leases']:,} over {le['window_s']:.0f}s)", f"{le['late']}", "0"),
        ("Lease renewal gap max / p99", f"{le['max_gap_s']:.1f} / {le['p99_gap_s']:.1f} s",
         f"<= {le['limit_s']:g} s"),
        (f"{args.nodes:,} nodes Ready after", f"{results['nodes_ready_seconds']:.1f} s", ""),
        ("kubelet RSS", f"{results['kubelet_rss_mib']:,.0f} MiB", ""),
        ("429 answers the bench's own client retried", f"{results['client_429_retries']:,}", ""),
    ], args.json, results)
    log(f"(run took {time.monotonic() - t0:.0f}s)")


if __name__ == "__main__":
    main()
