"""A CRD turned into what the server serves: ResourceSpecs, a Strategy per version, OpenAPI.

Custom objects are stored under `/registry/<group>/<plural>/[<namespace>/]<name>`, as
kube-apiserver stores them. Each served version gets a ResourceSpec (discovery, routing, the
OpenAPI paths) and a `CustomResourceStrategy`: the version's schema (pruning, defaulting,
validation), its status/scale subresources, printer columns and selectable fields.
"""

from __future__ import annotations

import copy
from typing import Any

from pykube_server.api.fields import FieldError, invalid
from pykube_server.registry.crd import celrules, jsonpath, schema as crschema
from pykube_server.registry.spec import ResourceSpec, SubresourceSpec
from pykube_server.registry.strategy import AGE, NAME, Column, StatusStrategy, Strategy, human_duration, parse_time
from pykube_server.registry.validation import name_is_dns_subdomain, validate_object_meta

Obj = dict[str, Any]

CR_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
OBJECT_META_REF = "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
LIST_META_REF = "#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta"
API_VERSION_DOC = ("APIVersion defines the versioned schema of this representation of an object. Servers should convert "
                   "recognized schemas to the latest internal value, and may reject unrecognized values. More info: "
                   "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources")
KIND_DOC = ("Kind is a string value representing the REST resource this object represents. Servers may infer this from "
            "the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: "
            "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds")
METADATA_DOC = ("Standard object's metadata. More info: "
                "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata")
LIST_METADATA_DOC = ("Standard list metadata. More info: "
                     "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#lists-and-slices")


def key_root(group: str, plural: str) -> str:
    return f"/registry/{group}/{plural}"


def definition_name(group: str, version: str, kind: str) -> str:
    """kube's OpenAPI name of a custom kind: the group reversed (`com.example.stable.v1.CronTab`)."""
    return ".".join(reversed(group.split("."))) + f".{version}.{kind}"


def version_schema(version: Obj) -> Obj:
    return (version.get("schema") or {}).get("openAPIV3Schema") or {"type": "object"}


def storage_version(crd: Obj) -> str:
    for v in (crd.get("spec") or {}).get("versions") or []:
        if v.get("storage"):
            return str(v.get("name"))
    return ""


def served_versions(crd: Obj) -> list[Obj]:
    """Served versions, highest kube version priority first (v1 > v1beta1 > v1alpha1 > other)."""
    return sorted((v for v in (crd.get("spec") or {}).get("versions") or [] if v.get("served")),
                  key=lambda v: version_priority(str(v.get("name", ""))))


def version_priority(name: str) -> tuple[int, int, int, str]:
    import re

    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", name)
    if not m:
        return (3, 0, 0, name)
    level = {"": 0, "beta": 1, "alpha": 2}[m.group(2) or ""]
    return (level, -int(m.group(1)), -int(m.group(3) or 0), name)


class CustomResourceStrategy(Strategy):
    """What one served version of a custom resource means to the generic store."""

    tracks_generation = True

    def __init__(self, crd: Obj, version: Obj) -> None:
        spec = crd["spec"]
        names = spec["names"]
        subs = version.get("subresources") or {}
        super().__init__(group=spec["group"], plural=names["plural"], namespaced=spec.get("scope") == "Namespaced",
                         has_status=subs.get("status") is not None)
        self.version = str(version["name"])
        self.kind = ""  # no built-in scheme defaults or validation
        self.custom_kind = names["kind"]
        self.schema: Obj = version_schema(version)
        self.scale: Obj | None = subs.get("scale") if isinstance(subs.get("scale"), dict) else None
        self.columns = tuple(_columns(version.get("additionalPrinterColumns")))
        self.selectable = {
            sel["jsonPath"].lstrip("."): _selector_value(sel["jsonPath"])
            for sel in version.get("selectableFields") or [] if sel.get("jsonPath")
        }
        self._name_rule = name_is_dns_subdomain
        self.has_rules = celrules.has_rules(self.schema)

    # -- create and update ----------------------------------------------------------------
    def prepare_for_create(self, obj: Obj) -> None:
        if self.has_status:
            obj.pop("status", None)
        obj["metadata"]["generation"] = 1

    def prepare_for_update(self, obj: Obj, old: Obj) -> None:
        if self.has_status:
            if "status" in old:
                obj["status"] = old["status"]
            else:
                obj.pop("status", None)
        ignored = {"metadata", "apiVersion", "kind"} | ({"status"} if self.has_status else set())
        changed = any(obj.get(k) != old.get(k) for k in (set(obj) | set(old)) - ignored)
        generation = old["metadata"].get("generation", 1)
        obj["metadata"]["generation"] = generation + 1 if changed else generation

    def default(self, obj: Obj) -> None:
        crschema.prune(obj, self.schema)
        crschema.apply_defaults(obj, self.schema)
        crschema.prune(obj, self.schema)

    def canonicalize(self, obj: Obj) -> None:
        crschema.prune(obj, self.schema)

    def validate(self, obj: Obj) -> list[FieldError]:
        return self.validate_against(obj, None)

    def validate_update(self, obj: Obj, old: Obj) -> list[FieldError]:
        return self.validate_against(obj, old)

    def validate_against(self, obj: Obj, old: Obj | None) -> list[FieldError]:
        """Metadata, schema and scale paths, then the CEL rules (with `old` for transition
        rules and ratcheting), unless a schema error blocks them as in kube."""
        errs = validate_object_meta(obj, namespaced=self.namespaced, name_rule=self._name_rule, kube_finalizers=False)
        errs += crschema.validate(obj, self.schema)
        if self.scale:
            seen = {e.field for e in errs}
            errs += [e for e in self._validate_scale(obj) if e.field not in seen]
        if self.has_rules:
            if celrules.blocking(errs):
                errs.append(celrules.not_checked())
            else:
                errs += celrules.validate(obj, old, self.schema)
        return errs

    def _validate_scale(self, obj: Obj) -> list[FieldError]:
        errs: list[FieldError] = []
        for key in ("specReplicasPath", "statusReplicasPath"):
            path = (self.scale or {}).get(key)
            if not path:
                continue
            found, value = jsonpath.first(obj, path)
            if found and value is not None and (not isinstance(value, int) or isinstance(value, bool)):
                errs.append(invalid(path.lstrip("."), value, "must be an integer"))
            elif found and isinstance(value, int) and value < 0:
                errs.append(invalid(path.lstrip("."), value, "should be a non-negative integer"))
        return errs

    def unknown_fields(self, obj: Obj) -> list[str]:
        return crschema.unknown_fields(obj, self.schema)

    # -- scale ----------------------------------------------------------------------------
    def scale_of(self, obj: Obj) -> Obj:
        """The autoscaling/v1 Scale of an object, through the CRD's replica and selector paths."""
        scale = self.scale or {}
        meta = obj["metadata"]
        _, spec_replicas = jsonpath.first(obj, scale.get("specReplicasPath", ".spec.replicas"))
        _, status_replicas = jsonpath.first(obj, scale.get("statusReplicasPath", ".status.replicas"))
        status: Obj = {"replicas": status_replicas if isinstance(status_replicas, int) else 0}
        if scale.get("labelSelectorPath"):
            found, selector = jsonpath.first(obj, scale["labelSelectorPath"])
            if found and isinstance(selector, str) and selector:
                status["selector"] = selector
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta},
                "spec": {"replicas": spec_replicas if isinstance(spec_replicas, int) else 0}, "status": status}

    def set_replicas(self, obj: Obj, replicas: int) -> None:
        path = (self.scale or {}).get("specReplicasPath", ".spec.replicas")
        parts = [p for _, p in jsonpath.parse(path)]
        cur = obj
        for part in parts[:-1]:
            cur = cur.setdefault(part, {})
        cur[parts[-1]] = replicas


class CustomStatusStrategy(StatusStrategy):
    """`/status` of a custom resource: the whole object is validated against the old one, so
    transition rules and ratcheting see the stored object (kube's status strategy)."""

    def __init__(self, main: CustomResourceStrategy) -> None:
        super().__init__(main)
        self.custom = main

    def validate_update(self, obj: Obj, old: Obj) -> list[FieldError]:
        return self.custom.validate_against(obj, old)


def _selector_value(path: str) -> Any:
    steps = jsonpath.parse(path)

    def value(obj: Obj) -> str:
        found = jsonpath.find(obj, steps)
        if not found or found[0] is None:
            return ""
        v = found[0]
        return ("true" if v else "false") if isinstance(v, bool) else str(v)

    return value


def _columns(specs: list[Obj] | None) -> list[Column]:
    if not specs:
        return [NAME, Column("Age", "date", lambda o, now: _cell("date", o.get("metadata", {}).get("creationTimestamp"), now),
                             AGE.description)]
    out = [NAME]
    for col in specs:
        out.append(Column(col.get("name", ""), col.get("type", "string"), _cell_fn(col), col.get("description", ""),
                          int(col.get("priority", 0) or 0), col.get("format", "")))
    return out


def _cell_fn(col: Obj) -> Any:
    steps = jsonpath.parse(col.get("jsonPath", ""))
    typ = col.get("type", "string")

    def cell(obj: Obj, now: float) -> Any:
        found = jsonpath.find(obj, steps)
        if not found:
            return None
        return _cell(typ, found[0], now)

    return cell


def _cell(typ: str, value: Any, now: float) -> Any:
    if value is None:
        return None
    if typ == "date":
        try:
            return human_duration(now - parse_time(str(value)))
        except ValueError:
            return None
    if typ == "integer":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if typ == "number":
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if typ == "boolean":
        return value if isinstance(value, bool) else None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return _go_format(value)


def _go_format(value: Any) -> str:
    """Go's %v of JSON values (map[a:1 b:x], [a b])."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{_go_format(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(_go_format(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "<nil>"
    return str(value)


def specs_for(crd: Obj) -> list[tuple[ResourceSpec, CustomResourceStrategy]]:
    """A ResourceSpec and strategy for each served version, preferred version first."""
    spec = crd["spec"]
    names = spec["names"]
    out = []
    for version in served_versions(crd):
        strategy = CustomResourceStrategy(crd, version)
        subs: list[SubresourceSpec] = []
        if strategy.has_status:
            subs.append(SubresourceSpec("status", names["kind"], ("get", "patch", "update")))
        if strategy.scale is not None:
            subs.append(SubresourceSpec("scale", "Scale", ("get", "patch", "update"), group="autoscaling", version="v1"))
        rs = ResourceSpec(spec["group"], str(version["name"]), names["kind"], names["plural"],
                          names.get("singular") or names["kind"].lower(), spec.get("scope") == "Namespaced", CR_VERBS,
                          short_names=tuple(names.get("shortNames") or ()), categories=tuple(names.get("categories") or ()),
                          subresources=tuple(subs))  # the OpenAPI definition is found by its GVK
        out.append((rs, strategy))
    return out


def openapi_definitions(crd: Obj) -> dict[str, Obj]:
    """The OpenAPI definitions of every served version (kind and list), in kubernetes-validate's
    JSON Schema form (`#/$defs/` references) like the built-in ones."""
    spec = crd["spec"]
    names = spec["names"]
    out: dict[str, Obj] = {}
    for version in served_versions(crd):
        gvk = {"group": spec["group"], "kind": names["kind"], "version": version["name"]}
        schema = copy.deepcopy(version_schema(version))
        props = schema.setdefault("properties", {})
        props["apiVersion"] = {"description": API_VERSION_DOC, "type": "string"}
        props["kind"] = {"description": KIND_DOC, "type": "string"}
        props["metadata"] = {"allOf": [{"$ref": OBJECT_META_REF}], "description": METADATA_DOC}
        schema["type"] = "object"
        schema["x-kubernetes-group-version-kind"] = [gvk]
        name = definition_name(spec["group"], str(version["name"]), names["kind"])
        out[name] = schema
        list_kind = names.get("listKind") or names["kind"] + "List"
        out[name + "List"] = {
            "description": f"{list_kind} is a list of {names['kind']}",
            "properties": {
                "apiVersion": {"description": API_VERSION_DOC, "type": "string"},
                "items": {"description": f"List of {names['plural']}. More info: "
                                         "https://git.k8s.io/community/contributors/devel/api-conventions.md",
                          "items": {"$ref": f"#/$defs/{name}"}, "type": "array"},
                "kind": {"description": KIND_DOC, "type": "string"},
                "metadata": {"allOf": [{"$ref": LIST_META_REF}], "description": LIST_METADATA_DOC},
            },
            "required": ["items"], "type": "object",
            "x-kubernetes-group-version-kind": [{**gvk, "kind": list_kind}],
        }
    return out
