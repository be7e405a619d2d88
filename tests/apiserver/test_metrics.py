"""metrics.k8s.io/v1beta1 on the API server: quantities, discovery, and the API's answers."""

from __future__ import annotations

import json

import pytest

from pykube_server.apiserver.metrics import cpu_quantity, memory_quantity, metrics_table

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"


def test_quantities_as_metrics_server_formats_them() -> None:
    assert cpu_quantity(137_605_818) == "137605818n"
    assert cpu_quantity(250_000_000) == "250m"
    assert cpu_quantity(2_000_000_000) == "2"
    assert cpu_quantity(0) == "0"
    assert memory_quantity(1_585_393_664) == "1548236Ki"
    assert memory_quantity(64 * 2**20) == "64Mi"
    assert memory_quantity(1000) == "1k"  # below 1Ki a byte count is decimal, as Quantity prints it


def _get(server, path: str, accept: str = "application/json"):  # type: ignore[no-untyped-def]
    api = server.api_client()
    try:
        params = api.param_serialize("GET", path, header_params={"Accept": accept}, auth_settings=["BearerToken"])
        response = api.call_api(*params)
        response.read()
        if response.status >= 400:
            raise HTTPError(response.status, json.loads(response.data))
        return json.loads(response.data)
    finally:
        api.close()


class HTTPError(Exception):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(status, body)
        self.status, self.body = status, body


def test_discovery_lists_the_group(api_cluster) -> None:  # type: ignore[no-untyped-def]
    groups = _get(api_cluster, "/apis")["groups"]
    metrics = [g for g in groups if g["name"] == "metrics.k8s.io"]
    assert metrics == [{"name": "metrics.k8s.io",
                        "versions": [{"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}],
                        "preferredVersion": {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}}]
    resources = _get(api_cluster, "/apis/metrics.k8s.io/v1beta1")["resources"]
    assert [(r["name"], r["kind"], r["namespaced"], r["verbs"]) for r in resources] == [
        ("nodes", "NodeMetrics", False, ["get", "list"]), ("pods", "PodMetrics", True, ["get", "list"])]
    aggregated = _get(api_cluster, "/apis", AGGREGATED)
    [item] = [i for i in aggregated["items"] if i["metadata"].get("name") == "metrics.k8s.io"]
    [version] = item["versions"]
    assert {r["resource"]: r["scope"] for r in version["resources"]} == {"nodes": "Cluster", "pods": "Namespaced"}


def test_lists_and_not_found(api_cluster, api_namespace) -> None:  # type: ignore[no-untyped-def]
    nodes = _get(api_cluster, "/apis/metrics.k8s.io/v1beta1/nodes")
    assert (nodes["kind"], nodes["apiVersion"], nodes["items"]) == ("NodeMetricsList", "metrics.k8s.io/v1beta1", [])
    pods = _get(api_cluster, f"/apis/metrics.k8s.io/v1beta1/namespaces/{api_namespace}/pods?labelSelector=a%3Db")
    assert (pods["kind"], pods["items"]) == ("PodMetricsList", [])
    # metrics-server answers a missing Pod or Node with the object's own NotFound
    with pytest.raises(HTTPError) as caught:
        _get(api_cluster, f"/apis/metrics.k8s.io/v1beta1/namespaces/{api_namespace}/pods/nope")
    assert caught.value.status == 404
    assert caught.value.body["message"] == 'pods "nope" not found'
    with pytest.raises(HTTPError) as caught:
        _get(api_cluster, "/apis/metrics.k8s.io/v1beta1/nodes/nope")
    assert caught.value.body["message"] == 'nodes "nope" not found'
    with pytest.raises(HTTPError) as caught:
        _get(api_cluster, "/apis/metrics.k8s.io/v1beta1/nodes?watch=true")
    assert caught.value.status == 405


def test_table_as_metrics_server_prints_it() -> None:
    item = {"metadata": {"name": "web", "namespace": "ns"}, "window": "10s",
            "containers": [{"name": "a", "usage": {"cpu": "250m", "memory": "10Mi"}},
                           {"name": "b", "usage": {"cpu": "1500000n", "memory": "6Mi"}}]}
    table = metrics_table([item], "v1", {})
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "cpu", "memory", "Window"]
    assert table["rows"][0]["cells"] == ["web", "251500u", "16Mi", "10s"]
    assert table["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    assert metrics_table([], "v1", {})["columnDefinitions"] == []  # kubectl then says "No resources found"
