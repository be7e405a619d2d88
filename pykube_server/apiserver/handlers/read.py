"""get and list.

A JSON list is written by joining the cached objects' bytes: no object is decoded or
encoded again on this path, which is what keeps a 10,000-pod LIST fast.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from pykube_server.apiserver.handlers.common import Call, raw_response, respond
from pykube_server.registry.store import ListResult
from pykube_server.registry.table import partial_metadata, table


def list_meta(result: ListResult) -> dict[str, Any]:
    meta: dict[str, Any] = {"resourceVersion": result.resource_version}
    if result.continue_token:
        meta["continue"] = result.continue_token
        if result.remaining is not None:
            meta["remainingItemCount"] = result.remaining
    return meta


async def get(call: Call) -> web.StreamResponse:
    cached = await call.store.get(call.namespace, call.info.name, resource_version=call.query("resourceVersion"))
    fmt = call.output.format
    if fmt == "json":
        return raw_response(cached.raw)
    obj = cached.decode()
    if fmt == "table":
        return respond(call, table(call.store.strategy, [obj], include_object=call.query("includeObject", "Metadata"),
                                   version=call.output.version, list_meta={"resourceVersion": obj["metadata"].get("resourceVersion", "")}))
    if fmt == "metadata":
        return respond(call, partial_metadata(obj, call.output.version))
    return respond(call, obj)


async def list_(call: Call) -> web.StreamResponse:
    result = await call.store.list(
        call.namespace,
        label_selector=call.query("labelSelector"),
        field_selector=call.query("fieldSelector"),
        limit=call.int_query("limit"),
        continue_token=call.query("continue"),
        resource_version=call.query("resourceVersion"),
        resource_version_match=call.query("resourceVersionMatch"),
    )
    meta = list_meta(result)
    fmt = call.output.format
    spec = call.spec
    if fmt == "json":
        head = b'{"kind":"%s","apiVersion":"%s","metadata":%s,"items":[' % (
            f"{spec.kind}List".encode(), spec.api_version.encode(), orjson.dumps(meta))
        return raw_response(head + b",".join(o.raw for o in result.items) + b"]}\n")
    objects = [o.decode() for o in result.items]
    if fmt == "table":
        return respond(call, table(call.store.strategy, objects, include_object=call.query("includeObject", "Metadata"),
                                   version=call.output.version, list_meta=meta))
    if fmt == "metadata":
        return respond(call, {"kind": "PartialObjectMetadataList", "apiVersion": f"meta.k8s.io/{call.output.version}",
                              "metadata": meta, "items": [partial_metadata(o, call.output.version) for o in objects]})
    return respond(call, {"kind": f"{spec.kind}List", "apiVersion": spec.api_version, "metadata": meta, "items": objects})
