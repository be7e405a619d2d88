"""Quantities as the decoder sees them: parsed, rejected, and rewritten in canonical form.

kube-apiserver parses every `resource.Quantity` while decoding a request body, so a bad one
fails the whole request with 400 (`Pod in version "v1" cannot be handled as a Pod: quantities
must match the regular expression ...`) before any validation, and a good one is stored and
returned canonical (`0.5` -> `500m`). This module finds the quantity fields of the built-in
kinds and does both; it also names where each kind keeps its pod spec (`POD_SPEC_PATHS`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pykube_server.api import errors
from pykube_server.api.quantity import QuantityError, canonical

Obj = dict[str, Any]

POD_SPEC_PATHS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "Pod"): ("spec",),
    ("", "PodTemplate"): ("template", "spec"),
    ("", "ReplicationController"): ("spec", "template", "spec"),
    ("apps", "Deployment"): ("spec", "template", "spec"),
    ("apps", "ReplicaSet"): ("spec", "template", "spec"),
    ("apps", "StatefulSet"): ("spec", "template", "spec"),
    ("apps", "DaemonSet"): ("spec", "template", "spec"),
    ("batch", "Job"): ("spec", "template", "spec"),
    ("batch", "CronJob"): ("spec", "jobTemplate", "spec", "template", "spec"),
}
"""(group, kind) -> the path of the PodSpec the kind carries (its own or its template's)."""


def dig(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def pod_spec_of(group: str, kind: str, obj: Obj) -> Obj | None:
    path = POD_SPEC_PATHS.get((group, kind))
    spec = dig(obj, *path) if path else None
    return spec if isinstance(spec, dict) else None


def _pod_spec_lists(spec: Obj) -> Iterator[Any]:
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in spec.get(key) or []:
            yield dig(c, "resources", "limits")
            yield dig(c, "resources", "requests")
    yield spec.get("overhead")
    yield dig(spec, "resources", "limits")
    yield dig(spec, "resources", "requests")
    for volume in spec.get("volumes") or []:
        size_limit = dig(volume, "emptyDir", "sizeLimit")
        if size_limit is not None:
            yield {"sizeLimit": size_limit}, volume["emptyDir"]
        claim_spec = dig(volume, "ephemeral", "volumeClaimTemplate", "spec")
        yield dig(claim_spec, "resources", "requests")
        yield dig(claim_spec, "resources", "limits")


def _kind_lists(group: str, kind: str, obj: Obj) -> Iterator[Any]:
    if group != "" and kind != "StatefulSet":
        return
    if kind == "PersistentVolumeClaim":
        yield from (dig(obj, "spec", "resources", "requests"), dig(obj, "spec", "resources", "limits"),
                    dig(obj, "status", "capacity"), dig(obj, "status", "allocatedResources"))
    elif kind == "PersistentVolume":
        yield dig(obj, "spec", "capacity")
    elif kind == "ResourceQuota":
        yield from (dig(obj, "spec", "hard"), dig(obj, "status", "hard"), dig(obj, "status", "used"))
    elif kind == "LimitRange":
        for item in dig(obj, "spec", "limits") or []:
            for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
                yield dig(item, key)
    elif kind == "Node":
        yield from (dig(obj, "status", "capacity"), dig(obj, "status", "allocatable"))
    elif kind == "StatefulSet":
        for claim in dig(obj, "spec", "volumeClaimTemplates") or []:
            yield from (dig(claim, "spec", "resources", "requests"), dig(claim, "spec", "resources", "limits"))


def _canonicalize(found: Any) -> None:
    """`found` is a quantity map, or (a map of some quantities, the object they belong to)."""
    mapping, target = found if isinstance(found, tuple) else (found, found)
    if not isinstance(mapping, dict):
        return
    for key, value in mapping.items():
        if value is not None:
            target[key] = canonical(value)


def canonicalize_quantities(group: str, version: str, kind: str, obj: Obj) -> None:
    """Rewrite every quantity canonically; raise BadRequest (400) as the decoder would."""
    spec = pod_spec_of(group, kind, obj)
    lists = list(_pod_spec_lists(spec)) if spec else []
    lists += list(_kind_lists(group, kind, obj))
    try:
        for found in lists:
            _canonicalize(found)
    except (QuantityError, TypeError) as exc:
        raise errors.BadRequest(f'{kind} in version "{version}" cannot be handled as a {kind}: {exc}') from None
