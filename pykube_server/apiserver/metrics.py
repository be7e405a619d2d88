"""The resource metrics API, `metrics.k8s.io/v1beta1`, served by the API server itself.

On a real cluster metrics-server serves this group behind an APIService and kube-apiserver
proxies to it; clients (kubectl top, the HPA controller) see only the group in discovery and
its two read-only resources: `nodes` (NodeMetrics, cluster-scoped) and `pods` (PodMetrics,
namespaced), verbs get and list, label selectors honoured. Here the API server plays
metrics-server: it scrapes every node's kubelet Summary API (`/stats/summary`, found through
the Node's InternalIP and `daemonEndpoints`, HTTPS without verifying the kubelet's self-signed
certificate, as metrics-server's `--kubelet-insecure-tls`) concurrently, keeps the result for
`CACHE_SECONDS` (metrics-server's default resolution is 15 s), and joins it with the Node and Pod
objects for names and labels.

Quantities are formatted as metrics-server does: CPU is a nanocore count in the canonical
decimal form (`137605818n`, `250m`), memory a byte count in binary form (`1548236Ki`).
A pod is reported only when every running container has metrics (the kubelet leaves out the
others). GET of a Pod or Node that does not exist answers the Pod's or Node's own NotFound; of
one without metrics, NotFound with metrics-server's name (`podmetrics.metrics.k8s.io
"<namespace>/<name>"`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timezone
from fractions import Fraction
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from pykube_server.api import errors
from pykube_server.api.quantity import Quantity, format_quantity, parse_quantity
from pykube_server.apiserver.handlers.common import raw_response
from pykube_server.apiserver.negotiation import choose_output, encode
from pykube_server.apiserver.requestinfo import RequestInfo
from pykube_server.registry.spec import ResourceSpec

log = logging.getLogger(__name__)

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
CACHE_SECONDS = 10.0
SCRAPE_TIMEOUT_SECONDS = 5.0
SCRAPE_CONCURRENCY = 50
"""Kubelets asked at once (a simulated kubelet serves hundreds of nodes on one port)."""
WINDOW = "10s"
"""What the kubelet's CPU rates average over (its samples are 10 s apart)."""
Obj = dict[str, Any]

SPECS: tuple[ResourceSpec, ...] = (
    ResourceSpec(GROUP, VERSION, "NodeMetrics", "nodes", "", False, ("get", "list")),
    ResourceSpec(GROUP, VERSION, "PodMetrics", "pods", "", True, ("get", "list")),
)
"""Discovery entries only: nothing of this group is stored (metrics-server's APIService).
Singular names are empty, as metrics-server's storage reports them."""

PREFERRED: dict[str, tuple[str, ...]] = {GROUP: (VERSION,)}


def cpu_quantity(nano_cores: int) -> str:
    return format_quantity(Quantity(Fraction(max(nano_cores, 0), 1_000_000_000), "DecimalSI"))


def memory_quantity(num_bytes: int) -> str:
    return format_quantity(Quantity(Fraction(max(num_bytes, 0)), "BinarySI"))


def _rfc3339(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def kubelet_base(node: Obj) -> str | None:
    status = node.get("status") or {}
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")
    hosts = [a["address"] for a in status.get("addresses") or [] if a.get("type") == "InternalIP"]
    return f"https://{hosts[0]}:{port}" if port and hosts else None


class Scrape:
    """One round of Summaries: node name -> Summary document, and when it was taken."""

    def __init__(self, at: float, summaries: dict[str, Obj]) -> None:
        self.at = at
        self.summaries = summaries
        self.pods: dict[tuple[str, str], Obj] = {}
        for summary in summaries.values():
            for pod in summary.get("pods") or []:
                ref = pod.get("podRef") or {}
                self.pods[(ref.get("namespace", ""), ref.get("name", ""))] = pod


def _usage(item: Obj) -> dict[str, str]:
    """A NodeMetrics' usage, or a PodMetrics' containers summed."""
    if "usage" in item:
        return dict(item["usage"])
    cpu = sum(int(Fraction(parse_quantity(c["usage"].get("cpu", "0")).value) * 1_000_000_000)
              for c in item.get("containers") or [])
    memory = sum(parse_quantity(c["usage"].get("memory", "0")).int_value() for c in item.get("containers") or [])
    return {"cpu": cpu_quantity(cpu), "memory": memory_quantity(memory)}


def metrics_table(items: list[Obj], version: str, query: Any) -> Obj:
    """metrics-server's Table: Name, one column per resource (sorted), Window; no columns when
    there are no rows."""
    columns: list[Obj] = []
    rows = []
    include = query.get("includeObject", "Metadata")
    for item in items:
        usage = _usage(item)
        names = sorted(usage)
        if not columns:
            columns = [{"name": "Name", "type": "string", "format": "name", "description": "Name of the resource",
                        "priority": 0}]
            columns += [{"name": n, "type": "string", "format": "quantity", "description": "", "priority": 0}
                        for n in names]
            columns.append({"name": "Window", "type": "string", "format": "duration", "description": "",
                            "priority": 0})
        row: Obj = {"cells": [item["metadata"]["name"], *(usage[n] for n in names), item.get("window", "")]}
        if include == "Object":
            row["object"] = item
        elif include != "None":
            row["object"] = {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}",
                             "metadata": item["metadata"]}
        rows.append(row)
    return {"kind": "Table", "apiVersion": f"meta.k8s.io/{version}", "metadata": {}, "columnDefinitions": columns,
            "rows": rows}


class MetricsAPI:
    """Answers GET/LIST under `/apis/metrics.k8s.io/v1beta1`."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self._scrape: Scrape | None = None
        self._lock = asyncio.Lock()

    async def scrape(self) -> Scrape:
        """The cached scrape, refreshed when older than CACHE_SECONDS (one refresh at a time)."""
        async with self._lock:
            if self._scrape is None or time.monotonic() - self._scrape.at >= CACHE_SECONDS:
                self._scrape = Scrape(time.monotonic(), await self._scrape_all())
            return self._scrape

    async def _scrape_all(self) -> dict[str, Obj]:
        nodes = (await self.server.store_for("", "v1", "nodes").list("")).items
        targets = {}
        for cached in nodes:
            node = cached.decode()
            base = kubelet_base(node)
            if base:
                targets[node["metadata"]["name"]] = base
        timeout = aiohttp.ClientTimeout(total=SCRAPE_TIMEOUT_SECONDS)
        gate = asyncio.Semaphore(SCRAPE_CONCURRENCY)

        async def one(session: aiohttp.ClientSession, name: str, base: str) -> Obj:
            async with gate:
                return await self._scrape_one(session, name, base)

        async with aiohttp.ClientSession(timeout=timeout) as session:
            results = await asyncio.gather(*(one(session, name, base) for name, base in targets.items()),
                                           return_exceptions=True)
        out = {}
        for name, result in zip(targets, results):
            if isinstance(result, BaseException):
                log.info("metrics: scraping node %s failed: %s", name, result)
            elif isinstance(result, dict):
                out[name] = result
        return out

    @staticmethod
    async def _scrape_one(session: aiohttp.ClientSession, node: str, base: str) -> Obj:
        async with session.get(f"{base}/stats/summary", params={"node": node}, ssl=False) as resp:
            if resp.status != 200:
                raise RuntimeError(f"{resp.status}: {(await resp.text()).strip()}")
            body: Obj = orjson.loads(await resp.read())
            return body

    async def handle(self, request: web.Request, info: RequestInfo) -> web.StreamResponse:
        resource = info.resource
        if info.version != VERSION or resource not in ("nodes", "pods") or info.subresource:
            raise errors.NotFound("the server could not find the requested resource", details={})
        if info.verb not in ("get", "list"):
            raise errors.MethodNotAllowed("the server does not allow this method on the requested resource",
                                          details={"group": GROUP, "kind": resource})
        selector = request.query.get("labelSelector", "")
        fields = request.query.get("fieldSelector", "")
        if resource == "nodes":
            items = await self.node_metrics(info.name, selector, fields)
            kind = "NodeMetrics"
        else:
            items = await self.pod_metrics(info.namespace, info.name, selector, fields)
            kind = "PodMetrics"
        output = choose_output(request.headers.get("Accept", ""))
        if output.format == "table":
            body, content_type = orjson.dumps(metrics_table(items, output.version, request.query)), "application/json"
        elif output.format == "metadata":
            raise errors.NotAcceptable("only the following media types are accepted: application/json, application/yaml")
        else:
            value = items[0] if info.verb == "get" else {"kind": f"{kind}List", "apiVersion": API_VERSION,
                                                         "metadata": {}, "items": items}
            body, content_type = encode(value, output)
        return raw_response(body, content_type=content_type)

    async def node_metrics(self, name: str, selector: str, fields: str) -> list[Obj]:
        store = self.server.store_for("", "v1", "nodes")
        if name:
            nodes = [(await store.get("", name)).decode()]  # no such Node: `nodes "x" not found`
        else:
            nodes = [c.decode() for c in (await store.list("", label_selector=selector, field_selector=fields)).items]
        scrape = await self.scrape() if nodes else None
        stamp = _rfc3339(time.time())
        out = []
        for node in nodes:
            meta = node["metadata"]
            summary = scrape.summaries.get(meta["name"]) if scrape else None
            if summary is None or not summary.get("node"):
                continue
            stats = summary["node"]
            out.append({
                "kind": "NodeMetrics", "apiVersion": API_VERSION,
                "metadata": {"name": meta["name"], "creationTimestamp": stamp, "labels": meta.get("labels") or {}},
                "timestamp": (stats.get("cpu") or {}).get("time") or stamp, "window": WINDOW,
                "usage": {"cpu": cpu_quantity((stats.get("cpu") or {}).get("usageNanoCores") or 0),
                          "memory": memory_quantity((stats.get("memory") or {}).get("workingSetBytes") or 0)},
            })
        if name and not out:
            raise errors.NotFound(f'nodemetrics.{GROUP} "{name}" not found',
                                  details={"name": name, "group": GROUP, "kind": "nodemetrics"})
        return out

    async def pod_metrics(self, namespace: str, name: str, selector: str, fields: str) -> list[Obj]:
        store = self.server.store_for("", "v1", "pods")
        if name:
            pods = [(await store.get(namespace, name)).decode()]  # no such Pod: `pods "x" not found`
        else:
            pods = [c.decode() for c in
                    (await store.list(namespace, label_selector=selector, field_selector=fields)).items]
        scrape = await self.scrape() if pods else None
        stamp = _rfc3339(time.time())
        out = []
        for pod in pods:
            meta = pod["metadata"]
            stats = scrape.pods.get((meta.get("namespace", ""), meta["name"])) if scrape else None
            if stats is None:
                continue
            containers = [{"name": c["name"],
                           "usage": {"cpu": cpu_quantity((c.get("cpu") or {}).get("usageNanoCores") or 0),
                                     "memory": memory_quantity((c.get("memory") or {}).get("workingSetBytes") or 0)}}
                          for c in stats.get("containers") or []]
            if not containers:
                continue
            times = [(c.get("cpu") or {}).get("time") or "" for c in stats.get("containers") or []]
            out.append({
                "kind": "PodMetrics", "apiVersion": API_VERSION,
                "metadata": {"name": meta["name"], "namespace": meta.get("namespace", ""),
                             "creationTimestamp": stamp, "labels": meta.get("labels") or {}},
                "timestamp": max(times) or stamp, "window": WINDOW, "containers": containers,
            })
        if name and not out:
            qualified = f"{namespace}/{name}"
            raise errors.NotFound(f'podmetrics.{GROUP} "{qualified}" not found',
                                  details={"name": qualified, "group": GROUP, "kind": "podmetrics"})
        return out
