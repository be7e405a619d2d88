"""A container's environment, as the kubelet computes it (`makeEnvironmentVariables`).

Order and precedence follow the kubelet: service link variables first (the `kubernetes`
Service's always, the namespace's Services' when `enableServiceLinks` is true), then `envFrom`
sources in order, then `env` entries in order (later wins), with `$(VAR)` references expanded
against what came before (`$$` escapes). `valueFrom` resolves `fieldRef` (the downward API),
`resourceFieldRef`, `configMapKeyRef` and `secretKeyRef` (honouring `optional`). Failures raise
`EnvError` with the real kubelet's message; the pod worker reports it as the container's
`CreateContainerConfigError`.

ConfigMaps and Secrets come from an async `getter(kind, namespace, name)` returning the object
or None, so this module does no I/O of its own.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from pykube_server.api.quantity import parse_quantity
from pykube_server.api.types import Obj

Getter = Callable[[str, str, str], Awaitable[Obj | None]]

_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class EnvError(Exception):
    """The environment cannot be built; the message is the kubelet's."""


def expand(value: str, env: dict[str, str]) -> str:
    """`$(VAR)` -> its value when defined (left as is otherwise); `$$` -> `$`."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _REF.sub(sub, value)


def service_env(services: Iterable[Obj]) -> dict[str, str]:
    """Docker-link style variables for ClusterIP Services (`FOO_SERVICE_HOST`, `FOO_PORT_80_TCP`...)."""
    env: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = spec.get("clusterIP")
        if not ip or ip == "None":
            continue
        prefix = svc["metadata"]["name"].upper().replace("-", "_")
        ports = spec.get("ports") or []
        if not ports:
            continue
        env[f"{prefix}_SERVICE_HOST"] = ip
        env[f"{prefix}_SERVICE_PORT"] = str(ports[0]["port"])
        for p in ports:
            if p.get("name"):
                env[f"{prefix}_SERVICE_PORT_{p['name'].upper().replace('-', '_')}"] = str(p["port"])
        first = ports[0]
        proto = (first.get("protocol") or "TCP").lower()
        env[f"{prefix}_PORT"] = f"{proto}://{ip}:{first['port']}"
        for p in ports:
            proto = p.get("protocol") or "TCP"
            key = f"{prefix}_PORT_{p['port']}_{proto}"
            env[key] = f"{proto.lower()}://{ip}:{p['port']}"
            env[f"{key}_PROTO"] = proto.lower()
            env[f"{key}_PORT"] = str(p["port"])
            env[f"{key}_ADDR"] = ip
    return env


def field_ref(pod: Obj, path: str) -> str:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    m = re.fullmatch(r"metadata\.(labels|annotations)\['(.*)'\]", path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {
        "metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"), "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
        "status.hostIPs": ",".join(i["ip"] for i in status.get("hostIPs") or []),
        "status.podIPs": ",".join(i["ip"] for i in status.get("podIPs") or []),
    }
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f'{k}="{v}"' for k, v in sorted(items.items()))
    if path not in simple:
        raise EnvError(f"unsupported fieldPath: {path}")
    return str(simple[path] or "")


def resource_field_ref(ref: Obj, container: Obj, allocatable: Obj) -> str:
    resource = ref.get("resource", "")
    kind, _, name = resource.partition(".")
    res = (container.get("resources") or {}).get(kind) or {}
    raw = res.get(name) or (allocatable.get(name) if kind == "limits" else None) or "0"
    divisor = parse_quantity(str(ref.get("divisor") or "1")).value or 1
    return str(math.ceil(parse_quantity(str(raw)).value / divisor))


async def _key_ref(kind: str, ref: Obj, namespace: str, getter: Getter) -> str | None:
    obj = await getter(kind, namespace, ref.get("name", ""))
    optional = bool(ref.get("optional"))
    label = "configmap" if kind == "ConfigMap" else "secret"
    if obj is None:
        if optional:
            return None
        raise EnvError(f'{label} "{ref.get("name", "")}" not found')
    values = _values(kind, obj)
    if ref.get("key") not in values:
        if optional:
            return None
        raise EnvError(f"couldn't find key {ref.get('key')} in {kind} {namespace}/{ref.get('name', '')}")
    return values[ref["key"]]


def _values(kind: str, obj: Obj) -> dict[str, str]:
    if kind == "ConfigMap":
        return dict(obj.get("data") or {})
    out = {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (obj.get("data") or {}).items()}
    out.update(obj.get("stringData") or {})
    return out


async def _env_from(source: Obj, namespace: str, getter: Getter) -> dict[str, str]:
    kind, ref = ("ConfigMap", source.get("configMapRef")) if source.get("configMapRef") else \
        ("Secret", source.get("secretRef") or {})
    assert ref is not None
    obj = await getter(kind, namespace, ref.get("name", ""))
    if obj is None:
        if ref.get("optional"):
            return {}
        raise EnvError(f'{"configmap" if kind == "ConfigMap" else "secret"} "{ref.get("name", "")}" not found')
    prefix = source.get("prefix") or ""
    return {prefix + k: v for k, v in _values(kind, obj).items()}


async def container_env(pod: Obj, container: Obj, *, services: Iterable[Obj], getter: Getter,
                        allocatable: Obj) -> dict[str, str]:
    """The full environment of `container` (without PATH, which the runtime adds)."""
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {"HOSTNAME": (pod.get("spec") or {}).get("hostname") or pod["metadata"]["name"]}
    env.update(service_env(services))
    for source in container.get("envFrom") or []:
        env.update(await _env_from(source, namespace, getter))
    for item in container.get("env") or []:
        value = await _env_value(item, pod, container, env, getter=getter, allocatable=allocatable)
        if value is not None:
            env[item["name"]] = value
    return env


async def _env_value(item: Obj, pod: Obj, container: Obj, env: dict[str, str], *, getter: Getter,
                     allocatable: Obj) -> str | None:
    source: dict[str, Any] | None = item.get("valueFrom")
    if not source:
        return expand(str(item.get("value") or ""), env)
    namespace = pod["metadata"]["namespace"]
    if source.get("fieldRef"):
        return field_ref(pod, source["fieldRef"].get("fieldPath", ""))
    if source.get("resourceFieldRef"):
        return resource_field_ref(source["resourceFieldRef"], container, allocatable)
    if source.get("configMapKeyRef"):
        return await _key_ref("ConfigMap", source["configMapKeyRef"], namespace, getter)
    if source.get("secretKeyRef"):
        return await _key_ref("Secret", source["secretKeyRef"], namespace, getter)
    return None
