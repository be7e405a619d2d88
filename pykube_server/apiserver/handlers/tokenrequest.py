"""`POST /api/v1/namespaces/{ns}/serviceaccounts/{name}/token`: the TokenRequest API.

kube's TokenREST: the TokenRequest names nothing but audiences, a lifetime and optionally the
object the token is bound to; the answer echoes it with `status.token` (a signed JWT) and
`status.expirationTimestamp`. The checks run in kube's order, with its texts: a name or
namespace in the body must match the URL (422), the service account must exist (404), the
lifetime must be 10 minutes to 2^32 seconds (422, named `""` as kube does), a bound Pod, Secret
or Node must exist (404) with the given uid (409), and a pod must run as this account (400).
A lifetime above `--service-account-max-token-expiration` is shortened with a warning; a
projected volume's 3607 s token for the API audiences is silently extended to a year (with
`warnafter`), as `--service-account-extend-token-expiration` does.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from aiohttp import web

from pykube_server.api import errors, fields
from pykube_server.apiserver.handlers.common import Call, respond
from pykube_server.apiserver.negotiation import content_type_of, decode_body
from pykube_server.apiserver.serviceaccount import tokens

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

Obj = dict[str, Any]

GROUP = "authentication.k8s.io"
KIND = "TokenRequest"
DEFAULT_EXPIRATION_SECONDS = 3600
MIN_EXPIRATION_SECONDS = 600
MAX_EXPIRATION_SECONDS = 1 << 32
BINDABLE = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}


def format_time(seconds: float) -> str:
    """RFC 3339 in UTC at whole seconds, as metav1.Time prints."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _json_type(value: Any) -> str:
    """The JSON type name Go's decoder reports."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "value")


def _invalid(name: str, errs: list[fields.FieldError]) -> errors.Invalid:
    return errors.Invalid.from_errors(KIND, GROUP, name, errs)


async def _body(call: Call) -> Obj:
    body = decode_body(await call.request.read(), content_type_of(call.request.headers.get("Content-Type")))
    if not isinstance(body, dict):
        raise errors.BadRequest(f"the object provided is unrecognized (must be of type {KIND})")
    body["apiVersion"], body["kind"] = f"{GROUP}/v1", KIND
    if not isinstance(body.get("metadata"), dict):
        body["metadata"] = {}
    if not isinstance(body.get("spec"), dict):
        body["spec"] = {}
    return body


async def create(server: APIServer, call: Call) -> web.StreamResponse:
    accounts = server.service_accounts
    name, namespace = call.info.name, call.info.namespace
    req = await _body(call)
    meta, spec = req["metadata"], req["spec"]
    if meta.get("name") and meta["name"] != name:
        raise _invalid(name, [fields.invalid("metadata.name", meta["name"],
                                             "must match the service account name if specified")])
    if meta.get("namespace") and meta["namespace"] != namespace:
        raise _invalid(name, [fields.invalid("metadata.namespace", meta["namespace"],
                                             "must match the service account namespace if specified")])
    account = (await call.store.get(namespace, name)).decode()
    if not spec.get("audiences"):
        spec["audiences"] = list(accounts.api_audiences)
    if spec.get("expirationSeconds") is None:
        spec["expirationSeconds"] = DEFAULT_EXPIRATION_SECONDS
    spec.setdefault("boundObjectRef", None)
    meta["name"], meta["namespace"] = meta.get("name") or name, meta.get("namespace") or namespace
    now = time.time()
    meta["creationTimestamp"] = format_time(now)
    req.pop("status", None)
    if not isinstance(spec["expirationSeconds"], int) or isinstance(spec["expirationSeconds"], bool):
        raise errors.BadRequest(f"json: cannot unmarshal {_json_type(spec['expirationSeconds'])} into Go struct field "
                                "TokenRequestSpec.spec.expirationSeconds of type int64")
    expiration = spec["expirationSeconds"]
    errs = []
    if expiration < MIN_EXPIRATION_SECONDS:
        errs.append(fields.invalid("spec.expirationSeconds", expiration, "may not specify a duration less than 10 minutes"))
    if expiration > MAX_EXPIRATION_SECONDS:
        errs.append(fields.invalid("spec.expirationSeconds", expiration, "may not specify a duration larger than 2^32 seconds"))
    if errs:
        raise _invalid("", errs)
    admission = call.admission()
    if admission is not None:  # validating admission sees the TokenRequest (NodeRestriction's hook)
        admission.base.kind = KIND
        await admission.validate(req, None, "CREATE")
    bound = await _bound_objects(server, name, namespace, spec.get("boundObjectRef"))
    warnings = []
    if accounts.max_expiration_seconds and expiration > accounts.max_expiration_seconds:
        warnings.append(f"requested expiration of {expiration} seconds shortened to {accounts.max_expiration_seconds} seconds")
        expiration = spec["expirationSeconds"] = accounts.max_expiration_seconds
    lifetime, warn_after = expiration, 0
    if (accounts.extend_expiration and bound.get("pod") is not None
            and expiration == tokens.WARN_ONLY_EXPIRATION_SECONDS
            and set(spec["audiences"]) <= set(accounts.api_audiences)):
        warn_after, lifetime = expiration, tokens.EXTENDED_EXPIRATION_SECONDS
    claims = tokens.claims(account, audiences=spec["audiences"], expiration_seconds=lifetime, issuer=accounts.issuer,
                           warn_after=warn_after, now=now, **bound)
    req["status"] = {"token": accounts.sign(claims), "expirationTimestamp": format_time(now + expiration)}
    return respond(call, req, 201, warnings)


async def _bound_objects(server: APIServer, name: str, namespace: str, ref: Obj | None) -> dict[str, Obj | None]:
    """The pod (and its node), secret or node the token will be bound to."""
    if not ref:
        return {}
    api_version, kind = ref.get("apiVersion") or "", ref.get("kind") or ""
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    if group or kind not in BINDABLE:
        version = api_version.rsplit("/", 1)[-1]
        raise errors.BadRequest(f"cannot bind token to object of type {group}/{version}, Kind={kind}")
    store = server.store_for("", "v1", BINDABLE[kind])
    obj = (await store.get("" if kind == "Node" else namespace, ref.get("name") or "")).decode()
    bound: dict[str, Obj | None] = {kind.lower(): obj}
    if kind == "Pod":
        if ((obj.get("spec") or {}).get("serviceAccountName") or "") != name:
            raise errors.BadRequest(f'cannot bind token for serviceaccount "{name}" to pod running with different '
                                    "serviceaccount name.")
        node_name = (obj.get("spec") or {}).get("nodeName")
        if node_name:
            nodes = server.store_for("", "v1", "nodes")
            try:
                bound["node"] = (await nodes.get("", node_name, resource_version="0")).decode()
            except errors.NotFound:
                try:
                    bound["node"] = (await nodes.get("", node_name)).decode()
                except errors.NotFound:  # kube still names the node, without a uid
                    bound["node"] = {"metadata": {"name": node_name}}
    uid = (obj.get("metadata") or {}).get("uid", "")
    if ref.get("uid") and ref["uid"] != uid:
        raise errors.Conflict.resource(kind, "", ref.get("name") or "",
                                       f"the UID in the bound object reference ({ref['uid']}) does not match the UID in "
                                       "record. The object might have been deleted and then recreated")
    return bound
