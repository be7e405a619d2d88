"""CRD validation rules: the `x-kubernetes-validations` CEL rules of a structural schema.

What apiextensions-apiserver's CEL validator does, walking the object and the schema together:

- at every schema node with rules (the root, objects, maps, arrays, scalars), each rule runs
  with `self` bound to the value there (null values are not validated; at the root `self` has
  apiVersion, kind and metadata.name/generateName only);
- a rule using `oldSelf` is a transition rule: it runs only on update and only where the old
  value can be correlated (object properties, map entries, items of `x-kubernetes-list-type:
  map` lists matched by their keys; never items of atomic or set lists); with
  `optionalOldSelf: true` it runs on create and uncorrelated values too, `oldSelf` being a CEL
  optional (`!oldSelf.hasValue() || self >= oldSelf.value()`), empty when there is no old value;
- a failing rule reports `fieldErrorForReason` at the node's path (or its `fieldPath`), with the
  node's schema type as the value (`spec: Invalid value: "object": <message>`), the message from
  `messageExpression`, else `message`, else `failed rule: <rule>`;
- an evaluation error reports `<error> evaluating rule: <rule or message>`;
- ratcheting (CRDValidationRatcheting, on in 1.33): a failing rule without `oldSelf` whose value
  is unchanged from the old object does not fail the update.

Runtime and estimated cost budgets are not modelled (cel-python has no cost tracking).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from celpy import celtypes

from pykube_server.api import cel, celcheck, celoptional
from pykube_server.api.fields import FieldError, Path, forbidden, invalid, not_supported, required

Obj = dict[str, Any]
Schema = dict[str, Any]

VARIABLES = ("self", "oldSelf")
REASONS = ("FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired")
NOT_CHECKED = ("some validation rules were not checked because the object was invalid; "
               "correct the existing errors to complete validation")
ROOT = "<nil>"
"""How kube names the object's root in a rule's error (its field path is nil there)."""
# Schema errors after which kube does not run the rules (hasBlockingErr).
BLOCKING = {"NotSupported", "Required", "TooLong", "TooMany", "TypeInvalid"}


@dataclass(frozen=True, slots=True)
class _Rule:
    spec: Obj
    program: cel.Program | None
    message_program: cel.Program | None
    error: str = ""

    @property
    def uses_old_self(self) -> bool:
        return self.program is not None and "oldSelf" in self.program.uses

    @property
    def optional_old_self(self) -> bool:
        """`optionalOldSelf: true` on a transition rule: `oldSelf` is an optional."""
        return self.uses_old_self and self.spec.get("optionalOldSelf") is True


def _compiled(rule: Obj) -> _Rule:
    try:
        program = cel.compile(str(rule.get("rule") or ""), VARIABLES) if rule.get("rule") else None
    except cel.CompileError as exc:
        return _Rule(rule, None, None, exc.detail)
    message_program = None
    if rule.get("messageExpression"):
        try:
            message_program = cel.compile(str(rule["messageExpression"]), VARIABLES)
        except cel.CompileError:
            message_program = None
    return _Rule(rule, program, message_program)


def _rules(schema: Schema) -> list[_Rule]:
    return [_compiled(r) for r in schema.get("x-kubernetes-validations") or [] if isinstance(r, dict)]


def has_rules(schema: Schema | None) -> bool:
    """Whether any node of the schema carries validation rules (so objects need the walk)."""
    if not isinstance(schema, dict):
        return False
    if schema.get("x-kubernetes-validations"):
        return True
    if has_rules(schema.get("items")) or has_rules(schema.get("additionalProperties")):
        return True
    return any(has_rules(s) for s in (schema.get("properties") or {}).values())


# -- checking the rules of a CRD ------------------------------------------------------------------
def check_schema(schema: Schema, path: Path) -> list[FieldError]:
    """The CRD-time checks of every rule in a schema (`path` is `...openAPIV3Schema`): rules must
    compile (and type-check, as far as `api/celcheck.py` can tell, to a bool), messages be single
    lines, reasons known, fieldPaths refer to fields."""
    return list(_check(schema, path, True))


def _check(schema: Schema, path: Path, root: bool = False) -> Iterator[FieldError]:
    for i, rule in enumerate(schema.get("x-kubernetes-validations") or []):
        if isinstance(rule, dict):
            yield from _check_rule(rule, schema, path.child("x-kubernetes-validations").index(i), root)
    for key, sub in (schema.get("properties") or {}).items():
        if isinstance(sub, dict):
            yield from _check(sub, path.child("properties").key(key))
    if isinstance(schema.get("items"), dict):
        yield from _check(schema["items"], path.child("items"))
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _check(schema["additionalProperties"], path.child("additionalProperties"))


def _check_rule(rule: Obj, schema: Schema, path: Path, root: bool) -> Iterator[FieldError]:
    text = str(rule.get("rule") or "")
    message = str(rule.get("message") or "")
    if not text.strip():
        yield required(path.child("rule"), "rule is not specified")
    else:
        compiled = _compiled(rule)
        if compiled.error:
            yield invalid(path.child("rule"), text, f"compilation failed: {compiled.error}")
        else:
            yield from _type_check(text, schema, path.child("rule"), root, rule.get("optionalOldSelf") is True)
        if rule.get("optionalOldSelf") and not compiled.uses_old_self and not compiled.error:
            yield invalid(path.child("optionalOldSelf"), True, "may not be set if oldSelf is not used in rule")
    if "\n" in text and not message and not rule.get("messageExpression"):
        yield required(path.child("message"), "message must be specified if rule contains line breaks")
    if message and "\n" in message:
        yield invalid(path.child("message"), message, "message must not contain line breaks")
    if message and not message.strip():
        yield invalid(path.child("message"), message, "message must be non-empty if specified")
    if rule.get("messageExpression"):
        expression = str(rule["messageExpression"])
        if not expression.strip():
            yield required(path.child("messageExpression"), "messageExpression must be non-empty if specified")
        else:
            try:
                cel.compile(expression, VARIABLES)
            except cel.CompileError as exc:
                yield invalid(path.child("messageExpression"), expression,
                              f"messageExpression compilation failed: {exc.detail}")
    reason = rule.get("reason")
    if reason and reason not in REASONS:
        yield not_supported(path.child("reason"), reason, list(REASONS))
    field_path = rule.get("fieldPath")
    if field_path and _field_path_schema(str(field_path), schema) is None:
        yield invalid(path.child("fieldPath"), field_path, "fieldPath must be a valid path: does not refer to a valid field")


def _type_check(text: str, schema: Schema, path: Path, root: bool, optional_old_self: bool = False) -> Iterator[FieldError]:
    """cel-go's type errors for `self`/`oldSelf` typed by the node's schema (best effort: what
    the checker cannot type is dyn and passes; an optional `oldSelf` is dyn)."""
    node = _with_object_meta(schema) if root else schema
    try:
        self_type = celcheck.from_schema(node, lambda s: s)
        old_type = celcheck.DYN if optional_old_self else self_type
        result, issues = celcheck.infer(text, {"self": self_type, "oldSelf": old_type})
    except Exception:  # a checker gap must not refuse a CRD kube accepts
        return
    if issues:
        yield invalid(path, text, "compilation failed: " + "\n".join(issues))
    elif result.kind not in ("bool", "dyn"):
        yield invalid(path, text, "cel expression must evaluate to a bool")


def _with_object_meta(schema: Schema) -> Schema:
    """The root schema as rules see it: apiVersion, kind and metadata.name/generateName too."""
    props = dict(schema.get("properties") or {})
    props.setdefault("apiVersion", {"type": "string"})
    props.setdefault("kind", {"type": "string"})
    props["metadata"] = {"type": "object", "properties": {"name": {"type": "string"},
                                                          "generateName": {"type": "string"}}}
    return {**schema, "type": "object", "properties": props}


def _field_path_schema(field_path: str, schema: Schema) -> Schema | None:
    """The schema a rule's fieldPath (`.spec.x`, `['a.b']`) points at, or None."""
    current = schema
    for name in _field_path_parts(field_path):
        props = current.get("properties")
        if props is not None:
            if name not in props:
                return None
            current = props[name]
        elif isinstance(current.get("additionalProperties"), dict):
            current = current["additionalProperties"]
        else:
            return None
    return current


def _field_path_parts(field_path: str) -> list[str]:
    parts: list[str] = []
    i = 0
    while i < len(field_path):
        ch = field_path[i]
        if ch == ".":
            j = i + 1
            while j < len(field_path) and field_path[j] not in ".[":
                j += 1
            parts.append(field_path[i + 1:j])
            i = j
        elif field_path.startswith("['", i):
            end = field_path.find("']", i + 2)
            if end < 0:
                return ["\x00"]
            parts.append(field_path[i + 2:end])
            i = end + 2
        else:
            return ["\x00"]
    return parts


def _normalized(field_path: str) -> str:
    """kube's NormalizedRuleFieldPath: `.spec.x` -> `spec.x`, `['a.b']` kept as a bracketed key."""
    out = ""
    for part in _field_path_parts(field_path):
        out = f"{out}[{part}]" if "." in part else (f"{out}.{part}" if out else part)
    return out


# -- evaluating the rules on an object ------------------------------------------------------------
def validate(obj: Obj, old: Obj | None, schema: Schema) -> list[FieldError]:
    """Every rule violation of `obj` (on update `old` is the stored object)."""
    if not has_rules(schema):
        return []
    return list(_walk(_root_view(obj), _root_view(old) if old is not None else None, schema, Path(), True))


def not_checked() -> FieldError:
    """The error kube adds instead of running rules when schema validation already failed."""
    return FieldError("Invalid", ROOT, None, NOT_CHECKED)


def blocking(errs: list[FieldError]) -> bool:
    return any(e.type in BLOCKING for e in errs)


def _root_view(obj: Obj) -> Obj:
    """`self` at the root: metadata shows only name and generateName."""
    view = dict(obj)
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    view["metadata"] = {k: meta[k] for k in ("name", "generateName") if k in meta}
    return view


def _walk(value: Any, old: Any, schema: Schema, path: Path, root: bool = False,
          unchanged_parent: bool = False) -> Iterator[FieldError]:
    """`unchanged_parent`: the nearest correlated ancestor equals its old value (what ratchets a
    node that has no old value of its own, e.g. an item of an atomic list)."""
    if value is None:
        return
    unchanged = (old == value) if old is not None else unchanged_parent
    yield from _run_rules(value, old, schema, path, root, unchanged)
    if isinstance(value, dict):
        correlatable = schema.get("x-kubernetes-map-type") in (None, "granular", "atomic")
        old_map = old if isinstance(old, dict) and correlatable else {}
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, child in value.items():
            if key in props:
                yield from _walk(child, old_map.get(key), props[key], path.child(key), False, unchanged)
            elif isinstance(extra, dict):
                yield from _walk(child, old_map.get(key), extra, path.key(key), False, unchanged)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        old_items = _correlate(schema, old if isinstance(old, list) else [])
        keys = schema.get("x-kubernetes-list-map-keys") or []
        for i, child in enumerate(value):
            old_child = old_items.get(_item_key(child, keys)) if old_items else None
            yield from _walk(child, old_child, schema["items"], path.index(i), False, unchanged)


def _item_key(item: Any, keys: list[str]) -> Any:
    if not isinstance(item, dict):
        return None
    return tuple(repr(item.get(k)) for k in keys)


def _correlate(schema: Schema, old: list[Any]) -> dict[Any, Any]:
    """Old items by their map keys; only `x-kubernetes-list-type: map` lists correlate."""
    keys = schema.get("x-kubernetes-list-map-keys") or []
    if schema.get("x-kubernetes-list-type") != "map" or not keys:
        return {}
    return {_item_key(item, keys): item for item in old if isinstance(item, dict)}


def _run_rules(value: Any, old: Any, schema: Schema, path: Path, root: bool, unchanged: bool) -> Iterator[FieldError]:
    rules = _rules(schema)
    if not rules:
        return
    value_type = "object" if root else str(schema.get("type") or "")
    where = path if str(path) else Path(ROOT)
    activation: Obj = {"self": typed(value, schema)}
    if old is not None:
        activation["oldSelf"] = typed(old, schema)
    for rule in rules:
        spec = rule.spec
        if rule.error:
            yield invalid(where, value_type, f"rule compile error: {rule.error}")
            continue
        if rule.program is None:
            continue
        variables = activation
        if rule.optional_old_self:
            variables = {"self": activation["self"],
                         "oldSelf": celoptional.of(activation["oldSelf"]) if old is not None else celoptional.NONE}
        elif rule.uses_old_self and old is None:
            continue  # transition rules need a correlated old value
        try:
            result = cel.evaluate(rule.program, variables)
        except cel.EvalError as exc:
            yield invalid(where, value_type, _eval_failure(exc.detail, spec))
            continue
        if cel.is_bool(result) and bool(result):
            continue
        if not cel.is_bool(result):
            yield invalid(where, value_type, f"no such overload evaluating rule: {_rule_text(spec)}")
            continue
        if not rule.uses_old_self and unchanged:
            continue  # ratcheting: an unchanged value keeps passing
        target = where
        if spec.get("fieldPath"):
            normalized = _normalized(str(spec["fieldPath"]))
            target = Path(f"{path}{normalized}") if normalized.startswith("[") else path.child(normalized)
        yield _for_reason(target, value_type, _message(rule, variables), spec.get("reason"))


def typed(value: Any, schema: Schema | None) -> Any:
    """A JSON value as the CEL value kube binds for its schema: `format: date-time` strings are
    timestamps, `duration` durations, `byte` bytes, `type: number` values doubles."""
    if not isinstance(schema, dict):
        return cel.to_cel(value)
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties") if isinstance(schema.get("additionalProperties"), dict) else None
        return celtypes.MapType({celtypes.StringType(k): typed(v, props.get(k, extra)) for k, v in value.items()})
    if isinstance(value, list):
        return celtypes.ListType([typed(v, schema.get("items")) for v in value])
    try:
        if isinstance(value, str) and schema.get("format") in ("date-time", "datetime"):
            return celtypes.TimestampType(value)
        if isinstance(value, str) and schema.get("format") == "duration":
            return celtypes.DurationType(value)
        if isinstance(value, str) and schema.get("format") == "byte":
            return celtypes.BytesType(base64.b64decode(value))
    except (ValueError, TypeError, binascii.Error):
        return cel.to_cel(value)
    if schema.get("type") == "number" and isinstance(value, int) and not isinstance(value, bool):
        return celtypes.DoubleType(value)
    return cel.to_cel(value)


def _eval_failure(detail: str, spec: Obj) -> str:
    if detail.startswith("no such overload"):
        return (f"'{detail}': call arguments did not match a supported operator, function or macro signature "
                f"for rule: {_rule_text(spec)}")
    return f"{detail} evaluating rule: {_rule_text(spec)}"


def _rule_text(spec: Obj) -> str:
    """ruleErrorString: the message when there is one, else the rule."""
    message = str(spec.get("message") or "")
    return message.strip() if message else str(spec.get("rule") or "").strip()


def _message(rule: _Rule, activation: Obj) -> str:
    spec = rule.spec
    if rule.message_program is not None:
        try:
            text = cel.to_json(cel.evaluate(rule.message_program, activation))
        except cel.EvalError:
            text = None
        if isinstance(text, str) and text.strip() and "\n" not in text.strip():
            return text.strip()
    message = str(spec.get("message") or "")
    return message.strip() if message else f"failed rule: {_rule_text(spec)}"


def _for_reason(path: Path, value_type: str, detail: str, reason: Any) -> FieldError:
    if reason == "FieldValueForbidden":
        return forbidden(path, detail)
    if reason == "FieldValueRequired":
        return required(path, detail)
    if reason == "FieldValueDuplicate":
        return FieldError("Duplicate", str(path), value_type)
    return invalid(path, value_type, detail)
