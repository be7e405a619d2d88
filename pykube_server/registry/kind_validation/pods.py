"""Pod spec validation (`ValidatePodSpec` and friends) and the pod update rule.

Covers the mistakes people make: no containers, bad or duplicate container/volume/port names,
ports out of range, unknown restart/DNS/pull policies, volume mounts naming no volume, and
resources (names, negative values, requests above limits). Paths are relative to where the
spec sits (`spec` for a Pod, `spec.template.spec` for a Deployment...).
"""

from __future__ import annotations

import difflib
from typing import Any

import orjson

from pykube_server.api.fields import FieldError, Path, duplicate, forbidden, invalid, not_supported, required
from pykube_server.api.memo import BoundedMemo
from pykube_server.api.quantity import QuantityError, parse_quantity
from pykube_server.registry.kind_validation.common import (
    NEGATIVE_ERR, SUPPORTED_PROTOCOLS, is_valid_port_name, is_valid_port_num,
)
from pykube_server.registry.kind_validation.sysctls import validate_sysctls
from pykube_server.registry.validation import is_dns1123_label, is_qualified_name

Obj = dict[str, Any]

RESTART_POLICIES = ["Always", "OnFailure", "Never"]
DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
TERMINATION_MESSAGE_POLICIES = ["FallbackToLogsOnError", "File"]
STANDARD_RESOURCES = {"cpu", "memory", "ephemeral-storage", "storage", "pods", "services",
                      "replicationcontrollers", "resourcequotas", "secrets", "configmaps",
                      "persistentvolumeclaims", "services.nodeports", "services.loadbalancers"}
CONTAINER_RESOURCES = {"cpu", "memory", "ephemeral-storage"}
OVERCOMMITTABLE = CONTAINER_RESOURCES
UPDATABLE_POD_FIELDS = (
    "`spec.containers[*].image`", "`spec.initContainers[*].image`", "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
)
POD_UPDATE_ERR = "pod updates may not change fields other than " + ",".join(UPDATABLE_POD_FIELDS)


def _dicts(value: Any) -> list[Obj]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


# -- resources ---------------------------------------------------------------------------
def _resource_name_errors(name: str, path: Path) -> list[FieldError]:
    msgs = is_qualified_name(name)
    if msgs:
        return [invalid(path, name, m) for m in msgs]
    if "/" in name:
        return []
    errs = []
    if name not in STANDARD_RESOURCES and not name.startswith("hugepages-"):
        errs.append(invalid(path, name, "must be a standard resource type or fully qualified"))
    if name not in CONTAINER_RESOURCES and not name.startswith("hugepages-"):
        errs.append(invalid(path, name, "must be a standard resource for containers"))
    return errs


def _quantity(value: Any) -> Any:
    try:
        return parse_quantity(value)
    except QuantityError:
        return None


def validate_resources(resources: Any, path: Path) -> list[FieldError]:
    if not isinstance(resources, dict):
        return []
    errs: list[FieldError] = []
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    for section, values in (("limits", limits), ("requests", requests)):
        for name, value in values.items():
            key_path = path.child(section).key(name)
            errs += _resource_name_errors(name, key_path)
            q = _quantity(value)
            if q is not None and q.value < 0:
                errs.append(invalid(key_path, str(q), NEGATIVE_ERR))
    for name, value in requests.items():
        req, lim = _quantity(value), _quantity(limits.get(name)) if name in limits else None
        if req is None or lim is None:
            continue
        if name not in OVERCOMMITTABLE and "/" in name and req.cmp(lim) != 0:
            errs.append(invalid(path.child("requests"), str(req), f"must be equal to {name} limit of {lim}"))
        elif req.cmp(lim) > 0:
            errs.append(invalid(path.child("requests"), str(req), f"must be less than or equal to {name} limit of {lim}"))
    return errs


# -- containers ----------------------------------------------------------------------------
def validate_ports(ports: list[Obj], path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        p = path.index(i)
        name = port.get("name") or ""
        if name:
            msgs = is_valid_port_name(name)
            errs += [invalid(p.child("name"), name, m) for m in msgs]
            if not msgs and name in names:
                errs.append(duplicate(p.child("name"), name))
            names.add(name)
        container_port = port.get("containerPort")
        if not container_port:
            errs.append(required(p.child("containerPort")))
        else:
            errs += [invalid(p.child("containerPort"), container_port, m) for m in is_valid_port_num(container_port)]
        if port.get("hostPort"):
            errs += [invalid(p.child("hostPort"), port["hostPort"], m) for m in is_valid_port_num(port["hostPort"])]
        errs += _protocol_errors(port.get("protocol"), p.child("protocol"))
    return errs


def _protocol_errors(protocol: Any, path: Path) -> list[FieldError]:
    if not protocol:
        return [required(path)]
    if protocol not in SUPPORTED_PROTOCOLS:
        return [not_supported(path, protocol, SUPPORTED_PROTOCOLS)]
    return []


def _enum(value: Any, allowed: list[str], path: Path) -> list[FieldError]:
    if not value:
        return [required(path)]
    return [] if value in allowed else [not_supported(path, value, allowed)]


def validate_container(c: Obj, path: Path, volumes: set[str]) -> list[FieldError]:
    errs: list[FieldError] = []
    if not c.get("image"):
        errs.append(required(path.child("image")))
    errs += _enum(c.get("imagePullPolicy"), PULL_POLICIES, path.child("imagePullPolicy"))
    errs += _enum(c.get("terminationMessagePolicy"), TERMINATION_MESSAGE_POLICIES, path.child("terminationMessagePolicy"))
    errs += validate_ports(_dicts(c.get("ports")), path.child("ports"))
    for i, mount in enumerate(_dicts(c.get("volumeMounts"))):
        mp = path.child("volumeMounts").index(i)
        name = mount.get("name") or ""
        if not name:
            errs.append(required(mp.child("name")))
        elif name not in volumes:
            errs.append(FieldError("NotFound", str(mp.child("name")), name))
        if not mount.get("mountPath"):
            errs.append(required(mp.child("mountPath")))
    errs += validate_resources(c.get("resources"), path.child("resources"))
    return errs


def _validate_containers(spec: Obj, path: Path, volumes: set[str]) -> list[FieldError]:
    errs: list[FieldError] = []
    names: set[str] = set()
    if not spec.get("containers"):
        errs.append(required(path.child("containers")))
    for key in ("initContainers", "containers"):
        for i, c in enumerate(_dicts(spec.get(key))):
            cp = path.child(key).index(i)
            name = c.get("name") or ""
            if not name:
                errs.append(required(cp.child("name")))
            elif name in names:
                errs.append(duplicate(cp.child("name"), name))
            else:
                errs += [invalid(cp.child("name"), name, m) for m in is_dns1123_label(name)]
            names.add(name)
            errs += validate_container(c, cp, volumes)
    return errs


def _validate_volumes(spec: Obj, path: Path) -> tuple[list[FieldError], set[str]]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, volume in enumerate(_dicts(spec.get("volumes"))):
        vp = path.child("volumes").index(i)
        name = volume.get("name") or ""
        if not name:
            errs.append(required(vp.child("name")))
        elif name in names:
            errs.append(duplicate(vp.child("name"), name))
        else:
            errs += [invalid(vp.child("name"), name, m) for m in is_dns1123_label(name)]
        names.add(name)
        sources = [k for k in volume if k != "name"]
        for extra in sources[1:]:
            errs.append(forbidden(vp.child(extra), "may not specify more than 1 volume type"))
    return errs, names


def validate_pod_spec(spec: Any, path: Path) -> list[FieldError]:
    if not isinstance(spec, dict):
        return [required(path.child("containers"))]
    errs, volumes = _validate_volumes(spec, path)
    errs += _validate_containers(spec, path, volumes)
    errs += _enum(spec.get("restartPolicy"), RESTART_POLICIES, path.child("restartPolicy"))
    errs += _enum(spec.get("dnsPolicy"), DNS_POLICIES, path.child("dnsPolicy"))
    errs += validate_sysctls(spec, path)
    deadline = spec.get("activeDeadlineSeconds")
    if isinstance(deadline, int) and deadline <= 0:
        errs.append(invalid(path.child("activeDeadlineSeconds"), deadline, "must be between 1 and 2147483647, inclusive"))
    return errs


VALID_SPECS_MAX = 512
_valid_specs: BoundedMemo[bytes, bool] = BoundedMemo(VALID_SPECS_MAX)
"""Pod specs (as JSON) already found valid: a controller creates its pods from one template,
so all but the first of them skip the walk."""


def validate_pod(obj: Obj) -> list[FieldError]:
    spec = obj.get("spec")
    try:
        encoded = orjson.dumps(spec)
    except TypeError:  # not JSON-shaped: validate without remembering
        return validate_pod_spec(spec, Path("spec"))
    if encoded in _valid_specs:
        return []
    errs = validate_pod_spec(spec, Path("spec"))
    if not errs:
        _valid_specs.put(encoded, True)
    return errs


# -- update --------------------------------------------------------------------------------
def _munged(spec: Obj, old: Obj) -> Obj:
    """The new spec with every field a pod update may change set back to its old value."""
    munged = orjson.loads(orjson.dumps(spec))
    for key in ("containers", "initContainers"):
        old_list = old.get(key) or []
        for i, c in enumerate(munged.get(key) or []):
            if i < len(old_list) and isinstance(c, dict) and isinstance(old_list[i], dict):
                c["image"] = old_list[i].get("image")
    for key in ("activeDeadlineSeconds", "terminationGracePeriodSeconds"):
        if key in old:
            munged[key] = old[key]
        else:
            munged.pop(key, None)
    old_tolerations = old.get("tolerations") or []
    new_tolerations = munged.get("tolerations") or []
    if all(t in new_tolerations for t in old_tolerations):
        munged["tolerations"] = old.get("tolerations")
        if munged["tolerations"] is None:
            munged.pop("tolerations")
    return munged


def _spec_diff(old: Obj, new: Obj) -> str:
    """A readable stand-in for go-cmp's diff of the two specs (upstream's is unstable by design)."""
    def lines(spec: Obj) -> list[str]:
        return orjson.dumps(spec, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode().splitlines()
    body = [line for line in difflib.ndiff(lines(old), lines(new)) if line[:1] in "-+"]
    return "\n".join(["  core.PodSpec{", *body, "  }"])


def validate_pod_update(obj: Obj, old: Obj) -> list[FieldError]:
    spec, old_spec = obj.get("spec") or {}, old.get("spec") or {}
    munged = _munged(spec, old_spec)
    if munged == old_spec:
        return []
    return [forbidden("spec", POD_UPDATE_ERR + "\n" + _spec_diff(old_spec, munged))]
