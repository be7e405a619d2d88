"""The `pods/ephemeralcontainers` subresource: the one way to add debug containers to a pod.

kube-apiserver 1.33 serves it with its own update strategy (podEphemeralContainersStrategy):
a PUT or PATCH keeps everything of the stored pod except `spec.ephemeralContainers` (metadata
the way a status write does: labels, annotations, finalizers and owners stay), then
ValidatePodEphemeralContainersUpdate refuses removing or changing an existing ephemeral
container (Forbidden on `spec.ephemeralContainers`, "existing ephemeral containers "x" may not
be removed|changed") and validates the new ones: a unique DNS-label name across every container
of the pod, an image, a `targetContainerName` naming a regular container, and none of the
fields an ephemeral container cannot have (ports, probes, lifecycle, resources, resizePolicy,
restartPolicy: "cannot be set for an Ephemeral Container"). Static (mirror) pods refuse it.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

import orjson

from pykube_server.api.fields import FieldError, Path, duplicate, forbidden, invalid, required
from pykube_server.registry.strategy import Strategy
from pykube_server.registry.validation import is_dns1123_label

Obj = dict[str, Any]

MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
DISALLOWED_FIELDS = ("ports", "lifecycle", "livenessProbe", "readinessProbe", "startupProbe", "resources",
                     "resizePolicy", "restartPolicy")
"""EphemeralContainerCommon fields outside upstream's allow-list (set to anything non-empty)."""
KEPT_METADATA = ("labels", "annotations", "finalizers", "ownerReferences", "deletionTimestamp", "generation")
"""What ResetObjectMetaForStatus takes from the stored pod."""


class EphemeralContainersStrategy(Strategy):
    """The update strategy of `pods/<name>/ephemeralcontainers`, on top of the pod strategy."""

    def __init__(self, main: Strategy) -> None:
        self.main = main

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        ephemeral = (obj.get("spec") or {}).get("ephemeralContainers")
        meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
        obj.clear()
        obj.update(copy.deepcopy(old))
        new_meta = obj["metadata"] = {**old.get("metadata", {}), **{k: v for k, v in meta.items()
                                                                  if k not in KEPT_METADATA}}
        for key in KEPT_METADATA:
            if key in (old.get("metadata") or {}):
                new_meta[key] = copy.deepcopy(old["metadata"][key])
            else:
                new_meta.pop(key, None)
        spec = obj.setdefault("spec", {})
        if ephemeral:
            spec["ephemeralContainers"] = ephemeral
        else:
            spec.pop("ephemeralContainers", None)

    def validate_update(self, obj: Obj, old: Obj) -> list[FieldError]:
        if MIRROR_POD_ANNOTATION in ((old.get("metadata") or {}).get("annotations") or {}):
            return [forbidden("", "static pods do not support ephemeral containers")]
        errs = self.main.validate(obj) + validate_ephemeral_containers(obj.get("spec") or {})
        return errs + validate_unchanged(obj.get("spec") or {}, old.get("spec") or {})


def validate_ephemeral_containers(spec: Obj) -> list[FieldError]:
    """Upstream validateEphemeralContainers, for the fields pykube's pod validation knows."""
    errs: list[FieldError] = []
    regular = {c.get("name") for key in ("initContainers", "containers")
               for c in spec.get(key) or () if isinstance(c, dict)}
    targets = {c.get("name") for c in spec.get("containers") or () if isinstance(c, dict)}
    seen: set[str] = set()
    for i, c in enumerate(spec.get("ephemeralContainers") or ()):
        path = Path("spec").child("ephemeralContainers").index(i)
        if not isinstance(c, dict):
            errs.append(required(path.child("name")))
            continue
        name = c.get("name") or ""
        if not name:
            errs.append(required(path.child("name")))
        elif name in regular or name in seen:
            errs.append(duplicate(path.child("name"), name))
        else:
            errs += [invalid(path.child("name"), name, m) for m in is_dns1123_label(name)]
        seen.add(name)
        if not c.get("image"):
            errs.append(required(path.child("image")))
        for field in DISALLOWED_FIELDS:
            if c.get(field):
                errs.append(forbidden(path.child(field), "cannot be set for an Ephemeral Container"))
        target = c.get("targetContainerName")
        if target and target not in targets:
            errs.append(FieldError("NotFound", str(path.child("targetContainerName")), target))
    return errs


def validate_unchanged(spec: Obj, old_spec: Obj) -> list[FieldError]:
    """Existing ephemeral containers, matched by name (a patch may reorder), must stay as they were."""
    path = Path("spec").child("ephemeralContainers")
    current = {c.get("name"): c for c in spec.get("ephemeralContainers") or () if isinstance(c, dict)}
    errs: list[FieldError] = []
    for old in old_spec.get("ephemeralContainers") or ():
        new = current.get(old.get("name"))
        if new is None:
            errs.append(forbidden(path, f"existing ephemeral containers \"{old.get('name')}\" may not be removed\n"))
        elif new != old:
            errs.append(forbidden(path, f"existing ephemeral containers \"{old.get('name')}\" may not be changed\n"
                                  + _diff(old, new)))
    return errs


def _diff(old: Obj, new: Obj) -> str:
    """A readable stand-in for go-cmp's diff (upstream's output is unstable by design)."""
    def lines(c: Obj) -> list[str]:
        return orjson.dumps(c, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode().splitlines()
    return "\n".join(line for line in difflib.ndiff(lines(old), lines(new)) if line[:1] in "-+")
