"""Controllers at scale: a big Deployment becoming Available, its rolling update, and the deletion
of a namespace full of objects.

The API server runs alone (`up --components=`); the controller manager, the scheduler and ONE
kubelet process of `--nodes` simulated nodes run as their own processes with the client limits
`--qps`/`--burst`. Then, with progress lines:

1. a Deployment of `--replicas` pods (default 3,000 on 100 nodes): the time from its create until
   `status.availableReplicas == replicas` (with `observedGeneration` caught up);
2. a rolling update (the image changes; default strategy, 25 % surge and unavailable): the time
   until `updatedReplicas == availableReplicas == replicas`, `status.replicas == replicas` and
   every old ReplicaSet is scaled to 0 with no pods left;
3. a namespace holding `--objects` objects (ConfigMaps, Secrets and selector-less Services in
   equal shares; their creation rate is printed too): the time from its DELETE until a GET of
   it answers 404.

A benchmark, not a test: it asserts nothing.

    .venv/bin/python bench/controllers.py [--nodes 100] [--replicas 3000] [--objects 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Api, Cluster, Progress, log, platform_line, summary_table, wait_for_nodes  # noqa: E402

IMAGES = ("registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.9")
DEPLOY_NS = "deploy-bench"
DELETE_NS = "delete-bench"
DEPLOYMENT = "bench"
POLL_SECONDS = 0.25


def deployment(replicas: int) -> dict[str, Any]:
    labels = {"app": "controllers-bench"}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": DEPLOYMENT, "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "app", "image": IMAGES[0],
                                                           "resources": {"requests": {"cpu": "10m",
                                                                                      "memory": "16Mi"}}}]}}}}


def namespaced_object(i: int, ns: str) -> tuple[str, dict[str, Any]]:
    """The i-th object: ConfigMap, Secret and Service in turn."""
    meta = {"name": f"obj-{i}", "labels": {"bench": "controllers"}}
    kind = i % 3
    if kind == 0:
        return (f"/api/v1/namespaces/{ns}/configmaps",
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"key": "value " * 16}})
    if kind == 1:
        return (f"/api/v1/namespaces/{ns}/secrets",
                {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "type": "Opaque",
                 "stringData": {"password": "not-a-secret"}})
    return (f"/api/v1/namespaces/{ns}/services",
            {"apiVersion": "v1", "kind": "Service", "metadata": meta,
             "spec": {"ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]}})


async def wait_until(cluster: Cluster, cap: float, probe: Callable[[], Awaitable[tuple[bool, str]]]) -> float:
    """Poll `probe` until it reports done; progress every 2 s; NaN when `cap` ran out."""
    progress = Progress()
    while True:
        done, text = await probe()
        if done:
            log(f"  done after {progress.elapsed:.1f}s: {text}")
            return progress.elapsed
        cluster.check()
        if progress.elapsed > cap:
            log(f"  gave up after {cap:.0f}s: {text}")
            return float("nan")
        if progress.due():
            log(f"  {progress.elapsed:5.1f}s: {text}")
        await asyncio.sleep(POLL_SECONDS)


def rollout_text(dep: dict[str, Any]) -> str:
    s = dep.get("status") or {}
    return (f"replicas {s.get('replicas', 0):,}, updated {s.get('updatedReplicas', 0):,},"
            f" ready {s.get('readyReplicas', 0):,}, available {s.get('availableReplicas', 0):,}")


def caught_up(dep: dict[str, Any]) -> bool:
    return (dep.get("status") or {}).get("observedGeneration", 0) >= dep["metadata"].get("generation", 0)


async def deployment_phases(api: Api, cluster: Cluster, args: argparse.Namespace) -> dict[str, float]:
    path = f"/apis/apps/v1/namespaces/{DEPLOY_NS}/deployments"
    await api.ensure_namespace(DEPLOY_NS)
    replicas = args.replicas
    log(f"Deployment of {replicas:,} replicas on {args.nodes:,} nodes: until Available ...")
    cpu0, t0 = cluster.cpu(), time.perf_counter()
    await api.create(path, deployment(replicas))

    async def available() -> tuple[bool, str]:
        dep = await api.get(f"{path}/{DEPLOYMENT}")
        s = dep.get("status") or {}
        return caught_up(dep) and s.get("availableReplicas", 0) == replicas, rollout_text(dep)

    out = {"available_s": await wait_until(cluster, args.cap_seconds, available)}
    log(f"  {cluster.cpu_line(cpu0, time.perf_counter() - t0)}")

    log(f"rolling update to {IMAGES[1]}: until complete ...")
    cpu0, t0 = cluster.cpu(), time.perf_counter()
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": IMAGES[1]}]}}}}
    await api.patch(f"{path}/{DEPLOYMENT}", patch, kind="strategic")

    async def rolled() -> tuple[bool, str]:
        dep = await api.get(f"{path}/{DEPLOYMENT}")
        s = dep.get("status") or {}
        text = rollout_text(dep)
        if not (caught_up(dep) and s.get("updatedReplicas", 0) == replicas == s.get("availableReplicas", 0)
                and s.get("replicas", 0) == replicas):
            return False, text
        sets = (await api.get(f"/apis/apps/v1/namespaces/{DEPLOY_NS}/replicasets"))["items"]
        old = [rs for rs in sets
               if rs["spec"]["template"]["spec"]["containers"][0]["image"] != IMAGES[1]]
        left = sum((rs.get("spec") or {}).get("replicas", 0) + (rs.get("status") or {}).get("replicas", 0)
                   for rs in old)
        return left == 0, f"{text}, old ReplicaSets {left:,} replicas left"

    out["rollout_s"] = await wait_until(cluster, args.cap_seconds, rolled)
    log(f"  {cluster.cpu_line(cpu0, time.perf_counter() - t0)}")
    return out


async def namespace_phase(api: Api, cluster: Cluster, args: argparse.Namespace) -> dict[str, float]:
    await api.ensure_namespace(DELETE_NS)
    log(f"namespace with {args.objects:,} objects (ConfigMaps, Secrets, Services): creating ...")
    numbers = iter(range(args.objects))
    t0 = time.perf_counter()
    failed = 0

    async def creator() -> None:
        nonlocal failed
        for i in numbers:
            path, body = namespaced_object(i, DELETE_NS)
            try:
                await api.create(path, body)
            except Exception as exc:  # counted and shown: a failed create is a finding
                failed += 1
                if failed <= 3:
                    log(f"  create {path}/obj-{i} failed: {exc}")

    await asyncio.gather(*(creator() for _ in range(args.clients)))
    create_s = time.perf_counter() - t0
    log(f"  {args.objects - failed:,} created in {create_s:.1f}s ({(args.objects - failed) / create_s:,.0f}/s)"
        + (f", {failed} failed" if failed else ""))
    log("deleting the namespace: until GET answers 404 ...")
    cpu0, t0 = cluster.cpu(), time.perf_counter()
    await api.delete(f"/api/v1/namespaces/{DELETE_NS}")

    async def gone() -> tuple[bool, str]:
        ns = await api.get_or_none(f"/api/v1/namespaces/{DELETE_NS}")
        if ns is None:
            return True, "namespace gone"
        left = []
        for kind in ("configmaps", "secrets", "services"):
            listed = await api.get(f"/api/v1/namespaces/{DELETE_NS}/{kind}?limit=1")
            count = len(listed["items"]) + int(listed["metadata"].get("remainingItemCount") or 0)
            left.append(f"{kind} {count:,}")
        return False, f"phase {ns.get('status', {}).get('phase')}, left: {', '.join(left)}"

    delete_s = await wait_until(cluster, args.cap_seconds, gone)
    log(f"  {cluster.cpu_line(cpu0, time.perf_counter() - t0)}")
    return {"objects": args.objects - failed, "create_per_second": (args.objects - failed) / create_s,
            "delete_s": delete_s}


async def bench(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    cluster = Cluster(tmp, qps=args.qps, burst=args.burst)
    results: dict[str, Any] = {"nodes": args.nodes, "replicas": args.replicas, "qps": args.qps}
    try:
        target = cluster.start_api_server()
        async with Api(target, connections=args.clients + 4) as api:
            cluster.start("controller-manager")
            cluster.start("scheduler")
            cluster.start("kubelet", "--nodes", str(args.nodes), "--runtime", "simulated",
                          "--data-dir", str(tmp / "kubelet"))
            results["nodes_ready_seconds"] = await wait_for_nodes(api, cluster, args.nodes, args.cap_seconds)
            if args.replicas > 0:
                results["deployment"] = await deployment_phases(api, cluster, args)
            if args.objects > 0:
                results["namespace"] = await namespace_phase(api, cluster, args)
            results["client_429_retries"] = api.retries_429
    finally:
        cluster.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=100, help="simulated nodes in the one kubelet process")
    parser.add_argument("--replicas", type=int, default=3000, help="Deployment replicas (0: skip the Deployment)")
    parser.add_argument("--objects", type=int, default=5000, help="objects in the deleted namespace (0: skip)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients creating the objects")
    parser.add_argument("--qps", type=float, default=2000.0, help="client QPS of every component")
    parser.add_argument("--burst", type=int, default=4000, help="client burst of every component")
    parser.add_argument("--cap-seconds", type=float, default=600.0, help="give up on a phase after this long")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args()
    if args.replicas > args.nodes * 110:
        parser.error("--replicas exceeds what --nodes can hold (110 pods per node)")
    t0 = time.monotonic()
    log(f"machine: {os.cpu_count()} CPUs, {platform_line()}")
    with tempfile.TemporaryDirectory(prefix="pykube-bench-controllers-") as tmp:
        results = asyncio.run(bench(args, Path(tmp)))
    rows = []
    if "deployment" in results:
        d = results["deployment"]
        rows += [(f"Deployment {args.replicas:,} replicas: until Available", f"{d['available_s']:.1f} s", ""),
                 ("  rolling update: until complete", f"{d['rollout_s']:.1f} s", "")]
    if "namespace" in results:
        n = results["namespace"]
        rows += [(f"namespace of {n['objects']:,} objects: until deleted", f"{n['delete_s']:.1f} s", ""),
                 ("  its objects created", f"{n['create_per_second']:,.0f}/s", "")]
    rows.append((f"{args.nodes:,} nodes Ready after", f"{results['nodes_ready_seconds']:.1f} s", ""))
    rows.append(("429 answers the bench's own client retried", f"{results['client_429_retries']:,}", ""))
    summary_table(rows, args.json, results)
    log(f"(run took {time.monotonic() - t0:.0f}s)")


if __name__ == "__main__":
    main()
