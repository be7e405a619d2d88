"""CEL optional types as kube enables them (cel-go's `cel.OptionalTypes()`), over cel-python.

kube's base CEL environment has optional values: `optional.of(x)`, `optional.none()`,
`optional.ofNonZeroValue(x)`, the methods `hasValue()`, `value()`, `orValue(default)` and
`or(other)`, optional field selection `a.?b` and optional indexing `a[?k]`; CRD rules with
`optionalOldSelf: true` see `oldSelf` as an optional that is empty on create.

cel-python's grammar has no `.?` or `[?`, so `rewrite` turns them into calls of two hidden
functions before parsing (`a.?b` -> `a.__optSelect__("b")`, `a[?k]` -> `a.__optIndex__(k)`).
The parts of the syntax that cannot be rewritten this way (optional entries in list and map
literals, `[?x]` and `{?k: v}`, and the `optMap`/`optFlatMap` macros) stay unsupported: they
fail to parse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import celpy
from celpy import celtypes

SELECT, INDEX = "__optSelect__", "__optIndex__"
NAMESPACE = "optional"
"""The identifier `optional.of(...)` starts with; bound to a marker value at evaluation."""


class OptionalValue(celtypes.MessageType):
    """An optional: present with a value, or empty. A MessageType so that cel-python's field
    selection reaches `get`, which keeps a selection chain optional (`a.?b.c` is `a.?b.?c`)."""

    def __init__(self, value: Any = None, present: bool = False) -> None:
        super().__init__()
        self.inner = value
        self.present = present

    def get(self, name: Any, default: Any = None) -> Any:  # noqa: ARG002 - dict's signature
        return select(self, celtypes.StringType(name))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OptionalValue):
            return False
        return self.present == other.present and (not self.present or self.inner == other.inner)

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((self.present, repr(self.inner)))

    def __repr__(self) -> str:
        return f"optional.of({self.inner!r})" if self.present else "optional.none()"


class _Namespace(celtypes.MapType):
    """The value of the `optional` identifier: only a receiver for of/none/ofNonZeroValue."""


MARKER = _Namespace()
NONE = OptionalValue()


def of(value: Any) -> OptionalValue:
    return OptionalValue(value, True)


def _fail(message: str) -> celpy.CELEvalError:
    return celpy.CELEvalError(message)


def _optional(target: Any) -> OptionalValue:
    if not isinstance(target, OptionalValue):
        raise _fail("no such overload")
    return target


def _namespace(target: Any) -> None:
    if not isinstance(target, _Namespace):
        raise _fail("no such overload")


def _zero(value: Any) -> bool:
    if isinstance(value, celtypes.BoolType | bool):
        return not bool(value)
    if isinstance(value, str | bytes | list | tuple | dict):
        return len(value) == 0
    if isinstance(value, int | float):
        return value == 0
    return value is None


def select(target: Any, name: Any) -> OptionalValue:
    """`target.?name`: the field as an optional, empty when absent (or when target is)."""
    if isinstance(target, OptionalValue):
        if not target.present:
            return NONE
        target = target.inner
    if isinstance(target, celtypes.MapType):
        key = celtypes.StringType(name)
        return of(target[key]) if key in target else NONE
    raise _fail("no such overload")


def index(target: Any, key: Any) -> OptionalValue:
    """`target[?key]`: a map entry or list item as an optional."""
    if isinstance(target, OptionalValue):
        if not target.present:
            return NONE
        target = target.inner
    if isinstance(target, celtypes.MapType):
        return of(target[key]) if key in target else NONE
    if isinstance(target, list) and isinstance(key, int) and not isinstance(key, bool):
        return of(target[int(key)]) if 0 <= int(key) < len(target) else NONE
    raise _fail("no such overload")


def _value(target: Any) -> Any:
    opt = _optional(target)
    if not opt.present:
        raise _fail("optional.none() dereference")
    return opt.inner


def _or_value(target: Any, default: Any) -> Any:
    opt = _optional(target)
    return opt.inner if opt.present else default


def _or(target: Any, other: Any) -> Any:
    opt = _optional(target)
    return opt if opt.present else _optional(other)


def _of(target: Any, value: Any) -> OptionalValue:
    _namespace(target)
    return of(value)


def _none(target: Any) -> OptionalValue:
    _namespace(target)
    return NONE


def _of_non_zero(target: Any, value: Any) -> OptionalValue:
    _namespace(target)
    return NONE if _zero(value) else of(value)


FUNCTIONS: dict[str, Callable[..., Any]] = {
    SELECT: select, INDEX: index,
    "hasValue": lambda t: celtypes.BoolType(_optional(t).present), "value": _value, "orValue": _or_value,
    "or": _or, "of": _of, "none": _none, "ofNonZeroValue": _of_non_zero,
}


# -- the syntax -----------------------------------------------------------------------------
def _skip_string(text: str, i: int) -> int:
    """The index just past the string literal starting at `i` (at its quote)."""
    raw = i > 0 and text[i - 1] in "rR" and (i < 2 or not (text[i - 2].isalnum() or text[i - 2] == "_"))
    quote = text[i:i + 3] if text[i:i + 3] in ('"""', "'''") else text[i]
    j = i + len(quote)
    while j < len(text):
        if not raw and text[j] == "\\":
            j += 2
            continue
        if text.startswith(quote, j):
            return j + len(quote)
        j += 1
    return j


def _ends_operand(text: str, i: int) -> bool:
    """Whether the last non-blank character before `i` ends an expression (so `[` indexes)."""
    j = i - 1
    while j >= 0 and text[j].isspace():
        j -= 1
    return j >= 0 and (text[j].isalnum() or text[j] in "_)]}\"'")


def rewrite(expression: str) -> str:
    """The expression with `.?name` and `x[?key]` as calls cel-python can parse; text without
    them comes back unchanged (the same object)."""
    if "?" not in expression:
        return expression
    out: list[str] = []
    brackets: list[bool] = []  # per open `[`: whether it is an optional index
    i, n = 0, len(expression)
    while i < n:
        ch = expression[i]
        if ch in "\"'":
            end = _skip_string(expression, i)
            out.append(expression[i:end])
            i = end
            continue
        if ch == ".":
            j = i + 1
            while j < n and expression[j].isspace():
                j += 1
            if j < n and expression[j] == "?":
                k = j + 1
                while k < n and expression[k].isspace():
                    k += 1
                start = k
                while k < n and (expression[k].isalnum() or expression[k] == "_"):
                    k += 1
                if k > start and not expression[start].isdigit():
                    out.append(f'.{SELECT}("{expression[start:k]}")')
                    i = k
                    continue
        if ch == "[":
            j = i + 1
            while j < n and expression[j].isspace():
                j += 1
            optional = j < n and expression[j] == "?" and _ends_operand(expression, i)
            brackets.append(optional)
            if optional:
                out.append(f".{INDEX}(")
                i = j + 1
                continue
        if ch == "]" and brackets:
            if brackets.pop():
                out.append(")")
                i += 1
                continue
        out.append(ch)
        i += 1
    return "".join(out)
