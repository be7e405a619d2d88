"""Validation of a CustomResourceDefinition, with apiextensions-apiserver's messages.

Checks run on the internal form kube validates: when every version carries the same schema,
subresources or printer columns, kube's v1 conversion moves them to `spec.validation`,
`spec.subresources` and `spec.additionalPrinterColumns`, so errors are reported on those paths
(`spec.validation.openAPIV3Schema.properties[spec].type: Required value: must not be empty for
specified object fields`), otherwise on `spec.versions[i]...`. Structural-schema errors are sorted
by their text, as kube sorts them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pykube_server.api.fields import FieldError, Path, forbidden, invalid, not_supported, required
from pykube_server.registry.crd import celrules, jsonpath
from pykube_server.registry.crd.schema import SchemaError, _validate
from pykube_server.registry.validation import is_dns1035_label, is_dns1123_subdomain, validate_object_meta

Obj = dict[str, Any]

COLUMN_TYPES = "boolean,date,integer,number,string"
COLUMN_FORMATS = "byte,date,date-time,double,float,int32,int64,password"
VALID_TYPES = ("array", "boolean", "integer", "number", "object", "string")


def crd_name_rule(obj: Obj) -> Any:
    spec = obj.get("spec") or {}
    wanted = f"{(spec.get('names') or {}).get('plural', '')}.{spec.get('group', '')}"

    def rule(name: str, prefix: bool) -> list[str]:
        msgs = is_dns1123_subdomain(name)
        if name != wanted:
            msgs.append('must be spec.names.plural+"."+spec.group')
        return msgs

    return rule


def shared(versions: list[Obj], key: str) -> Any:
    """The value every version sets identically for `key` (kube's v1 -> internal hoisting)."""
    if not versions:
        return None
    first = versions[0].get(key)
    if not first or any(v.get(key) != first for v in versions):
        return None
    return first


def validate_crd(obj: Obj, old: Obj | None = None) -> list[FieldError]:
    errs = validate_object_meta(obj, namespaced=False, name_rule=crd_name_rule(obj), kube_finalizers=False)
    spec = obj.get("spec") or {}
    path = Path("spec")
    errs += _spec(spec, path)
    if old is not None:
        old_spec = old.get("spec") or {}
        if _established(old):
            for key in ("scope",):
                if spec.get(key) != old_spec.get(key):
                    errs.append(invalid(path.child(key), spec.get(key), "field is immutable"))
            kind = (spec.get("names") or {}).get("kind")
            if kind != (old_spec.get("names") or {}).get("kind"):
                errs.append(invalid(path.child("names", "kind"), kind, "field is immutable"))
        if spec.get("group") != old_spec.get("group"):
            errs.append(invalid(path.child("group"), spec.get("group"), "field is immutable"))
        plural = (spec.get("names") or {}).get("plural")
        if plural != (old_spec.get("names") or {}).get("plural"):
            errs.append(invalid(path.child("names", "plural"), plural, "field is immutable"))
    errs += _names((obj.get("status") or {}).get("acceptedNames") or {}, Path("status").child("acceptedNames"))
    stored = (obj.get("status") or {}).get("storedVersions") or []
    if not stored:
        errs.append(invalid("status.storedVersions", stored, "must have at least one stored version"))
    return errs


def _established(obj: Obj) -> bool:
    return any(c.get("type") == "Established" and c.get("status") == "True"
               for c in (obj.get("status") or {}).get("conditions") or [])


def _spec(spec: Obj, path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    group = spec.get("group") or ""
    if not group:
        errs.append(required(path.child("group")))
    elif msgs := is_dns1123_subdomain(group):
        errs.append(invalid(path.child("group"), group, ",".join(msgs)))
    elif len(group.split(".")) < 2:
        errs.append(invalid(path.child("group"), group, "should be a domain with at least one dot"))
    scope = spec.get("scope") or ""
    if not scope:
        errs.append(required(path.child("scope")))
    elif scope not in ("Cluster", "Namespaced"):
        errs.append(not_supported(path.child("scope"), scope, ["Cluster", "Namespaced"]))
    versions = [v for v in spec.get("versions") or [] if isinstance(v, dict)]
    top_schema, top_subs, top_cols = shared(versions, "schema"), shared(versions, "subresources"), \
        shared(versions, "additionalPrinterColumns")
    if top_schema is None:
        for i, v in enumerate(versions):
            if not (v.get("schema") or {}).get("openAPIV3Schema"):
                errs.append(required(path.child("versions").index(i).child("schema", "openAPIV3Schema"), "schemas are required"))
    elif not top_schema.get("openAPIV3Schema"):
        for i in range(len(versions)):
            errs.append(required(path.child("versions").index(i).child("schema", "openAPIV3Schema"), "schemas are required"))
    names_seen: set[str] = set()
    unique = True
    for i, v in enumerate(versions):
        vpath = path.child("versions").index(i)
        name = v.get("name") or ""
        unique = unique and name not in names_seen
        names_seen.add(name)
        if msgs := is_dns1035_label(name):
            errs.append(invalid(vpath.child("name"), name, ",".join(msgs)))
        subs = top_subs if top_subs is not None else v.get("subresources")
        if top_schema is None and (v.get("schema") or {}).get("openAPIV3Schema"):
            errs += _schema(v["schema"]["openAPIV3Schema"], vpath.child("schema"), bool((subs or {}).get("status") is not None))
        if top_subs is None and v.get("subresources"):
            errs += _subresources(v["subresources"], vpath.child("subresources"))
        if top_cols is None:
            for j, col in enumerate(v.get("additionalPrinterColumns") or []):
                errs += _column(col, vpath.child("additionalPrinterColumns").index(j))
        for j, sel in enumerate(v.get("selectableFields") or []):
            if not sel.get("jsonPath"):
                errs.append(required(vpath.child("selectableFields").index(j).child("jsonPath")))
    if not unique:
        errs.append(_versions_error(path, versions, "must contain unique version names"))
    if sum(1 for v in versions if v.get("storage")) != 1:
        errs.append(_versions_error(path, versions, "must have exactly one version marked as storage version"))
    names = spec.get("names") or {}
    for key in ("plural", "singular", "kind", "listKind"):
        if not names.get(key):
            errs.append(required(path.child("names", key)))
    errs += _names(names, path.child("names"))
    if top_schema is not None and top_schema.get("openAPIV3Schema"):
        status = any((s or {}).get("status") is not None for s in [top_subs] + [v.get("subresources") for v in versions])
        errs += _schema(top_schema["openAPIV3Schema"], path.child("validation"), status)
    if top_subs is not None:
        errs += _subresources(top_subs, path.child("subresources"))
    for j, col in enumerate(top_cols or []):
        errs += _column(col, path.child("additionalPrinterColumns").index(j))
    errs += _conversion(spec.get("conversion") or {}, path.child("conversion"))
    return errs


REVIEW_VERSIONS = ("v1", "v1beta1")


def _conversion(conversion: Obj, path: Path) -> list[FieldError]:
    """spec.conversion, reported on kube's internal paths (`webhookClientConfig` and
    `conversionReviewVersions` sit directly under `spec.conversion` there)."""
    errs: list[FieldError] = []
    strategy = conversion.get("strategy") or ""
    if conversion and not strategy:
        errs.append(required(path.child("strategy")))
    elif strategy and strategy not in ("None", "Webhook"):
        errs.append(not_supported(path.child("strategy"), strategy, ["None", "Webhook"]))
    webhook = conversion.get("webhook") or {}
    client_config = webhook.get("clientConfig")
    versions = webhook.get("conversionReviewVersions") or []
    config_path, versions_path = path.child("webhookClientConfig"), path.child("conversionReviewVersions")
    if strategy != "Webhook":
        if client_config is not None:
            errs.append(forbidden(config_path, "should not be set when strategy is not set to Webhook"))
        if versions:
            errs.append(forbidden(versions_path, "should not be set when strategy is not set to Webhook"))
        return errs
    if client_config is None:
        errs.append(required(config_path, "required when strategy is set to Webhook"))
    elif bool(client_config.get("url")) == bool(client_config.get("service")):
        errs.append(required(config_path, "exactly one of url or service is required"))
    elif client_config.get("url") and not str(client_config["url"]).startswith("https://"):
        errs.append(invalid(config_path.child("url"), client_config["url"], "'https' is the only allowed URL scheme"))
    if not versions:
        errs.append(required(versions_path))
    else:
        seen: set[str] = set()
        for i, version in enumerate(versions):
            if version in seen:
                errs.append(invalid(versions_path.index(i), version, "duplicate version"))
                continue
            seen.add(version)
            errs.extend(invalid(versions_path.index(i), version, msg) for msg in is_dns1035_label(str(version)))
        if not any(v in REVIEW_VERSIONS for v in versions):
            shown = "[]string{" + ", ".join(f'"{v}"' for v in versions) + "}"
            errs.append(_RawInvalid("Invalid", str(versions_path), shown,
                                    "must include at least one of " + ", ".join(REVIEW_VERSIONS)))
    return errs


def _versions_error(path: Path, versions: list[Obj], detail: str) -> FieldError:
    shown = ", ".join(f'apiextensions.CustomResourceDefinitionVersion{{Name:"{v.get("name", "")}", '
                      f'Served:{str(bool(v.get("served"))).lower()}, Storage:{str(bool(v.get("storage"))).lower()}, ...}}'
                      for v in versions)
    return _RawInvalid("Invalid", str(path.child("versions")), f"[]apiextensions.CustomResourceDefinitionVersion{{{shown}}}", detail)


class _RawInvalid(FieldError):
    """An Invalid error whose value is already rendered (Go's %#v of a struct)."""

    __slots__ = ()

    def body(self) -> str:
        return f"Invalid value: {self.bad_value}: {self.detail}"


def _names(names: Obj, path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    for key in ("plural", "singular"):
        value = names.get(key) or ""
        if value and (msgs := is_dns1035_label(value)):
            errs.append(invalid(path.child(key), value, ",".join(msgs)))
    for key in ("kind", "listKind"):
        value = names.get(key) or ""
        if value and (msgs := is_dns1035_label(value.lower())):
            errs.append(invalid(path.child(key), value, "may have mixed case, but should otherwise match: " + ",".join(msgs)))
    for i, short in enumerate(names.get("shortNames") or []):
        if msgs := is_dns1035_label(short):
            errs.append(invalid(path.child("shortNames").index(i), short, ",".join(msgs)))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        errs.append(invalid(path.child("listKind"), names["listKind"], "kind and listKind may not be the same"))
    for i, category in enumerate(names.get("categories") or []):
        if msgs := is_dns1035_label(category):
            errs.append(invalid(path.child("categories").index(i), category, ",".join(msgs)))
    return errs


def _subresources(subs: Obj, path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    scale = subs.get("scale")
    if isinstance(scale, dict):
        spath = path.child("scale")
        for key in ("specReplicasPath", "statusReplicasPath"):
            value = scale.get(key) or ""
            if not value:
                errs.append(required(spath.child(key)))
            else:
                errs += _simple_path(value, spath.child(key))
        if key_ok := scale.get("specReplicasPath"):
            if not key_ok.startswith(".spec."):
                errs.append(invalid(spath.child("specReplicasPath"), key_ok, "should be a json path under .spec"))
        if (value := scale.get("statusReplicasPath")) and not value.startswith(".status."):
            errs.append(invalid(spath.child("statusReplicasPath"), value, "should be a json path under .status"))
        selector = scale.get("labelSelectorPath")
        if selector:
            errs += _simple_path(selector, spath.child("labelSelectorPath"))
            if not (selector.startswith(".spec.") or selector.startswith(".status.")):
                errs.append(invalid(spath.child("labelSelectorPath"), selector, "should be a json path under either .spec or .status"))
    return errs


def _simple_path(value: str, path: Path) -> list[FieldError]:
    try:
        steps = jsonpath.parse(value)
    except jsonpath.JSONPathError:
        return [invalid(path, value, "must be a simple json path")]
    if any(kind != "field" for kind, _ in steps):
        return [invalid(path, value, "must be a simple json path")]
    return []


def _column(col: Obj, path: Path) -> list[FieldError]:
    errs: list[FieldError] = []
    if not col.get("name"):
        errs.append(required(path.child("name")))
    typ = col.get("type") or ""
    if not typ:
        errs.append(required(path.child("type"), f"must be one of {COLUMN_TYPES}"))
    elif typ not in COLUMN_TYPES.split(","):
        errs.append(invalid(path.child("type"), typ, f"must be one of {COLUMN_TYPES}"))
    fmt = col.get("format") or ""
    if fmt and fmt not in COLUMN_FORMATS.split(","):
        errs.append(invalid(path.child("format"), fmt, f"must be one of {COLUMN_FORMATS}"))
    json_path = col.get("jsonPath") or ""
    if not json_path:
        errs.append(required(path.child("JSONPath")))
    else:
        try:
            jsonpath.parse(json_path)
        except jsonpath.JSONPathError:
            errs.append(invalid(path.child("JSONPath"), json_path, "must be a simple json path"))
    return errs


# -- schemas ----------------------------------------------------------------------------------------
def _schema(schema: Obj, path: Path, status_enabled: bool) -> list[FieldError]:
    root = path.child("openAPIV3Schema")
    errs: list[FieldError] = []
    if status_enabled and schema.get("type") not in (None, "object"):
        errs.append(invalid(path.child("openAPIV3Schema.type"), schema.get("type"),
                            'only "object" is allowed as the type at the root of the schema if the status subresource is enabled'))
    if schema.get("nullable"):
        errs.append(forbidden(path.child("openAPIV3Schema.nullable"), "nullable cannot be true at the root"))
    structural = sorted(_structural(schema, "root", root), key=str)
    errs += structural
    errs += list(_openapi(schema, root, True))
    if not structural:
        errs += list(_defaults(schema, root))
        errs += celrules.check_schema(schema, root)
    return errs


def _structural(s: Obj, level: str, path: Path) -> Iterator[FieldError]:
    typ = s.get("type") or ""
    if typ == "array" and not isinstance(s.get("items"), dict):
        yield required(path.child("items"), "must be specified")
    if isinstance(s.get("items"), dict):
        yield from _structural(s["items"], "item", path.child("items"))
    for key, sub in (s.get("properties") or {}).items():
        if isinstance(sub, dict):
            yield from _structural(sub, "field", path.child("properties").key(key))
    extra = s.get("additionalProperties")
    if extra is not None and extra is not True:
        if level == "root":
            yield forbidden(path.child("additionalProperties"), "must not be used at the root")
        if isinstance(extra, dict):
            yield from _structural(extra, "field", path.child("additionalProperties"))
    int_or_string = s.get("x-kubernetes-int-or-string")
    preserve = s.get("x-kubernetes-preserve-unknown-fields")
    embedded = s.get("x-kubernetes-embedded-resource")
    if int_or_string and preserve:
        yield invalid(path.child("x-kubernetes-preserve-unknown-fields"), True, "must be false if x-kubernetes-int-or-string is true")
    if int_or_string and embedded:
        yield invalid(path.child("x-kubernetes-embedded-resource"), True, "must be false if x-kubernetes-int-or-string is true")
    for junctor in ("allOf", "anyOf", "oneOf"):
        skip = junctor == "anyOf" and int_or_string
        for i, sub in enumerate(s.get(junctor) or []):
            if isinstance(sub, dict) and not skip:
                yield from _nested(sub, path.child(junctor).index(i))
    if isinstance(s.get("not"), dict):
        yield from _nested(s["not"], path.child("not"))
    if embedded and typ != "object":
        if not typ:
            yield required(path.child("type"), "must be object if x-kubernetes-embedded-resource is true")
        else:
            yield invalid(path.child("type"), typ, "must be object if x-kubernetes-embedded-resource is true")
    elif not typ and not int_or_string and not preserve:
        detail = {"root": "must not be empty at the root", "item": "must not be empty for specified array items",
                  "field": "must not be empty for specified object fields"}[level]
        yield required(path.child("type"), detail)
    if embedded and extra is not None:
        yield forbidden(path.child("additionalProperties"), "must not be used if x-kubernetes-embedded-resource is set")
    if level == "root" and typ and typ != "object":
        yield invalid(path.child("type"), typ, "must be object at the root")
    props = s.get("properties") or {}
    check_meta = level == "root" or embedded
    for key, want in (("kind", "string"), ("apiVersion", "string"), ("metadata", "object")):
        if check_meta and key in props and (props[key] or {}).get("type") != want:
            yield invalid(path.child("properties").key(key).child("type"), (props[key] or {}).get("type", ""), f"must be {want}")
    if level == "root" and "metadata" in props:
        meta = {k: v for k, v in (props["metadata"] or {}).items() if k not in ("type", "default")}
        inner = set((meta.pop("properties", None) or {}).keys())
        if meta or not inner <= {"name", "generateName"}:
            yield forbidden(path.child("properties").key("metadata"),
                            "must not specify anything other than name and generateName, but metadata is implicitly specified")
    if embedded and not preserve and not props:
        yield required(path.child("properties"),
                       "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields")


def _nested(v: Obj, path: Path) -> Iterator[FieldError]:
    for junctor in ("allOf", "anyOf", "oneOf"):
        for i, sub in enumerate(v.get(junctor) or []):
            if isinstance(sub, dict):
                yield from _nested(sub, path.child(junctor).index(i))
    if isinstance(v.get("not"), dict):
        yield from _nested(v["not"], path.child("not"))
    if isinstance(v.get("items"), dict):
        yield from _nested(v["items"], path.child("items"))
    for key, sub in (v.get("properties") or {}).items():
        if isinstance(sub, dict):
            yield from _nested(sub, path.child("properties").key(key))
    for key, what in (("type", "must be empty to be structural"), ("additionalProperties", "must be undefined to be structural"),
                      ("default", "must be undefined to be structural"), ("title", "must be empty to be structural"),
                      ("description", "must be empty to be structural"), ("nullable", "must be false to be structural"),
                      ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
                      ("x-kubernetes-embedded-resource", "must be false to be structural"),
                      ("x-kubernetes-int-or-string", "must be false to be structural"),
                      ("x-kubernetes-list-map-keys", "must be empty to be structural"),
                      ("x-kubernetes-list-type", "must be undefined to be structural")):
        if v.get(key) not in (None, False, "", []):
            yield forbidden(path.child(key), what)
    if "metadata" in (v.get("properties") or {}):
        yield forbidden(path.child("properties").key("metadata"), "must not be specified in a nested context")


def _openapi(s: Obj, path: Path, root: bool) -> Iterator[FieldError]:
    typ = s.get("type")
    if typ and typ not in VALID_TYPES:
        yield not_supported(path.child("type"), typ, list(VALID_TYPES))
    if "$ref" in s:
        yield forbidden(path.child("$ref"), "$ref is not supported")
    if s.get("uniqueItems"):
        yield forbidden(path.child("uniqueItems"), "uniqueItems cannot be set to true since the runtime complexity becomes quadratic")
    extra = s.get("additionalProperties")
    if extra is not None and s.get("properties") and extra is not True:
        yield forbidden(path.child("additionalProperties"), "additionalProperties and properties are mutual exclusive")
    if isinstance(extra, dict):
        yield from _openapi(extra, path.child("additionalProperties"), False)
    for key, sub in (s.get("properties") or {}).items():
        if isinstance(sub, dict):
            if root and key in ("metadata", "kind", "apiVersion") and "default" in sub:
                yield forbidden(path.child("properties").key(key).child("default"), f"must not be set in top-level {key}")
            yield from _openapi(sub, path.child("properties").key(key), False)
    if isinstance(s.get("items"), dict):
        yield from _openapi(s["items"], path.child("items"), False)


def _defaults(s: Obj, path: Path) -> Iterator[FieldError]:
    """Every `default` must itself validate against its schema."""
    if "default" in s and s["default"] is not None:
        for err in _validate(s["default"], s, Path()):
            field = f"{path.child('default')}" + (f".{err.field}" if err.field else "")
            detail = err.detail.replace(". in body", " in body", 1) if err.detail.startswith(". in body") else err.detail
            if isinstance(err, SchemaError):
                yield SchemaError(err.type, field, err.bad_value, detail)
            else:
                yield FieldError(err.type, field, err.bad_value, detail)
    for key, sub in (s.get("properties") or {}).items():
        if isinstance(sub, dict):
            yield from _defaults(sub, path.child("properties").key(key))
    if isinstance(s.get("items"), dict):
        yield from _defaults(s["items"], path.child("items"))
    if isinstance(s.get("additionalProperties"), dict):
        yield from _defaults(s["additionalProperties"], path.child("additionalProperties"))
