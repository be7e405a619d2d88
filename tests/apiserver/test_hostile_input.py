"""Limits and hostile input: 429 with Retry-After over the in-flight limits, 504 past the
request timeout, 413 for bodies over 3 MiB, and a bounded fuzzing run that throws malformed
bodies, paths, selectors and patches at every verb and checks the server never answers 500,
never hangs, and never changes what is stored."""

from __future__ import annotations

import asyncio
import string

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pykube_server.api import errors
from pykube_server.apiserver.app import status_middleware
from pykube_server.api.duration import parse_go_duration as parse_duration
from pykube_server.apiserver.limits import Limits, is_long_running
from tests.apiserver.test_rest_support import Raw, unique
from tests.conftest import ServerProcess


async def limited_app(limits: Limits, release: asyncio.Event) -> web.Application:
    async def slow(request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({})

    app = web.Application(middlewares=[status_middleware, limits.middleware()], client_max_size=limits.max_body_bytes)
    app.router.add_route("*", "/{tail:.*}", slow)
    return app


async def test_over_the_inflight_limit_waits_then_is_429_with_retry_after() -> None:
    release = asyncio.Event()
    limits = Limits(max_inflight=2, max_mutating_inflight=1, queue_wait=0.3)
    async with TestClient(TestServer(await limited_app(limits, release))) as client:
        held = [asyncio.create_task(client.get("/api/v1/pods")) for _ in range(2)]
        held.append(asyncio.create_task(client.post("/api/v1/namespaces/a/pods", data=b"{}")))
        await asyncio.sleep(0.2)
        refused = await client.get("/api/v1/pods")
        assert refused.status == 429
        assert refused.headers["Retry-After"] == "1"
        body = await refused.json()
        assert body["message"] == "Too many requests, please try again later."
        assert body["reason"] == "TooManyRequests" and body["details"] == {"retryAfterSeconds": 1}
        assert (await client.delete("/api/v1/namespaces/a/pods/p")).status == 429  # mutating limit is 1
        watch = asyncio.create_task(client.get("/api/v1/pods?watch=true"))  # long-running: not counted
        queued = asyncio.create_task(client.get("/api/v1/pods"))  # waits for a seat...
        await asyncio.sleep(0.1)
        assert not watch.done()
        release.set()  # ...which frees up before its wait is over
        assert [r.status for r in await asyncio.gather(*held, watch, queued)] == [200, 200, 200, 200, 200]


async def test_timeout_is_504_and_body_limit_is_413() -> None:
    release = asyncio.Event()
    async with TestClient(TestServer(await limited_app(Limits(request_timeout=0.3, max_body_bytes=1000), release))) as client:
        resp = await client.get("/api/v1/pods")
        assert resp.status == 504
        assert (await resp.json())["message"] == ("Timeout: request did not complete within requested timeout - "
                                                  "context deadline exceeded")
        big = await client.post("/api/v1/namespaces/a/configmaps", data=b"x" * 2000)
        assert big.status == 413
        assert (await big.json())["message"] == "Request entity too large: limit is 1000"

        async def chunks():  # no Content-Length: caught while reading
            for _ in range(5):
                yield b"y" * 500

        release.set()

        async def reader(request: web.Request) -> web.Response:
            await request.read()
            return web.json_response({})

        app = web.Application(middlewares=[status_middleware, Limits(max_body_bytes=1000).middleware()], client_max_size=1000)
        app.router.add_route("POST", "/{tail:.*}", reader)
        async with TestClient(TestServer(app)) as other:
            chunked = await other.post("/api/v1/namespaces/a/configmaps", data=chunks())
            assert chunked.status == 413


def test_durations_and_long_running() -> None:
    assert parse_duration("30s") == 30 and parse_duration("1m30s") == 90 and parse_duration("250ms") == 0.25
    assert parse_duration("soon") is None
    assert errors.Timeout.code == 504


# -- fuzzing -----------------------------------------------------------------------------------
SEED = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "victim", "labels": {"a": "b"}}, "data": {"k": "v"}}
nasty_text = st.text(alphabet=string.printable + "ü€\x00{}[]\"'\\", max_size=60)
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | nasty_text,
                           lambda children: st.lists(children, max_size=4) | st.dictionaries(nasty_text, children, max_size=4),
                           max_leaves=12)


def malformed_bodies() -> st.SearchStrategy[bytes]:
    seed = orjson.dumps(SEED)
    return st.one_of(
        st.binary(max_size=200),
        st.integers(min_value=1, max_value=len(seed) - 1).map(lambda n: seed[:n]),  # truncated JSON
        json_values.filter(lambda v: not isinstance(v, dict)).map(orjson.dumps),  # not an object
        st.integers(min_value=2000, max_value=20000).map(lambda n: b"[" * n + b"]" * n),  # deep nesting
        st.just(b'{"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": 7}}'),
        st.just(b'{"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "victim"}}'),  # wrong kind
    )


def malformed_patches() -> st.SearchStrategy[tuple[str, bytes]]:
    return st.one_of(
        st.tuples(st.just("application/json-patch+json"), st.one_of(
            malformed_bodies(),
            st.just(b'[{"op": "test", "path": "/data/k", "value": "not-v"}, {"op": "replace", "path": "/data/k", "value": "x"}]'),
            st.just(b'[{"op": "move", "from": "/nope", "path": "/data/z"}]'),
            st.just(b'[{"op": "frobnicate", "path": "/data"}]'))),
        st.tuples(st.sampled_from(["application/merge-patch+json", "application/strategic-merge-patch+json"]),
                  malformed_bodies()),
        st.tuples(st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "image/png"]), st.binary(max_size=50)),
    )


@pytest.fixture(scope="module")
def fuzz_target(api_cluster: ServerProcess) -> tuple[Raw, str, dict]:
    raw = Raw(api_cluster.kubeconfig)
    ns = unique("fuzz")
    assert raw.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}).status == 201
    created = raw.post(f"/api/v1/namespaces/{ns}/configmaps", SEED)
    assert created.status == 201, created
    return raw, ns, created.json()


def check(resp, stored_before: dict, raw: Raw, ns: str) -> None:  # type: ignore[no-untyped-def]
    assert resp.status < 500, (resp.status, resp.body[:300])
    now = raw.get(f"/api/v1/namespaces/{ns}/configmaps/victim").json()
    assert now["metadata"]["resourceVersion"] == stored_before["metadata"]["resourceVersion"]
    assert now["data"] == SEED["data"]


FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@FUZZ
@given(method=st.sampled_from(["POST", "PUT"]), body=malformed_bodies(),
       content_type=st.sampled_from(["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]))
def test_fuzz_malformed_writes(fuzz_target, method: str, body: bytes, content_type: str) -> None:  # type: ignore[no-untyped-def]
    raw, ns, stored = fuzz_target
    path = f"/api/v1/namespaces/{ns}/configmaps" + ("/victim" if method == "PUT" else "")
    resp = raw.request(method, path, body, content_type=content_type, timeout=10)
    assert resp.status >= 400
    check(resp, stored, raw, ns)


@FUZZ
@given(patch=malformed_patches())
def test_fuzz_malformed_patches(fuzz_target, patch: tuple[str, bytes]) -> None:  # type: ignore[no-untyped-def]
    raw, ns, stored = fuzz_target
    content_type, body = patch
    resp = raw.request("PATCH", f"/api/v1/namespaces/{ns}/configmaps/victim", body, content_type=content_type, timeout=10)
    if resp.status < 400:  # a merge patch of something harmless may be a no-op
        assert resp.json()["metadata"]["resourceVersion"] == stored["metadata"]["resourceVersion"]
    check(resp, stored, raw, ns)


@FUZZ
@given(segment=nasty_text, selector=nasty_text, field=nasty_text,
       method=st.sampled_from(["GET", "DELETE", "POST", "PUT", "PATCH", "OPTIONS", "HEAD"]))
def test_fuzz_paths_and_selectors(fuzz_target, segment: str, selector: str, field: str, method: str) -> None:  # type: ignore[no-untyped-def]
    from urllib.parse import quote

    raw, ns, stored = fuzz_target
    paths = [f"/api/v1/namespaces/{ns}/configmaps/{quote(segment, safe='')}x",
             f"/apis/{quote(segment, safe='')}/v1/things",
             f"/api/v1/namespaces/{ns}/configmaps"]
    for path in paths:
        query = {"labelSelector": selector, "fieldSelector": field, "limit": segment[:5], "resourceVersion": segment[:8]}
        if method in ("DELETE",) and path.endswith("/configmaps"):
            query["labelSelector"] = "a!=b," + selector  # never the victim, even if the rest parses
        resp = raw.request(method, path, b"" if method in ("POST", "PUT", "PATCH") else None, query=query, timeout=10)
        check(resp, stored, raw, ns)
