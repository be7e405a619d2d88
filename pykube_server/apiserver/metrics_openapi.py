"""OpenAPI definitions of `metrics.k8s.io/v1beta1` (NodeMetrics, PodMetrics and their lists).

On a real cluster kube-aggregator merges metrics-server's OpenAPI into `/openapi/v3` (an
`apis/metrics.k8s.io/v1beta1` entry) and `/openapi/v2`; `kubernetes-validate` does not ship
these kinds, so their definitions are written here, in the same JSON Schema form as the built-in
ones (`#/$defs/` references, nullable types), with metrics-server's definition names, fields,
formats and required lists.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
PREFIX = "io.k8s.metrics.pkg.apis.metrics.v1beta1."
_META = "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1."
_QUANTITY = "#/$defs/io.k8s.apimachinery.pkg.api.resource.Quantity"
_TYPE_META = {
    "apiVersion": {"description": "APIVersion defines the versioned schema of this representation of an object.",
                   "type": ["string", "null"]},
    "kind": {"description": "Kind is a string value representing the REST resource this object represents.",
             "type": ["string", "null"]},
}


def _gvk(kind: str) -> list[Obj]:
    return [{"group": "metrics.k8s.io", "kind": kind, "version": "v1beta1"}]


def _usage(what: str) -> Obj:
    return {"description": f"The memory and CPU usage of the {what}, measured over the window.",
            "type": "object", "additionalProperties": {"$ref": _QUANTITY}}


def _sample_fields(what: str) -> Obj:
    return {
        **_TYPE_META,
        "metadata": {"$ref": _META + "ObjectMeta", "description": "Standard object's metadata."},
        "timestamp": {"$ref": _META + "Time",
                      "description": f"When the {what} metrics were collected: the end of the window."},
        "window": {"type": "string", "description": "The length of the interval the usage was measured over."},
    }


def _list(kind: str) -> Obj:
    return {"description": f"A list of {kind} objects.", "type": "object", "required": ["items"],
            "properties": {**_TYPE_META,
                           "items": {"description": f"The {kind} objects.", "type": "array",
                                     "items": {"$ref": f"#/$defs/{PREFIX}{kind}"}},
                           "metadata": {"$ref": _META + "ListMeta", "description": "Standard list metadata."}},
            "x-kubernetes-group-version-kind": _gvk(f"{kind}List")}


DEFINITIONS: dict[str, Obj] = {
    PREFIX + "ContainerMetrics": {
        "description": "The resource usage of one container.", "type": "object", "required": ["name", "usage"],
        "properties": {"name": {"description": "The container's name, as in the pod spec.", "type": "string"},
                       "usage": _usage("container")},
    },
    PREFIX + "NodeMetrics": {
        "description": "The resource usage of a node.", "type": "object", "required": ["timestamp", "window", "usage"],
        "properties": {**_sample_fields("node"), "usage": _usage("node")},
        "x-kubernetes-group-version-kind": _gvk("NodeMetrics"),
    },
    PREFIX + "NodeMetricsList": _list("NodeMetrics"),
    PREFIX + "PodMetrics": {
        "description": "The resource usage of a pod, container by container.", "type": "object",
        "required": ["timestamp", "window", "containers"],
        "properties": {**_sample_fields("pod"),
                       "containers": {"description": "The usage of every container of the pod.", "type": "array",
                                      "items": {"$ref": f"#/$defs/{PREFIX}ContainerMetrics"}}},
        "x-kubernetes-group-version-kind": _gvk("PodMetrics"),
    },
    PREFIX + "PodMetricsList": _list("PodMetrics"),
}
