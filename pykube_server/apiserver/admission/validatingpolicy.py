"""The ValidatingAdmissionPolicy admission plugin (admissionregistration.k8s.io/v1, GA in 1.30).

In kube's order it validates just before ValidatingAdmissionWebhook. For each policy (by name)
whose `matchConstraints` select the request, each of its bindings whose `matchResources` select
it too is evaluated once per param the binding's `paramRef` finds (once without params when the
policy has no `paramKind`). A failed validation acts as the binding's `validationActions` say:

- `Deny`: the request fails with the first denial, kube's text and status:
  `<resource> "<name>" is forbidden: ValidatingAdmissionPolicy '<p>' with binding '<b>' denied
  request: <message>`, code from the reason (Invalid 422 by default, Forbidden 403,
  Unauthorized 401, RequestEntityTooLarge 413) and the message as the one cause;
- `Warn`: a `Warning` header `Validation failed for ValidatingAdmissionPolicy '<p>' with binding
  '<b>': <message>`;
- `Audit`: the failure joins the JSON list of the request's audit annotation
  `validation.policy.admission.k8s.io/validation_failure` (message, policy, binding,
  expressionIndex, validationActions).

Each policy's `auditAnnotations` become audit annotations `<policy name>/<key>` whatever the
validations decided (distinct values from several bindings or params: a JSON list of them).

A binding whose params cannot be found is a configuration error (`failed to configure binding:
no params found for policy binding with `Deny` parameterNotFoundAction`), subject like
evaluation errors to the policy's failurePolicy; `parameterNotFoundAction: Allow` skips it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import orjson

from pykube_server.api import cel, errors
from pykube_server.apiserver import audit
from pykube_server.api.selectors import SelectorError, selector_from_object
from pykube_server.apiserver.admission import Attributes
from pykube_server.apiserver.admission import celauthorizer, policyeval, policymatch
from pykube_server.apiserver.admission.policysource import GROUP, CompiledPolicy, PolicySource
from pykube_server.apiserver.admission.webhook import matching, review

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer
    from pykube_server.registry.store import ResourceStore

Obj = dict[str, Any]

_REASON_CODES = {"Forbidden": 403, "Unauthorized": 401, "RequestEntityTooLarge": 413, "Invalid": 422}
VALIDATION_FAILURE = "validation.policy.admission.k8s.io/validation_failure"


class ConfigurationError(Exception):
    """A policy or binding that cannot be applied (its params, its paramKind)."""


class ValidatingAdmissionPolicy:
    name = "ValidatingAdmissionPolicy"

    def __init__(self, server: APIServer) -> None:
        self.server = server
        self.source = PolicySource(server.store_for(GROUP, "v1", "validatingadmissionpolicies"),
                                   server.store_for(GROUP, "v1", "validatingadmissionpolicybindings"))
        self.namespaces = server.store_for("", "v1", "namespaces")

    # -- the cache ---------------------------------------------------------------------------
    def _namespace(self, name: str) -> Obj | None:
        cached = self.namespaces.cacher.resource(self.namespaces.root).objects.get(self.namespaces.key("", name))
        return cached.decode() if cached is not None else None

    def _namespace_labels(self, name: str) -> dict[str, str] | None:
        cached = self.namespaces.cacher.resource(self.namespaces.root).objects.get(self.namespaces.key("", name))
        return dict(cached.labels) if cached is not None else None

    def _equivalents(self, group: str, resource: str) -> list[str]:
        return [v for (g, v, r) in self.server.specs if g == group and r == resource]

    def _param_store(self, param_kind: Mapping[str, Any]) -> ResourceStore:
        api_version, kind = str(param_kind.get("apiVersion", "")), str(param_kind.get("kind", ""))
        group, _, version = api_version.rpartition("/")
        for (g, v, _r), store in list(self.server.stores.items()):
            if g == group and v == version and store.spec.kind == kind:
                return store
        raise ConfigurationError(f"failed to find resource referenced by paramKind: '{group}/{version}, Kind={kind}'")

    def _params(self, param_kind: Obj | None, store: ResourceStore | None, binding: Obj,
                attributes: Attributes) -> list[Obj | None]:
        """The params a binding selects (`generic.CollectParams`); [None] without a paramKind."""
        if param_kind is None or store is None:
            return [None]
        ref = (binding.get("spec") or {}).get("paramRef")
        if not isinstance(ref, dict):
            raise ConfigurationError("paramKind is set on the policy but the binding has no paramRef")
        namespace = ""
        if store.spec.namespaced:
            namespace = str(ref.get("namespace") or attributes.namespace)
            if not namespace:
                raise ConfigurationError(
                    "cannot use namespaced paramRef in policy binding that matches cluster-scoped resources")
        objects = store.cacher.resource(store.root).objects
        if ref.get("name"):
            cached = objects.get(store.key(namespace, str(ref["name"])))
            found = [cached.decode()] if cached is not None else []
        else:
            try:
                selector = selector_from_object(ref.get("selector") or {})
            except SelectorError as exc:
                raise ConfigurationError(str(exc)) from None
            found = [c.decode() for c in list(objects.values())
                     if (not namespace or c.namespace == namespace) and selector.matches(c.labels)]
        if not found and ref.get("parameterNotFoundAction", "Deny") != "Allow":
            raise ConfigurationError("no params found for policy binding with `Deny` parameterNotFoundAction")
        for param in found:  # kube's wrappedParam: native kinds get their TypeMeta for CEL
            param.setdefault("apiVersion", str(param_kind.get("apiVersion", "")))
            param.setdefault("kind", str(param_kind.get("kind", "")))
        return list(found)

    # -- evaluation ---------------------------------------------------------------------------
    def _base_activation(self, attributes: Attributes) -> dict[str, Any]:
        request = review.request(attributes, attributes.version)
        request.pop("object", None)
        request.pop("oldObject", None)
        namespace = None
        is_namespace = attributes.group == "" and attributes.resource == "namespaces"
        if attributes.namespace and not is_namespace:
            namespace = self._namespace(attributes.namespace)
            if namespace is not None:
                namespace.get("metadata", {}).pop("managedFields", None)
        return {"object": cel.to_cel(attributes.obj), "oldObject": cel.to_cel(attributes.old),
                "request": cel.to_cel(request), "namespaceObject": cel.to_cel(namespace)}

    async def _evaluate(self, policy: CompiledPolicy, activation: dict[str, Any],
                        attributes: Attributes, annotations: list[tuple[str, str]]) -> list[policyeval.Decision]:
        resource = {"api_group": attributes.group, "resource": attributes.resource,
                    "subresource": attributes.subresource, "namespace": attributes.namespace,
                    "name": attributes.name}
        if not policy.uses_authorizer:
            return policyeval.validate(policy, activation, resource, None, annotations)
        return await celauthorizer.evaluate_in_thread(
            self.server.authorizer, attributes.user,
            lambda authorize: policyeval.validate(policy, activation, resource, authorize, annotations))

    async def validate(self, attributes: Attributes) -> None:
        if matching.exempt(attributes):
            return
        hooks = self.source.hooks()
        if not hooks:
            return
        denials: list[tuple[str, str | None, policyeval.Decision]] = []
        failures: list[Obj] = []  # validation failures of bindings with the Audit action

        def config_error(policy: CompiledPolicy, binding: str | None, error: Exception) -> None:
            if policy.failure_policy == "Ignore":
                return
            what = "binding" if binding is not None else "policy"
            denials.append((policy.name, binding, policyeval.Decision(policyeval.DENY, f"failed to configure {what}: {error}")))

        base: dict[str, Any] | None = None
        for policy, bindings in hooks:
            if not policymatch.matches(policy.spec.get("matchConstraints") or {}, attributes, self._namespace_labels,
                                       self._equivalents):
                continue
            store = None
            if policy.param_kind is not None:
                try:
                    store = self._param_store(policy.param_kind)
                except ConfigurationError as exc:  # the policy's own error: no binding is evaluated
                    config_error(policy, None, exc)
                    continue
            annotations: list[tuple[str, str]] = []
            for binding in bindings:
                spec = binding.get("spec") or {}
                binding_name = str(binding["metadata"].get("name", ""))
                if not policymatch.matches(spec.get("matchResources"), attributes, self._namespace_labels,
                                           self._equivalents):
                    continue
                try:
                    params = self._params(policy.param_kind, store, binding, attributes)
                except ConfigurationError as exc:
                    config_error(policy, binding_name, exc)
                    continue
                if base is None:
                    base = self._base_activation(attributes)
                for param in params:
                    activation = {**base, "params": cel.to_cel(param)}
                    for decision in await self._evaluate(policy, activation, attributes, annotations):
                        if decision.action != policyeval.DENY:
                            continue
                        actions = spec.get("validationActions") or ()
                        if "Audit" in actions:
                            failures.append({"message": decision.message, "policy": policy.name,
                                             "binding": binding_name, "expressionIndex": decision.index,
                                             "validationActions": list(actions)})
                        if "Deny" in actions:
                            denials.append((policy.name, binding_name, decision))
                        if "Warn" in actions:
                            attributes.warnings.append(f"Validation failed for ValidatingAdmissionPolicy "
                                                       f"'{policy.name}' with binding '{binding_name}': "
                                                       f"{decision.message}")
            _publish(policy.name, annotations)
        if failures:
            audit.add_annotation(VALIDATION_FAILURE, orjson.dumps(failures).decode())
        if denials:
            raise denied(attributes, *denials[0])


def _publish(policy: str, annotations: list[tuple[str, str]]) -> None:
    """A policy's auditAnnotations as `<policy>/<key>`: one value as it is, distinct values
    from several bindings or params as a JSON list."""
    values: dict[str, list[str]] = {}
    for key, value in annotations:
        found = values.setdefault(key, [])
        if value not in found:
            found.append(value)
    for key, found in values.items():
        audit.add_annotation(f"{policy}/{key}", found[0] if len(found) == 1 else orjson.dumps(found).decode())


def _subject_name(attributes: Attributes) -> str:
    """admission.NewForbidden's name: the request's, else the object's name or generateName."""
    if attributes.name:
        return attributes.name
    meta = (attributes.obj or {}).get("metadata") or {}
    return str(meta.get("name") or meta.get("generateName") or "Unknown")


def denied(attributes: Attributes, policy: str, binding: str | None, decision: policyeval.Decision) -> errors.StatusError:
    """kube's refusal: NewForbidden's text, the decision's reason and its code."""
    if binding is not None:
        message = f"ValidatingAdmissionPolicy '{policy}' with binding '{binding}' denied request: {decision.message}"
    else:
        message = f"ValidatingAdmissionPolicy '{policy}' denied request: {decision.message}"
    name = _subject_name(attributes)
    qualified = errors.qualified_resource(attributes.resource, attributes.group)
    reason = decision.reason or "Invalid"
    details: Obj = {"name": name}
    if attributes.group:
        details["group"] = attributes.group
    details["kind"] = attributes.resource
    details["causes"] = [{"message": message}]
    return errors.StatusError(f'{qualified} "{name}" is forbidden: {message}', details=details,
                              code=_REASON_CODES.get(reason, 422), reason=reason)
