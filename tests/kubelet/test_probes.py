"""Probers: thresholds, periods, and the real failure messages (tcpSocket and httpGet, FakeClock)."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from pykube_server.client.clock import FakeClock
from pykube_server.kubelet.probes import LIVENESS, READINESS, Prober, ProbeResults, run_probe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def settle(clock: FakeClock, seconds: float) -> None:
    for _ in range(20):
        await asyncio.sleep(0.01)
    clock.step(seconds)
    for _ in range(20):
        await asyncio.sleep(0.01)


async def test_liveness_fails_after_threshold_with_real_message() -> None:
    port = free_port()
    clock, results, failures = FakeClock(), ProbeResults(), []
    changes: list[bool] = []
    probe = {"tcpSocket": {"port": port}, "periodSeconds": 5, "failureThreshold": 2, "initialDelaySeconds": 3}
    prober = Prober(LIVENESS, probe, container={}, container_id="c", pod_ip="127.0.0.1", runtime=None,
                    results=results, on_change=lambda: changes.append(results.live),
                    on_failure=lambda kind, out: failures.append(f"{kind} probe failed: {out}"), clock=clock)
    task = asyncio.create_task(prober.run())
    await settle(clock, 3)  # initial delay, then the first failure
    assert results.live and len(failures) == 1
    assert failures[0] == f"Liveness probe failed: dial tcp 127.0.0.1:{port}: connect: connection refused"
    await settle(clock, 5)  # second failure reaches the threshold
    await asyncio.wait_for(task, 1)
    assert results.liveness_failed and changes == [False]


async def test_readiness_follows_http_answers() -> None:
    status = {"code": 200}

    async def health(_r: web.Request) -> web.Response:
        return web.Response(status=status["code"])

    app = web.Application()
    app.router.add_get("/healthz", health)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        probe = {"httpGet": {"path": "/healthz", "port": "http"}}
        container = {"ports": [{"name": "http", "containerPort": port}]}
        assert await run_probe(probe, container=container, container_id="c", pod_ip="127.0.0.1", runtime=None) == (True, "")
        status["code"] = 503
        ok, out = await run_probe(probe, container=container, container_id="c", pod_ip="127.0.0.1", runtime=None)
        assert (ok, out) == (False, "HTTP probe failed with statuscode: 503")
        clock, results = FakeClock(), ProbeResults()
        status["code"] = 200
        prober = Prober(READINESS, {**probe, "periodSeconds": 1}, container=container, container_id="c",
                        pod_ip="127.0.0.1", runtime=None, results=results, on_change=lambda: None,
                        on_failure=lambda k, o: None, clock=clock)
        task = asyncio.create_task(prober.run())
        await settle(clock, 0)
        assert results.ready
        task.cancel()
    finally:
        await runner.cleanup()
