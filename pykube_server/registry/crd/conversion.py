"""Converting custom objects between the versions of their CRD.

A custom resource is stored in one version (the storage version when it was written) and
served in every served version, so each read, write, list and watch event in another version
is converted, as apiextensions-apiserver's converters do:

- `None`: only `apiVersion` changes;
- `Webhook`: the objects are POSTed to `spec.conversion.webhook.clientConfig` in one
  ConversionReview (the first of `conversionReviewVersions` kube speaks, v1 or v1beta1) with a
  fresh `request.uid`, `desiredAPIVersion` and the objects not already in that version. The
  answer must be a ConversionReview of the same version (v1: the same uid) with
  `result.status: Success` and as many `convertedObjects`, each of the desired apiVersion and the
  same kind, name, namespace and uid; its metadata is then restored from the original but for
  labels and annotations. Every failure is a 500 whose message is kube's
  (`conversion webhook for example.com/v1, Kind=Widget failed: Post "https://...": ...`).

Either way the converted object is then pruned and defaulted by the target version's schema
(kube's schema-coercing converter), so a field the version does not know is not served in it.

The HTTP call itself is the API server's (`post`, the admission webhook caller), so this
module stays free of I/O details.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from pykube_server.api import errors
from pykube_server.api.fields import Path
from pykube_server.registry.crd import schema as crschema
from pykube_server.registry.crd.resource import storage_version, version_schema
from pykube_server.registry.validation import validate_annotations, validate_labels

Obj = dict[str, Any]
Post = Callable[[Obj, Obj], Awaitable[Any]]
"""(hook with clientConfig and timeoutSeconds, review) -> the decoded answer; raises with kube's
text (`Post "https://...": dial tcp ...: connect: connection refused`)."""

WEBHOOK_TIMEOUT_SECONDS = 30
"""kube's conversion webhook client timeout (shown as `?timeout=30s` in errors)."""
REVIEW_GROUP = "apiextensions.k8s.io"


class ConversionError(errors.StatusError):
    """A conversion failure: kube answers 500 with no reason (a plain error turned into a Status)."""

    code, reason = 500, ""

    def status(self) -> dict[str, Any]:
        body = super().status()
        body.pop("reason", None)
        return body


class Converter:
    """The conversion of one CRD's objects; `post` calls a webhook (None: no webhook calls)."""

    def __init__(self, crd: Obj, post: Post | None) -> None:
        spec = crd["spec"]
        self.group = str(spec["group"])
        self.kind = str(spec["names"]["kind"])
        self.storage = storage_version(crd)
        conversion = spec.get("conversion") or {}
        webhook = conversion.get("webhook") or {}
        self.webhook = conversion.get("strategy") == "Webhook"
        self.hook: Obj = {"clientConfig": webhook.get("clientConfig") or {}, "timeoutSeconds": WEBHOOK_TIMEOUT_SECONDS}
        self.review_versions = [str(v) for v in webhook.get("conversionReviewVersions") or []]
        self.post = post
        self.schemas = {str(v.get("name")): version_schema(v) for v in spec.get("versions") or []}

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}"

    async def to_storage(self, obj: Obj) -> Obj:
        return (await self.convert([obj], self.storage))[0]

    async def convert(self, objects: list[Obj], version: str) -> list[Obj]:
        """`objects` in `version` (same order); those already in it are returned as they are."""
        desired = self.api_version(version)
        todo = [i for i, obj in enumerate(objects) if obj.get("apiVersion") != desired]
        if not todo:
            return objects
        out = list(objects)
        if self.webhook:
            converted = await self._call([objects[i] for i in todo], desired)
        else:
            converted = [{**objects[i], "apiVersion": desired} for i in todo]
        schema = self.schemas.get(version)
        for i, obj in zip(todo, converted, strict=True):
            if schema is not None:  # kube's schema-coercing converter: the version's pruning and defaults
                obj = copy.deepcopy(obj) if obj is objects[i] else obj
                crschema.prune(obj, schema)
                crschema.apply_defaults(obj, schema)
                crschema.prune(obj, schema)
            out[i] = obj
        return out

    # -- the webhook --------------------------------------------------------------------------
    def _gvk(self, obj: Obj) -> str:
        return f"{obj.get('apiVersion', '')}, Kind={obj.get('kind', self.kind)}"

    async def _call(self, objects: list[Obj], desired: str) -> list[Obj]:
        gvk = self._gvk(objects[0])
        review_version = next((v for v in self.review_versions if v in ("v1", "v1beta1")), None)
        if review_version is None:
            raise ConversionError("no supported conversion review versions")
        uid = str(uuid.uuid4())
        review = {"kind": "ConversionReview", "apiVersion": f"{REVIEW_GROUP}/{review_version}",
                  "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objects}}
        if self.post is None:
            raise ConversionError(f"conversion webhook for {gvk} failed: webhook client is not available")
        try:
            answer = await self.post(self.hook, review)
        except Exception as exc:  # the caller's errors carry kube's text
            raise ConversionError(f"conversion webhook for {gvk} failed: {exc}") from None
        try:
            converted = _converted_objects(answer, review_version, uid)
        except ValueError as exc:
            raise ConversionError(f"conversion webhook for {gvk} failed: {exc}") from None
        if len(converted) != len(objects):
            raise ConversionError(f"conversion webhook for {gvk} returned {len(converted)} objects, expected {len(objects)}")
        single = len(objects) == 1
        out = []
        for index, (original, result) in enumerate(zip(objects, converted, strict=True)):
            where = "invalid object at index 0" if single else f"invalid converted object at index {index}"
            if not isinstance(result, dict):
                raise ConversionError(f"conversion webhook for {gvk} returned {where}: invalid type")
            if result.get("apiVersion") != desired:
                raise ConversionError(f"conversion webhook for {gvk} returned {where}: invalid groupVersion "
                                      f"(expected {desired}, received {result.get('apiVersion', '')})")
            if result.get("kind") != original.get("kind"):
                raise ConversionError(f"conversion webhook for {gvk} returned {where}: invalid kind "
                                      f"(expected {original.get('kind')}, received {result.get('kind', '')})")
            problem = _meta_mismatch(original, result)
            if problem:
                what = "invalid object" if single else f"invalid converted object at index {index}"
                raise ConversionError(f"conversion webhook for {gvk} returned {what}: {problem}")
            try:
                out.append(_restore_metadata(original, result))
            except ValueError as exc:
                what = "invalid metadata" if single else f"invalid metadata in object at index {index}"
                raise ConversionError(f"conversion webhook for {gvk} returned {what}: {exc}") from None
        return out


def _converted_objects(answer: Any, review_version: str, uid: str) -> list[Any]:
    """The convertedObjects of a webhook's answer, or ValueError with kube's words."""
    if not isinstance(answer, dict):
        raise ValueError("no response provided")
    if review_version == "v1":
        want = f"{REVIEW_GROUP}/v1, Kind=ConversionReview"
        api_version, kind = str(answer.get("apiVersion") or ""), str(answer.get("kind") or "")
        got = f"{api_version}, Kind={kind}" if "/" in api_version else f"/{api_version}, Kind={kind}"
        if got != want:
            raise ValueError(f"expected webhook response of {want}, got {got}")
    response = answer.get("response")
    if not isinstance(response, dict):
        raise ValueError("no response provided")
    if review_version == "v1" and response.get("uid") != uid:
        raise ValueError(f'expected response.uid="{uid}", got "{response.get("uid", "")}"')
    result = response.get("result") or {}
    if result.get("status") != "Success":
        if result.get("message"):
            raise ValueError(str(result["message"]))
        raise ValueError(f"response.result.status was '{result.get('status', '')}', not 'Success'")
    return list(response.get("convertedObjects") or [])


def _meta_mismatch(original: Obj, converted: Obj) -> str:
    """validateConvertedObject: kind, name, namespace and uid must not change."""
    before, after = original.get("metadata") or {}, converted.get("metadata") or {}
    if original.get("kind") != converted.get("kind"):
        return f"must have the same kind: {original.get('kind', '')} != {converted.get('kind', '')}"
    for field, label in (("name", "name"), ("namespace", "namespace"), ("uid", "UID")):
        if (before.get(field) or "") != (after.get(field) or ""):
            return f"must have the same {label}: {before.get(field, '')} != {after.get(field, '')}"
    return ""


def _restore_metadata(original: Obj, converted: Obj) -> Obj:
    """The converted object with the original's metadata, except its own labels and
    annotations (validated when they changed)."""
    answered = converted.get("metadata")
    if not isinstance(answered, dict):
        raise ValueError("missing metadata in converted object")
    meta = copy.deepcopy(original.get("metadata") or {})
    for field in ("labels", "annotations"):
        value = answered.get(field)
        if value is None:
            meta.pop(field, None)
            continue
        if not isinstance(value, dict):
            raise ValueError(f"invalid metadata.{field} of type {type(value).__name__} in converted object")
        for key, item in value.items():
            if not isinstance(item, str):
                raise ValueError(f"metadata.{field}[{key}] must be a string, but is {type(item).__name__} in converted object")
        if value != (meta.get(field) or {}):
            errs = validate_labels(value, Path("metadata").child("labels")) if field == "labels" else \
                validate_annotations(value, Path("metadata").child("annotation"))
            if errs:
                texts = [str(e) for e in errs]
                raise ValueError(texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]")
        meta[field] = value
    return {**converted, "metadata": meta}
