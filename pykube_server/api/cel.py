"""CEL as kube-apiserver offers it: one environment, kube's extension libraries, cel-go's texts.

Admission policies, webhook matchConditions and CRD validation rules are all CEL programs. This
module is the one place that turns an expression into a program and a program plus variables
into a value, over cel-python (`celpy`, a maintained pure-Python CEL). Its API stays small:

- `compile(expression, variables)` -> `Program`, raising `CompileError` whose `detail` is in
  cel-go's shape (`ERROR: <input>:1:5: undeclared reference to 'foo' (in container '')` plus
  the source line and a dotted caret), because kube puts that text in its 422 answers;
- `evaluate(program, activation, functions=None)` -> a CEL value, raising `EvalError` whose
  `detail` uses cel-go's words for the common failures (`no such key: spec`, `no such overload`);
- `to_cel` / `to_json` convert JSON values to CEL values and back;
- `authorizer_functions` / `authorizer_value`: kube's CEL authorizer library.

cel-python checks no types at compile time, so `compile` adds the check cel-go makes that
matters most to users: every free identifier must be a declared variable, every function known.
The kube libraries present are listed in `LIBRARY`: strings ext (with `format`, in
`celformat.py`), lists, regex, quantity, url, ip and cidr (`celnet.py`), semver (`celformat.py`)
and optional types (`celoptional.py`: `optional.of/none`, `hasValue/value/orValue/or`, `a.?b`
and `a[?k]`; not the optional entries of list and map literals nor `optMap`/`optFlatMap`).
Type identifiers (`type(x) == string`) need no declaration, as in cel-go.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit

import celpy
import celpy.evaluation
from celpy import celtypes

from pykube_server.api import celformat, celnet, celoptional
from pykube_server.api.quantity import Quantity, QuantityError, format_quantity, parse_quantity

_ENV = celpy.Environment()
MACROS = frozenset({"has", "all", "exists", "exists_one", "map", "filter"})
_BINDING_MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
_JSON_TYPES = (dict, list, str, int, float, bool, type(None))
TYPE_NAMES = frozenset({"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type",
                        "dyn"})
"""cel-go's type identifiers: values, never undeclared references."""
_NAMESPACES = {celoptional.NAMESPACE: celoptional.MARKER, "ip": celnet.MARKER}
"""Identifiers that only receive functions (`optional.none()`, `ip.isCanonical(s)`)."""


class CELError(Exception):
    """A CEL failure; `detail` is the text kube shows (cel.Error's Detail)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class CompileError(CELError):
    """The expression does not parse, or names a variable or function that does not exist."""


class EvalError(CELError):
    """The program failed at run time (missing key, no overload, a library function's error)."""


@dataclass(frozen=True, slots=True)
class Program:
    expression: str
    ast: Any
    uses: frozenset[str]
    """The declared variables the expression refers to (to skip building unused ones)."""


# -- compile --------------------------------------------------------------------------------
def _snippet(expression: str, line: int, column: int) -> str:
    """cel-go's error context: the offending line and a caret led by dots."""
    lines = expression.split("\n")
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    return f"\n | {text}\n | {'.' * max(column - 1, 0)}^"


def _error(expression: str, line: int, column: int, message: str) -> CompileError:
    return CompileError(f"ERROR: <input>:{line}:{column}: {message}{_snippet(expression, line, column)}")


def _ident_token(tree: Any) -> Any:
    """The IDENT token when `tree` (an expr) is a bare identifier, else None."""
    node = tree
    while hasattr(node, "children") and len(node.children) == 1 and hasattr(node.children[0], "children"):
        node = node.children[0]
    if getattr(node, "data", None) == "ident" and node.children:
        return node.children[0]
    return None


def _check(tree: Any, declared: frozenset[str], bound: frozenset[str], functions: frozenset[str],
           expression: str, uses: set[str]) -> None:
    """Walk the tree: free identifiers must be declared, called functions known."""
    data = getattr(tree, "data", None)
    if data is None:
        return
    children = tree.children
    if data == "ident":
        token = children[0]
        name = str(token)
        if name in bound or (name not in declared and (name in TYPE_NAMES or name in _NAMESPACES)):
            return
        if name not in declared:
            raise _error(expression, token.line, token.column, f"undeclared reference to '{name}' (in container '')")
        uses.add(name)
        return
    if data == "ident_arg":
        token = children[0]
        name = str(token)
        if name not in functions and name not in MACROS:
            raise _error(expression, token.line, token.column, f"undeclared reference to '{name}' (in container '')")
        for child in children[1:]:
            _check(child, declared, bound, functions, expression, uses)
        return
    if data == "member_dot_arg":
        target, method = children[0], children[1]
        args = children[2] if len(children) > 2 else None
        name = str(method)
        _check(target, declared, bound, functions, expression, uses)
        arg_exprs = list(getattr(args, "children", []) or [])
        if name in _BINDING_MACROS and arg_exprs:
            variable = _ident_token(arg_exprs[0])
            if variable is not None:
                inner = bound | {str(variable)}
                for child in arg_exprs[1:]:
                    _check(child, declared, inner, functions, expression, uses)
                return
        if name not in functions and name not in MACROS:
            raise _error(expression, method.line, method.column, f"undeclared reference to '{name}' (in container '')")
        for child in arg_exprs:
            _check(child, declared, bound, functions, expression, uses)
        return
    for child in children:
        _check(child, declared, bound, functions, expression, uses)


@lru_cache(maxsize=4096)
def _compile(expression: str, declared: frozenset[str]) -> Program:
    try:
        ast = _ENV.compile(celoptional.rewrite(expression))
    except celpy.CELParseError as exc:
        line = getattr(exc, "line", None) or 1
        column = getattr(exc, "column", None) or 1
        raise _error(expression, line, column, "Syntax error") from None
    uses: set[str] = set()
    _check(ast, declared, frozenset(), KNOWN_FUNCTIONS, expression, uses)
    return Program(expression, ast, frozenset(uses))


def compile(expression: str, variables: Iterable[str]) -> Program:  # noqa: A001 - the API's word
    """The program for `expression` with `variables` declared; cached per (text, variables)."""
    return _compile(expression, frozenset(variables))


# -- values ---------------------------------------------------------------------------------
def to_cel(value: Any) -> Any:
    """A JSON value as a CEL value (CEL values pass through unchanged)."""
    if type(value) in _JSON_TYPES:
        return celpy.json_to_cel(value)
    return value


def to_json(value: Any) -> Any:
    """A CEL value as plain JSON (maps, lists, strings, numbers, booleans, null)."""
    if isinstance(value, celtypes.BoolType | bool):
        return bool(value)
    if isinstance(value, Mapping):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, celtypes.StringType | str):
        return str(value)
    if isinstance(value, celtypes.IntType | celtypes.UintType | int):
        return int(value)
    if isinstance(value, celtypes.DoubleType | float):
        return float(value)
    if isinstance(value, celoptional.OptionalValue):
        return to_json(value.inner) if value.present else None
    if isinstance(value, QuantityValue | celnet.IPValue | celnet.CIDRValue | celformat.SemverValue):
        return str(value)
    return None if value is None else str(value)


def eval_error_text(error: BaseException) -> str:
    """cel-go's words for cel-python's failures."""
    text = str(error.args[0]) if error.args else str(error)
    text = text.split(" (in activation", 1)[0]
    found = re.match(r"no such member in mapping: '(.*)'", text)
    if found:
        return f"no such key: {found.group(1)}"
    if text.startswith("found no matching overload"):
        return "no such overload"
    return text


def evaluate(program: Program, activation: Mapping[str, Any],
             functions: Mapping[str, Callable[..., Any]] | None = None) -> Any:
    """Run `program` over `activation` (JSON or CEL values); raises EvalError."""
    values = {**_NAMESPACES, **{name: to_cel(value) for name, value in activation.items()}}
    library = {**LIBRARY, **functions} if functions else LIBRARY
    try:
        result = _ENV.program(program.ast, functions=library).evaluate(values)
    except celpy.CELEvalError as exc:
        raise EvalError(eval_error_text(exc)) from None
    except CELError:
        raise
    except Exception as exc:  # cel-python raises plain Python errors for some type mismatches
        raise EvalError(eval_error_text(exc)) from None
    if isinstance(result, celpy.CELEvalError):
        raise EvalError(eval_error_text(result))
    return result


# -- kube's libraries -----------------------------------------------------------------------
def _fail(message: str) -> celpy.CELEvalError:
    return celpy.CELEvalError(message)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _fail("no such overload")
    return str(value)


def _index_of(target: Any, item: Any, start: Any = 0) -> Any:
    if isinstance(target, str):
        return celtypes.IntType(str(target).find(_string(item), int(start)))
    if isinstance(target, list):
        for i, v in enumerate(target):
            if v == item:
                return celtypes.IntType(i)
        return celtypes.IntType(-1)
    raise _fail("no such overload")


def _last_index_of(target: Any, item: Any) -> Any:
    if isinstance(target, str):
        return celtypes.IntType(str(target).rfind(_string(item)))
    if isinstance(target, list):
        for i in range(len(target) - 1, -1, -1):
            if target[i] == item:
                return celtypes.IntType(i)
        return celtypes.IntType(-1)
    raise _fail("no such overload")


def _split(target: Any, sep: Any, limit: Any = -1) -> Any:
    text, sep, limit = _string(target), _string(sep), int(limit)
    if limit == 0:
        return celtypes.ListType([])
    parts = (list(text) if text else []) if sep == "" else text.split(sep, -1 if limit < 0 else limit - 1)
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _join(target: Any, sep: Any = "") -> Any:
    return celtypes.StringType(_string(sep).join(_string(v) for v in target))


def _replace(target: Any, old: Any, new: Any, count: Any = -1) -> Any:
    return celtypes.StringType(_string(target).replace(_string(old), _string(new), int(count)))


def _substring(target: Any, start: Any, end: Any = None) -> Any:
    text = _string(target)
    begin, stop = int(start), len(text) if end is None else int(end)
    if not 0 <= begin <= len(text) or not begin <= stop <= len(text):
        raise _fail(f"index out of range: {stop if begin <= len(text) else begin}")
    return celtypes.StringType(text[begin:stop])


def _find(target: Any, pattern: Any) -> Any:
    found = re.search(_string(pattern), _string(target))
    return celtypes.StringType(found.group(0) if found else "")


def _find_all(target: Any, pattern: Any, limit: Any = -1) -> Any:
    found = [m.group(0) for m in re.finditer(_string(pattern), _string(target))]
    if int(limit) >= 0:
        found = found[:int(limit)]
    return celtypes.ListType([celtypes.StringType(s) for s in found])


def _numbers(target: Any) -> list[Any]:
    if not isinstance(target, list):
        raise _fail("no such overload")
    return list(target)


def _is_sorted(target: Any) -> Any:
    items = _numbers(target)
    return celtypes.BoolType(all(items[i] <= items[i + 1] for i in range(len(items) - 1)))


def _sum(target: Any) -> Any:
    items = _numbers(target)
    if not items:
        return celtypes.IntType(0)
    total = items[0]
    for v in items[1:]:
        total = total + v
    return total


def _extreme(pick: Callable[[Any, Any], bool]) -> Callable[..., Any]:
    def run(target: Any, *more: Any) -> Any:
        items = _numbers(target) if not more else [target, *more]
        if not items:
            raise _fail("min called on empty list" if pick(0, 1) else "max called on empty list")
        best = items[0]
        for v in items[1:]:
            if pick(v, best):
                best = v
        return best
    return run


class QuantityValue:
    """kube's `Quantity` CEL type (`quantity('1Gi')`), compared by value."""

    __slots__ = ("quantity",)

    def __init__(self, quantity: Quantity) -> None:
        self.quantity = quantity

    def __eq__(self, other: object) -> bool:
        return isinstance(other, QuantityValue) and self.quantity.value == other.quantity.value

    def __hash__(self) -> int:
        return hash(self.quantity.value)

    def __str__(self) -> str:
        return format_quantity(self.quantity)


def _quantity(value: Any) -> QuantityValue:
    try:
        return QuantityValue(parse_quantity(_string(value)))
    except QuantityError as exc:
        raise _fail(str(exc)) from None


def _is_quantity(value: Any) -> Any:
    try:
        parse_quantity(_string(value))
    except QuantityError:
        return celtypes.BoolType(False)
    return celtypes.BoolType(True)


def _q(value: Any) -> Quantity:
    if isinstance(value, QuantityValue):
        return value.quantity
    if isinstance(value, int | celtypes.IntType):
        return parse_quantity(int(value))
    raise _fail("no such overload")


def _q_arith(sign: int) -> Callable[[Any, Any], QuantityValue]:
    def run(target: Any, other: Any) -> QuantityValue:
        a, b = _q(target), _q(other)
        return QuantityValue(Quantity(a.value + sign * b.value, a.format))
    return run


def _as_integer(target: Any) -> Any:
    value = _q(target).value
    if value.denominator != 1 or not -(2**63) <= value <= 2**63 - 1:
        raise _fail("cannot convert value to integer")
    return celtypes.IntType(int(value))


def _is_integer(target: Any) -> Any:
    value = _q(target).value
    return celtypes.BoolType(value.denominator == 1 and -(2**63) <= value <= 2**63 - 1)


def _sign(target: Any) -> Any:
    value = _q(target).value
    return celtypes.IntType((value > 0) - (value < 0))


class URLValue:
    """kube's `URL` CEL type (`url('https://example.com:80/p')`)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, URLValue) and self.text == other.text

    def __hash__(self) -> int:
        return hash(self.text)

    def __str__(self) -> str:
        return self.text


def _parse_url(text: str) -> Any:
    """Go's url.ParseRequestURI: absolute URL or absolute path, no fragment."""
    if "#" in text or not (text.startswith("/") or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", text)):
        return None
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return None
    return parts


def _url(value: Any) -> URLValue:
    text = _string(value)
    if _parse_url(text) is None:
        raise _fail(f"URL parse error during conversion from string: parse \"{text}\": invalid URI for request")
    return URLValue(text)


def _is_url(value: Any) -> Any:
    return celtypes.BoolType(_parse_url(_string(value)) is not None)


def _url_part(read: Callable[[Any], str]) -> Callable[[Any], Any]:
    def run(target: Any) -> Any:
        if not isinstance(target, URLValue):
            raise _fail("no such overload")
        return celtypes.StringType(read(urlsplit(target.text)))
    return run


def _host(parts: Any) -> str:
    return parts.netloc.rpartition("@")[2]


def _hostname(parts: Any) -> str:
    host = _host(parts)
    if host.startswith("["):
        return host[1:host.find("]")]
    return host.rsplit(":", 1)[0] if ":" in host else host


def _port(parts: Any) -> str:
    host = _host(parts)
    tail = host[host.find("]") + 1:] if host.startswith("[") else host
    return tail.rsplit(":", 1)[1] if ":" in tail else ""


def _query(target: Any) -> Any:
    if not isinstance(target, URLValue):
        raise _fail("no such overload")
    from urllib.parse import parse_qs

    pairs = parse_qs(urlsplit(target.text).query, keep_blank_values=True)
    return celtypes.MapType({celtypes.StringType(k): celtypes.ListType([celtypes.StringType(v) for v in vs])
                             for k, vs in pairs.items()})


def _compare(target: Any, other: Any) -> Any:
    """compareTo of two quantities or two semvers."""
    found = celformat.semver_compare(target, other)
    return celtypes.IntType(found if found is not None else _q(target).cmp(_q(other)))


def _is_greater(target: Any, other: Any) -> Any:
    return celtypes.BoolType(int(_compare(target, other)) > 0)


def _is_less(target: Any, other: Any) -> Any:
    return celtypes.BoolType(int(_compare(target, other)) < 0)


LIBRARY: dict[str, Callable[..., Any]] = {
    # strings (cel-go ext.Strings, as kube enables it)
    "split": _split, "join": _join, "lowerAscii": lambda s: celtypes.StringType(_string(s).lower()),
    "upperAscii": lambda s: celtypes.StringType(_string(s).upper()), "replace": _replace,
    "trim": lambda s: celtypes.StringType(_string(s).strip()), "substring": _substring,
    "indexOf": _index_of, "lastIndexOf": _last_index_of,
    # kube's regex and lists libraries
    "find": _find, "findAll": _find_all, "isSorted": _is_sorted, "sum": _sum,
    "min": _extreme(lambda a, b: a < b), "max": _extreme(lambda a, b: a > b),
    # kube's quantity library
    "quantity": _quantity, "isQuantity": _is_quantity, "compareTo": _compare,
    "isGreaterThan": _is_greater, "isLessThan": _is_less,
    "add": _q_arith(1), "sub": _q_arith(-1), "asInteger": _as_integer, "isInteger": _is_integer,
    "asApproximateFloat": lambda q: celtypes.DoubleType(float(_q(q).value)), "sign": _sign,
    # kube's URL library
    "url": _url, "isURL": _is_url, "getScheme": _url_part(lambda p: p.scheme), "getHost": _url_part(_host),
    "getHostname": _url_part(_hostname), "getPort": _url_part(_port),
    "getEscapedPath": _url_part(lambda p: p.path), "getQuery": _query,
    # kube's ip and cidr libraries, cel-go's format, kube's semver, cel-go's optional types
    **celnet.FUNCTIONS, **celformat.FUNCTIONS, **celoptional.FUNCTIONS,
}



def _errors_as_values(function: Callable[..., Any]) -> Callable[..., Any]:
    """cel-python treats errors as values (so `true || error` is true) only when a function
    returns its CELEvalError; a raised one would end the whole evaluation."""
    def call(*args: Any) -> Any:
        try:
            return function(*args)
        except celpy.CELEvalError as exc:
            return exc
    return call


LIBRARY = {name: _errors_as_values(function) for name, function in LIBRARY.items()}

AUTHORIZER_FUNCTIONS = frozenset({"group", "resource", "subresource", "namespace", "name", "serviceAccount",
                                  "path", "check", "allowed", "reason", "errored", "error"})

KNOWN_FUNCTIONS: frozenset[str] = frozenset(
    {name for name in celpy.evaluation.base_functions if name[0].isalpha()} | set(LIBRARY) | AUTHORIZER_FUNCTIONS
    | {"dyn", "type"})


# -- the authorizer library ------------------------------------------------------------------
Authorize = Callable[[dict[str, str]], tuple[bool, str, str]]
"""(what) -> (allowed, reason, error): `what` has api_group, resource, subresource, namespace,
name, verb, path keys; `error` is "" unless the authorizer failed."""

_KIND = celtypes.StringType("__kind")


def _check_map(kind: str, **fields: str) -> celtypes.MapType:
    out = celtypes.MapType({_KIND: celtypes.StringType(kind)})
    for key, value in fields.items():
        out[celtypes.StringType(key)] = celtypes.StringType(value)
    return out


def _fields(target: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in dict(target).items() if str(k) != "__kind"}


def authorizer_value(request_resource: Mapping[str, str]) -> celtypes.MapType:
    """The `authorizer` variable; `request_resource` (api_group, resource, subresource,
    namespace, name) is what `authorizer.requestResource` checks."""
    return celtypes.MapType({
        _KIND: celtypes.StringType("authorizer"),
        celtypes.StringType("requestResource"): _check_map("resource", **request_resource)})


def authorizer_functions(authorize: Authorize | None) -> dict[str, Callable[..., Any]]:
    """kube's authorizer library: `authorizer.group('apps').resource('deployments')
    .namespace('ns').check('create').allowed()`, `.serviceAccount(ns, name)`, `.path(p)`,
    `.reason()`, `.errored()`, `.error()`. cel-python passes the receiver first."""

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


def is_bool(value: Any) -> bool:
    return isinstance(value, bool | celtypes.BoolType)
