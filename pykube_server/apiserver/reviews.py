"""Kinds that are never stored: access reviews and identity reviews.

They answer a question about the request itself (who am I, may I), computed from the
authenticated user and the authorizer, and echo the request with a `status`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from pykube_server.api import errors, fields
from pykube_server.apiserver import authn, authz
from pykube_server.apiserver.handlers.common import raw_response
from pykube_server.apiserver.negotiation import content_type_of, decode_body, output_without_table
from pykube_server.apiserver.requestinfo import RequestInfo
from pykube_server.apiserver.serviceaccount.tokens import TokenInvalid
from pykube_server.registry.spec import ResourceSpec

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

import orjson

Obj = dict[str, Any]


async def _body(request: web.Request, spec: ResourceSpec) -> Obj:
    body = decode_body(await request.read(), content_type_of(request.headers.get("Content-Type")))
    if not isinstance(body, dict):
        raise errors.BadRequest(f"the object provided is unrecognized (must be of type {spec.kind})")
    body["apiVersion"], body["kind"] = spec.api_version, spec.kind
    meta = body.setdefault("metadata", {})
    # Never stored, so never stamped: kube marshals the zero creationTimestamp as null.
    meta["creationTimestamp"] = None
    return body


def _attributes(user: authn.UserInfo, spec: Obj, namespace: str) -> authz.RequestAttributes:
    res = spec.get("resourceAttributes")
    if res:
        return authz.RequestAttributes(user=user, verb=res.get("verb", ""), namespace=res.get("namespace", namespace),
                                       api_group=res.get("group", ""), api_version=res.get("version", ""),
                                       resource=res.get("resource", ""), subresource=res.get("subresource", ""),
                                       name=res.get("name", ""), resource_request=True)
    non = spec.get("nonResourceAttributes") or {}
    return authz.RequestAttributes(user=user, verb=non.get("verb", ""), path=non.get("path", ""))


def _user_from_spec(spec: Obj) -> authn.UserInfo:
    return authn.UserInfo(username=spec.get("user", ""), uid=spec.get("uid", ""), groups=tuple(spec.get("groups") or ()),
                          extra={k: tuple(v) for k, v in (spec.get("extra") or {}).items()})


async def handle(server: APIServer, request: web.Request, info: RequestInfo, spec: ResourceSpec) -> web.StreamResponse:
    if info.verb != "create" or info.subresource:
        raise errors.MethodNotAllowed("the server does not allow this method on the requested resource",
                                      details={"group": spec.group, "kind": spec.plural} if spec.group else {"kind": spec.plural})
    output_without_table(request.headers.get("Accept", ""))  # no Table conversion: 406 before the body
    user = request.get(authn.USER) or authn.ANONYMOUS
    body = await _body(request, spec)
    review_spec = body.get("spec") or {}
    if spec.kind in ("SelfSubjectAccessReview", "SubjectAccessReview", "LocalSubjectAccessReview"):
        _validate_access_review(spec, review_spec, info.namespace)
        subject = user if spec.kind == "SelfSubjectAccessReview" else _user_from_spec(review_spec)
        decision, reason = await server.authorizer.authorize(_attributes(subject, review_spec, info.namespace))
        status: Obj = {"allowed": decision == authz.Decision.ALLOW}
        if decision == authz.Decision.DENY:
            status["denied"] = True
        if reason:
            status["reason"] = reason
        body["status"] = status
        if spec.kind == "LocalSubjectAccessReview":
            body["metadata"]["namespace"] = info.namespace
    elif spec.kind == "SelfSubjectRulesReview":
        namespace = review_spec.get("namespace", "")
        if not namespace:
            raise errors.BadRequest("no namespace on request")
        body["status"] = server.authorization.rules_review(user, namespace)
    elif spec.kind == "SelfSubjectReview":
        body["status"] = {"userInfo": user.to_status()}
    elif spec.kind == "TokenReview":
        body["status"] = await _token_review(server, review_spec)
    else:
        raise errors.NotFound("the server could not find the requested resource", details={})
    return raw_response(orjson.dumps(body), status=201)


def _validate_access_review(spec: ResourceSpec, review: Obj, namespace: str) -> None:
    """kube's ValidateSubjectAccessReviewSpec (and its self/local variants)."""
    res, non = review.get("resourceAttributes"), review.get("nonResourceAttributes")
    errs: list[fields.FieldError] = []
    if spec.kind == "LocalSubjectAccessReview":
        if non:
            errs.append(fields.invalid("spec.nonResourceAttributes", non, "disallowed on this kind of request"))
        elif res and res.get("namespace", "") != namespace:
            errs.append(fields.invalid("spec.resourceAttributes.namespace", res.get("namespace", ""),
                                       "must match metadata.namespace"))
    if res and non:
        errs.append(fields.invalid("spec.nonResourceAttributes", non,
                                   "cannot be specified in combination with resourceAttributes"))
    elif not res and not non:
        errs.append(fields.invalid("spec.resourceAttributes", None,
                                   "exactly one of nonResourceAttributes or resourceAttributes must be specified"))
    if spec.kind != "SelfSubjectAccessReview" and not review.get("user") and not review.get("groups"):
        errs.append(fields.invalid("spec.user", review.get("user", ""), "at least one of user or group must be specified"))
    if errs:
        raise errors.Invalid.from_errors(spec.kind, spec.group, "", errs)


async def _token_review(server: APIServer, spec: Obj) -> Obj:
    """kube's TokenReview REST: authenticate `spec.token` for `spec.audiences` (default: the API
    audiences). Static tokens answer only for the API audiences (kube wraps them audience-
    agnostically); service account JWTs for the audiences they name. `status.audiences` is the
    intersection; `authenticated: false` is omitted, as Go's omitempty does."""
    token = spec.get("token", "")
    api_audiences = server.service_accounts.api_audiences
    requested = list(spec.get("audiences") or api_audiences)
    failure = "token lookup failed"
    common = [a for a in api_audiences if a in requested]
    sa_authenticator = server.service_accounts.authenticator
    for source in server.token_sources:
        if source is sa_authenticator:
            try:
                verified = await sa_authenticator.verify(token, requested)
            except TokenInvalid as e:
                failure = str(e)
                continue
            if verified is not None:
                return {"authenticated": True, "user": authn.with_authenticated_group(verified.user).to_status(),
                        "audiences": verified.audiences}
            continue
        found = await source.authenticate_token(token) if common else None
        if found is not None:
            return {"authenticated": True, "user": authn.with_authenticated_group(found).to_status(),
                    "audiences": common}
    return {"user": {}, "error": f"[invalid bearer token, {failure}]"}
