"""kube-proxy: HTTP through a ClusterIP to 3 pods versus straight to one pod, in the same run.

The API server runs alone (`up --components=`, its own Service range so a test cluster on the
same machine cannot hold the same ClusterIP), and `pykube-server proxy` as its own process.
The 3 "pods" are real HTTP servers on loopback pod-style IPs in one child process (a tiny
asyncio HTTP/1.1 server answering `pod-<i>`), registered as the endpoints of a selector-less
Service through a hand-written EndpointSlice, so no kubelet is needed. The load comes from this
process (asyncio, raw HTTP/1.1, `--connections` concurrent clients), the same client for both
targets. Printed, with the CPU share of the proxy and the backends in each phase:

1. keep-alive: requests/s and p50/p99 latency, direct to pod 0 and through ClusterIP:80, in
   `--rounds` alternating runs (so a busy moment of a shared machine hits both alike);
2. a new TCP connection per request (connections/s): the same two figures;
3. from an endpoint turning ready (the EndpointSlice PUT is sent) until a request through the
   ClusterIP is answered by it, over `--ready-trials` trials (it is turned unready in between).

The target of issue #7: through the proxy at least 50 % of direct throughput. A benchmark, not a
test: it asserts nothing.

    .venv/bin/python bench/proxy.py [--seconds 3] [--connections 16] [--ready-trials 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Api, Cluster, log, platform_line, summary_table  # noqa: E402
from api import ROOT, ServerProcess, pct, target_from_kubeconfig  # noqa: E402

NS = "default"
SERVICE = "bench-web"
SERVICE_RANGE = "127.93.0.0/16"
BACKEND_PORT = 8080
PODS = 3
READY_MARKER = "backends ready"
REQUEST_KEEP_ALIVE = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
REQUEST_CLOSE = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
CONNECT_TIMEOUT_SECONDS = 5.0
READY_TRIAL_CAP_SECONDS = 10.0


# -- the backends (a child process) ----------------------------------------------------------------


class _Backend(asyncio.Protocol):
    """HTTP/1.1 with keep-alive: one fixed answer per request head; `Connection: close` ends it."""

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4:]
            close = b"connection: close" in head.lower()
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n%s\r\n%s" % (
                len(self.body), b"Connection: close\r\n" if close else b"", self.body))
            if close:
                self.transport.close()
                return


async def serve_backends(ips: list[str], port: int) -> None:
    loop = asyncio.get_running_loop()
    for i, ip in enumerate(ips):
        body = f"pod-{i}\n".encode()
        await loop.create_server(lambda body=body: _Backend(body), ip, port, backlog=1024, reuse_address=True)
    print(f"{READY_MARKER}: {','.join(ips)}", flush=True)
    await asyncio.Event().wait()


# -- the load ------------------------------------------------------------------------------------------


async def one_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> bytes:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return await reader.readexactly(length)


async def get_new_connection(host: str, port: int) -> bytes:
    async with asyncio.timeout(CONNECT_TIMEOUT_SECONDS):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            return await one_request(reader, writer, REQUEST_CLOSE)
        finally:
            writer.close()


async def load(host: str, port: int, *, seconds: float, connections: int, keep_alive: bool) -> dict[str, Any]:
    """`connections` clients for `seconds`; each request's latency, and who answered."""
    latencies: list[float] = []
    answered: dict[str, int] = {}
    errors = 0
    stop = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors
        reader = writer = None
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            try:
                if keep_alive:
                    if writer is None:
                        reader, writer = await asyncio.open_connection(host, port)
                    assert reader is not None
                    body = await one_request(reader, writer, REQUEST_KEEP_ALIVE)
                else:
                    body = await get_new_connection(host, port)
            except (OSError, asyncio.IncompleteReadError, TimeoutError):
                errors += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
                await asyncio.sleep(0.01)
                continue
            latencies.append(time.perf_counter() - t0)
            name = body.decode().strip()
            answered[name] = answered.get(name, 0) + 1
        if writer is not None:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(connections)))
    return {"latencies": latencies, "elapsed": time.perf_counter() - t0, "errors": errors, "answered": answered}


def merge(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One figure from the interleaved rounds of one target."""
    latencies = [x for r in runs for x in r["latencies"]]
    elapsed = sum(r["elapsed"] for r in runs)
    answered: dict[str, int] = {}
    for r in runs:
        for name, count in r["answered"].items():
            answered[name] = answered.get(name, 0) + count
    return {"requests": len(latencies), "per_second": len(latencies) / max(elapsed, 1e-9),
            "p50_ms": pct(latencies, 0.5) * 1e3, "p99_ms": pct(latencies, 0.99) * 1e3,
            "errors": sum(r["errors"] for r in runs), "answered": dict(sorted(answered.items()))}


# -- the cluster objects ---------------------------------------------------------------------------------


def endpoint_slice(ips: list[str], ready: list[bool]) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": f"{SERVICE}-manual", "namespace": NS,
                         "labels": {"kubernetes.io/service-name": SERVICE}},
            "addressType": "IPv4",
            "endpoints": [{"addresses": [ip], "conditions": {"ready": r}} for ip, r in zip(ips, ready)],
            "ports": [{"name": "http", "port": BACKEND_PORT, "protocol": "TCP"}]}


async def wait_answering(host: str, port: int, cap: float) -> None:
    deadline = time.monotonic() + cap
    while True:
        try:
            await get_new_connection(host, port)
            return
        except (OSError, asyncio.IncompleteReadError, TimeoutError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{host}:{port} did not answer within {cap:.0f}s") from None
            await asyncio.sleep(0.02)


async def ready_to_traffic(api: Api, cluster_ip: str, ips: list[str], trials: int) -> list[float]:
    """Seconds from the PUT that makes pod 2 ready until a request through the ClusterIP reaches it."""
    path = f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices/{SERVICE}-manual"
    last = f"pod-{len(ips) - 1}"
    out: list[float] = []
    for _ in range(trials):
        current = await api.get(path)
        current["endpoints"] = endpoint_slice(ips, [True] * (len(ips) - 1) + [False])["endpoints"]
        await api.request("PUT", path, current)
        misses, deadline = 0, time.monotonic() + READY_TRIAL_CAP_SECONDS
        while misses < 3 * len(ips) and time.monotonic() < deadline:  # until the proxy stopped sending it any
            misses = 0 if (await get_new_connection(cluster_ip, 80)).decode().strip() == last else misses + 1
        current = await api.get(path)
        current["endpoints"] = endpoint_slice(ips, [True] * len(ips))["endpoints"]
        t0 = time.perf_counter()
        await api.request("PUT", path, current)
        deadline = time.monotonic() + READY_TRIAL_CAP_SECONDS
        while time.monotonic() < deadline:
            if (await get_new_connection(cluster_ip, 80)).decode().strip() == last:
                out.append(time.perf_counter() - t0)
                break
            await asyncio.sleep(0.002)
    return out


def cpu_of(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def bench(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    cluster = Cluster(tmp, qps=100.0, burst=200)
    subnet = random.randrange(1, 250)
    ips = [f"127.251.{subnet}.{10 + i}" for i in range(PODS)]
    backends = subprocess.Popen([sys.executable, __file__, "--serve-backends", ",".join(ips)], cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
    results: dict[str, Any] = {"connections": args.connections, "seconds": args.seconds}
    try:
        assert backends.stdout is not None
        line = backends.stdout.readline()
        if not line.startswith(READY_MARKER):
            raise RuntimeError(f"the backends did not start: {line}")
        log(f"3 backends (pid {backends.pid}) on {', '.join(ips)}:{BACKEND_PORT}")
        log(f"starting the API server alone (Service range {SERVICE_RANGE}) and the proxy ...")
        cluster.server = ServerProcess([sys.executable, "-m", "pykube_server", "up", "--data-dir", str(tmp / "data"),
                                        "--port", "0", "--kubeconfig", str(cluster.kubeconfig), "--log-level",
                                        "WARNING", "--components=", "--service-cluster-ip-range", SERVICE_RANGE],
                                       "pykube ready: ")
        cluster.target = target_from_kubeconfig(cluster.kubeconfig, tmp)
        async with Api(cluster.target, connections=4) as api:
            proxy = cluster.start("proxy")
            svc = await api.create(f"/api/v1/namespaces/{NS}/services", {
                "apiVersion": "v1", "kind": "Service", "metadata": {"name": SERVICE},
                "spec": {"ports": [{"name": "http", "port": 80, "targetPort": BACKEND_PORT}]}})
            cluster_ip = svc["spec"]["clusterIP"]
            await api.create(f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices",
                             endpoint_slice(ips, [True] * PODS))
            await wait_answering(cluster_ip, 80, 30.0)
            log(f"  Service {SERVICE} at {cluster_ip}:80 answers through the proxy (pid {proxy.pid})")
            targets = (("direct", ips[0], BACKEND_PORT), ("proxy", cluster_ip, 80))
            for keep_alive in (True, False):
                kind = "keep-alive" if keep_alive else "new connection per request"
                runs: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in targets}
                cpu: dict[str, list[float]] = {label: [0.0, 0.0, 0.0, 0.0] for label, _, _ in targets}
                for _ in range(args.rounds):  # interleaved, so a busy moment of a shared machine hits both
                    for label, host, port in targets:
                        cluster.check()
                        before = (cpu_of(proxy.pid), cpu_of(backends.pid), time.process_time(), time.perf_counter())
                        runs[label].append(await load(host, port, seconds=args.seconds / args.rounds,
                                                      connections=args.connections, keep_alive=keep_alive))
                        after = (cpu_of(proxy.pid), cpu_of(backends.pid), time.process_time(), time.perf_counter())
                        cpu[label] = [c + a - b for c, a, b in zip(cpu[label], after, before)]
                for label, _, _ in targets:
                    figures = merge(runs[label])
                    wall = max(cpu[label][3], 1e-9)
                    figures["cpu"] = {"proxy": cpu[label][0] / wall, "backends": cpu[label][1] / wall,
                                      "client": cpu[label][2] / wall}
                    results[f"{'keepalive' if keep_alive else 'newconn'}_{label}"] = figures
                    log(f"{kind}, {label:>6}: {figures['per_second']:8,.0f} req/s, p50 {figures['p50_ms']:.2f} ms, "
                        f"p99 {figures['p99_ms']:.2f} ms, {figures['errors']} errors, answered by "
                        f"{figures['answered']}; CPU of one core: proxy {figures['cpu']['proxy']:.0%}, "
                        f"backends {figures['cpu']['backends']:.0%}, client {figures['cpu']['client']:.0%}")
            log(f"endpoint ready -> traffic, {args.ready_trials} trials ...")
            delays = await ready_to_traffic(api, cluster_ip, ips, args.ready_trials)
            results["ready_to_traffic_s"] = delays
            log("  " + ", ".join(f"{d * 1e3:.0f} ms" for d in delays))
    finally:
        cluster.stop()
        if backends.poll() is None:
            backends.terminate()
            backends.wait(10)
    return results


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve-backends":
        asyncio.run(serve_backends(sys.argv[2].split(","), BACKEND_PORT))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="length of each load phase")
    parser.add_argument("--connections", type=int, default=16, help="concurrent clients")
    parser.add_argument("--rounds", type=int, default=3, help="direct and proxied runs alternate this many times")
    parser.add_argument("--ready-trials", type=int, default=5, help="endpoint ready -> traffic trials")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args()
    t0 = time.monotonic()
    log(f"machine: {os.cpu_count()} CPUs, {platform_line()}")
    with tempfile.TemporaryDirectory(prefix="pykube-bench-proxy-") as tmp:
        results = asyncio.run(bench(args, Path(tmp)))
    rows = []
    for kind, name in (("keepalive", "keep-alive"), ("newconn", "new connection")):
        direct, proxied = results[f"{kind}_direct"], results[f"{kind}_proxy"]
        ratio = proxied["per_second"] / max(direct["per_second"], 1e-9)
        results[f"{kind}_ratio"] = ratio
        rows += [(f"{name}: direct to one pod", f"{direct['per_second']:,.0f} req/s", ""),
                 (f"{name}: through the ClusterIP", f"{proxied['per_second']:,.0f} req/s",
                  f">= 50 % of direct: {ratio:.0%}"),
                 (f"{name}: p99 direct / proxied", f"{direct['p99_ms']:.1f} / {proxied['p99_ms']:.1f} ms", "")]
    rows.append(("connections/s through the ClusterIP", f"{results['newconn_proxy']['per_second']:,.0f}/s", ""))
    delays = results["ready_to_traffic_s"]
    rows.append(("endpoint ready -> traffic, median / max",
                 f"{pct(delays, 0.5) * 1e3:.0f} / {max(delays or [float('nan')]) * 1e3:.0f} ms", ""))
    summary_table(rows, args.json, results)
    log(f"(run took {time.monotonic() - t0:.0f}s)")


if __name__ == "__main__":
    main()
