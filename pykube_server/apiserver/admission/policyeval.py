"""One compiled policy judged against one request and one param: kube's `validator.Validate`.

The order and the texts are kube's. matchConditions first: any false means no decision at all,
an error one decision under the failurePolicy. Then `variables` (each may use the ones before it;
one that fails is an error only for the expressions that read it), then every validation:

- true: admit;
- an evaluation error: `expression '<expr>' resulted in error: <why>`, a denial under
  `failurePolicy: Fail` (the default), nothing under `Ignore`;
- false (or any non-true value): a denial with the validation's `reason` (default `Invalid`) and
  the message of `messageExpression` when it gives a one-line, non-blank string, else
  `message`, else `failed expression: <expr>`.

auditAnnotations are evaluated too: a string value is handed back for the request's audit event
(a null one means no annotation); a failure, or a value neither string nor null, denies under Fail.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import celpy
from celpy import celtypes

from pykube_server.api import cel
from pykube_server.apiserver.admission.policysource import Compiled, CompiledPolicy
from pykube_server.apiserver.admission.webhook import conditions

ADMIT, DENY = "admit", "deny"
MAX_MESSAGE_BYTES = 5 * 1024  # celconfig.MaxEvaluatedMessageExpressionSizeBytes


@dataclass(frozen=True, slots=True)
class Decision:
    action: str
    message: str = ""
    reason: str = ""
    error: bool = False
    index: int = 0


def _on_error(policy: CompiledPolicy, message: str, index: int = 0) -> Decision:
    return Decision(ADMIT if policy.failure_policy == "Ignore" else DENY, message, error=True, index=index)


def _run(compiled: Compiled, expression: str, activation: Mapping[str, Any],
         functions: Mapping[str, Any]) -> Any:
    """The value, or raises cel.CELError with kube's text for this expression."""
    if isinstance(compiled, cel.CompileError):
        raise cel.CompileError(f"compilation error: compilation failed: {compiled.detail}")
    try:
        return cel.evaluate(compiled, activation, functions)
    except cel.EvalError as exc:
        raise cel.EvalError(f"expression '{expression}' resulted in error: {exc.detail}") from None


def _variables(policy: CompiledPolicy, activation: dict[str, Any], functions: Mapping[str, Any]) -> None:
    """Fill `activation["variables"]` in order; a failed one holds its error, raised on use."""
    values = celtypes.MapType()
    activation["variables"] = values
    for name, expression, compiled in policy.variables:
        try:
            values[celtypes.StringType(name)] = _run(compiled, expression, activation, functions)
        except cel.CELError as exc:
            values[celtypes.StringType(name)] = celpy.CELEvalError(exc.detail)


def _message(policy: CompiledPolicy, index: int, activation: Mapping[str, Any], functions: Mapping[str, Any]) -> str:
    validation = policy.validations[index]
    if validation.message_program is not None:
        try:
            value = _run(validation.message_program, "", activation, functions)
        except cel.CELError:
            value = None
        if isinstance(value, str):
            text = str(value).strip()
            if text and len(text.encode()) <= MAX_MESSAGE_BYTES and "\n" not in text:
                return text
    if validation.message.strip():
        return validation.message.strip()
    return f"failed expression: {validation.expression.strip()}"


def validate(policy: CompiledPolicy, activation: dict[str, Any], request_resource: Mapping[str, str],
             authorize: cel.Authorize | None = None, annotations: list[tuple[str, str]] | None = None) -> list[Decision]:
    """Every decision of `policy` for one request and param. `activation` holds object,
    oldObject, request, namespaceObject and params as CEL values; it gains `variables` and
    `authorizer`. The auditAnnotations' (key, value) pairs are appended to `annotations`."""
    functions = cel.authorizer_functions(authorize)
    if policy.match_conditions:
        variables = {name: activation[name] for name in ("object", "oldObject", "request", "params")
                     if name in activation}
        try:
            if not conditions.evaluate(policy.match_conditions, {**variables, "authorizer": dict(request_resource)},
                                       authorize):
                return []
        except conditions.ConditionError as exc:
            return [_on_error(policy, str(exc))]
    activation["authorizer"] = cel.authorizer_value(request_resource)
    _variables(policy, activation, functions)
    decisions = []
    for i, validation in enumerate(policy.validations):
        try:
            result = _run(validation.program, validation.expression, activation, functions)
        except cel.CELError as exc:
            decisions.append(_on_error(policy, exc.detail, i))
            continue
        if cel.is_bool(result) and result:
            decisions.append(Decision(ADMIT, index=i))
            continue
        decisions.append(Decision(DENY, _message(policy, i, activation, functions), validation.reason or "Invalid",
                                  index=i))
    for key, expression, compiled in policy.audit_annotations:
        try:
            value = _run(compiled, expression, activation, functions)
        except cel.CELError as exc:
            if policy.failure_policy != "Ignore":
                decisions.append(_on_error(policy, exc.detail))
            continue
        if isinstance(value, str) and annotations is not None:
            annotations.append((key, str(value)))
        if value is not None and not isinstance(value, str) and policy.failure_policy != "Ignore":
            decisions.append(_on_error(policy, f"valueExpression '{expression}' resulted in unsupported return type: "
                                               f"{type(value).__name__.removesuffix('Type').lower()}. "
                                               "Return type must be either string or null."))
    return decisions
