"""validatingadmissionpolicy-status-controller: type-checks ValidatingAdmissionPolicies.

kube-controller-manager compiles each policy's validations against the schema of every kind its
`matchConstraints.resourceRules` name (explicit group, version and resource; wildcard rules
cannot be typed and are skipped, at most 10 kinds) and writes the outcome to
`status.typeChecking.expressionWarnings` (`fieldRef` `spec.validations[0].expression` and the
warning `apps/v1, Kind=Deployment: ERROR: <input>:1:22: found no matching overload for '_>_'
applied to '(int, string)'` with cel-go's source line), with `status.observedGeneration`; a
clean policy gets `typeChecking: {}`. Schemas come the way kube's come: the API server's
discovery and OpenAPI v3 documents. The checking itself is `api.celcheck` (best effort: it
reports only operator overloads and undefined fields it is sure of).
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from pykube_server.api import celcheck, errors
from pykube_server.api.types import Obj
from pykube_server.client.cache import Lister
from pykube_server.client.rest import Client, Resource
from pykube_server.controllers.framework import Context, Controller, Request, Result

log = logging.getLogger(__name__)

POLICIES = Resource("admissionregistration.k8s.io", "v1", "validatingadmissionpolicies", namespaced=False)
MAX_TYPES = 10
"""kube type-checks against at most this many kinds per policy."""
WORKERS = 1


def _gv_path(group: str, version: str) -> str:
    return f"/api/{version}" if not group else f"/apis/{group}/{version}"


class Schemas:
    """Discovery and OpenAPI v3 of one reconcile (CRDs come and go, so nothing is kept longer)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._discovery: dict[str, Obj | None] = {}
        self._openapi: dict[str, Obj | None] = {}

    async def _get(self, cache: dict[str, Obj | None], path: str) -> Obj | None:
        if path not in cache:
            try:
                cache[path] = await self.client.request("GET", path)
            except errors.StatusError:
                cache[path] = None
        return cache[path]

    async def kind_of(self, group: str, version: str, resource: str) -> str:
        listing = await self._get(self._discovery, _gv_path(group, version)) or {}
        for entry in listing.get("resources") or ():
            if entry.get("name") == resource:
                return str(entry.get("kind") or "")
        return ""

    async def type_of(self, group: str, version: str, kind: str) -> celcheck.Type:
        doc = await self._get(self._openapi, "/openapi/v3" + _gv_path(group, version)) or {}
        schemas = (doc.get("components") or {}).get("schemas") or {}

        def resolve(schema: Any) -> Any:
            for _ in range(16):
                if not isinstance(schema, dict) or "$ref" not in schema:
                    break
                schema = schemas.get(str(schema["$ref"]).rsplit("/", 1)[-1]) or {}
            return schema

        for schema in schemas.values():
            for gvk in schema.get("x-kubernetes-group-version-kind") or ():
                if (gvk.get("group", ""), gvk.get("version"), gvk.get("kind")) == (group, version, kind):
                    return celcheck.from_schema(schema, resolve)
        return celcheck.DYN


def _kinds(policy: Obj) -> list[tuple[str, str, str]]:
    """(group, version, resource) of every rule naming them all explicitly."""
    out: list[tuple[str, str, str]] = []
    rules = ((policy.get("spec") or {}).get("matchConstraints") or {}).get("resourceRules") or ()
    for rule in rules:
        for group in rule.get("apiGroups") or ():
            for version in rule.get("apiVersions") or ():
                for resource in rule.get("resources") or ():
                    if "*" in (group, version) or "*" in resource or "/" in resource:
                        continue
                    if (group, version, resource) not in out:
                        out.append((group, version, resource))
    return out


def _gvk_text(group: str, version: str, kind: str) -> str:
    return f"{group}/{version}, Kind={kind}"


async def type_check(policy: Obj, schemas: Schemas) -> list[Obj]:
    """The expression warnings kube would report for `policy`."""
    spec = policy.get("spec") or {}
    params = celcheck.DYN
    param_kind = spec.get("paramKind")
    if isinstance(param_kind, dict):
        group, _, version = str(param_kind.get("apiVersion", "")).rpartition("/")
        params = await schemas.type_of(group, version, str(param_kind.get("kind", "")))
    namespace = await schemas.type_of("", "v1", "Namespace")
    checked: list[tuple[str, dict[str, celcheck.Type]]] = []
    for group, version, resource in _kinds(policy)[:MAX_TYPES]:
        kind = await schemas.kind_of(group, version, resource)
        if not kind:
            continue
        obj = await schemas.type_of(group, version, kind)
        variables = {"object": obj, "oldObject": obj, "params": params, "namespaceObject": namespace}
        composed: dict[str, celcheck.Type] = {}
        for variable in spec.get("variables") or ():
            composed[str(variable.get("name", ""))] = celcheck.infer(
                str(variable.get("expression", "")), {**variables, "variables": celcheck.variables_type(composed)})[0]
        variables["variables"] = celcheck.variables_type(composed)
        checked.append((_gvk_text(group, version, kind), variables))
    warnings: list[Obj] = []

    def check(expression: str, field_ref: str) -> None:
        found = []
        for gvk, variables in checked:
            issues = celcheck.check(expression, variables)
            if issues:
                found.append(f"{gvk}: {chr(10).join(issues)}")
        if found:
            warnings.append({"fieldRef": field_ref, "warning": "\n".join(found)})

    for i, validation in enumerate(spec.get("validations") or ()):
        check(str(validation.get("expression", "")), f"spec.validations[{i}].expression")
        if validation.get("messageExpression"):
            check(str(validation["messageExpression"]), f"spec.validations[{i}].messageExpression")
    return warnings


class PolicyStatusReconciler:
    def __init__(self, client: Client, policies: Lister) -> None:
        self.client = client
        self.policies = policies

    async def reconcile(self, request: Request) -> Result:
        policy = self.policies.get(request.name)
        if policy is None:
            return Result()
        generation = (policy.get("metadata") or {}).get("generation")
        status = policy.get("status") or {}
        if status.get("observedGeneration") == generation and "typeChecking" in status:
            return Result()
        warnings = await type_check(policy, Schemas(self.client))
        updated = copy.deepcopy(policy)
        new_status = dict(status)
        if generation is not None:
            new_status["observedGeneration"] = generation
        new_status["typeChecking"] = {"expressionWarnings": warnings} if warnings else {}
        updated["status"] = new_status
        try:
            await self.client.update(POLICIES, updated, subresource="status")
        except errors.NotFound:
            pass
        return Result()


def create(ctx: Context) -> Controller:
    policies = ctx.informer(POLICIES)
    reconciler = PolicyStatusReconciler(ctx.client, policies.lister)
    controller = Controller("validatingadmissionpolicy-status-controller", reconciler, workers=WORKERS,
                            clock=ctx.clock)
    controller.watches(policies)
    return controller
