"""The two webhook admission plugins and what they do with each matching webhook.

MutatingAdmissionWebhook calls its webhooks one after another, applying each JSONPatch before
the next is called, and calls once more (only once) every `reinvocationPolicy: IfNeeded` webhook
that a later webhook's patch followed. ValidatingAdmissionWebhook calls its webhooks at the same
time and refuses with the first refusal in configuration order. For both, kube's rules:

- a dry-run request is refused before the call when the webhook has side effects
  (`admission webhook "x" does not support dry run`, 400);
- a call that fails (unreachable, TLS, timeout, non-2xx, an invalid AdmissionReview) fails the
  request only under `failurePolicy: Fail`, as a 500 `Internal error occurred: failed calling
  webhook "x": ...`; under `Ignore` the webhook is skipped;
- `allowed: false` refuses with the webhook's status (code defaults to 400), its message becoming
  `admission webhook "x" denied the request: <message>`;
- warnings go back to the client as `Warning` headers; auditAnnotations are ignored.

Mutating webhooks also see DELETE requests (they may refuse them, a patch means nothing); the
store offers deletes to the validating phase only, so that is where the mutating plugin looks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pykube_server.api import errors
from pykube_server.api.patch import PatchError, apply_json_patch
from pykube_server.apiserver.admission import CREATE, DELETE, UPDATE, Attributes
from pykube_server.apiserver.admission import celauthorizer
from pykube_server.apiserver.admission.webhook import conditions, matching, review
from pykube_server.apiserver.admission.webhook.caller import Caller, CallError
from pykube_server.apiserver.admission.webhook.configs import GROUP, Configurations, Hook

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

Obj = dict[str, Any]
NO_SIDE_EFFECTS = ("None", "NoneOnDryRun")
SLICE_SERVICE_LABEL = "kubernetes.io/service-name"


class WebhookDenied(errors.StatusError):
    """A refusal in the webhook's own words (`webhookerrors.ToStatusErr`): its code (never
    below 400), its reason and details when it gave them, our prefix on its message."""

    def status(self) -> dict[str, Any]:
        body = super().status()
        if not self.reason:
            body.pop("reason")
        return body


def denied(hook_name: str, status: Obj) -> WebhookDenied:
    prefix = f'admission webhook "{hook_name}" denied the request'
    if status.get("message"):
        message = f"{prefix}: {status['message']}"
    elif status.get("reason"):
        message = f"{prefix}: {status['reason']}"
    else:
        message = f"{prefix} without explanation"
    code = status.get("code") if isinstance(status.get("code"), int) else 0
    details = status.get("details") if isinstance(status.get("details"), dict) else None
    return WebhookDenied(message, code=max(code, 400), reason=str(status.get("reason") or ""), details=details)


def internal(text: str) -> errors.InternalError:
    """apierrors.NewInternalError: the text becomes the cause too."""
    return errors.InternalError(f"Internal error occurred: {text}", details={"causes": [{"message": text}]})


class _Webhooks:
    """What both plugins share: configurations, matching, one call with its failure policy."""

    plural = ""
    mutating = False

    def __init__(self, server: APIServer) -> None:
        self.server = server
        self.configurations = Configurations(server.store_for(GROUP, "v1", self.plural))
        self.namespaces = server.store_for("", "v1", "namespaces")
        self.services = server.store_for("", "v1", "services")
        self.slices = server.store_for("discovery.k8s.io", "v1", "endpointslices")
        self.caller = Caller(self._service, self._slices_of)

    # -- the cache ---------------------------------------------------------------------------
    def _cached(self, store: Any, namespace: str, name: str) -> Obj | None:
        cached = store.cacher.resource(store.root).objects.get(store.key(namespace, name))
        return cached.decode() if cached is not None else None

    def _namespace_labels(self, name: str) -> dict[str, str] | None:
        cached = self.namespaces.cacher.resource(self.namespaces.root).objects.get(self.namespaces.key("", name))
        return dict(cached.labels) if cached is not None else None

    def _service(self, namespace: str, name: str) -> Obj | None:
        return self._cached(self.services, namespace, name)

    def _slices_of(self, namespace: str, service: str) -> Iterable[Obj]:
        for cached in list(self.slices.cacher.resource(self.slices.root).objects.values()):
            if cached.namespace == namespace and cached.labels.get(SLICE_SERVICE_LABEL) == service:
                yield cached.decode()

    def _equivalent_versions(self, group: str, resource: str) -> list[str]:
        return [v for (g, v, r) in self.server.specs if g == group and r == resource]

    # -- matching and calling -----------------------------------------------------------------
    def matching(self, attributes: Attributes) -> list[tuple[Hook, str]]:
        if matching.exempt(attributes):
            return []
        out = []
        for hook in self.configurations.hooks():
            if not matching.namespace_matches(hook.spec, attributes, self._namespace_labels):
                continue
            if not matching.object_matches(hook.spec, attributes):
                continue
            version = matching.matching_version(hook.spec, attributes, self._equivalent_versions)
            if version is not None:
                out.append((hook, version))
        return out

    async def _conditions_hold(self, match_conditions: list[Obj], attributes: Attributes, req: Obj) -> bool:
        variables = {"object": attributes.obj, "oldObject": attributes.old, "request": req,
                     "authorizer": {"api_group": attributes.group, "resource": attributes.resource,
                                    "subresource": attributes.subresource, "namespace": attributes.namespace,
                                    "name": attributes.name}}
        if not conditions.uses_authorizer(match_conditions):
            return conditions.evaluate(match_conditions, variables)
        return await celauthorizer.evaluate_in_thread(
            self.server.authorizer, attributes.user,
            lambda authorize: conditions.evaluate(match_conditions, variables, authorize))

    def _fail(self, hook: Hook, attributes: Attributes, reason: str) -> None:
        """A failed call: nothing under Ignore, the request's end under Fail (the default)."""
        if hook.spec.get("failurePolicy", "Fail") == "Ignore":
            return
        raise internal(f'failed calling webhook "{hook.name}": {reason}')

    async def call(self, hook: Hook, attributes: Attributes, version: str) -> review.Result | None:
        """One webhook for one request: None when skipped or ignored; raises to refuse."""
        req = review.request(attributes, version, mutating=self.mutating)
        match_conditions = [c for c in hook.spec.get("matchConditions") or () if isinstance(c, dict)]
        if match_conditions:
            try:
                if not await self._conditions_hold(match_conditions, attributes, req):
                    return None
            except conditions.ConditionError as exc:
                if hook.spec.get("failurePolicy", "Fail") == "Ignore":
                    return None
                qualified = errors.qualified_resource(attributes.resource, attributes.group)
                raise errors.Forbidden(f'{qualified} "{attributes.name}" is forbidden: {exc}',
                                       details={"name": attributes.name, "kind": attributes.resource,
                                                **({"group": attributes.group} if attributes.group else {})}) from None
        if attributes.dry_run and hook.spec.get("sideEffects") not in NO_SIDE_EFFECTS:
            raise errors.BadRequest(f'admission webhook "{hook.name}" does not support dry run')
        try:
            answer = await self.caller.post(hook.spec, review.review(req))
        except CallError as exc:
            self._fail(hook, attributes, f"failed to call webhook: {exc}")
            return None
        try:
            result = review.verify(answer, req["uid"], self.mutating)
        except review.InvalidResponse as exc:
            self._fail(hook, attributes, f"received invalid webhook response: {exc}")
            return None
        attributes.warnings.extend(result.warnings)
        if not result.allowed:
            raise denied(hook.name, result.status)
        return result


class MutatingAdmissionWebhook(_Webhooks):
    name = "MutatingAdmissionWebhook"
    plural = "mutatingwebhookconfigurations"
    mutating = True

    async def _call_and_patch(self, hook: Hook, attributes: Attributes, version: str) -> bool:
        """Call, apply the JSONPatch to the object in place; True when it changed the object."""
        result = await self.call(hook, attributes, version)
        if result is None or not result.patch or attributes.obj is None:
            return False
        try:
            patched = apply_json_patch(attributes.obj, result.patch)
        except PatchError as exc:
            raise internal(str(exc)) from None
        if not isinstance(patched, dict):
            raise internal("the patched object is not a JSON object")
        if patched == attributes.obj:
            return False
        attributes.obj.clear()
        attributes.obj.update(patched)
        self._default(attributes)
        return True

    def _default(self, attributes: Attributes) -> None:
        """kube decodes the patched object and runs the scheme's defaulting on it again, so a
        container a webhook adds gets its imagePullPolicy, terminationMessagePath, ..."""
        store = self.server.stores.get((attributes.group, attributes.version, attributes.resource))
        if store is not None and attributes.obj is not None and not attributes.subresource:
            store.strategy.default(attributes.obj)

    async def admit(self, attributes: Attributes) -> None:
        if attributes.operation not in (CREATE, UPDATE):
            return
        hooks = self.matching(attributes)
        if not hooks:
            return
        invoked_if_needed: list[tuple[str, int]] = []
        reinvoke: set[tuple[str, int]] = set()
        for hook, version in hooks:
            ident = (hook.configuration, hook.index)
            if await self._call_and_patch(hook, attributes, version):
                reinvoke.update(prev for prev in invoked_if_needed if prev != ident)
            if hook.spec.get("reinvocationPolicy") == "IfNeeded":
                invoked_if_needed.append(ident)
        for hook, version in hooks:
            if (hook.configuration, hook.index) in reinvoke:
                await self._call_and_patch(hook, attributes, version)

    async def validate(self, attributes: Attributes) -> None:
        if attributes.operation != DELETE:
            return
        for hook, version in self.matching(attributes):
            await self.call(hook, attributes, version)


class ValidatingAdmissionWebhook(_Webhooks):
    name = "ValidatingAdmissionWebhook"
    plural = "validatingwebhookconfigurations"

    async def validate(self, attributes: Attributes) -> None:
        hooks = self.matching(attributes)
        if not hooks:
            return
        outcomes = await asyncio.gather(*(self.call(hook, attributes, version) for hook, version in hooks),
                                        return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
