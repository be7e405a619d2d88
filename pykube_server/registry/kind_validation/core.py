"""Validation of Services, ConfigMaps and Secrets (`ValidateService`, `ValidateConfigMap`,
`ValidateSecret` and their updates).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pykube_server.api.fields import FieldError, Path, duplicate, forbidden, invalid, not_supported, required, too_long
from pykube_server.registry.kind_validation.common import (
    IMMUTABLE_ERR, MAX_SECRET_SIZE, SUPPORTED_PROTOCOLS, go_string_slice, immutable, invalid_go, is_config_map_key,
    is_valid_port_name, is_valid_port_num,
)
from pykube_server.registry.validation import is_dns1123_label, is_dns1123_subdomain, validate_labels

Obj = dict[str, Any]
SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
SESSION_AFFINITIES = ["ClientIP", "None"]
IMMUTABLE_SET_ERR = "field is immutable when `immutable` is set"


# -- Service ---------------------------------------------------------------------------------
def _target_port_errors(target: Any, path: Path) -> list[FieldError]:
    if isinstance(target, str):
        return [invalid(path, target, m) for m in is_valid_port_name(target)]
    if isinstance(target, int):
        return [invalid(path, target, m) for m in is_valid_port_num(target)]
    return []


def _go_service_port(port: Obj) -> str:
    return (f'core.ServicePort{{Name:"", Protocol:"{port.get("protocol", "")}", AppProtocol:(*string)(nil), '
            f'Port:{port.get("port", 0)}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:""}}, NodePort:0}}')


def _validate_service_port(port: Obj, path: Path, require_name: bool, names: set[str]) -> list[FieldError]:
    errs: list[FieldError] = []
    name = port.get("name") or ""
    if require_name and not name:
        errs.append(required(path.child("name")))
    elif name:
        errs += [invalid(path.child("name"), name, m) for m in is_dns1123_label(name)]
        if name in names:
            errs.append(duplicate(path.child("name"), name))
        names.add(name)
    errs += [invalid(path.child("port"), port.get("port", 0), m) for m in is_valid_port_num(port.get("port", 0))]
    protocol = port.get("protocol")
    if not protocol:
        errs.append(required(path.child("protocol")))
    elif protocol not in SUPPORTED_PROTOCOLS:
        errs.append(not_supported(path.child("protocol"), protocol, SUPPORTED_PROTOCOLS))
    return errs + _target_port_errors(port.get("targetPort"), path.child("targetPort"))


def _validate_service_ports(spec: Obj, path: Path) -> list[FieldError]:
    ports = [p for p in spec.get("ports") or [] if isinstance(p, dict)]
    headless = spec.get("clusterIP") == "None"
    errs: list[FieldError] = []
    if not ports and not headless and spec.get("type") != "ExternalName":
        errs.append(required(path.child("ports")))
    names: set[str] = set()
    seen: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        errs += _validate_service_port(port, path.child("ports").index(i), len(ports) > 1, names)
    for i, port in enumerate(ports):
        key = (port.get("protocol"), port.get("port"))
        if key in seen:
            errs.append(FieldError("Duplicate", str(path.child("ports").index(i)), detail=_go_service_port(port)))
        seen.add(key)
    return errs


def validate_service(obj: Obj) -> list[FieldError]:
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
    path = Path("spec")
    errs = _validate_service_ports(spec, path)
    kind = spec.get("type")
    if kind not in SERVICE_TYPES:
        errs.append(not_supported(path.child("type"), kind, SERVICE_TYPES))
    if kind == "ExternalName":
        name = spec.get("externalName") or ""
        if not name:
            errs.append(required(path.child("externalName")))
        else:
            errs += [invalid(path.child("externalName"), name, m) for m in is_dns1123_subdomain(name.rstrip("."))]
    affinity = spec.get("sessionAffinity")
    if affinity not in SESSION_AFFINITIES:
        errs.append(not_supported(path.child("sessionAffinity"), affinity, SESSION_AFFINITIES))
    return errs + validate_labels(spec.get("selector") or {}, path.child("selector"))


def _is_headless(spec: Obj) -> bool:
    return spec.get("clusterIP") == "None"


def validate_service_update(obj: Obj, old: Obj) -> list[FieldError]:
    spec, prev = obj.get("spec") or {}, old.get("spec") or {}
    if "ExternalName" in (spec.get("type"), prev.get("type")) or (_is_headless(spec) and _is_headless(prev)):
        return []
    new_ip, old_ip = spec.get("clusterIP") or "", prev.get("clusterIP") or ""
    if old_ip and new_ip and new_ip != old_ip:
        ips = spec.get("clusterIPs") or [new_ip]
        return [invalid_go("spec.clusterIPs[0]", go_string_slice(ips), "may not change once set")]
    return []


# -- ConfigMap, Secret ------------------------------------------------------------------------
def _key_errors(data: Obj, path: Path) -> list[FieldError]:
    return [invalid(path.key(k), k, m) for k in data for m in is_config_map_key(k)]


def validate_config_map(obj: Obj) -> list[FieldError]:
    data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
    errs = _key_errors(data, Path("data"))
    errs += [invalid(Path("data").key(k), k, "duplicate of key present in binaryData") for k in data if k in binary]
    errs += _key_errors(binary, Path("binaryData"))
    size = sum(len(str(v).encode()) for v in data.values()) + sum(_decoded_len(v) for v in binary.values())
    if size > MAX_SECRET_SIZE:
        errs.append(too_long("[]", MAX_SECRET_SIZE))
    return errs


def _decoded_len(value: Any) -> int:
    try:
        return len(base64.b64decode(str(value), validate=False))
    except (binascii.Error, ValueError):
        return len(str(value))


def validate_secret(obj: Obj) -> list[FieldError]:
    data = obj.get("data") or {}
    errs = _key_errors(data, Path("data"))
    if sum(_decoded_len(v) for v in data.values()) > MAX_SECRET_SIZE:
        errs.append(too_long("data", MAX_SECRET_SIZE))
    errs += _secret_type_errors(obj, data)
    return errs


def _secret_type_errors(obj: Obj, data: Obj) -> list[FieldError]:
    kind = obj.get("type")
    needed = {"kubernetes.io/tls": ("tls.crt", "tls.key"), "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
              "kubernetes.io/dockercfg": (".dockercfg",), "kubernetes.io/basic-auth": ()}.get(kind or "")
    if needed is None:
        return []
    return [required(Path("data").key(k)) for k in needed if k not in data]


def _immutable_data(obj: Obj, old: Obj, keys: tuple[str, ...]) -> list[FieldError]:
    if old.get("immutable") is not True:
        return []
    errs = [] if obj.get("immutable") is True else [forbidden("immutable", IMMUTABLE_SET_ERR)]
    return errs + [forbidden(k, IMMUTABLE_SET_ERR) for k in keys if (obj.get(k) or {}) != (old.get(k) or {})]


def validate_config_map_update(obj: Obj, old: Obj) -> list[FieldError]:
    return _immutable_data(obj, old, ("data", "binaryData"))


def validate_secret_update(obj: Obj, old: Obj) -> list[FieldError]:
    errs = immutable(obj.get("type"), old.get("type"), "type")
    return errs + _immutable_data(obj, old, ("data",))


def validate_priority_class_update(new: Obj, old: Obj) -> list[FieldError]:
    """A PriorityClass keeps its value and preemption policy for life (pods already carry them)."""
    errs: list[FieldError] = []
    if new.get("value") != old.get("value"):
        errs.append(forbidden("value", "may not be changed in an update."))
    errs += immutable(new.get("preemptionPolicy"), old.get("preemptionPolicy"), "preemptionPolicy")
    return errs
