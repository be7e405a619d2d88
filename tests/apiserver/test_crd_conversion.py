"""CRD version conversion inside an in-process API server: `None` rewrites apiVersion only,
`Webhook` sends ConversionReviews to an HTTPS webhook (tests/apiserver/conversion_webhook.py) for
reads, writes, lists (one review per list) and watch events, and its failures are kube's 500s."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from pykube_server.apiserver.app import Settings, make_app
from pykube_server.storage.memory import MemoryBackend
from tests.apiserver.conversion_webhook import ConversionServer, convert, review_answer, widget_crd
from tests.apiserver.webhook_support import WebhookCA

Obj = dict[str, Any]
GROUP = "example.com"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
V1 = f"/apis/{GROUP}/v1/namespaces/default/widgets"
V2 = f"/apis/{GROUP}/v2/namespaces/default/widgets"


@pytest.fixture(scope="module")
def ca() -> WebhookCA:
    return WebhookCA()


@pytest.fixture(scope="module")
def hook(ca: WebhookCA) -> Iterator[ConversionServer]:
    server = ConversionServer(ca).start()
    yield server
    server.stop()


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    settings = Settings(storage_url="memory://", authenticate=False)
    async with TestClient(TestServer(await make_app(settings, backend=MemoryBackend()))) as c:
        yield c


async def install(c: TestClient, crd: Obj) -> None:
    got = await c.post(CRDS, json=crd)
    assert got.status == 201, await got.text()
    for _ in range(200):
        if (await c.get(V2)).status == 200 and (await c.get(V1)).status == 200:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("CRD not served")


def widget(name: str, size: str = "big") -> Obj:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": name, "labels": {"app": "w"}},
            "spec": {"size": size, "color": "red"}}


def test_test_webhook_converts_both_ways() -> None:
    obj = widget("a")
    assert convert(obj, f"{GROUP}/v2")["spec"] == {"replicas": 10, "color": "red"}
    assert convert(convert(obj, f"{GROUP}/v2"), f"{GROUP}/v1")["spec"] == obj["spec"]
    review = {"request": {"uid": "u", "desiredAPIVersion": f"{GROUP}/v2", "objects": [obj]}}
    assert review_answer(review, "/wrong-uid")["response"]["uid"] == "not-the-uid"


async def test_none_strategy_rewrites_the_api_version_only(client: TestClient) -> None:
    await install(client, widget_crd(GROUP, strategy="None"))
    assert (await client.post(V1, json=widget("a"))).status == 201
    got = await (await client.get(f"{V2}/a")).json()
    # only apiVersion changes, then v2's schema prunes what v2 does not know
    assert got["apiVersion"] == f"{GROUP}/v2" and got["spec"] == {"color": "red"}
    listed = await (await client.get(V2)).json()
    assert listed["apiVersion"] == f"{GROUP}/v2" and [i["apiVersion"] for i in listed["items"]] == [f"{GROUP}/v2"]
    # written in v2, stored in v1 (the storage version)
    created = await client.post(V2, json={"apiVersion": f"{GROUP}/v2", "kind": "Widget", "metadata": {"name": "b"},
                                          "spec": {"replicas": 3}})
    assert created.status == 201 and (await created.json())["apiVersion"] == f"{GROUP}/v2"
    server = client.server.app
    from pykube_server.apiserver.app import SERVER

    stored = server[SERVER].cacher.resource(f"/registry/{GROUP}/widgets").objects[f"/registry/{GROUP}/widgets/default/b"]
    assert stored.decode()["apiVersion"] == f"{GROUP}/v1"
    # a delete in v2 of an object held by a finalizer marks it (the mark survives the conversion)
    held = {**widget("c"), "metadata": {"name": "c", "finalizers": ["example.com/hold"]}}
    assert (await client.post(V1, json=held)).status == 201
    marked = await client.delete(f"{V2}/c")
    assert marked.status == 200 and (await marked.json())["metadata"]["deletionTimestamp"]
    assert (await (await client.get(f"{V1}/c")).json())["metadata"]["deletionTimestamp"]


async def test_webhook_conversion_of_reads_writes_and_lists(client: TestClient, hook: ConversionServer,
                                                            ca: WebhookCA) -> None:
    await install(client, widget_crd(GROUP, ca.bundle, hook.url("/convert")))
    for name in ("a", "b"):
        assert (await client.post(V1, json=widget(name, "big" if name == "a" else "small"))).status == 201
    hook.reviews.clear()
    got = await (await client.get(f"{V2}/a")).json()
    assert got["apiVersion"] == f"{GROUP}/v2" and got["spec"] == {"replicas": 10, "color": "red"}
    assert got["metadata"]["labels"] == {"app": "w"} and got["metadata"]["resourceVersion"]
    review = hook.reviews["/convert"][-1]
    assert review["apiVersion"] == "apiextensions.k8s.io/v1" and review["kind"] == "ConversionReview"
    assert review["request"]["desiredAPIVersion"] == f"{GROUP}/v2" and review["request"]["uid"]
    assert [o["metadata"]["name"] for o in review["request"]["objects"]] == ["a"]
    hook.reviews.clear()
    listed = await (await client.get(V2)).json()
    assert [(i["metadata"]["name"], i["spec"]["replicas"]) for i in listed["items"]] == [("a", 10), ("b", 1)]
    assert len(hook.reviews["/convert"]) == 1  # the list is one review
    # reading in the storage version calls nobody
    hook.reviews.clear()
    assert (await (await client.get(f"{V1}/a")).json())["spec"]["size"] == "big"
    assert not hook.reviews["/convert"]
    # a write in v2 is stored as v1 and answered in v2
    patched = await client.patch(f"{V2}/b", data=orjson.dumps({"spec": {"replicas": 10}}),
                                 headers={"Content-Type": "application/merge-patch+json"})
    assert patched.status == 200, await patched.text()
    assert (await patched.json())["spec"]["replicas"] == 10
    assert (await (await client.get(f"{V1}/b")).json())["spec"]["size"] == "big"


async def test_watch_events_are_converted(client: TestClient, hook: ConversionServer, ca: WebhookCA) -> None:
    await install(client, widget_crd(GROUP, ca.bundle, hook.url("/convert")))
    assert (await client.post(V1, json=widget("a"))).status == 201
    resp = await client.get(f"{V2}?watch=true&timeoutSeconds=5")
    first = orjson.loads(await resp.content.readline())
    assert first["type"] == "ADDED" and first["object"]["spec"]["replicas"] == 10
    assert (await client.post(V1, json=widget("b", "small"))).status == 201
    second = orjson.loads(await asyncio.wait_for(resp.content.readline(), 5))
    assert second["type"] == "ADDED" and second["object"]["metadata"]["name"] == "b"
    assert second["object"]["apiVersion"] == f"{GROUP}/v2" and second["object"]["spec"]["replicas"] == 1
    resp.close()


@pytest.mark.parametrize(("path", "message"), [
    ("/fail", "conversion webhook for example.com/v1, Kind=Widget failed: cannot convert widgets today"),
    ("/wrong-uid", 'conversion webhook for example.com/v1, Kind=Widget failed: expected response.uid="'),
    ("/drop-one", "conversion webhook for example.com/v1, Kind=Widget returned 0 objects, expected 1"),
    ("/rename", "conversion webhook for example.com/v1, Kind=Widget returned invalid object: must have the same name: a != a-renamed"),
])
async def test_webhook_answers_kube_refuses(client: TestClient, hook: ConversionServer, ca: WebhookCA,
                                            path: str, message: str) -> None:
    await install(client, widget_crd(GROUP, ca.bundle, hook.url(path)))
    assert (await client.post(V1, json=widget("a"))).status == 201
    got = await client.get(f"{V2}/a")
    body = await got.json()
    assert got.status == 500 and body["code"] == 500 and "reason" not in body
    assert body["message"].startswith(message), body["message"]


async def test_webhook_down_is_a_500_naming_the_call(client: TestClient, ca: WebhookCA) -> None:
    await install(client, widget_crd(GROUP, ca.bundle, "https://127.0.0.1:1/convert"))
    assert (await client.post(V1, json=widget("a"))).status == 201
    got = await client.get(f"{V2}/a")
    assert got.status == 500
    assert (await got.json())["message"] == (
        'conversion webhook for example.com/v1, Kind=Widget failed: Post "https://127.0.0.1:1/convert?timeout=30s": '
        "dial tcp 127.0.0.1:1: connect: connection refused")
    # a write in the non-storage version fails the same way; the storage version still works
    created = await client.post(V2, json={"apiVersion": f"{GROUP}/v2", "kind": "Widget", "metadata": {"name": "b"}})
    assert created.status == 500
    assert (await client.get(f"{V1}/a")).status == 200


class _ServiceCA(WebhookCA):
    """Issues serving certificates also valid for the webhook Service's name."""

    def issue(self, *sans: str) -> tuple[bytes, bytes]:
        return super().issue(*sans, "conv.default.svc")


async def test_webhook_reached_through_a_service(client: TestClient) -> None:
    ca = _ServiceCA()
    hook = ConversionServer(ca).start()
    try:
        service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "conv"},
                   "spec": {"ports": [{"port": 443, "targetPort": hook.port}]}}
        assert (await client.post("/api/v1/namespaces/default/services", json=service)).status == 201
        endpoints = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                     "metadata": {"name": "conv-1", "labels": {"kubernetes.io/service-name": "conv"}},
                     "ports": [{"name": "", "port": hook.port, "protocol": "TCP"}],
                     "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}]}
        created = await client.post("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", json=endpoints)
        assert created.status == 201, await created.text()
        crd = widget_crd(GROUP, ca.bundle, "x")
        crd["spec"]["conversion"]["webhook"]["clientConfig"] = {
            "service": {"name": "conv", "namespace": "default", "path": "/convert", "port": 443}, "caBundle": ca.bundle}
        await install(client, crd)
        assert (await client.post(V1, json=widget("a"))).status == 201
        got = await (await client.get(f"{V2}/a")).json()
        assert got["spec"] == {"replicas": 10, "color": "red"}
        assert hook.reviews["/convert"]
    finally:
        hook.stop()


async def test_a_list_of_mixed_stored_versions_sends_only_what_differs(client: TestClient, hook: ConversionServer,
                                                                      ca: WebhookCA) -> None:
    crd = widget_crd(GROUP, ca.bundle, hook.url("/convert"))
    await install(client, crd)
    assert (await client.post(V1, json=widget("a"))).status == 201  # stored as v1
    current = await (await client.get(f"{CRDS}/widgets.{GROUP}")).json()
    current["spec"]["versions"][0]["storage"], current["spec"]["versions"][1]["storage"] = False, True
    updated = await client.put(f"{CRDS}/widgets.{GROUP}", json=current)
    assert updated.status == 200, await updated.text()
    assert (await updated.json())["status"]["storedVersions"] == ["v1", "v2"]
    from pykube_server.apiserver.app import SERVER

    stores = client.server.app[SERVER].stores
    for _ in range(200):  # until the CRD is served again with its new storage version
        if stores[(GROUP, "v1", "widgets")].converter.storage == "v2":
            break
        await asyncio.sleep(0.02)
    assert (await client.post(V1, json=widget("b", "small"))).status == 201
    assert (await client.get(f"{V1}/b")).status == 200  # a read waits for the cache to have it
    assert await _stored_names(client, "v2") == ["b"]
    hook.reviews.clear()
    listed = await (await client.get(V2)).json()
    assert [(i["metadata"]["name"], i["spec"]) for i in listed["items"]] == [
        ("a", {"replicas": 10, "color": "red"}), ("b", {"replicas": 1, "color": "red"})]
    sent = [o["metadata"]["name"] for r in hook.reviews["/convert"] for o in r["request"]["objects"]]
    assert sent == ["a"]


async def _stored_names(client: TestClient, version: str) -> list[str]:
    from pykube_server.apiserver.app import SERVER

    objects = client.server.app[SERVER].cacher.resource(f"/registry/{GROUP}/widgets").objects.values()
    return [o.name for o in objects if o.decode()["apiVersion"] == f"{GROUP}/{version}"]
