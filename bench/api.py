"""API server throughput and latency, beside the ceilings measured in the same run.

One bounded run on loopback. The API server runs alone as its own process (`python -m
pykube_server up --components=`, SQLite storage in a temporary directory); the load comes from separate client processes
(aiohttp over keep-alive HTTPS with the admin client certificate), so the figures include the
client's share of the machine, as they would on a 2-core box. Printed, with progress lines:

* creates/s for ConfigMaps and for Pods, GET/s of one object (32 concurrent clients);
* LIST of all pods (10,000 by default) in JSON: p50/p99 over 20 lists, client-side, full body;
* watch delivery latency with 100 concurrent watchers, p50/p99, from just before each write
  was sent (and, second figure, from its acknowledgement) to each watcher reading the event;
* memory per stored pod: server RSS growth per pod minus the pod's JSON size;
* ceilings: a bare aiohttp HTTPS handler's GET/s (same client, same TLS, same certificates)
  and raw sqlite3 inserts/s (WAL, synchronous=NORMAL; one transaction per insert, and batched).

A benchmark, not a test: it asserts nothing. Server and client CPU seconds are printed for
each load phase, which shows who was the bottleneck.

`--storage sqlite,etcd` runs the same phases once per store, one after the other in the same
run, and the summary puts the figures side by side. For etcd the server gets
`--storage etcd://...`: the endpoints of `--etcd`, or else a single-member etcd started here
from the `etcd` binary (default flags, so every commit is fsynced as in production) with its
data in the temporary directory. Its process's CPU is printed beside the server's.

    .venv/bin/python bench/api.py [--client-procs 1] [--pods 10000] [--seconds 4] [--storage sqlite,etcd]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing as mp
import os
import shutil
import signal
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONCURRENCY = 32
WATCHERS = 100
WATCH_WRITES = 200
WATCH_WRITE_GAP_SECONDS = 0.01
LISTS = 20
CONFIGMAPS = 8000
SERVER_START_TIMEOUT_SECONDS = 60.0
PHASE_CAP_SECONDS = 30.0
"""No load phase runs longer than this, whatever the counts."""
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


def log(text: str) -> None:
    print(text, flush=True)


# -- where the server is and how to reach it ------------------------------------------------------


@dataclass(frozen=True)
class Target:
    url: str
    ca: str
    cert: str
    key: str


def client_ssl(target: Target) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=target.ca)
    ctx.load_cert_chain(target.cert, target.key)
    return ctx


def target_from_kubeconfig(path: Path, tmp: Path) -> Target:
    config = yaml.safe_load(path.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    files = {}
    for name, data in (("ca", cluster["certificate-authority-data"]), ("cert", user["client-certificate-data"]),
                       ("key", user["client-key-data"])):
        file = tmp / f"client-{name}.pem"
        file.write_bytes(base64.b64decode(data))
        files[name] = str(file)
    return Target(cluster["server"], files["ca"], files["cert"], files["key"])


class EtcdProcess:
    """A throw-away single-member etcd on loopback ports, its data in `data_dir`."""

    def __init__(self, data_dir: Path) -> None:
        binary = shutil.which("etcd") or "/usr/bin/etcd"
        if not os.access(binary, os.X_OK):
            raise SystemExit("--storage etcd needs the etcd binary (tools/install-etcd.sh) or --etcd host:port")
        client, peer = _free_ports(2)
        self.endpoint = f"127.0.0.1:{client}"
        self.log = data_dir.parent / "etcd.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [binary, "--name", "bench", "--data-dir", str(data_dir),
                 "--listen-client-urls", f"http://{self.endpoint}", "--advertise-client-urls", f"http://{self.endpoint}",
                 "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                 "--initial-cluster", f"bench=http://127.0.0.1:{peer}", "--log-level", "warn", "--logger", "zap"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
        import urllib.request
        while True:
            try:
                with urllib.request.urlopen(f"http://{self.endpoint}/health", timeout=1) as resp:
                    if orjson.loads(resp.read()).get("health") == "true":
                        return
            except (OSError, ValueError):
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("etcd did not start:\n" + self.log.read_text(errors="replace")[-2000:])
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in socks]
    finally:
        for sock in socks:
            sock.close()


class ServerProcess:
    """A child process that prints one `... ready: URL ...` line once it serves."""

    def __init__(self, argv: list[str], ready_marker: str) -> None:
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.url = ""
        self.output: list[str] = []
        deadline = time.monotonic() + SERVER_START_TIMEOUT_SECONDS
        found = threading.Event()

        def reader() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                self.output.append(line)
                if not found.is_set() and ready_marker in line:
                    self.url = line.split(ready_marker, 1)[1].split()[0]
                    found.set()

        threading.Thread(target=reader, daemon=True).start()
        while not found.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server did not start:\n" + "".join(self.output[-30:]))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# -- the load, run in client processes -------------------------------------------------------------


def configmap(i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}", "labels": {"bench": "api"}},
            "data": {"config.yaml": "key: value\n" * 8}}


def pod(i: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"pod-{i}", "labels": {"app": "bench", "shard": str(i % 16)}},
        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]},
    }


BODIES: dict[str, Callable[[int], dict[str, Any]]] = {"configmaps": configmap, "pods": pod}


async def _warm(session: aiohttp.ClientSession, url: str, conns: int) -> None:
    """Open every keep-alive connection (TLS handshakes) before the clock starts."""
    async def one() -> None:
        async with session.get(url + "/version") as resp:
            await resp.read()
    await asyncio.gather(*(one() for _ in range(conns)))


async def _sleep_until(wall: float) -> float:
    await asyncio.sleep(max(0.0, wall - time.time()))
    return time.perf_counter()


async def _load(spec: dict[str, Any]) -> dict[str, Any]:
    target = Target(**spec["target"])
    conns = spec["conns"]
    connector = aiohttp.TCPConnector(limit=conns, ssl=client_ssl(target))
    async with aiohttp.ClientSession(connector=connector) as session:
        await _warm(session, target.url, conns)
        cpu0 = time.process_time()
        start = await _sleep_until(spec["start_at"])
        deadline = start + spec["cap_seconds"]
        ok = failed = 0
        statuses: dict[int, int] = {}

        async def creator(items: Any) -> None:
            nonlocal ok, failed
            make = BODIES[spec["resource"]]
            url = f"{target.url}/api/v1/namespaces/{spec['namespace']}/{spec['resource']}"
            for i in items:
                if time.perf_counter() > deadline:
                    return
                async with session.post(url, data=orjson.dumps(make(i)), headers=JSON_HEADERS) as resp:
                    await resp.read()
                    if resp.status == 201:
                        ok += 1
                    else:
                        failed += 1
                        statuses[resp.status] = statuses.get(resp.status, 0) + 1

        async def getter() -> None:
            nonlocal ok, failed
            url = target.url + spec["path"]
            stop = start + spec["seconds"]
            while time.perf_counter() < stop:
                async with session.get(url, headers={"Accept": "application/json"}) as resp:
                    await resp.read()
                    if resp.status == 200:
                        ok += 1
                    else:
                        failed += 1
                        statuses[resp.status] = statuses.get(resp.status, 0) + 1

        if spec["kind"] == "create":
            items = iter(range(spec["first"], spec["first"] + spec["count"]))
            await asyncio.gather(*(creator(items) for _ in range(conns)))
        else:
            await asyncio.gather(*(getter() for _ in range(conns)))
        end = time.perf_counter()
    return {"ok": ok, "failed": failed, "statuses": statuses, "start": start, "end": end,
            "cpu": time.process_time() - cpu0}


def run_load(spec: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_load(spec))


async def _lists(spec: dict[str, Any]) -> dict[str, Any]:
    target = Target(**spec["target"])
    connector = aiohttp.TCPConnector(limit=1, ssl=client_ssl(target))
    url = f"{target.url}/api/v1/namespaces/{spec['namespace']}/pods"
    times: list[float] = []
    count = size = item_bytes = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        await _warm(session, target.url, 1)
        cpu0 = time.process_time()
        for n in range(spec["lists"] + 1):
            t0 = time.perf_counter()
            async with session.get(url, headers={"Accept": "application/json"}) as resp:
                body = await resp.read()
            elapsed = time.perf_counter() - t0
            if n == 0:  # the first list pays for sorting the keys after the creates
                first = elapsed
                doc = orjson.loads(body)
                count, size = len(doc["items"]), len(body)
                item_bytes = sum(len(orjson.dumps(item)) for item in doc["items"])
                cpu0 = time.process_time()
                continue
            times.append(elapsed)
    return {"times": times, "first": first, "count": count, "bytes": size, "item_bytes": item_bytes,
            "cpu": time.process_time() - cpu0}


def run_lists(spec: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_lists(spec))


async def _watch(spec: dict[str, Any]) -> dict[str, Any]:
    target = Target(**spec["target"])
    ctx = client_ssl(target)
    ns = spec["namespace"]
    base = f"{target.url}/api/v1/namespaces/{ns}/configmaps"
    watchers, writes = spec["watchers"], spec["writes"]
    received: list[dict[str, float]] = [{} for _ in range(watchers)]
    done = asyncio.Event()
    complete = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=watchers, ssl=ctx),
                                     timeout=aiohttp.ClientTimeout(total=None, sock_read=None)) as wsession, \
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1, ssl=ctx)) as session:
        async with session.get(base, headers={"Accept": "application/json"}) as resp:
            rv = orjson.loads(await resp.read())["metadata"]["resourceVersion"]
        opened = 0
        all_open = asyncio.Event()

        async def watcher(w: int) -> None:
            nonlocal opened, complete
            url = f"{base}?watch=1&resourceVersion={rv}&timeoutSeconds={int(spec['cap_seconds']) + 10}"
            async with wsession.get(url, headers={"Accept": "application/json"}) as resp:
                opened += 1
                if opened == watchers:
                    all_open.set()
                mine = received[w]
                while len(mine) < writes:
                    line = await resp.content.readline()
                    if not line:
                        break
                    now = time.perf_counter()
                    event = orjson.loads(line)
                    if event["type"] == "ADDED":
                        mine[event["object"]["metadata"]["name"]] = now
            complete += 1
            if complete == watchers:
                done.set()

        tasks = [asyncio.create_task(watcher(w)) for w in range(watchers)]
        async with asyncio.timeout(30):
            await all_open.wait()
        await asyncio.sleep(0.2)
        cpu0 = time.process_time()
        sent: dict[str, tuple[float, float]] = {}
        for i in range(writes):
            body = orjson.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"w-{i}"},
                                 "data": {"n": str(i)}})
            t0 = time.perf_counter()
            async with session.post(base, data=body, headers=JSON_HEADERS) as resp:
                await resp.read()
            sent[f"w-{i}"] = (t0, time.perf_counter())
            await asyncio.sleep(spec["gap_seconds"])
        try:
            async with asyncio.timeout(10):
                await done.wait()
        except TimeoutError:
            pass
        cpu = time.process_time() - cpu0
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    from_send = [t - sent[name][0] for mine in received for name, t in mine.items() if name in sent]
    from_ack = [t - sent[name][1] for mine in received for name, t in mine.items() if name in sent]
    ack = [b - a for a, b in sent.values()]
    return {"from_send": from_send, "from_ack": from_ack, "write_latency": ack,
            "expected": watchers * writes, "cpu": cpu}


def run_watch(spec: dict[str, Any]) -> dict[str, Any]:
    return asyncio.run(_watch(spec))


# -- the bare aiohttp ceiling ----------------------------------------------------------------------


def bare_server_main(pki_dir: str, body_file: str) -> None:
    """A plain aiohttp HTTPS app answering every GET with fixed bytes; same TLS set-up as pykube."""
    from aiohttp import web

    from pykube_server.apiserver import certs

    body = Path(body_file).read_bytes()

    async def handler(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    async def serve() -> None:
        ctx = certs.server_ssl_context(certs.ensure_pki(pki_dir))
        app = web.Application()
        app.router.add_get("/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx, backlog=1024)
        await site.start()
        print(f"bare ready: https://127.0.0.1:{runner.addresses[0][1]}", flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(serve())


# -- SQLite ceilings -------------------------------------------------------------------------------


def sqlite_rates(tmp: Path, value: bytes) -> tuple[float, float]:
    from pykube_server.storage.sqlite import _INSERT, _SCHEMA

    def rate(path: Path, count: int, batched: bool) -> float:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        for statement in _SCHEMA:
            conn.execute(statement)
        rows = [(i, f"/registry/pods/bench/raw-{i}", 1, 0, i, 0, value) for i in range(1, count + 1)]
        t0 = time.perf_counter()
        if batched:
            conn.execute("BEGIN")
            conn.executemany(_INSERT, rows)
            conn.execute("COMMIT")
        else:
            for row in rows:
                conn.execute("BEGIN")
                conn.execute(_INSERT, row)
                conn.execute("COMMIT")
        elapsed = time.perf_counter() - t0
        conn.close()
        return count / elapsed

    return rate(tmp / "raw1.db", 20_000, False), rate(tmp / "raw2.db", 100_000, True)


# -- orchestration ---------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Bench:
    def __init__(self, args: argparse.Namespace, pool: Any, tmp: Path) -> None:
        self.args = args
        self.pool = pool
        self.tmp = tmp
        self.results: dict[str, Any] = {}
        """The first store's figures and the ceilings at the top (the layout of a SQLite-only
        run), every store's figures under `by_storage`."""
        self.etcd: EtcdProcess | None = None
        """The etcd this run started, while the etcd phases run (its CPU is reported)."""

    def _etcd_cpu(self) -> float:
        return self.etcd.cpu_seconds() if self.etcd is not None else 0.0

    def parallel(self, server: ServerProcess, target: Target, label: str, make: Callable[[int, int], dict[str, Any]]
                 ) -> dict[str, Any]:
        """Run one load phase split over the client processes; returns totals and CPU use."""
        procs = self.args.client_procs
        conns = CONCURRENCY // procs
        start_at = time.time() + 1.5
        specs = []
        for p in range(procs):
            spec = make(p, procs)
            spec.update(target=asdict(target), conns=conns, start_at=start_at, cap_seconds=PHASE_CAP_SECONDS)
            specs.append(spec)
        cpu0, etcd0 = server.cpu_seconds(), self._etcd_cpu()
        outs = self.pool.map(run_load, specs)
        server_cpu = server.cpu_seconds() - cpu0
        etcd_cpu = self._etcd_cpu() - etcd0
        start = min(o["start"] for o in outs)
        elapsed = max(o["end"] for o in outs) - start
        ok = sum(o["ok"] for o in outs)
        failed = sum(o["failed"] for o in outs)
        statuses: dict[int, int] = {}
        for o in outs:
            for code, n in o["statuses"].items():
                statuses[code] = statuses.get(code, 0) + n
        client_cpu = sum(o["cpu"] for o in outs)
        rate = ok / elapsed
        extra = f", {failed} failed {statuses}" if failed else ""
        per_op = server_cpu / max(ok, 1) * 1e6
        etcd_share = f", etcd {etcd_cpu / elapsed:.0%}" if self.etcd is not None else ""
        log(f"  {label}: {ok:,} in {elapsed:.2f}s = {rate:,.0f}/s{extra}"
            f" (CPU: server {server_cpu / elapsed:.0%}{etcd_share}, clients {client_cpu / elapsed:.0%} of one core;"
            f" server {per_op:,.0f} us per request, clients {client_cpu / max(ok, 1) * 1e6:,.0f} us)")
        return {"rate": rate, "ok": ok, "failed": failed, "seconds": elapsed,
                "server_cpu": server_cpu / elapsed, "client_cpu": client_cpu / elapsed,
                "server_us_per_op": per_op, "client_us_per_op": client_cpu / max(ok, 1) * 1e6}

    def run(self) -> None:
        args, tmp = self.args, self.tmp
        log(f"machine: {os.cpu_count()} CPUs, {platform_line()}")
        log(f"client: {args.client_procs} process(es), {CONCURRENCY} keep-alive HTTPS connections in all")
        by_storage: dict[str, dict[str, Any]] = {}
        for n, storage in enumerate(args.storage):
            r = self.results if n == 0 else {}
            by_storage[storage] = r
            self.run_storage(storage, tmp / storage, r)
        self.results["by_storage"] = {name: {k: v for k, v in r.items() if k != "by_storage"}
                                      for name, r in by_storage.items()}
        self.ceilings(tmp / args.storage[0] / "data" / "pki", tmp / args.storage[0])
        self.summary()

    def run_storage(self, storage: str, tmp: Path, r: dict[str, Any]) -> None:
        """Start the API server on `storage` (and, for etcd, the etcd) and run every phase."""
        data_dir, kubeconfig = tmp / "data", tmp / "admin.kubeconfig"
        tmp.mkdir(parents=True)
        flags: list[str] = []
        if storage == "etcd":
            if self.args.etcd:
                flags = ["--storage", "etcd://" + self.args.etcd]
                log(f"[etcd] starting the API server alone on etcd at {self.args.etcd} ...")
            else:
                self.etcd = EtcdProcess(tmp / "etcd-data")
                flags = ["--storage", f"etcd://{self.etcd.endpoint}"]
                log(f"[etcd] started a single-member etcd at {self.etcd.endpoint} (pid {self.etcd.proc.pid});"
                    " starting the API server alone on it ...")
        else:
            log("[sqlite] starting the API server alone (`up --components=`, SQLite in a temp dir) ...")
        try:
            server = ServerProcess([sys.executable, "-m", "pykube_server", "up", "--data-dir", str(data_dir),
                                    "--port", "0", "--kubeconfig", str(kubeconfig), "--log-level", "WARNING",
                                    "--components=",
                                    # no controller manager makes `default` ServiceAccounts for the pods
                                    "--disable-admission-plugins=ServiceAccount", *flags],
                                   "pykube ready: ")
            try:
                target = target_from_kubeconfig(kubeconfig, tmp)
                self.against_server(server, target, r)
            finally:
                server.stop()
        finally:
            if self.etcd is not None:
                self.etcd.stop()
                self.etcd = None

    def against_server(self, server: ServerProcess, target: Target, r: dict[str, Any]) -> None:
        args = self.args
        log(f"  server pid {server.pid} at {target.url}, RSS {server.rss_bytes() / 2**20:.1f} MiB")
        setup = {"target": asdict(target), "namespaces": ["bench", "watch"]}
        self.pool.apply(run_setup, (setup,))

        log(f"creates: {args.configmaps:,} ConfigMaps ...")
        r["configmap_creates"] = self.parallel(server, target, "ConfigMap creates", lambda p, n: {
            "kind": "create", "resource": "configmaps", "namespace": "bench",
            "first": p * (args.configmaps // n), "count": args.configmaps // n})

        rss0 = server.rss_bytes()
        log(f"creates: {args.pods:,} Pods (server RSS before: {rss0 / 2**20:.1f} MiB) ...")
        r["pod_creates"] = self.parallel(server, target, "Pod creates", lambda p, n: {
            "kind": "create", "resource": "pods", "namespace": "bench",
            "first": p * (args.pods // n), "count": args.pods // n})
        time.sleep(1.0)
        rss1 = server.rss_bytes()
        pods = r["pod_creates"]["ok"]
        log(f"  server RSS after: {rss1 / 2**20:.1f} MiB (+{(rss1 - rss0) / max(pods, 1):,.0f} B per pod)")

        log(f"GET: one ConfigMap, {args.seconds:.0f}s ...")
        r["get"] = self.parallel(server, target, "GET", lambda p, n: {
            "kind": "get", "path": "/api/v1/namespaces/bench/configmaps/cm-1", "seconds": args.seconds})

        log(f"LIST: all pods in the namespace, {LISTS} times, JSON ...")
        cpu0 = server.cpu_seconds()
        lists = self.pool.apply(run_lists, ({"target": asdict(target), "namespace": "bench", "lists": LISTS},))
        times = lists["times"]
        per_pod_json = lists["item_bytes"] / max(lists["count"], 1)
        r["list"] = {"pods": lists["count"], "bytes": lists["bytes"], "p50_ms": pct(times, 0.5) * 1e3,
                     "p99_ms": pct(times, 0.99) * 1e3, "first_ms": lists["first"] * 1e3,
                     "server_cpu_s": server.cpu_seconds() - cpu0}
        log(f"  {lists['count']:,} pods, {lists['bytes'] / 2**20:.1f} MiB: p50 {r['list']['p50_ms']:.0f} ms,"
            f" p99 {r['list']['p99_ms']:.0f} ms (first list {r['list']['first_ms']:.0f} ms)")
        r["memory"] = {"rss_growth_per_pod": (rss1 - rss0) / max(pods, 1), "pod_json": per_pod_json,
                       "beyond_json": (rss1 - rss0) / max(pods, 1) - per_pod_json}
        log(f"  memory per pod: {r['memory']['rss_growth_per_pod']:,.0f} B RSS - {per_pod_json:,.0f} B JSON"
            f" = {r['memory']['beyond_json']:,.0f} B beyond its JSON")

        log(f"watch: {args.watchers} watchers, {args.watch_writes} creates {WATCH_WRITE_GAP_SECONDS * 1e3:.0f} ms apart ...")
        cpu0 = server.cpu_seconds()
        w = self.pool.apply(run_watch, ({"target": asdict(target), "namespace": "watch", "watchers": args.watchers,
                                         "writes": args.watch_writes, "gap_seconds": WATCH_WRITE_GAP_SECONDS,
                                         "cap_seconds": PHASE_CAP_SECONDS},))
        r["watch"] = {"delivered": len(w["from_send"]), "expected": w["expected"],
                      "p50_ms": pct(w["from_send"], 0.5) * 1e3, "p99_ms": pct(w["from_send"], 0.99) * 1e3,
                      "ack_p50_ms": pct(w["from_ack"], 0.5) * 1e3, "ack_p99_ms": pct(w["from_ack"], 0.99) * 1e3,
                      "write_p50_ms": pct(w["write_latency"], 0.5) * 1e3}
        log(f"  {len(w['from_send']):,}/{w['expected']:,} events: from before the write p50"
            f" {r['watch']['p50_ms']:.1f} ms, p99 {r['watch']['p99_ms']:.1f} ms; from the ack p50"
            f" {r['watch']['ack_p50_ms']:.1f} ms, p99 {r['watch']['ack_p99_ms']:.1f} ms"
            f" (write itself p50 {r['watch']['write_p50_ms']:.1f} ms; server CPU {server.cpu_seconds() - cpu0:.1f}s)")

    def ceilings(self, pki_dir: Path, client_dir: Path) -> None:
        """The bare handler (its client files are the first run's, in `client_dir`) and raw sqlite3."""
        args, r = self.args, self.results
        body_file = self.tmp / "body.json"
        body_file.write_bytes(orjson.dumps(configmap(1) | {"metadata": {
            "name": "cm-1", "namespace": "bench", "uid": "6f1f8a52-5a4b-4c1e-9d6e-1d1f2b3c4d5e",
            "resourceVersion": "12345", "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"bench": "api"}}}))
        log(f"ceiling: bare aiohttp HTTPS handler, GET {args.seconds:.0f}s ...")
        bare = ServerProcess([sys.executable, str(Path(__file__).resolve()), "--bare-server", str(pki_dir),
                              str(body_file)], "bare ready: ")
        try:
            target = Target(bare.url, str(client_dir / "client-ca.pem"), str(client_dir / "client-cert.pem"),
                            str(client_dir / "client-key.pem"))
            r["bare_get"] = self.parallel(bare, target, "bare aiohttp GET", lambda p, n: {
                "kind": "get", "path": "/api/v1/namespaces/bench/configmaps/cm-1", "seconds": args.seconds})
        finally:
            bare.stop()
        log("ceiling: raw sqlite3 inserts (WAL, synchronous=NORMAL, pod-sized values) ...")
        value = b"x" * int(r.get("memory", {}).get("pod_json", 1500))
        per_tx, batched = sqlite_rates(self.tmp, value)
        r["sqlite"] = {"per_transaction": per_tx, "batched": batched}
        log(f"  one insert per transaction: {per_tx:,.0f}/s; one batched transaction: {batched:,.0f}/s")

    def summary(self) -> None:
        r = self.results
        runs = r["by_storage"]
        bare = r["bare_get"]

        def row(name: str, figure: Callable[[dict[str, Any]], str], goal: str = "") -> tuple[str, list[str], str]:
            return name, [figure(x) for x in runs.values()], goal

        rows = [
            row("ConfigMap creates/s", lambda x: f"{x['configmap_creates']['rate']:,.0f}", ">= 3,000"),
            row("Pod creates/s", lambda x: f"{x['pod_creates']['rate']:,.0f}", ">= 3,000"),
            row("GET/s (one object)", lambda x: f"{x['get']['rate']:,.0f}", ">= 8,000"),
            row("  of bare aiohttp GET/s", lambda x: f"{x['get']['rate'] / bare['rate']:.0%}", ">= 40%"),
            row("  server CPU per create (ConfigMap/Pod)", lambda x:
                f"{x['configmap_creates']['server_us_per_op']:,.0f} / {x['pod_creates']['server_us_per_op']:,.0f} us"),
            row("  server CPU per GET (pykube / bare)",
                lambda x: f"{x['get']['server_us_per_op']:,.0f} / {bare['server_us_per_op']:,.0f} us"),
            row(f"LIST {r['list']['pods']:,} pods p50 / p99",
                lambda x: f"{x['list']['p50_ms']:.0f} / {x['list']['p99_ms']:.0f} ms", "< 300 ms"),
            row(f"watch p50 / p99 ({self.args.watchers} watchers)",
                lambda x: f"{x['watch']['p50_ms']:.1f} / {x['watch']['p99_ms']:.1f} ms", "p99 < 50 ms"),
            row("memory per pod beyond JSON", lambda x: f"{x['memory']['beyond_json']:,.0f} B", "<= 2,048 B"),
            ("ceiling: bare aiohttp GET/s", [f"{bare['rate']:,.0f}"], ""),
            ("ceiling: sqlite3 1 insert/tx", [f"{r['sqlite']['per_transaction']:,.0f}/s"], ""),
            ("ceiling: sqlite3 batched", [f"{r['sqlite']['batched']:,.0f}/s"], ""),
        ]
        log("")
        log("summary" + " " * 33 + "".join(f"{name:>18}" for name in runs) + "    target")
        for name, values, goal in rows:
            log(f"{name:<40}" + "".join(f"{v:>18}" for v in values) + " " * 18 * (len(runs) - len(values))
                + f"    {goal}")
        if self.args.json:
            Path(self.args.json).write_bytes(orjson.dumps(r, option=orjson.OPT_INDENT_2))


def run_setup(spec: dict[str, Any]) -> None:
    async def go() -> None:
        target = Target(**spec["target"])
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl(target))) as session:
            for ns in spec["namespaces"]:
                body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                async with session.post(f"{target.url}/api/v1/namespaces", data=orjson.dumps(body),
                                        headers=JSON_HEADERS) as resp:
                    if resp.status not in (201, 409):
                        raise RuntimeError(f"creating namespace {ns}: {resp.status} {await resp.text()}")
    asyncio.run(go())


def platform_line() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model or 'unknown CPU'}, Python {sys.version.split()[0]}"


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--bare-server":
        bare_server_main(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client-procs", type=int, default=1, choices=(1, 2, 4), help="load generator processes")
    parser.add_argument("--pods", type=int, default=10_000, help="pods to create (and then list)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each GET phase")
    parser.add_argument("--configmaps", type=int, default=CONFIGMAPS, help="ConfigMaps to create")
    parser.add_argument("--watchers", type=int, default=WATCHERS, help="concurrent watchers in the watch phase")
    parser.add_argument("--watch-writes", type=int, default=WATCH_WRITES, help="creates the watchers must see")
    parser.add_argument("--storage", default="sqlite",
                        help="comma list of stores to run the phases on, in order: sqlite, etcd (default sqlite)")
    parser.add_argument("--etcd", default="",
                        help="host:port[,host:port] of an etcd to use for --storage etcd (default: start one)")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args()
    args.storage = [s.strip() for s in args.storage.split(",") if s.strip()]
    if not args.storage or set(args.storage) - {"sqlite", "etcd"} or len(set(args.storage)) != len(args.storage):
        parser.error("--storage takes a comma list of sqlite and etcd, each once")
    t0 = time.monotonic()
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="pykube-bench-") as tmp, ctx.Pool(args.client_procs) as pool:
        Bench(args, pool, Path(tmp)).run()
    log(f"(run took {time.monotonic() - t0:.0f}s)")


if __name__ == "__main__":
    main()
