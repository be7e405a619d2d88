"""A best-effort CEL type checker over OpenAPI schemas, for ValidatingAdmissionPolicy type checking.

kube-controller-manager's ValidatingAdmissionPolicy status controller compiles every validation
against the schema of each kind the policy matches and reports cel-go's type errors as
`status.typeChecking.expressionWarnings`. cel-python has no checker, so this module infers types
on its syntax tree: variables typed from OpenAPI v3 schemas (`object`, `oldObject`, `params`,
`namespaceObject`, `variables.<name>`), literals, fields, the common functions and macros, and
the operators. It reports, with cel-go's words and positions, only what it is sure of:

- `found no matching overload for '_>_' applied to '(int, string)'` when both operands have a
  known primitive type no overload accepts (numbers compare across int/uint/double, as kube
  enables; arithmetic does not);
- `undefined field 'replicsa'` for a field a closed object schema does not have.

Anything it cannot type is `dyn`, which never produces a warning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import celpy

from pykube_server.api import celoptional

Schema = Mapping[str, Any]
Resolve = Callable[[Schema], Schema]
"""Follows `$ref` (and a single `allOf: [{$ref}]`) to the schema it names."""

_ENV = celpy.Environment()
_NUMERIC = {"int", "uint", "double"}
_PRIMITIVE = _NUMERIC | {"string", "bool", "bytes", "timestamp", "duration"}
_RELATIONS = {"relation_lt": "<", "relation_le": "<=", "relation_gt": ">", "relation_ge": ">=",
              "relation_eq": "==", "relation_ne": "!=", "relation_in": "in"}
_ARITH = {"addition_add": "+", "addition_sub": "-", "multiplication_mul": "*", "multiplication_div": "/",
          "multiplication_mod": "%"}
_RETURNS = {"size": "int", "has": "bool", "startsWith": "bool", "endsWith": "bool", "contains": "bool",
            "matches": "bool", "lowerAscii": "string", "upperAscii": "string", "trim": "string",
            "replace": "string", "substring": "string", "join": "string", "indexOf": "int", "lastIndexOf": "int",
            "find": "string", "isSorted": "bool", "isQuantity": "bool", "isURL": "bool", "string": "string",
            "int": "int", "uint": "uint", "double": "double", "bool": "bool", "bytes": "bytes",
            "all": "bool", "exists": "bool", "exists_one": "bool", "timestamp": "timestamp", "duration": "duration",
            "hasValue": "bool", "isIP": "bool", "isCIDR": "bool", "isSemver": "bool", "format": "string",
            "containsIP": "bool", "containsCIDR": "bool", "family": "int", "prefixLength": "int"}


@dataclass(frozen=True)
class Type:
    kind: str
    """int, uint, double, string, bool, bytes, null, timestamp, duration, list, map, object, dyn."""
    schema: Any = field(default=None, compare=False)
    elem: Type | None = None
    fields: dict[str, Type] = field(default_factory=dict, compare=False)


DYN = Type("dyn")


def from_schema(schema: Schema | None, resolve: Resolve, depth: int = 0) -> Type:
    """The CEL type kube derives from an OpenAPI v3 schema (dyn where it cannot say)."""
    if not schema or depth > 40:
        return DYN
    schema = resolve(schema)
    if not schema.get("type") and not schema.get("properties") and len(schema.get("allOf") or ()) == 1:
        schema = resolve(schema["allOf"][0])
    if schema.get("x-kubernetes-int-or-string"):
        return DYN
    kind = schema.get("type")
    if isinstance(kind, list):  # JSON-schema style ["integer", "null"]
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind == "integer":
        return Type("int")
    if kind == "number":
        return Type("double")
    if kind == "boolean":
        return Type("bool")
    if kind == "string":
        return Type({"byte": "bytes", "date-time": "timestamp", "duration": "duration"}.get(
            str(schema.get("format") or ""), "string"))
    if kind == "array":
        return Type("list", elem=from_schema(schema.get("items"), resolve, depth + 1))
    if schema.get("properties") or schema.get("x-kubernetes-embedded-resource"):
        return Type("object", schema={"depth": depth, "schema": schema, "resolve": resolve})
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        return Type("map", elem=from_schema(extra, resolve, depth + 1))
    return DYN


def _field(owner: Type, name: str) -> Type | None:
    """The type of `owner.name`; None when a closed object has no such field."""
    if owner.kind == "map":
        return owner.elem or DYN
    if owner.kind != "object":
        return DYN
    if name in owner.fields:
        return owner.fields[name]
    info = owner.schema
    schema, resolve = info["schema"], info["resolve"]
    properties = schema.get("properties") or {}
    if name in properties:
        return from_schema(properties[name], resolve, info["depth"] + 1)
    if schema.get("x-kubernetes-embedded-resource") and name in ("apiVersion", "kind"):
        return Type("string")
    if schema.get("x-kubernetes-embedded-resource") and name == "metadata":
        return DYN
    if schema.get("x-kubernetes-preserve-unknown-fields") or schema.get("additionalProperties"):
        return DYN
    return None


def _name(t: Type) -> str:
    if t.kind == "list":
        return f"list({_name(t.elem or DYN)})"
    if t.kind == "map":
        return f"map(string, {_name(t.elem or DYN)})"
    if t.kind == "object":
        return "object"
    return {"null": "null_type", "timestamp": "google.protobuf.Timestamp",
            "duration": "google.protobuf.Duration"}.get(t.kind, t.kind)


class _Issue(Exception):
    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


class _Checker:
    def __init__(self, expression: str, variables: Mapping[str, Type]) -> None:
        self.expression = expression
        self.lines = expression.split("\n")
        self.variables = dict(variables)
        self.issues: list[_Issue] = []

    # -- positions ------------------------------------------------------------------------
    def _last_token(self, tree: Any) -> Any:
        tokens = [t for t in tree.scan_values(lambda v: getattr(v, "line", None) is not None)] \
            if hasattr(tree, "scan_values") else ([tree] if getattr(tree, "line", None) else [])
        return tokens[-1] if tokens else None

    def _operator_at(self, left: Any, op: str) -> tuple[int, int]:
        """Where the operator after `left` is (cel-go places a call at its operator)."""
        token = self._last_token(left)
        line, col = (token.end_line or token.line, token.end_column) if token is not None else (1, 1)
        for index in range(line - 1, len(self.lines)):
            text = self.lines[index]
            start = col - 1 if index == line - 1 else 0
            found = text.find(op, start)
            if found >= 0:
                return index + 1, found + 1
        return line, col

    def _report(self, line: int, column: int, message: str) -> None:
        self.issues.append(_Issue(line, column, message))

    def _overload(self, op: str, left_tree: Any, left: Type, right: Type) -> None:
        line, column = self._operator_at(left_tree, op)
        self._report(line, column, f"found no matching overload for '_{op}_' applied to "
                                   f"'({_name(left)}, {_name(right)})'")

    # -- the walk --------------------------------------------------------------------------
    def visit(self, tree: Any, scope: Mapping[str, Type]) -> Type:
        data = getattr(tree, "data", None)
        if data is None:
            return DYN
        method = getattr(self, f"_{data}", None)
        if method is not None:
            return method(tree, scope)
        children = [c for c in tree.children if hasattr(c, "data")]
        if len(children) == 1:
            return self.visit(children[0], scope)
        for child in children:
            self.visit(child, scope)
        return DYN

    def _expr(self, tree: Any, scope: Mapping[str, Type]) -> Type:
        children = tree.children
        if len(children) == 3:
            self.visit(children[0], scope)
            a, b = self.visit(children[1], scope), self.visit(children[2], scope)
            return a if a == b else DYN
        return self.visit(children[0], scope)

    def _logical(self, tree: Any, scope: Mapping[str, Type], op: str) -> Type:
        if len(tree.children) == 1:
            return self.visit(tree.children[0], scope)
        left_tree, right_tree = tree.children
        left, right = self.visit(left_tree, scope), self.visit(right_tree, scope)
        if left.kind in _PRIMITIVE - {"bool"} or right.kind in _PRIMITIVE - {"bool"}:
            self._overload(op, left_tree, left, right)
        return Type("bool")

    def _conditionalor(self, tree: Any, scope: Mapping[str, Type]) -> Type:
        return self._logical(tree, scope, "||")

    def _conditionaland(self, tree: Any, scope: Mapping[str, Type]) -> Type:
        return self._logical(tree, scope, "&&")

    def _relation(self, tree: Any, scope: Mapping[str, Type]) -> Type:
        if len(tree.children) == 1:
            return self.visit(tree.children[0], scope)
        op_node, right_tree = tree.children
        left_tree = op_node.children[0]
        left, right = self.visit(left_tree, scope), self.visit(right_tree, scope)
        op = _RELATIONS.get(op_node.data, "")
        if op in ("<", "<=", ">", ">=") and left.kind in _PRIMITIVE and right.kind in _PRIMITIVE:
            same = left.kind == right.kind or (left.kind in _NUMERIC and right.kind in _NUMERIC)
            if not same:
                self._overload(op, left_tree, left, right)
        elif op in ("==", "!=") and left.kind in _PRIMITIVE and right.kind in _PRIMITIVE:
            if left.kind != right.kind and not (left.kind in _NUMERIC and right.kind in _NUMERIC):
                self._overload(op, left_tree, left, right)
        return Type("bool")

    def _arith(self, tree: Any, scope: Mapping[str, Type]) -> Type:
        if len(tree.children) == 1:
            return self.visit(tree.children[0], scope)
        op_node, right_tree = tree.children
        left_tree = op_node.children[0]
        left, right = self.visit(left_tree, scope), self.visit(right_tree, scope)
        op = _ARITH.get(op_node.data, "")
        if left.kind not in _PRIMITIVE or right.kind not in _PRIMITIVE:
            return left if left == right else DYN
        allowed = {
            "+": {("int", "int"), ("uint", "uint"), ("double", "double"), ("string", "string"), ("bytes", "bytes"),
                  ("timestamp", "duration"), ("duration", "timestamp"), ("duration", "duration")},
            "-": {("int", "int"), ("uint", "uint"), ("double", "double"), ("timestamp", "timestamp"),
                  ("timestamp", "duration"), ("duration", "duration")},
            "*": {("int", "int"), ("uint", "uint"), ("double", "double")},
            "/": {("int", "int"), ("uint", "uint"), ("double", "double")},
            "%": {("int", "int"), ("uint", "uint")},
        }.get(op, set())
        if (left.kind, right.kind) not in allowed:
            self._overload(op, left_tree, left, right)
            return DYN
        if op == "-" and left.kind == right.kind == "timestamp":
            return Type("duration")
        return Type("timestamp") if "timestamp" in (left.kind, right.kind) else left

    _addition = _arith
    _multiplication = _arith

    def _unary(self, tree: Any, scope: Mapping[str, Type]) -> Type:
        children = tree.children
        if len(children) == 1:
            return self.visit(children[0], scope)
        operand = self.visit(children[-1], scope)
        return Type("bool") if children[0].data == "unary_not" else operand

    def _member_dot(self, tree: Any, scope: Mapping[str, Type]) -> Type:
        owner_tree, name = tree.children
        owner = self.visit(owner_tree, scope)
        found = _field(owner, str(name))
        if found is None:
            self._report(name.line, max(name.column - 1, 1), f"undefined field '{name}'")
            return DYN
        return found

    def _member_dot_arg(self, tree: Any, scope: Mapping[str, Type]) -> Type:
        target_tree, method = tree.children[0], str(tree.children[1])
        args = list(getattr(tree.children[2], "children", [])) if len(tree.children) > 2 else []
        target = self.visit(target_tree, scope)
        if method in ("all", "exists", "exists_one", "map", "filter") and args:
            variable = _ident_name(args[0])
            if variable:
                elem = target.elem if target.kind == "list" and target.elem else (
                    Type("string") if target.kind in ("map", "object") else DYN)
                inner = {**scope, variable: elem}
                body = [self.visit(a, inner) for a in args[1:]]
                if method == "map":
                    return Type("list", elem=body[-1] if body else DYN)
                if method == "filter":
                    return Type("list", elem=elem)
                return Type("bool")
        for arg in args:
            self.visit(arg, scope)
        if method in ("split", "findAll"):
            return Type("list", elem=Type("string"))
        if method in ("min", "max", "sum") and target.kind == "list":
            return target.elem or DYN
        return Type(_RETURNS[method]) if method in _RETURNS else DYN

    def _member_index(self, tree: Any, scope: Mapping[str, Type]) -> Type:
        owner = self.visit(tree.children[0], scope)
        self.visit(tree.children[1], scope)
        return (owner.elem or DYN) if owner.kind in ("list", "map") else DYN

    def _ident(self, tree: Any, scope: Mapping[str, Type]) -> Type:
        return scope.get(str(tree.children[0]), DYN)

    def _ident_arg(self, tree: Any, scope: Mapping[str, Type]) -> Type:
        name = str(tree.children[0])
        args = list(getattr(tree.children[1], "children", [])) if len(tree.children) > 1 else []
        for arg in args:
            if name != "has":
                self.visit(arg, scope)
        return Type(_RETURNS[name]) if name in _RETURNS else DYN

    def _paren_expr(self, tree: Any, scope: Mapping[str, Type]) -> Type:
        return self.visit(tree.children[0], scope)

    def _list_lit(self, tree: Any, scope: Mapping[str, Type]) -> Type:
        items = [self.visit(c, scope) for c in getattr(tree.children[0], "children", [])] if tree.children else []
        kinds = set(items)
        return Type("list", elem=items[0] if len(kinds) == 1 else DYN)

    def _map_lit(self, tree: Any, scope: Mapping[str, Type]) -> Type:
        for child in tree.children:
            self.visit(child, scope)
        return Type("map", elem=DYN)

    def _literal(self, tree: Any, scope: Mapping[str, Type]) -> Type:
        token = tree.children[0]
        return Type({"INT_LIT": "int", "UINT_LIT": "uint", "FLOAT_LIT": "double", "STRING_LIT": "string",
                     "MLSTRING_LIT": "string", "BYTES_LIT": "bytes", "MLBYTES_LIT": "bytes", "BOOL_LIT": "bool",
                     "NULL_LIT": "null"}.get(token.type, "dyn"))


def _ident_name(tree: Any) -> str:
    node = tree
    while hasattr(node, "children") and len(node.children) == 1 and hasattr(node.children[0], "data"):
        node = node.children[0]
    if getattr(node, "data", None) == "ident":
        return str(node.children[0])
    return ""


def infer(expression: str, variables: Mapping[str, Type]) -> tuple[Type, list[str]]:
    """The expression's type and its issues in cel-go's text; unparsable text is (dyn, [])
    (validation reports syntax errors)."""
    try:
        tree = _ENV.compile(celoptional.rewrite(expression))
    except celpy.CELParseError:
        return DYN, []
    checker = _Checker(expression, variables)
    result = checker.visit(tree, variables)
    issues = []
    for issue in checker.issues:
        text = checker.lines[issue.line - 1] if 0 < issue.line <= len(checker.lines) else ""
        issues.append(f"ERROR: <input>:{issue.line}:{issue.column}: {issue.message}\n | {text}\n"
                      f" | {'.' * (issue.column - 1)}^")
    return result, issues


def check(expression: str, variables: Mapping[str, Type]) -> list[str]:
    return infer(expression, variables)[1]


def variables_type(names_and_types: Mapping[str, Type]) -> Type:
    """The `variables` object of a policy, each field typed by its expression."""
    return Type("object", schema={"depth": 0, "schema": {"properties": {n: {} for n in names_and_types}},
                                  "resolve": lambda s: s}, fields=dict(names_and_types))
