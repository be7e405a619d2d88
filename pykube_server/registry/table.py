"""`meta.k8s.io` Table rendering from a Strategy's columns (server-side printing).

kubectl prints cells as given, so ages and `<none>` are rendered here; each row carries the
object's metadata (PartialObjectMetadata) by default, or the full object with
`includeObject=Object`, because kubectl reads `-A`'s NAMESPACE, `--show-labels` and
`--sort-by` from it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from pykube_server.registry.strategy import Strategy

Obj = dict[str, Any]


def partial_metadata(obj: Obj, version: str = "v1") -> Obj:
    return {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{version}", "metadata": obj.get("metadata", {})}


def column_definitions(strategy: Strategy) -> list[Obj]:
    return [
        {"name": c.name, "type": c.type, "format": c.format, "description": c.description, "priority": c.priority}
        for c in strategy.columns
    ]


def row(strategy: Strategy, obj: Obj, now: float, include_object: str, version: str = "v1") -> Obj:
    cells = []
    for column in strategy.columns:
        try:
            cells.append(column.value(obj, now))
        except (KeyError, TypeError, ValueError, IndexError):
            cells.append("<unknown>")
    out: Obj = {"cells": cells}
    if include_object == "Object":
        out["object"] = obj
    elif include_object != "None":
        out["object"] = partial_metadata(obj, version)
    return out


def table(
    strategy: Strategy,
    objects: Iterable[Obj],
    *,
    include_object: str = "Metadata",
    version: str = "v1",
    list_meta: Obj | None = None,
    with_columns: bool = True,
) -> Obj:
    now = time.time()
    return {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{version}",
        "metadata": list_meta or {},
        "columnDefinitions": column_definitions(strategy) if with_columns else [],
        "rows": [row(strategy, obj, now, include_object, version) for obj in objects],
    }
