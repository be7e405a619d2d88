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
from pykube_server.apiserver.duplicates import Repeats, yaml_error
from pykube_server.apiserver.negotiation import content_type_of, decode_body, decode_body_repeats
from pykube_server.registry import managedfields
from pykube_server.registry.certificates import set_requester
from pykube_server.registry.fieldcheck import TypeMismatch, unknown_fields
from pykube_server.registry.managedfields.undeclared import typed_patch_error
from pykube_server.registry.patch_schema import schema_for_kind
from pykube_server.registry.store import RETURNS_DELETED_OBJECT
from pykube_server.registry.strategy import now_rfc3339

Obj = dict[str, Any]
PATCH_MEDIA = ("application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml",
               "application/strategic-merge-patch+json")


async def read_body(call: Call) -> tuple[Any, Repeats | None]:
    """The body, and its repeated keys when field validation will report them."""
    data = await call.request.read()
    return decode_body_repeats(data, content_type_of(call.request.headers.get("Content-Type")),
                               validation_mode(call) != "Ignore")


def validation_mode(call: Call) -> str:
    mode = call.query("fieldValidation", "Warn")
    if mode not in ("Ignore", "Warn", "Strict"):
        raise errors.BadRequest(f'fieldValidation must be one of "Ignore", "Warn", or "Strict", got "{mode}"')
    return mode


def _expected_kind(call: Call) -> tuple[str, str]:
    if call.info.subresource == "scale":
        return "autoscaling/v1", "Scale"
    return call.spec.api_version, call.spec.kind


def check_object(call: Call, body: Any, repeats: Repeats | None = None,
                 patch_texts: tuple[list[str], list[str]] | None = None) -> tuple[Obj, list[str]]:
    """Identity checks and field validation; returns the body and any warnings."""
    check_identity(call, body)
    return body, field_validation(call, body, repeats, patch_texts)


def check_identity(call: Call, body: Any) -> None:
    """The body is an object of the kind and namespace the URL names."""
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


def field_validation(call: Call, body: Obj, repeats: Repeats | None = None,
                     patch_texts: tuple[list[str], list[str]] | None = None) -> list[str]:
    """Unknown and repeated fields: Strict refuses them, Warn names them in warnings, Ignore says
    nothing. Unless refused, unknown fields are dropped, as decoding into kube's typed structs
    drops them (and of repeated keys the last one counts).

    `repeats` are the body's own repeated keys; `patch_texts` (error texts, warning texts) what
    a patch's own decoding found, which kube reports before the patched object's unknown fields."""
    mode = validation_mode(call)
    if call.info.subresource == "scale":
        return []
    try:
        unknown = _unknown_fields(call, body)
    except TypeMismatch as exc:
        raise errors.BadRequest(f'{call.spec.kind} in version "{call.spec.version}" cannot be handled as a '
                                f'{call.spec.kind}: {exc}') from None
    if not unknown and not repeats and not patch_texts:
        return []
    if _is_custom(call):
        error_texts, warning_texts = _decoded_then_pruned(unknown, repeats, patch_texts)
    else:
        error_texts, warning_texts = _strict_texts(unknown, repeats, patch_texts)
    if mode == "Strict" and error_texts:
        version = call.spec.version
        raise errors.BadRequest(
            f'{call.spec.kind} in version "{version}" cannot be handled as a {call.spec.kind}: strict decoding error: '
            + ", ".join(error_texts))
    for path in unknown:
        _drop_path(body, path)
    return [] if mode == "Ignore" else warning_texts


def _is_custom(call: Call) -> bool:
    """A custom resource: its strategy knows the CRD's schema (`unknown_fields`)."""
    return hasattr(call.store.strategy, "unknown_fields")


def _unknown_fields(call: Call, body: Obj) -> list[str]:
    """The fields the kind's schema does not declare (a built-in kind's OpenAPI definition, a
    custom resource's CRD schema)."""
    if _is_custom(call):
        return call.store.strategy.unknown_fields(body)  # type: ignore[attr-defined, no-any-return]
    return unknown_fields(body, call.spec.definition)


def _decoded_then_pruned(unknown: list[str], repeats: Repeats | None,
                         patch_texts: tuple[list[str], list[str]] | None) -> tuple[list[str], list[str]]:
    """A custom resource's strict errors, in apiextensions-apiserver's order: what decoding found
    (repeated keys in document order, or YAML's error; a patch's own findings), then the unknown
    fields its schema pruning found: the object's metadata, the rest in key order, embedded
    objects' metadata last (a field both repeated and unknown is named twice)."""
    def rank(item: tuple[int, str]) -> tuple[Any, ...]:
        index, path = item
        if path.startswith("metadata."):
            return (0, index)
        return (2, index) if ".metadata." in path else (1, _path_key(path))

    ordered = [f'unknown field "{path}"' for _, path in sorted(enumerate(unknown), key=rank)]
    if patch_texts is not None:
        return patch_texts[0] + ordered, patch_texts[1] + ordered
    if repeats is not None and repeats.yaml:
        return [yaml_error(repeats.yaml), *ordered], [*repeats.yaml, *ordered]
    found = repeats.json if repeats is not None else None
    decoded = [f'duplicate field "{path}"' for _, path in found.repeats] if found is not None else []
    return decoded + ordered, decoded + ordered


def _strict_texts(unknown: list[str], repeats: Repeats | None,
                  patch_texts: tuple[list[str], list[str]] | None) -> tuple[list[str], list[str]]:
    """kube's strict decoding errors, in its order, as (error parts, warnings).

    A JSON body is decoded in document order, so unknown and repeated fields interleave by
    position (a repeated key inside an unknown field is never seen). A YAML body is first made
    JSON with sorted keys, so yaml.v2's one error for the repeats leads and the unknown fields
    follow in key order; so do those of a patched object, after the patch's own findings."""
    if patch_texts is not None or (repeats is not None and repeats.yaml):
        ordered = [f'unknown field "{path}"' for path in sorted(unknown, key=_path_key)]
        if patch_texts is not None:
            return patch_texts[0] + ordered, patch_texts[1] + ordered
        lines = repeats.yaml if repeats is not None else []
        return [yaml_error(lines), *ordered], [*lines, *ordered]
    found = repeats.json if repeats is not None else None
    if found is None:
        texts = [f'unknown field "{path}"' for path in unknown]
        return texts, texts
    entries = [(found.order_of(path), f'unknown field "{path}"') for path in unknown]
    entries += [(position, f'duplicate field "{path}"') for position, path in found.repeats
                if not any(_within(path, outer) for outer in unknown)]
    texts = [text for _, text in sorted(entries, key=lambda entry: entry[0])]
    return texts, texts


def patch_findings(patch: Any, repeats: Repeats | None, media: str) -> tuple[list[str], list[str]] | None:
    """What decoding a merge, strategic merge or JSON patch itself reports: repeated keys, and
    for a JSON patch the operations' unknown members (`json patch unknown field "[0].foo"`)."""
    found = repeats.json if repeats is not None else None
    if media != "application/json-patch+json":
        texts = [f'duplicate field "{path}"' for _, path in found.repeats] if found is not None else []
        return (texts, texts) if texts else None
    entries: list[tuple[int, str]] = []
    if isinstance(patch, list):
        for i, op in enumerate(patch):
            if isinstance(op, dict):
                entries += [(found.order_of(f"[{i}].{key}") if found else i, f'json patch unknown field "[{i}].{key}"')
                            for key in op if key not in _JSON_PATCH_MEMBERS]
    if found is not None:
        # only an operation's own members: repeats inside a `value` are dropped unseen, as kube's
        # json-patch library drops them
        entries += [(position, f'json patch duplicate field "{path}"') for position, path in found.repeats
                    if _OP_MEMBER.fullmatch(path)]
    texts = [text for _, text in sorted(entries, key=lambda entry: entry[0])]
    return (texts, texts) if texts else None


_JSON_PATCH_MEMBERS = frozenset(("op", "path", "value", "from"))
_OP_MEMBER = re.compile(r"\[\d+\]\.[^.\[\]]+")


def _within(path: str, outer: str) -> bool:
    return path == outer or path.startswith(outer + ".") or path.startswith(outer + "[")


def _path_key(path: str) -> tuple[Any, ...]:
    """Order of a path in a walk over keys sorted at every level (Go marshals maps that way)."""
    return tuple(m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _SEGMENT.finditer(path))


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
    body, warnings = check_object(call, *await read_body(call))
    if (call.spec.group, call.spec.plural) == ("certificates.k8s.io", "certificatesigningrequests"):
        user = call.request.get(authn.USER) or authn.ANONYMOUS  # who asks, never what the body claims
        set_requester(body, user.username, user.uid, user.groups, dict(user.extra))
    obj = await call.store.create(call.namespace, body, dry_run=call.dry_run, managed=_recorder(call),
                                  admission=(admission := call.admission()))
    return respond(call, obj, 201, warnings + warnings_of(admission))


# -- update (PUT) ----------------------------------------------------------------------------
async def update(call: Call) -> web.StreamResponse:
    body, warnings = check_object(call, *await read_body(call))
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
    patch_body, repeats = decode_body_repeats(data, media, validation_mode(call) != "Ignore")
    if media == "application/apply-patch+yaml":
        return await _apply(call, patch_body, repeats)
    apply = patcher(call, patch_body, media)
    findings = patch_findings(patch_body, repeats, media)
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
        checked, found = check_object(call, new, patch_texts=findings or ([], []))
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


async def _apply(call: Call, manifest: Any, repeats: Repeats | None = None) -> web.StreamResponse:
    """Server-side apply: the manifest is merged by the field manager, which owns exactly its
    fields afterwards, removes what it stopped applying and answers 409 on conflicts.

    Field validation is apply's own: repeated YAML keys are refused (Strict) or named (Warn) as
    the YAML decoder words them, and an undeclared field fails the typed conversion whatever
    `fieldValidation` says (kube's 500 "failed to create typed patch object")."""
    manager = call.query("fieldManager")
    if not manager:
        raise errors.BadRequest("PATCH, application/apply-patch+yaml requires fieldManager to be set")
    mode = validation_mode(call)
    lines = repeats.yaml if repeats is not None else []
    if lines and mode == "Strict":
        raise errors.BadRequest("error strict decoding YAML: error converting YAML to JSON: " + yaml_error(lines))
    warnings = list(lines) if mode == "Warn" else []
    check_identity(call, manifest)
    body: Obj = manifest
    kind = _kind(call)
    if call.info.subresource != "scale":
        try:
            unknown = _unknown_fields(call, body)
        except TypeMismatch as exc:
            raise errors.BadRequest(f'{call.spec.kind} in version "{call.spec.version}" cannot be handled as a '
                                    f'{call.spec.kind}: {exc}') from None
        if unknown:
            raise typed_patch_error(body, kind.api_version, kind.kind, kind.schema, unknown)
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
