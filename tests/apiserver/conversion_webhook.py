"""A CRD conversion webhook for the tests: HTTPS on loopback, certificate from a throwaway CA.

It converts Widgets between v1 (`spec.size: big|small`) and v2 (`spec.replicas: 10|1`), as an
operator's conversion webhook would, and records every ConversionReview it receives. Other paths
misbehave on purpose: `/wrong-uid` answers another uid, `/fail` answers a Failure result,
`/drop-one` returns one object too few, `/rename` changes the objects' names.
"""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from tests.apiserver.webhook_support import WebhookCA, WebhookServer

Obj = dict[str, Any]
SIZES = {"big": 10, "small": 1}


def convert(obj: Obj, desired: str) -> Obj:
    """One Widget in the desired apiVersion (example.com/v1 or example.com/v2)."""
    out = copy.deepcopy(obj)
    spec = out.setdefault("spec", {})
    if desired.endswith("/v2") and "size" in spec:
        spec["replicas"] = SIZES.get(spec.pop("size"), 0)
    elif desired.endswith("/v1") and "replicas" in spec:
        replicas = spec.pop("replicas")
        spec["size"] = next((name for name, n in SIZES.items() if n == replicas), "small")
    out["apiVersion"] = desired
    return out


def review_answer(review: Obj, path: str) -> Obj:
    request = review["request"]
    converted = [convert(o, request["desiredAPIVersion"]) for o in request["objects"]]
    response: Obj = {"uid": request["uid"], "convertedObjects": converted, "result": {"status": "Success"}}
    if path == "/wrong-uid":
        response["uid"] = "not-the-uid"
    elif path == "/fail":
        response = {"uid": request["uid"], "result": {"status": "Failure", "message": "cannot convert widgets today"}}
    elif path == "/drop-one":
        response["convertedObjects"] = converted[:-1]
    elif path == "/rename":
        for obj in converted:
            obj["metadata"]["name"] = obj["metadata"]["name"] + "-renamed"
    return {"apiVersion": review.get("apiVersion", "apiextensions.k8s.io/v1"), "kind": "ConversionReview", "response": response}


class ConversionServer(WebhookServer):
    """The admission tests' HTTPS server, answering ConversionReviews instead."""

    def __init__(self, ca: WebhookCA) -> None:
        super().__init__(ca)

    async def _handle(self, request: web.Request) -> web.Response:
        review = await request.json()
        self.reviews[request.path].append(review)
        return web.json_response(review_answer(review, request.path))


def widget_crd(group: str, ca_bundle: str = "", url: str = "", strategy: str = "Webhook") -> Obj:
    """A two-version Widget CRD (v1 stored) with validation rules on both versions."""
    v1_spec = {"type": "object",
               "x-kubernetes-validations": [{"rule": "!has(self.size) || self.size != 'huge'",
                                             "message": "huge widgets do not fit"}],
               "properties": {"size": {"type": "string"}, "color": {"type": "string"}}}
    v2_spec = {"type": "object", "properties": {"replicas": {"type": "integer"}, "color": {"type": "string"}}}
    conversion: Obj = {"strategy": strategy}
    if strategy == "Webhook":
        conversion["webhook"] = {"conversionReviewVersions": ["v1"],
                                 "clientConfig": {"url": url, "caBundle": ca_bundle}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "conversion": conversion,
            "versions": [
                {"name": "v1", "served": True, "storage": True,
                 "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": v1_spec}}}},
                {"name": "v2", "served": True, "storage": False,
                 "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": v2_spec}}}},
            ],
        },
    }
