"""matchConditions: CEL expressions that must all be true for a webhook to be called.

kube evaluates each condition (cel.Filter in webhook/matchconditions) over `object`,
`oldObject`, `request` (the AdmissionRequest) and `authorizer`; any false skips the webhook, and
only when none is false does an evaluation error count (it is then subject to the
failurePolicy). Programs are compiled once per expression text by `api.cel` (cel-python), the
CEL environment shared with admission policies and CRD validation rules.

`authorizer` is kube's CEL authorizer library, asking the API server's authorizer about the
requesting user: `authorizer.group('apps').resource('deployments').namespace('ns').check('create')
.allowed()`, `.subresource()`, `.name()`, `authorizer.serviceAccount(ns, name)...`,
`authorizer.path('/healthz').check('get')`, `authorizer.requestResource.check(verb)`, and on a
decision `.allowed()`, `.reason()`, `.errored()`, `.error()`. cel-python is synchronous, so
`evaluate` takes a blocking `authorize` callable; the dispatcher runs such conditions in a
worker thread that asks the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pykube_server.api import cel

Authorize = cel.Authorize


class ConditionError(Exception):
    """A condition that did not compile or evaluate to a bool."""


def uses_authorizer(conditions: list[Mapping[str, Any]]) -> bool:
    return any("authorizer" in str(c.get("expression", "")) for c in conditions)


def evaluate(conditions: list[Mapping[str, Any]], variables: Mapping[str, Any],
             authorize: Authorize | None = None) -> bool:
    """True when every condition holds; raises ConditionError (after checking that none is
    false) when one could not be evaluated. `variables["authorizer"]`, when given, is the
    request's resource (`authorizer.requestResource`). The variables given are the ones a
    condition may name (admission policies add `params`)."""
    activation: dict[str, Any] = {name: cel.to_cel(value) for name, value in variables.items()
                                  if name != "authorizer"}
    activation["authorizer"] = cel.authorizer_value(variables.get("authorizer") or {})
    functions = cel.authorizer_functions(authorize)
    failures: list[str] = []
    for condition in conditions:
        expression = str(condition.get("expression", ""))
        try:
            result = cel.evaluate(cel.compile(expression, activation), activation, functions)
        except cel.CompileError as exc:
            failures.append(f"expression '{expression}' resulted in error: compilation failed: {exc.detail}")
            continue
        except cel.EvalError as exc:
            failures.append(f"expression '{expression}' resulted in error: {exc.detail}")
            continue
        if not cel.is_bool(result):
            failures.append(f"expression '{expression}' resulted in error: must evaluate to bool")
            continue
        if not result:
            return False
    if failures:
        # utilerrors.NewAggregate: one error as itself, several in brackets
        raise ConditionError(failures[0] if len(failures) == 1 else f"[{', '.join(failures)}]")
    return True
