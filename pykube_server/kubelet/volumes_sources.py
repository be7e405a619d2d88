"""What a configMap, secret, downwardAPI or projected volume holds: payloads, with the kubelet's errors.

Pure functions from a volume source and the objects it names to `{relative path: FileProjection}`,
so the rules (items with path and mode, defaultMode, optional, binaryData, the downward API's
formats) are testable without files or an API server. Errors raise `VolumeError` whose message
is the real kubelet's text after `MountVolume.SetUp failed for volume "x" : `.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from pykube_server.api.types import Obj
from pykube_server.kubelet.env import EnvError, field_ref, resource_field_ref
from pykube_server.kubelet.volumes_atomic import FileProjection

DEFAULT_MODE = 0o644
"""420: what the API server defaults `defaultMode` to for every projecting source."""


class VolumeError(Exception):
    """A volume cannot be set up; the message is what follows `MountVolume.SetUp failed ... : `."""


def aggregate(messages: list[str]) -> str:
    """utilerrors.NewAggregate's message: one error as it is, several as `[a, b]`."""
    return messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"


def go_quote(value: str) -> str:
    """Go's %q for the strings labels and annotations hold (JSON's escaping is the same there)."""
    return json.dumps(value, ensure_ascii=False)


def format_map(values: Mapping[str, str]) -> str:
    """The downward API's labels/annotations file: sorted `key="value"` lines, no trailing newline."""
    return "\n".join(f"{k}={go_quote(str(values[k]))}" for k in sorted(values))


def _mode(item: Obj, default_mode: int | None) -> int:
    mode = item.get("mode")
    if mode is None:
        mode = default_mode if default_mode is not None else DEFAULT_MODE
    return int(mode) & 0o7777


def configmap_data(cm: Obj) -> dict[str, bytes]:
    out = {k: str(v).encode() for k, v in (cm.get("data") or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (cm.get("binaryData") or {}).items()})
    return out


def secret_data(secret: Obj) -> dict[str, bytes]:
    out = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
    out.update({k: str(v).encode() for k, v in (secret.get("stringData") or {}).items()})
    return out


def _project(values: dict[str, bytes], items: list[Obj] | None, default_mode: int | None, optional: bool,
             missing_key: str) -> dict[str, FileProjection]:
    if not items:
        return {k: FileProjection(v, _mode({}, default_mode)) for k, v in values.items()}
    out = {}
    for item in items:
        key = item.get("key", "")
        if key not in values:
            if optional:
                continue
            raise VolumeError(f"{missing_key}: {key}")
        out[item.get("path") or key] = FileProjection(values[key], _mode(item, default_mode))
    return out


def configmap_payload(source: Obj, cm: Obj | None, *, default_mode: int | None = None) -> dict[str, FileProjection]:
    """A configMap volume (or projected source); `cm` None when it does not exist."""
    optional = bool(source.get("optional"))
    mode = source.get("defaultMode", default_mode)
    if cm is None:
        if optional:
            return {}
        raise VolumeError(f'configmap "{source.get("name", "")}" not found')
    return _project(configmap_data(cm), source.get("items"), mode, optional,
                    "configmap references non-existent config key")


def secret_payload(source: Obj, secret: Obj | None, *, name_field: str = "secretName",
                   default_mode: int | None = None) -> dict[str, FileProjection]:
    """A secret volume (`secretName`) or projected secret source (`name`)."""
    optional = bool(source.get("optional"))
    mode = source.get("defaultMode", default_mode)
    if secret is None:
        if optional:
            return {}
        raise VolumeError(f'secret "{source.get(name_field, "")}" not found')
    return _project(secret_data(secret), source.get("items"), mode, optional,
                    "references non-existent secret key")


def _field_value(pod: Obj, path: str) -> str:
    meta = pod.get("metadata") or {}
    if path in ("metadata.labels", "metadata.annotations"):
        return format_map(meta.get(path.split(".", 1)[1]) or {})
    try:
        return field_ref(pod, path)
    except EnvError as exc:
        raise VolumeError(str(exc)) from None


def downward_payload(source: Obj, pod: Obj, *, allocatable: Obj,
                     default_mode: int | None = None) -> dict[str, FileProjection]:
    """A downwardAPI volume or projected source: fieldRef and resourceFieldRef items."""
    mode = source.get("defaultMode", default_mode)
    containers = {c.get("name"): c for c in (pod.get("spec") or {}).get("containers") or []}
    out: dict[str, FileProjection] = {}
    errs = []
    for item in source.get("items") or []:
        value: str
        if item.get("fieldRef"):
            try:
                value = _field_value(pod, item["fieldRef"].get("fieldPath", ""))
            except VolumeError as exc:
                errs.append(str(exc))
                continue
        elif item.get("resourceFieldRef"):
            ref: dict[str, Any] = item["resourceFieldRef"]
            container = containers.get(ref.get("containerName") or "")
            if container is None:
                errs.append(f"container {ref.get('containerName', '')} not found")
                continue
            value = resource_field_ref(ref, container, allocatable)
        else:
            continue
        out[item.get("path", "")] = FileProjection(value.encode(), _mode(item, mode))
    if errs:
        raise VolumeError(aggregate(errs))
    return out
