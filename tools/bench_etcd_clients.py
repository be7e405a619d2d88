"""Compare the two ways pykube could talk to etcd: the v3 JSON gateway through aiohttp (what
`pykube_server/storage/etcd.py` does) and the `aetcd` gRPC client from PyPI.

Usage: `python tools/bench_etcd_clients.py 127.0.0.1:2379` against an etcd with nothing under
`/bench/`. The aetcd half runs only where `aetcd` is importable (it is not a pykube dependency;
install it into a scratch virtualenv beside orjson and aiohttp to reproduce the comparison).
Both clients do the same work: compare-and-create transactions, point reads, one prefix list,
and watch latency (write acknowledged -> event seen by a watch on the same prefix).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from pykube_server.storage.etcd import EtcdBackend, prefix_end

VALUE = b"x" * 1024
SEQUENTIAL, CONCURRENT, TASKS = 500, 4000, 32


async def rate(n: int, tasks: int, op: Callable[[int], Awaitable[object]]) -> tuple[float, float]:
    """(operations per second, client CPU µs per operation) doing op(0..n-1) over `tasks`
    concurrent workers. The CPU is this process's, all threads (gRPC's C core included)."""
    counter = iter(range(n))

    async def worker() -> None:
        for i in counter:
            await op(i)

    start, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return n / (time.perf_counter() - start), (time.process_time() - cpu) / n * 1e6


class Gateway:
    name = "JSON gateway + aiohttp"

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    async def __aenter__(self) -> Gateway:
        self.db = await EtcdBackend.open([self.endpoint])
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.db.aclose()

    async def create(self, key: str) -> None:
        await self.db.create(key, VALUE)

    async def get(self, key: str) -> None:
        await self.db.get(key)

    async def scan(self, prefix: str) -> int:
        return len((await self.db.scan(prefix)).items)

    async def watch_latency(self, prefix: str, n: int) -> list[float]:
        watch = self.db.watch(prefix, revision=await self.db.current_revision())
        return await measure_watch(watch.__anext__, self.create, prefix, n)


class Aetcd:
    name = "aetcd (gRPC)"

    def __init__(self, endpoint: str) -> None:
        import aetcd  # type: ignore[import-not-found]

        host, _, port = endpoint.rpartition(":")
        # gRPC refuses replies over 4 MiB by default, which a list of 4000 x 1 KiB exceeds.
        options = {"grpc.max_receive_message_length": 256 << 20}
        self.client = aetcd.Client(host=host, port=int(port), options=options)

    async def __aenter__(self) -> Aetcd:
        await self.client.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()

    async def create(self, key: str) -> None:
        t, k = self.client.transactions, key.encode()
        ok, _ = await self.client.transaction(
            compare=[t.create(k) == 0], success=[t.put(k, VALUE)], failure=[t.get(k)])
        assert ok

    async def get(self, key: str) -> None:
        assert await self.client.get(key.encode()) is not None

    async def scan(self, prefix: str) -> int:
        p = prefix.encode()
        return len(await self.client.get_range(p, prefix_end(p)))

    async def watch_latency(self, prefix: str, n: int) -> list[float]:
        p = prefix.encode()
        watch = await self.client.watch(p, range_end=prefix_end(p), prev_kv=True)
        events = watch.__aiter__()
        try:
            return await measure_watch(events.__anext__, self.create, prefix, n)
        finally:
            await watch.cancel()


async def measure_watch(
    next_event: Callable[[], Awaitable[Any]], create: Callable[[str], Awaitable[None]], prefix: str, n: int
) -> list[float]:
    latencies = []
    for i in range(n):
        start = time.perf_counter()
        await create(f"{prefix}{i:06}")
        await next_event()
        latencies.append((time.perf_counter() - start) * 1000)
    return latencies


async def run(client: Any, tag: str) -> dict[str, float]:
    out: dict[str, float] = {}
    async with client as c:
        base = f"/bench/{tag}/"
        out["create/s (1 task)"], _ = await rate(SEQUENTIAL, 1, lambda i: c.create(f"{base}s/{i:06}"))
        out[f"create/s ({TASKS} tasks)"], out["client CPU µs per create"] = await rate(
            CONCURRENT, TASKS, lambda i: c.create(f"{base}c/{i:06}"))
        out["get/s (1 task)"], _ = await rate(SEQUENTIAL, 1, lambda i: c.get(f"{base}c/{i:06}"))
        out[f"get/s ({TASKS} tasks)"], out["client CPU µs per get"] = await rate(
            CONCURRENT, TASKS, lambda i: c.get(f"{base}c/{i % CONCURRENT:06}"))
        start = time.perf_counter()
        assert await c.scan(f"{base}c/") == CONCURRENT
        out[f"list {CONCURRENT} x 1 KiB (ms)"] = (time.perf_counter() - start) * 1000
        lat = sorted(await c.watch_latency(f"{base}w/", 300))
        out["write->watch event p50 (ms)"] = statistics.median(lat)
        out["write->watch event p99 (ms)"] = lat[int(len(lat) * 0.99) - 1]
    return out


async def main(endpoint: str) -> None:
    clients: list[tuple[str, Any]] = [("gw", Gateway(endpoint))]
    try:
        clients.append(("grpc", Aetcd(endpoint)))
    except ImportError:
        print("aetcd not importable: measuring the gateway only")
    results = {c.name: await run(c, tag) for tag, c in clients}
    names = list(results)
    print(f"| measure | {' | '.join(names)} |")
    print(f"| --- | {' | '.join('---:' for _ in names)} |")
    for measure in results[names[0]]:
        print(f"| {measure} | {' | '.join(f'{results[n][measure]:,.1f}' for n in names)} |")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2379"))
