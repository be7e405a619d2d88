"""The AdmissionReview v1 a webhook receives, and the checks kube makes on what comes back.

The request carries what kube's `CreateAdmissionObjects` puts in it: the uid of this call, the
kind/resource/subResource the webhook matched and the requestKind/requestResource the client
used, name, namespace, operation, userInfo, object and oldObject (null when absent), dryRun and
the operation's options (CreateOptions, UpdateOptions or DeleteOptions). The response is
accepted only when `VerifyAdmissionResponse` would accept it; its texts are kube's.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from pykube_server.apiserver.admission import CREATE, DELETE, UPDATE, Attributes

Obj = dict[str, Any]
API_VERSION = "admission.k8s.io/v1"

_OPTIONS_KIND = {CREATE: "CreateOptions", UPDATE: "UpdateOptions", DELETE: "DeleteOptions"}


def user_info(attributes: Attributes) -> Obj:
    return dict(attributes.user.to_status())


def options(attributes: Attributes) -> Obj | None:
    if attributes.options is not None:
        return attributes.options
    kind = _OPTIONS_KIND.get(attributes.operation)
    return {"kind": kind, "apiVersion": "meta.k8s.io/v1"} if kind else None


def _before_create(obj: Obj | None) -> Obj | None:
    """The object as kube's create handler holds it when mutating admission runs: the registry
    has not yet stamped `uid` and `creationTimestamp` (a zero time, marshalled as null)."""
    if obj is None:
        return None
    meta = dict(obj.get("metadata") or {})
    meta.pop("uid", None)
    meta["creationTimestamp"] = None
    return {**obj, "metadata": meta}


def request(attributes: Attributes, matched_version: str, *, mutating: bool = False) -> Obj:
    """The `request` of an AdmissionReview; `matched_version` is the version the webhook's
    rules matched (equal to the request's unless matchPolicy Equivalent chose another).
    Mutating webhooks see a new object before the registry stamped it, validating ones after."""
    group, kind, resource = attributes.group, attributes.kind, attributes.resource
    req: Obj = {
        "uid": str(uuid.uuid4()),
        "kind": {"group": group, "version": matched_version, "kind": kind},
        "resource": {"group": group, "version": matched_version, "resource": resource},
    }
    if attributes.subresource:
        req["subResource"] = attributes.subresource
    req["requestKind"] = {"group": group, "version": attributes.version, "kind": kind}
    req["requestResource"] = {"group": group, "version": attributes.version, "resource": resource}
    if attributes.subresource:
        req["requestSubResource"] = attributes.subresource
    if attributes.name:
        req["name"] = attributes.name
    if attributes.namespace:
        req["namespace"] = attributes.namespace
    req["operation"] = attributes.operation
    req["userInfo"] = user_info(attributes)
    req["object"] = _before_create(attributes.obj) if mutating and attributes.operation == CREATE else attributes.obj
    req["oldObject"] = attributes.old
    req["dryRun"] = attributes.dry_run
    req["options"] = options(attributes)
    return req


def review(req: Obj) -> Obj:
    return {"kind": "AdmissionReview", "apiVersion": API_VERSION, "request": req}


class InvalidResponse(Exception):
    """What `VerifyAdmissionResponse` refuses; the dispatcher wraps it as
    `received invalid webhook response: <text>` under the failurePolicy."""


@dataclass(slots=True)
class Result:
    allowed: bool
    status: Obj = field(default_factory=dict)
    patch: list[Any] | None = None
    warnings: list[str] = field(default_factory=list)


def verify(body: Any, uid: str, mutating: bool) -> Result:
    if not isinstance(body, Mapping):
        raise InvalidResponse("json: cannot unmarshal into Go value of type v1.AdmissionReview")
    if body.get("apiVersion") != API_VERSION or body.get("kind") != "AdmissionReview":
        raise InvalidResponse(f"expected webhook response of {API_VERSION}, Kind=AdmissionReview, "
                              f"got {body.get('apiVersion', '')}, Kind={body.get('kind', '')}")
    response = body.get("response")
    if not isinstance(response, Mapping):
        raise InvalidResponse("webhook response was absent")
    if response.get("uid") != uid:
        raise InvalidResponse(f'expected response.uid="{uid}", got "{response.get("uid", "")}"')
    patch_text = response.get("patch")
    patch_type = response.get("patchType")
    patch: list[Any] | None = None
    if patch_text:
        if not mutating:
            raise InvalidResponse("validating webhooks may not return patches")
        if not patch_type:
            raise InvalidResponse("webhook returned response.patch but not response.patchType")
        if patch_type != "JSONPatch":
            raise InvalidResponse(f'webhook returned invalid response.patchType of "{patch_type}"')
        try:
            patch = orjson.loads(base64.b64decode(patch_text, validate=True))
        except Exception as exc:
            raise InvalidResponse(f"illegal base64 data or JSON in response.patch: {exc}") from None
    elif patch_type and patch_type != "JSONPatch":
        raise InvalidResponse(f'webhook returned invalid response.patchType of "{patch_type}"')
    warnings = [w for w in response.get("warnings") or () if isinstance(w, str)]
    status = response.get("status") if isinstance(response.get("status"), Mapping) else {}
    return Result(bool(response.get("allowed")), dict(status or {}), patch, warnings)
