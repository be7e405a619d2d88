"""create, update, patch, delete, deletecollection, and the status and scale subresources.

Every write is checked before anything is stored: body identity (apiVersion/kind/name/
namespace must agree with the URL), unknown fields per `fieldValidation`, then the store's
strategy hooks. A failing request changes nothing.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from pykube_server.api import errors
from pykube_server.apiserver import authn
from pykube_server.api.patch import (
    PatchError,
    apply_json_patch,
    apply_merge_patch,
    apply_strategic_merge_patch,
)
from pykube_server.api.selectors import selector_from_object
from pykube_server.apiserver.admission import warnings_of
from pykube_server.apiserver.handlers.common import Call, respond, success_status
from pykube_server.apiserver.negotiation import content_type_of, decode_body
from pykube_server.registry import managedfields
from pykube_server.registry.certificates import set_requester
from pykube_server.registry.fieldcheck import TypeMismatch, unknown_fields
from pykube_server.registry.patch_schema import schema_for_kind
from pykube_server.registry.store import RETURNS_DELETED_OBJECT
from pykube_server.registry.strategy import now_rfc3339

Obj = dict[str, Any]
PATCH_MEDIA = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml",
               "application/strategic-merge-patch+json")


async def read_body(call: Call) -> Any:
    data = await call.request.read()
    return decode_body(data, content_type_of(call.request.headers.get("Content-Type")))


def _expected_kind(call: Call) -> tuple[str, str]:
    if call.info.subresource == "scale":
        return "autoscaling/v1", "Scale"
    return call.spec.api_version, call.spec.kind


def check_object(call: Call, body: Any) -> tuple[Obj, list[str]]:
    """Identity checks and field validation; returns the body and any warnings."""
    if not isinstance(body, dict):
        raise errors.BadRequest("the object provided is unrecognized (must be of type " + call.spec.kind + ")")
    api_version, kind = _expected_kind(call)
    if body.get("apiVersion") and body["apiVersion"] != api_version:
        raise errors.BadRequest(
            f"the API version in the data ({body['apiVersion']}) does not match the expected API version ({api_version})")
    if body.get("kind") and body["kind"] != kind:
        raise errors.BadRequest(f"the kind in the data ({body['kind']}) does not match the expected kind ({kind})")
    body["apiVersion"], body["kind"] = api_version, kind
    meta = body.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        raise errors.BadRequest(f"{kind} in version \"{api_version.rpartition('/')[2]}\" cannot be handled as a {kind}: metadata must be an object")
    if isinstance(meta, dict):
        if meta.get("creationTimestamp") is None:
            meta.pop("creationTimestamp", None)
        ns = meta.get("namespace")
        if call.spec.namespaced and ns and ns != call.info.namespace:
            raise errors.BadRequest("the namespace of the provided object does not match the namespace sent on the request")
    return body, field_validation(call, body)


def field_validation(call: Call, body: Obj) -> list[str]:
    """Unknown fields: Strict refuses them, Warn names them in warnings, Ignore says nothing.
    Unless refused they are dropped, as decoding into kube's typed structs drops them."""
    mode = call.query("fieldValidation", "Warn")
    if mode not in ("Ignore", "Warn", "Strict"):
        raise errors.BadRequest(f'fieldValidation must be one of "Ignore", "Warn", or "Strict", got "{mode}"')
    if call.info.subresource == "scale":
        return []
    try:
        unknown = unknown_fields(body, call.spec.definition)
    except TypeMismatch as exc:
        raise errors.BadRequest(f'{call.spec.kind} in version "{call.spec.version}" cannot be handled as a '
                                f'{call.spec.kind}: {exc}') from None
    if not unknown:
        return []
    texts = [f'unknown field "{path}"' for path in unknown]
    if mode == "Strict":
        version = call.spec.version
        raise errors.BadRequest(
            f'{call.spec.kind} in version "{version}" cannot be handled as a {call.spec.kind}: strict decoding error: '
            + ", ".join(texts))
    for path in unknown:
        _drop_path(body, path)
    return [] if mode == "Ignore" else texts


_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _drop_path(obj: Any, path: str) -> None:
    """Remove the field at a kube-style path (`spec.containers[0].bogus`) if it is there."""
    parts: list[str | int] = [m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _SEGMENT.finditer(path)]
    if not parts:
        return
    cur = obj
    for part in parts[:-1]:
        if isinstance(part, int) and isinstance(cur, list) and part < len(cur):
            cur = cur[part]
        elif isinstance(part, str) and isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return
    if isinstance(cur, dict):
        cur.pop(parts[-1], None)  # type: ignore[arg-type]


# -- create --------------------------------------------------------------------------------
async def create(call: Call) -> web.StreamResponse:
    body, warnings = check_object(call, await read_body(call))
    if (call.spec.group, call.spec.plural) == ("certificates.k8s.io", "certificatesigningrequests"):
        user = call.request.get(authn.USER) or authn.ANONYMOUS  # who asks, never what the body claims
        set_requester(body, user.username, user.uid, user.groups, dict(user.extra))
    obj = await call.store.create(call.namespace, body, dry_run=call.dry_run, managed=_recorder(call),
                                  admission=(admission := call.admission()))
    return respond(call, obj, 201, warnings + warnings_of(admission))


# -- update (PUT) ----------------------------------------------------------------------------
async def update(call: Call) -> web.StreamResponse:
    body, warnings = check_object(call, await read_body(call))
    name = (body.get("metadata") or {}).get("name")
    if name and name != call.info.name:
        raise errors.BadRequest(f"the name of the object ({name}) does not match the name on the URL ({call.info.name})")
    if call.info.subresource == "scale":
        return await _write_scale(call, lambda scale: _replace_scale(scale, body))

    async def transform(current: Obj | None) -> Obj:
        new = copy.deepcopy(body)
        new.setdefault("metadata", {}).setdefault("name", call.info.name)
        return new

    obj, created = await call.store.update(call.namespace, call.info.name, transform,
                                          subresource=call.info.subresource, dry_run=call.dry_run,
                                          managed=_recorder(call), admission=(admission := call.admission()))
    return respond(call, obj, 201 if created else 200, warnings + warnings_of(admission))


# -- patch -----------------------------------------------------------------------------------
def patcher(call: Call, patch: Any, media: str) -> Callable[[Obj], Obj]:
    if media == "application/json-patch+json":
        if not isinstance(patch, list):
            raise errors.BadRequest("json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp")
        return lambda doc: apply_json_patch(doc, patch)
    if not isinstance(patch, dict):
        raise errors.BadRequest("json: cannot unmarshal array into Go value of type map[string]interface {}")
    if media == "application/merge-patch+json":
        return lambda doc: apply_merge_patch(doc, patch)
    group, version = ("autoscaling", "v1") if call.info.subresource == "scale" else (call.spec.group, call.spec.version)
    kind = "Scale" if call.info.subresource == "scale" else call.spec.kind
    schema = schema_for_kind(group, version, kind)
    return lambda doc: apply_strategic_merge_patch(doc, patch, schema)


def patch_error(exc: PatchError) -> errors.StatusError:
    """The answer kube-apiserver gives for a patch that cannot be applied."""
    if exc.code == 400:
        return errors.BadRequest(exc.message)
    if exc.code == 422:
        return errors.Invalid("the server rejected our request due to an error in our request",
                              details={"causes": [{"reason": "UnexpectedServerResponse", "message": exc.message}]})
    return errors.StatusError(exc.message, code=exc.code, reason="")


async def patch(call: Call) -> web.StreamResponse:
    media = content_type_of(call.request.headers.get("Content-Type"))
    if media not in PATCH_MEDIA:
        raise errors.UnsupportedMediaType(
            f"the body of the request was in an unknown format - accepted media types include: {', '.join(PATCH_MEDIA)}")
    data = await call.request.read()
    patch_body = decode_body(data, media)
    if media == "application/apply-patch+yaml":
        return await _apply(call, patch_body)
    apply = patcher(call, patch_body, media)
    warnings: list[str] = []

    def patched(doc: Obj) -> Obj:
        try:
            out = apply(doc)
        except PatchError as exc:
            raise patch_error(exc) from None
        if not isinstance(out, dict):
            raise errors.BadRequest("the patch produced a non-object document")
        return out

    if call.info.subresource == "scale":
        return await _write_scale(call, patched)

    async def transform(current: Obj | None) -> Obj:
        if current is None:
            raise call.store.not_found(call.info.name)
        new = patched(current)
        checked, found = check_object(call, new)
        warnings[:] = found
        return checked

    obj, _ = await call.store.update(call.namespace, call.info.name, transform,
                                    subresource=call.info.subresource, dry_run=call.dry_run,
                                    managed=_recorder(call), admission=(admission := call.admission()))
    return respond(call, obj, 200, warnings + warnings_of(admission))


def _kind(call: Call) -> managedfields.Kind:
    spec = call.spec
    return managedfields.Kind(spec.api_version, spec.kind, spec.definition, spec.has_status)


def _recorder(call: Call) -> managedfields.ManagedHook:
    """Records a create/update/patch in managedFields: the manager is `fieldManager`, else
    derived from the User-Agent as kube does; writes through /status and /scale are marked."""
    manager = call.query("fieldManager") or managedfields.manager_from_user_agent(
        call.request.headers.get("User-Agent", ""))
    return managedfields.update_hook(_kind(call), manager, call.info.subresource, now_rfc3339)


async def _apply(call: Call, manifest: Any) -> web.StreamResponse:
    """Server-side apply: the manifest is merged by the field manager, which owns exactly its
    fields afterwards, removes what it stopped applying and answers 409 on conflicts."""
    manager = call.query("fieldManager")
    if not manager:
        raise errors.BadRequest("PATCH, application/apply-patch+yaml requires fieldManager to be set")
    body, warnings = check_object(call, manifest)
    kind = _kind(call)
    force = bool(call.bool_query("force"))
    entries: list[Obj] | None = None

    async def transform(current: Obj | None) -> Obj:
        nonlocal entries
        merged = managedfields.apply(current, copy.deepcopy(body), manager, force, kind=kind,
                                     subresource=call.info.subresource, time=now_rfc3339())
        entries = merged["metadata"].get("managedFields")
        if current is not None:
            merged["metadata"].setdefault("resourceVersion", current["metadata"]["resourceVersion"])
        return merged

    def keep(old: Obj | None, new: Obj) -> None:
        managedfields.keep_hook(entries)(old, new)

    obj, was_created = await call.store.update(call.namespace, call.info.name, transform,
                                              subresource=call.info.subresource, dry_run=call.dry_run,
                                              force_allow_create=True, managed=keep,
                                              admission=(admission := call.admission()))
    return respond(call, obj, 201 if was_created else 200, warnings + warnings_of(admission))


# -- scale -----------------------------------------------------------------------------------
def scale_of(obj: Obj) -> Obj:
    meta = obj["metadata"]
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    out_status: Obj = {"replicas": status.get("replicas", 0)}
    selector = spec.get("selector")
    if isinstance(selector, dict):
        text = selector_from_object(selector).to_string() if ("matchLabels" in selector or "matchExpressions" in selector) \
            else ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
        if text:
            out_status["selector"] = text
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta},
        "spec": {"replicas": spec.get("replicas", 0)},
        "status": out_status,
    }


def _replace_scale(scale: Obj, body: Obj) -> Obj:
    new = copy.deepcopy(body)
    new.setdefault("metadata", {}).setdefault("resourceVersion", "")
    return new


async def get_scale(call: Call) -> web.StreamResponse:
    cached = await call.store.get(call.namespace, call.info.name, resource_version=call.query("resourceVersion"))
    return respond(call, scale_of(cached.decode()))


async def _write_scale(call: Call, change: Callable[[Obj], Obj]) -> web.StreamResponse:
    async def transform(current: Obj | None) -> Obj:
        if current is None:
            raise call.store.not_found(call.info.name)
        scale = change(scale_of(current))
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.Invalid.from_errors("Scale", "autoscaling", call.info.name, [
                __import__("pykube_server.api.fields", fromlist=["invalid"]).invalid(
                    "spec.replicas", replicas, "must be greater than or equal to 0")])
        expected = (scale.get("metadata") or {}).get("resourceVersion") or ""
        new = copy.deepcopy(current)
        new.setdefault("spec", {})["replicas"] = replicas
        if expected:
            new["metadata"]["resourceVersion"] = expected
        return new

    obj, _ = await call.store.update(call.namespace, call.info.name, transform, dry_run=call.dry_run,
                                    managed=_recorder(call), admission=call.admission())
    return respond(call, scale_of(obj))


# -- delete ----------------------------------------------------------------------------------
async def delete_options(call: Call) -> Obj:
    data = await call.request.read()
    options: Obj = {}
    if data.strip():
        body = decode_body(data, content_type_of(call.request.headers.get("Content-Type")))
        if isinstance(body, dict):
            options = body
    if "gracePeriodSeconds" in call.request.query:
        options["gracePeriodSeconds"] = call.int_query("gracePeriodSeconds")
    if "propagationPolicy" in call.request.query:
        options["propagationPolicy"] = call.query("propagationPolicy")
    policy = options.get("propagationPolicy")
    if policy is not None and policy not in ("Orphan", "Background", "Foreground"):
        raise errors.Invalid.from_errors("DeleteOptions", "meta.k8s.io", "", [
            __import__("pykube_server.api.fields", fromlist=["not_supported"]).not_supported(
                "propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"])])
    return options


def _deleted_details(call: Call, obj: Obj) -> Obj:
    details: Obj = {"name": obj["metadata"].get("name", call.info.name)}
    if call.spec.group:
        details["group"] = call.spec.group
    details["kind"] = call.spec.plural
    details["uid"] = obj["metadata"].get("uid", "")
    return details


async def delete(call: Call) -> web.StreamResponse:
    options = await delete_options(call)
    dry_run = call.dry_run or "All" in (options.get("dryRun") or [])
    admission = call.admission(dry_run)
    if admission is not None:  # webhooks receive the request's DeleteOptions
        admission.base.options = {**options, "kind": "DeleteOptions", "apiVersion": "meta.k8s.io/v1"}
    result = await call.store.delete(call.namespace, call.info.name, options, dry_run=dry_run,
                                     admission=admission)
    if result.deleted and (call.spec.group, call.spec.plural) not in RETURNS_DELETED_OBJECT:
        return respond(call, success_status(_deleted_details(call, result.obj)), warnings=warnings_of(admission))
    return respond(call, result.obj, warnings=warnings_of(admission))


async def delete_collection(call: Call) -> web.StreamResponse:
    options = await delete_options(call)
    dry_run = call.dry_run or "All" in (options.get("dryRun") or [])
    listed = await call.store.list(call.namespace, label_selector=call.query("labelSelector"),
                                   field_selector=call.query("fieldSelector"))
    items = []
    for cached in listed.items:
        try:
            result = await call.store.delete(cached.namespace, cached.name, options, dry_run=dry_run,
                                             admission=call.admission(dry_run))
        except errors.NotFound:
            continue
        items.append(result.obj)
    return respond(call, {"kind": f"{call.spec.kind}List", "apiVersion": call.spec.api_version,
                          "metadata": {"resourceVersion": str(call.store.cacher.revision)}, "items": items})


Handler = Callable[[Call], Awaitable[web.StreamResponse]]
