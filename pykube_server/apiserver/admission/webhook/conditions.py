"""matchConditions: CEL expressions that must all be true for a webhook to be called.

kube evaluates each condition (cel.Filter in webhook/matchconditions) over `object`,
`oldObject`, `request` (the AdmissionRequest) and `authorizer`; any false skips the webhook, and
only when none is false does an evaluation error count (it is then subject to the
failurePolicy). Programs are compiled once per expression text with cel-python (`celpy`), a
maintained CEL implementation.

`authorizer` is kube's CEL authorizer library, asking the API server's authorizer about the
requesting user: `authorizer.group('apps').resource('deployments').namespace('ns').check('create')
.allowed()`, `.subresource()`, `.name()`, `authorizer.serviceAccount(ns, name)...`,
`authorizer.path('/healthz').check('get')`, `authorizer.requestResource.check(verb)`, and on a
decision `.allowed()`, `.reason()`, `.errored()`, `.error()`. cel-python is synchronous, so
`evaluate` takes a blocking `authorize` callable; the dispatcher runs such conditions in a
worker thread that asks the event loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import celpy
from celpy import celtypes

# (what, attributes) -> (allowed, reason, error): `what` has api_group, resource, subresource,
# namespace, name, verb, path keys, `error` is "" unless the authorizer failed.
Authorize = Callable[[dict[str, str]], tuple[bool, str, str]]

_ENV = celpy.Environment()
_KIND = celtypes.StringType("__kind")


class ConditionError(Exception):
    """A condition that did not compile or evaluate to a bool."""


def _check_map(kind: str, **fields: str) -> celtypes.MapType:
    out = celtypes.MapType({_KIND: celtypes.StringType(kind)})
    for key, value in fields.items():
        out[celtypes.StringType(key)] = celtypes.StringType(value)
    return out


def _fields(target: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in dict(target).items() if str(k) != "__kind"}


def _library(authorize: Authorize | None) -> dict[str, Callable[..., Any]]:
    """The authorizer library's functions; each receives its receiver first, as cel-python calls them."""

    def with_field(field: str) -> Callable[[Any, Any], celtypes.MapType]:
        def setter(target: Any, value: Any) -> celtypes.MapType:
            fields = _fields(target)
            fields[field] = str(value)
            kind = "resource" if field == "resource" else str(dict(target).get(_KIND, "resource"))
            return _check_map(kind, **fields)
        return setter

    def group(target: Any, value: Any) -> celtypes.MapType:
        return _check_map("group", api_group=str(value))

    def service_account(target: Any, namespace: Any, name: Any) -> celtypes.MapType:
        return _check_map("resource", api_group="", resource="serviceaccounts", namespace=str(namespace), name=str(name))

    def path(target: Any, value: Any) -> celtypes.MapType:
        return _check_map("path", path=str(value))

    def check(target: Any, verb: Any) -> celtypes.MapType:
        if authorize is None:
            raise celpy.CELEvalError("authorizer is not available")
        allowed, reason, error = authorize({**_fields(target), "verb": str(verb)})
        return _check_map("decision", allowed="true" if allowed else "false", reason=reason, error=error)

    def decision_field(field: str) -> Callable[[Any], Any]:
        def read(target: Any) -> Any:
            value = str(dict(target).get(celtypes.StringType(field), ""))
            if field == "allowed":
                return celtypes.BoolType(value == "true")
            if field == "errored":
                return celtypes.BoolType(value != "")
            return celtypes.StringType(value)
        return read

    return {"group": group, "resource": with_field("resource"), "subresource": with_field("subresource"),
            "namespace": with_field("namespace"), "name": with_field("name"), "serviceAccount": service_account,
            "path": path, "check": check, "allowed": decision_field("allowed"), "reason": decision_field("reason"),
            "errored": decision_field("errored"), "error": decision_field("error")}


@lru_cache(maxsize=1024)
def _ast(expression: str) -> Any:
    try:
        return _ENV.compile(expression)
    except celpy.CELParseError as exc:
        raise ConditionError(f"compilation failed: {exc}") from None


def uses_authorizer(conditions: list[Mapping[str, Any]]) -> bool:
    return any("authorizer" in str(c.get("expression", "")) for c in conditions)


def _go_text(error: celpy.CELEvalError) -> str:
    """cel-go's words for the common failure: a missing field is `no such key: <name>`."""
    text = str(error.args[0]) if error.args else str(error)
    found = re.match(r"no such member in mapping: '(.*)'", text)
    return f"no such key: {found.group(1)}" if found else text


def evaluate(conditions: list[Mapping[str, Any]], variables: Mapping[str, Any],
             authorize: Authorize | None = None) -> bool:
    """True when every condition holds; raises ConditionError (after checking that none is
    false) when one could not be evaluated. `variables["authorizer"]`, when given, is the
    request's resource (`authorizer.requestResource`)."""
    activation: dict[str, Any] = {name: celpy.json_to_cel(value) for name, value in variables.items()
                                  if name != "authorizer"}
    request_resource = variables.get("authorizer") or {}
    activation["authorizer"] = celtypes.MapType({
        _KIND: celtypes.StringType("authorizer"),
        celtypes.StringType("requestResource"): _check_map("resource", **request_resource)})
    functions = _library(authorize)
    failures: list[str] = []
    for condition in conditions:
        expression = str(condition.get("expression", ""))
        try:
            result = _ENV.program(_ast(expression), functions=functions).evaluate(activation)
        except ConditionError as exc:
            failures.append(f"expression '{expression}' resulted in error: {exc}")
            continue
        except celpy.CELEvalError as exc:
            failures.append(f"expression '{expression}' resulted in error: {_go_text(exc)}")
            continue
        except Exception as exc:  # celpy raises other kinds for type errors
            failures.append(f"expression '{expression}' resulted in error: {exc}")
            continue
        if isinstance(result, celpy.CELEvalError):
            failures.append(f"expression '{expression}' resulted in error: {_go_text(result)}")
            continue
        if not isinstance(result, bool | celtypes.BoolType):
            failures.append(f"expression '{expression}' resulted in error: must evaluate to bool")
            continue
        if not result:
            return False
    if failures:
        # utilerrors.NewAggregate: one error as itself, several in brackets
        raise ConditionError(failures[0] if len(failures) == 1 else f"[{', '.join(failures)}]")
    return True
