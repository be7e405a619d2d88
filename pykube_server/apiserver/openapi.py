"""OpenAPI v3 (per group-version, with an index of content hashes) and v2, from the registry.

kubectl needs v3 documents with `paths` as well as schemas: it finds a kind's schema through the
operations' `x-kubernetes-group-version-kind`, and decides that the server can validate fields
(`create -f`, `apply` with `--validate=strict`) from the `fieldValidation` parameter on writes.
It caches each document by the `hash` in the index, so the hash is a digest of the content.
v2 is asked for only as protobuf by kubectl; we serve v2 as JSON to JSON clients and answer 404
to a protobuf-only request, which kubectl tolerates (it falls back to built-in type data).

Schemas come from the OpenAPI definitions that `kubernetes-validate` ships (JSON Schema with
`type: [X, "null"]` and `#/$defs/` references); they are rewritten to OpenAPI's forms here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

import orjson

from pykube_server.registry import enums, schemas
from pykube_server.registry.spec import ResourceSpec

Obj = dict[str, Any]
_DEFS = "#/$defs/"

_QUERY = {
    "dryRun": "When present, indicates that modifications should not be persisted. Valid values are: - All: all dry run stages will be processed",
    "fieldManager": "fieldManager is a name associated with the actor or entity that is making these changes.",
    "fieldValidation": "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
    "pretty": "If 'true', then the output is pretty printed.",
}
_LIST_QUERY = ("allowWatchBookmarks", "continue", "fieldSelector", "labelSelector", "limit", "resourceVersion",
               "resourceVersionMatch", "sendInitialEvents", "timeoutSeconds", "watch")


def _convert(schema: Any, ref_prefix: str) -> Any:
    """JSON Schema as kubernetes-validate ships it -> OpenAPI (single types, component refs)."""
    if isinstance(schema, list):
        return [_convert(s, ref_prefix) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: Obj = {}
    if "$ref" in schema and len(schema) > 1:
        # OpenAPI 3.0 ignores siblings of $ref, so kube wraps the reference in allOf to keep the
        # field's own description (what `kubectl explain` prints first) and default.
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        converted = _convert(rest, ref_prefix)
        converted["allOf"] = [{"$ref": ref_prefix + schema["$ref"].split("/")[-1]}]
        return converted
    for key, value in schema.items():
        if key == "$ref" and isinstance(value, str):
            out["$ref"] = ref_prefix + value.split("/")[-1]
        elif key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if len(types) == 1:
                out["type"] = types[0]
        elif key == "enum" and isinstance(value, list):
            out["enum"] = [v for v in value if v is not None]
        elif key in ("properties", "patternProperties"):
            out[key] = {k: _convert(v, ref_prefix) for k, v in value.items()}
            for type_field in ("apiVersion", "kind"):
                # kubernetes-validate pins these with an enum for validation; kube's OpenAPI
                # does not, and `kubectl explain` would print it.
                if key == "properties" and isinstance(out[key].get(type_field), dict):
                    out[key][type_field].pop("enum", None)
        elif key in ("$schema", "$id"):
            continue
        else:
            out[key] = _convert(value, ref_prefix)
    if "type" in schema and isinstance(schema["type"], list) and "string" in schema["type"] and "integer" in schema["type"]:
        out["x-kubernetes-int-or-string"] = True
    return out


def _closure(names: Iterable[str], defs: dict[str, Obj]) -> list[str]:
    seen: dict[str, None] = {}
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in seen or name not in defs:
            continue
        seen[name] = None
        stack.extend(_refs(defs[name]))
    return sorted(seen)


def _refs(schema: Any) -> Iterable[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "$ref" and isinstance(value, str):
                yield value.split("/")[-1]
            else:
                yield from _refs(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from _refs(item)


def _param(name: str, description: str = "", *, where: str = "query", required: bool = False, typ: str = "string") -> Obj:
    p: Obj = {"name": name, "in": where, "description": description, "schema": {"type": typ, "uniqueItems": True}}
    if required:
        p["required"] = True
    return p


class OpenAPI:
    """Documents built on first use and kept, with their hashes."""

    def __init__(self, resources: Iterable[ResourceSpec], version: str,
                 extra_definitions: dict[str, Obj] | None = None) -> None:
        """`extra_definitions`: custom resources' schemas, in the same JSON Schema form as the
        built-in ones, found for a spec through their `x-kubernetes-group-version-kind`."""
        self.version = version
        # metrics.k8s.io is served by this server (where kube-aggregator would merge metrics-server's
        # OpenAPI), so every document set includes it
        from pykube_server.apiserver import metrics, metrics_openapi

        resources = tuple(resources)
        resources = (*resources, *(s for s in metrics.SPECS if s not in resources))
        # custom resources are published weaker in v2 than in v3 (see registry/crd/openapiv2.py)
        from pykube_server.registry.crd.openapiv2 import v2_definitions

        self._crd_v2 = v2_definitions(extra_definitions or {})
        extra_definitions = {**metrics_openapi.DEFINITIONS, **(extra_definitions or {})}
        self._defs = {**schemas.all_definitions(), **extra_definitions}
        self._custom = {(gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", "")): name
                        for name, d in (extra_definitions or {}).items() for gvk in d.get("x-kubernetes-group-version-kind", [])}
        self.by_gv: dict[str, list[ResourceSpec]] = {}
        for spec in resources:
            self.by_gv.setdefault(self.gv_path(spec), []).append(spec)
        self._v3: dict[str, tuple[bytes, str]] = {}
        self._v2: bytes | None = None
        self._v2pb: bytes | None = None

    def definition(self, spec: ResourceSpec) -> str:
        return spec.definition or self._custom.get((spec.group, spec.version, spec.kind), "")

    @staticmethod
    def gv_path(spec: ResourceSpec) -> str:
        return f"apis/{spec.group}/{spec.version}" if spec.group else f"api/{spec.version}"

    def v3(self, gv_path: str) -> tuple[bytes, str] | None:
        if gv_path not in self.by_gv:
            return None
        if gv_path not in self._v3:
            doc = self._build_v3(self.by_gv[gv_path])
            body = orjson.dumps(doc)
            self._v3[gv_path] = (body, hashlib.sha512(body).hexdigest()[:128].upper())
        return self._v3[gv_path]

    def index(self) -> bytes:
        paths = {}
        for gv in sorted(self.by_gv):
            _, digest = self.v3(gv)  # type: ignore[misc]
            paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={digest}"}
        return orjson.dumps({"paths": paths})

    def v2(self) -> bytes:
        if self._v2 is None:
            defs = {**self._defs, **self._crd_v2}
            definitions = {name: enums.annotate(name, _convert(defs[name], "#/definitions/")) for name in defs}
            paths: Obj = {}
            for specs in self.by_gv.values():
                for spec in specs:
                    paths.update(self._paths(spec, "#/definitions/", v2=True))
            self._v2 = orjson.dumps({"swagger": "2.0", "info": {"title": "Kubernetes", "version": f"v{self.version}.0"},
                                     "paths": paths, "definitions": definitions})
        return self._v2

    def v2_protobuf(self) -> bytes:
        """The v2 definitions as gnostic protobuf, what kubectl asks for (see `openapiv2pb`)."""
        if self._v2pb is None:
            from pykube_server.apiserver.openapiv2pb import document

            self._v2pb = document({**self._defs, **self._crd_v2}, self.version)
        return self._v2pb

    def _build_v3(self, specs: list[ResourceSpec]) -> Obj:
        paths: Obj = {}
        roots = []
        for spec in specs:
            paths.update(self._paths(spec, "#/components/schemas/", v2=False))
            if self.definition(spec):
                roots.append(self.definition(spec))
        roots += ["io.k8s.apimachinery.pkg.apis.meta.v1.Status", "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
                  "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent", "io.k8s.apimachinery.pkg.apis.meta.v1.Patch"]
        if any(s.subresource("scale") for s in specs):
            roots.append("io.k8s.api.autoscaling.v1.Scale")
        defs = self._defs
        roots += [self.definition(s) + "List" for s in specs if self.definition(s) and self.definition(s) + "List" in defs]
        components = {name: enums.annotate(name, _convert(defs[name], "#/components/schemas/"))
                      for name in _closure(roots, defs)}
        return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": f"v{self.version}.0"},
                "paths": paths, "components": {"schemas": components}}

    def _paths(self, spec: ResourceSpec, ref: str, *, v2: bool) -> Obj:
        base = f"/{self.gv_path(spec)}"
        collection = f"{base}/namespaces/{{namespace}}/{spec.plural}" if spec.namespaced else f"{base}/{spec.plural}"
        gvk = {"group": spec.group, "version": spec.version, "kind": spec.kind}
        definition = self.definition(spec)
        body_ref = {"$ref": ref + definition} if definition else {"type": "object"}
        list_def = definition + "List"
        list_ref = {"$ref": ref + list_def} if definition and list_def in self._defs else {"type": "object"}
        path_params = [_param("namespace", "object name and auth scope, such as for teams and projects", where="path", required=True)] \
            if spec.namespaced else []
        name_param = [_param("name", f"name of the {spec.kind}", where="path", required=True)]
        write_params = [_param(n, d) for n, d in _QUERY.items()]

        def op(action: str, method: str, schema: Obj, *, params: list[Obj], body: bool = False, code: str = "200") -> Obj:
            operation: Obj = {
                "description": f"{action} {spec.kind}",
                "operationId": f"{method}{spec.group.replace('.', '_')}{spec.version}{spec.kind}",
                "parameters": params,
                "responses": {code: {"description": "OK", **({"schema": schema} if v2 else
                                     {"content": {"application/json": {"schema": schema}}})},
                              "401": {"description": "Unauthorized"}},
                "tags": [spec.group.split(".")[0] + "_" + spec.version if spec.group else "core_" + spec.version],
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": gvk,
            }
            if body:
                if v2:
                    operation["parameters"] = params + [{"name": "body", "in": "body", "required": True, "schema": schema}]
                else:
                    operation["requestBody"] = {"content": {"*/*": {"schema": schema}}, "required": True}
            return operation

        out: Obj = {}
        verbs = set(spec.verbs)
        coll: Obj = {"parameters": path_params + [_param("pretty", _QUERY["pretty"])]}
        if "list" in verbs:
            coll["get"] = op("list", "list", list_ref, params=[_param(n) for n in _LIST_QUERY])
        if "create" in verbs:
            coll["post"] = op("post", "create", body_ref, params=write_params, body=True, code="201")
        if "deletecollection" in verbs:
            coll["delete"] = op("deletecollection", "deletecollection", {"$ref": ref + "io.k8s.apimachinery.pkg.apis.meta.v1.Status"},
                                params=[_param(n) for n in _LIST_QUERY])
        if len(coll) > 1:
            out[collection] = coll
        item: Obj = {"parameters": path_params + name_param + [_param("pretty", _QUERY["pretty"])]}
        if "get" in verbs:
            item["get"] = op("get", "read", body_ref, params=[])
        if "update" in verbs:
            item["put"] = op("put", "replace", body_ref, params=write_params, body=True)
        if "patch" in verbs:
            item["patch"] = op("patch", "patch", body_ref, params=write_params + [_param("force", typ="boolean")],
                               body=True)
        if "delete" in verbs:
            item["delete"] = op("delete", "delete", {"$ref": ref + "io.k8s.apimachinery.pkg.apis.meta.v1.Status"},
                                params=[_param("dryRun"), _param("gracePeriodSeconds", typ="integer"),
                                        _param("propagationPolicy")])
        if len(item) > 1:
            out[f"{collection}/{{name}}"] = item
        for sub in spec.subresources:
            if sub.name not in ("status", "scale"):
                continue
            sub_ref = body_ref if sub.name == "status" else {"$ref": ref + "io.k8s.api.autoscaling.v1.Scale"}
            sub_gvk_kind = spec.kind if sub.name == "status" else "Scale"
            entry: Obj = {"parameters": item["parameters"]}
            for method, action, verb in (("get", "get", "read"), ("put", "put", "replace"), ("patch", "patch", "patch")):
                if action == "get" or {"put": "update", "patch": "patch"}[action] in sub.verbs:
                    o = op(action, verb, sub_ref, params=[] if action == "get" else write_params, body=action != "get")
                    o["operationId"] += sub.name.capitalize()
                    o["x-kubernetes-group-version-kind"] = {"group": sub.group if sub.group is not None else spec.group,
                                                            "version": sub.version or spec.version, "kind": sub_gvk_kind}
                    entry[method] = o
            out[f"{collection}/{{name}}/{sub.name}"] = entry
        if spec.namespaced and "list" in verbs:
            out[f"{base}/{spec.plural}"] = {"get": op("list", "list", list_ref, params=[_param(n) for n in _LIST_QUERY])}
        return out


def serve_openapi(openapi: OpenAPI, request: Any, path: str) -> Any:
    """/openapi/v3 (index), /openapi/v3/<gv>?hash=..., /openapi/v2."""
    from aiohttp import web

    if path == "/openapi/v3":
        return web.Response(body=openapi.index(), content_type="application/json")
    if path.startswith("/openapi/v3/"):
        gv = path[len("/openapi/v3/"):]
        found = openapi.v3(gv)
        if found is None:
            return web.Response(status=404, text="404 page not found\n")
        body, digest = found
        wanted = request.query.get("hash")
        if wanted and wanted != digest:
            raise web.HTTPMovedPermanently(f"/openapi/v3/{gv}?hash={digest}")
        headers = {"ETag": f'"{digest}"', "Vary": "Accept"}
        headers["Cache-Control"] = "public, immutable" if wanted else "no-cache, private"
        if request.headers.get("If-None-Match") == headers["ETag"]:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type="application/json", headers=headers)
    if path == "/openapi/v2":
        accept = request.headers.get("Accept", "")
        if "protobuf" in accept:
            from pykube_server.apiserver.openapiv2pb import CONTENT_TYPE

            resp = web.Response(body=openapi.v2_protobuf())
            resp.headers["Content-Type"] = CONTENT_TYPE
            resp.headers["Vary"] = "Accept"
            return resp
        if accept and "json" not in accept and "*/*" not in accept:
            return web.Response(status=404, text="404 page not found\n")
        return web.Response(body=openapi.v2(), content_type="application/json")
    return web.Response(status=404, text="404 page not found\n")
