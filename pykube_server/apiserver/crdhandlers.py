"""HTTP handlers where custom resources (and the CRD kind's DELETE) differ from built-in kinds.

Custom objects go through the generic handlers, as apiextensions-apiserver's do through the
generic REST handlers: bodies are decoded with their repeated keys, and the generic field
validation finds unknown fields against the CRD's schema (the strategy's `unknown_fields`), so
Strict refuses unknown and duplicate fields in kube's words, Warn names them, and server-side
apply of an undeclared field fails the typed conversion ("field not declared in schema").
What differs is here: strategic merge patch is refused with 415, the scale subresource follows
the CRD's replica and selector paths, and no new object is accepted while the CRD is
terminating. DELETE of a CRD first only marks it, adding the
`customresourcecleanup.apiextensions.k8s.io` finalizer (the CRD's REST Delete does this), so
its objects are removed before it goes.
"""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from pykube_server.api import errors
from pykube_server.api.fields import invalid
from pykube_server.api.patch import PatchError, apply_json_patch, apply_merge_patch
from pykube_server.apiserver.handlers import read, watch, write
from pykube_server.apiserver.handlers.common import Call, respond
from pykube_server.apiserver.negotiation import content_type_of, decode_body_repeats
from pykube_server.registry.crd.definition import CLEANUP_FINALIZER, set_condition
from pykube_server.registry.crd.resource import CustomResourceStrategy
from pykube_server.registry.strategy import now_rfc3339

Obj = dict[str, Any]
Handler = Callable[[Call], Awaitable[web.StreamResponse]]
CR_PATCH_MEDIA = "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"


def _strategy(call: Call) -> CustomResourceStrategy:
    strategy = call.store.strategy
    assert isinstance(strategy, CustomResourceStrategy)
    return strategy


def _refuse_when_terminating(call: Call, terminating: Callable[[str, str], bool]) -> None:
    if terminating(call.spec.group, call.spec.plural):
        raise errors.MethodNotAllowed("create not allowed while custom resource definition is terminating",
                                      details={"group": call.spec.group, "kind": call.spec.plural})


def make_handlers(terminating: Callable[[str, str], bool]) -> dict[tuple[str, str], Handler]:
    """The handler table for custom resources; `terminating(group, plural)` says whether the
    resource's CRD is being deleted."""

    async def create(call: Call) -> web.StreamResponse:
        _refuse_when_terminating(call, terminating)
        return await write.create(call)

    async def update(call: Call) -> web.StreamResponse:
        if call.info.subresource == "scale":
            body, _ = await write.read_body(call)
            if not isinstance(body, dict):
                raise errors.BadRequest("the object provided is unrecognized (must be of type Scale)")
            return await _write_scale(call, lambda scale: _replace(scale, body))
        return await write.update(call)

    async def patch(call: Call) -> web.StreamResponse:
        media = content_type_of(call.request.headers.get("Content-Type"))
        if media == "application/strategic-merge-patch+json" or media not in write.PATCH_MEDIA:
            raise errors.UnsupportedMediaType(
                f"the body of the request was in an unknown format - accepted media types include: {CR_PATCH_MEDIA}")
        if call.info.subresource == "scale":
            return await _patch_scale(call, media)
        return await write.patch(call)

    async def get_scale(call: Call) -> web.StreamResponse:
        cached = await call.store.get(call.namespace, call.info.name, resource_version=call.query("resourceVersion"))
        return respond(call, _strategy(call).scale_of(cached.decode()))

    return {
        ("get", ""): read.get, ("list", ""): read.list_, ("watch", ""): watch.watch,
        ("create", ""): create, ("update", ""): update, ("patch", ""): patch,
        ("delete", ""): write.delete, ("deletecollection", ""): write.delete_collection,
        ("get", "scale"): get_scale, ("update", "scale"): update, ("patch", "scale"): patch,
    }


def _replace(scale: Obj, body: Obj) -> Obj:
    new = copy.deepcopy(body)
    new.setdefault("metadata", {}).setdefault("resourceVersion", "")
    return new


async def _patch_scale(call: Call, media: str) -> web.StreamResponse:
    patch_body, _ = decode_body_repeats(await call.request.read(), media, False)

    def change(scale: Obj) -> Obj:
        try:
            if media == "application/json-patch+json":
                return apply_json_patch(scale, patch_body)
            return apply_merge_patch(scale, patch_body)
        except PatchError as exc:
            raise write.patch_error(exc) from None

    return await _write_scale(call, change)


async def _write_scale(call: Call, change: Callable[[Obj], Obj]) -> web.StreamResponse:
    strategy = _strategy(call)

    async def transform(current: Obj | None) -> Obj:
        if current is None:
            raise call.store.not_found(call.info.name)
        scale = change(strategy.scale_of(current))
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.Invalid.from_errors("Scale", "autoscaling", call.info.name, [
                invalid("spec.replicas", replicas, "must be greater than or equal to 0")])
        expected = (scale.get("metadata") or {}).get("resourceVersion") or ""
        new = copy.deepcopy(current)
        strategy.set_replicas(new, replicas)
        if expected:
            new["metadata"]["resourceVersion"] = expected
        return new

    obj, _ = await call.store.update(call.namespace, call.info.name, transform, dry_run=call.dry_run,
                                    managed=write._recorder(call))
    return respond(call, strategy.scale_of(obj))


# -- DELETE of a CustomResourceDefinition ------------------------------------------------------
async def delete_crd(call: Call) -> web.StreamResponse:
    """The first DELETE marks the CRD (deletionTimestamp, the cleanup finalizer, Terminating)
    and answers with it; the CRD goes once its objects are gone."""
    options = await write.delete_options(call)
    dry_run = call.dry_run or "All" in (options.get("dryRun") or [])
    store = call.store
    cached = await store.get("", call.info.name)
    if cached.decode()["metadata"].get("deletionTimestamp"):
        return await write.delete(call)
    preconditions = options.get("preconditions") or {}

    async def apply(current: Obj | None, revision: int) -> tuple[Obj | None, str]:
        if current is None:
            raise store.not_found(call.info.name)
        meta = current["metadata"]
        if preconditions.get("uid") and preconditions["uid"] != meta.get("uid"):
            raise store.conflict(call.info.name, f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                                                 f"UID in object meta: {meta.get('uid')}")
        if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != str(revision):
            raise store.conflict(call.info.name, f"Precondition failed: ResourceVersion in precondition: "
                                                 f"{preconditions['resourceVersion']}, ResourceVersion in object meta: {revision}")
        meta.setdefault("deletionTimestamp", now_rfc3339())
        meta.setdefault("deletionGracePeriodSeconds", 0)
        finalizers = meta.setdefault("finalizers", [])
        if CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CLEANUP_FINALIZER)
        set_condition(current.setdefault("status", {}), "Terminating", "True", "InstanceDeletionPending",
                      "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon")
        return current, "none" if dry_run else "update"

    await store.cacher.wait_fresh()
    obj, _ = await store.store.guaranteed_update(store.key("", call.info.name), store.root, apply)
    return respond(call, obj or {})
