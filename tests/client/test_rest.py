"""The REST client against a real in-process API server, plus throttling and retries against a
tiny scripted HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from pykube_server.api import errors
from pykube_server.client.clock import FakeClock
from pykube_server.client.config import ClientConfig
from pykube_server.client.rest import (
    CONFIGMAPS,
    LEASES,
    NAMESPACES,
    PODS,
    Client,
    PatchType,
    Resource,
    TransportError,
    error_from_response,
)

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"app": "x"}},
       "spec": {"containers": [{"name": "c", "image": "busybox"}]}}


def cm(name: str, **labels: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}


@pytest.mark.parametrize("resource, kwargs, path", [
    (PODS, {"namespace": "ns", "name": "p", "subresource": "status"}, "/api/v1/namespaces/ns/pods/p/status"),
    (PODS, {}, "/api/v1/pods"),
    (NAMESPACES, {"namespace": "ignored", "name": "n"}, "/api/v1/namespaces/n"),
    (LEASES, {"namespace": "kube-system"}, "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"),
    (Resource("apps", "v1", "deployments"), {"namespace": "d", "name": "x", "subresource": "scale"},
     "/apis/apps/v1/namespaces/d/deployments/x/scale"),
], ids=["pod-status", "all-pods", "cluster-scoped", "group", "scale"])
def test_resource_paths(resource: Resource, kwargs: dict, path: str) -> None:
    assert resource.path(**kwargs) == path


def test_error_without_status_body_uses_the_code() -> None:
    err = error_from_response(404, b"404 page not found")
    assert isinstance(err, errors.NotFound) and err.message == "404 page not found"
    gone = error_from_response(410, b"")
    assert isinstance(gone, errors.Gone)


async def test_crud_round_trip(client: Client) -> None:
    created = await client.create(CONFIGMAPS, cm("a", app="x"))
    assert created["metadata"]["namespace"] == "default" and created["metadata"]["uid"]
    got = await client.get(CONFIGMAPS, "a", namespace="default")
    assert got["data"] == {"k": "v"}
    got["data"]["k"] = "w"
    updated = await client.update(CONFIGMAPS, got)
    assert updated["data"]["k"] == "w"
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    await client.delete(CONFIGMAPS, "a", namespace="default")
    with pytest.raises(errors.NotFound) as info:
        await client.get(CONFIGMAPS, "a", namespace="default")
    assert info.value.message == 'configmaps "a" not found'


async def test_errors_are_rebuilt_from_status(client: Client) -> None:
    created = await client.create(CONFIGMAPS, cm("dup"))
    with pytest.raises(errors.AlreadyExists):
        await client.create(CONFIGMAPS, cm("dup"))
    stale = {**created, "data": {"k": "new"}}
    await client.update(CONFIGMAPS, {**created, "data": {"k": "first"}})
    with pytest.raises(errors.Conflict):
        await client.update(CONFIGMAPS, stale)
    with pytest.raises(errors.Invalid) as info:
        await client.create(CONFIGMAPS, cm("Bad_Name"))
    assert info.value.details and info.value.details["causes"]


async def test_list_with_selectors_and_pages(client: Client) -> None:
    for i in range(5):
        await client.create(CONFIGMAPS, cm(f"c{i}", tier="a" if i % 2 else "b"))
    labelled = await client.list(CONFIGMAPS, namespace="default", label_selector="tier=a")
    assert sorted(o["metadata"]["name"] for o in labelled["items"]) == ["c1", "c3"]
    by_field = await client.list(CONFIGMAPS, namespace="default", field_selector="metadata.name=c4")
    assert [o["metadata"]["name"] for o in by_field["items"]] == ["c4"]
    names, token = [], ""
    while True:
        page = await client.list(CONFIGMAPS, namespace="default", label_selector="tier", limit=2, continue_=token)
        names += [o["metadata"]["name"] for o in page["items"]]
        token = page["metadata"].get("continue", "")
        if not token:
            break
    assert names == ["c0", "c1", "c2", "c3", "c4"]


async def test_patch_types(client: Client) -> None:
    await client.create(CONFIGMAPS, cm("p"))
    merged = await client.patch(CONFIGMAPS, "p", {"data": {"m": "1"}}, namespace="default")
    assert merged["data"] == {"k": "v", "m": "1"}
    jsonp = await client.patch(CONFIGMAPS, "p", [{"op": "remove", "path": "/data/k"}], namespace="default",
                               patch_type=PatchType.JSON)
    assert jsonp["data"] == {"m": "1"}
    smp = await client.patch(CONFIGMAPS, "p", {"metadata": {"labels": {"s": "1"}}}, namespace="default",
                             patch_type=PatchType.STRATEGIC)
    assert smp["metadata"]["labels"] == {"s": "1"}
    applied = await client.patch(CONFIGMAPS, "applied", cm("applied"), namespace="default", patch_type=PatchType.APPLY)
    assert applied["data"] == {"k": "v"}


async def test_delete_preconditions(client: Client) -> None:
    created = await client.create(CONFIGMAPS, cm("d"))
    with pytest.raises(errors.Conflict):
        await client.delete(CONFIGMAPS, "d", namespace="default", preconditions={"uid": "not-the-uid"})
    await client.delete(CONFIGMAPS, "d", namespace="default", preconditions={"uid": created["metadata"]["uid"]},
                        propagation_policy="Background", grace_period_seconds=0)
    with pytest.raises(errors.NotFound):
        await client.get(CONFIGMAPS, "d", namespace="default")


async def test_status_subresource_and_raw_request(client: Client) -> None:
    pod = await client.create(PODS, POD)
    pod["status"] = {"phase": "Running"}
    updated = await client.update(PODS, pod, subresource="status")
    assert updated["status"]["phase"] == "Running"
    version = await client.request("GET", "/version")
    assert version["major"] == "1"


async def test_watch_yields_events(client: Client) -> None:
    start = await client.list(CONFIGMAPS, namespace="default")
    rv = start["metadata"]["resourceVersion"]
    await client.create(CONFIGMAPS, cm("w"))
    await client.delete(CONFIGMAPS, "w", namespace="default")
    seen = []
    async with contextlib.aclosing(client.watch(CONFIGMAPS, namespace="default", resource_version=rv,
                                                timeout_seconds=1)) as stream:
        async for event in stream:
            seen.append((event["type"], event["object"]["metadata"].get("name")))
            if event["type"] == "DELETED":
                break
    assert seen == [("ADDED", "w"), ("DELETED", "w")]


async def test_watch_too_old_yields_error_event(client: Client, cluster) -> None:  # type: ignore[no-untyped-def]
    await client.create(CONFIGMAPS, cm("x"))
    await client.create(CONFIGMAPS, cm("y"))
    current = await cluster.server.backend.current_revision()
    await cluster.server.backend.compact(current)
    async with contextlib.aclosing(client.watch(CONFIGMAPS, resource_version="1")) as stream:
        event = await anext(stream)
    assert event["type"] == "ERROR" and event["object"]["code"] == 410


# --- against a scripted server --------------------------------------------------------------


@contextlib.asynccontextmanager
async def scripted(handler) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


async def test_retry_after_is_honoured_and_user_agent_sent() -> None:
    calls: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        calls.append(request.headers["User-Agent"])
        if len(calls) < 3:
            return web.json_response({"kind": "Status", "code": 429, "reason": "TooManyRequests", "message": "slow"},
                                     status=429, headers={"Retry-After": "7"})
        return web.json_response({"kind": "ConfigMap", "metadata": {"name": "x"}})

    clock = FakeClock()
    async with scripted(handler) as url:
        cfg = ClientConfig(url, user_agent="pykube-controller-manager/v0.1.0", token="t0k")
        async with Client(cfg, clock=clock) as client:
            task = asyncio.create_task(client.get(CONFIGMAPS, "x", namespace="default"))
            for _ in range(2):
                await clock.wait_for_waiters()
                assert clock.pending() == [7]
                clock.step(7)
            assert (await asyncio.wait_for(task, 5))["metadata"]["name"] == "x"
    assert calls == ["pykube-controller-manager/v0.1.0"] * 3


async def test_retries_give_up_and_raise() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=503, text="busy", headers={"Retry-After": "0"})

    async with scripted(handler) as url:
        async with Client(ClientConfig(url), max_retries=2) as client:
            with pytest.raises(errors.ServiceUnavailable):
                await client.get(CONFIGMAPS, "x", namespace="default")


async def test_client_side_throttle_uses_qps_and_burst() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response({"kind": "Status", "status": "Success"})

    clock = FakeClock()
    async with scripted(handler) as url:
        async with Client(ClientConfig(url, qps=2, burst=2), clock=clock) as client:
            await client.request("GET", "/a")
            await client.request("GET", "/b")
            third = asyncio.create_task(client.request("GET", "/c"))
            await clock.wait_for_waiters()
            assert clock.pending() == [pytest.approx(0.5)]
            assert not third.done()
            clock.step(0.5)
            await asyncio.wait_for(third, 5)


async def test_connection_refused_is_a_transport_error() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    async with scripted(handler) as url:
        pass  # the port is closed again
    async with Client(ClientConfig(url)) as client:
        with pytest.raises(TransportError):
            await client.get(CONFIGMAPS, "x", namespace="default")
