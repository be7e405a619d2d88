"""cel-go's `string.format(list)` (ext.Strings) and kube's semver library, over cel-python.

`"%s has %d replicas".format([name, n])`: the verbs are `%s` (any value's text), `%d`
(integers), `%f` and `%e` (numbers, precision `%.2f`, 6 by default), `%b`, `%o`, `%x`, `%X`
(integers; `%x` also hex-encodes strings and bytes) and `%%`.

Semver (`isSemver`, `semver()`, `major()`, `minor()`, `patch()`, `compareTo`,
`isGreaterThan`, `isLessThan`) follows semver 2.0.0's precedence; `semver(s, true)` and
`isSemver(s, true)` normalize first (a leading `v`, missing minor/patch, leading zeros).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

import celpy
from celpy import celtypes


def _fail(message: str) -> celpy.CELEvalError:
    return celpy.CELEvalError(message)


# -- format ---------------------------------------------------------------------------------
def _go_float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def as_text(value: Any) -> str:
    """`%s` and `string()` of a CEL value, as cel-go prints it."""
    if isinstance(value, celtypes.BoolType | bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, celtypes.DoubleType | float):
        return _go_float(float(value))
    if isinstance(value, celtypes.BytesType | bytes):
        return bytes(value).decode("utf-8", "replace")
    if isinstance(value, celtypes.StringType | str):
        return str(value)
    if isinstance(value, Mapping):
        items = sorted((as_text(k), as_quoted(v)) for k, v in value.items())
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(as_quoted(v) for v in value) + "]"
    if isinstance(value, celtypes.DurationType):
        return f"{_go_float(value.total_seconds())}s"
    if isinstance(value, celtypes.TimestampType):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ") if not value.microsecond else value.isoformat().replace("+00:00", "Z")
    if isinstance(value, type):
        return getattr(value, "__name__", str(value)).removesuffix("Type").lower()
    return str(value)


def as_quoted(value: Any) -> str:
    """An element inside a list or map: strings are quoted."""
    if isinstance(value, celtypes.StringType | str) and not isinstance(value, celtypes.BytesType):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    return as_text(value)


def _integer(value: Any, verb: str) -> int:
    if isinstance(value, celtypes.BoolType | bool) or not isinstance(value, int):
        raise _fail(f"error during formatting: {_VERB_NAMES[verb]} clause can only be used on integers, was given "
                    f"{_type_name(value)}")
    return int(value)


def _number(value: Any, verb: str) -> float:
    if isinstance(value, celtypes.BoolType | bool) or not isinstance(value, int | float):
        raise _fail(f"error during formatting: {_VERB_NAMES[verb]} clause can only be used on doubles, was given "
                    f"{_type_name(value)}")
    return float(value)


def _type_name(value: Any) -> str:
    if value is None:
        return "null_type"
    return type(value).__name__.removesuffix("Type").lower()


_VERB_NAMES = {"d": "decimal", "f": "fixed-point", "e": "scientific", "b": "binary", "o": "octal",
               "x": "hex", "X": "hex"}
_CLAUSE = re.compile(r"%(?:\.(\d+))?(.?)", re.DOTALL)


def _clause(verb: str, precision: str | None, value: Any) -> str:
    if verb == "s":
        return as_text(value)
    if verb == "d":
        return str(_integer(value, verb))
    if verb in ("f", "e"):
        number = _number(value, verb)
        if math.isnan(number) or math.isinf(number):
            return _go_float(number)
        return f"{number:.{int(precision) if precision is not None else 6}{verb}}"
    if verb in ("x", "X") and isinstance(value, celtypes.StringType | str | celtypes.BytesType | bytes):
        data = bytes(value) if isinstance(value, bytes) else str(value).encode()
        text = data.hex()
        return text.upper() if verb == "X" else text
    return format(_integer(value, verb), verb)


def format_string(target: Any, args: Any) -> Any:
    """`target.format(args)`."""
    if not isinstance(target, str) or not isinstance(args, list):
        raise _fail("no such overload")
    out: list[str] = []
    position, used = 0, 0
    for found in _CLAUSE.finditer(str(target)):
        out.append(str(target)[position:found.start()])
        position = found.end()
        precision, verb = found.group(1), found.group(2)
        if verb not in "sdfeboxX%" or not verb:
            raise _fail(f'could not parse formatting clause: unrecognized formatting clause "{verb}"')
        if verb == "%":
            out.append("%")
            continue
        if used >= len(args):
            raise _fail(f"index {used} out of range")
        out.append(_clause(verb, precision, args[used]))
        used += 1
    out.append(str(target)[position:])
    return celtypes.StringType("".join(out))


# -- semver ---------------------------------------------------------------------------------
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                     r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
                     r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$")


class SemverValue:
    """kube's `Semver` CEL type."""

    __slots__ = ("major", "minor", "patch", "pre", "text")

    def __init__(self, text: str, major: int, minor: int, patch: int, pre: tuple[str, ...]) -> None:
        self.text, self.major, self.minor, self.patch, self.pre = text, major, minor, patch, pre

    def compare(self, other: SemverValue) -> int:
        mine, theirs = (self.major, self.minor, self.patch), (other.major, other.minor, other.patch)
        if mine != theirs:
            return -1 if mine < theirs else 1
        if self.pre == other.pre:
            return 0
        if not self.pre or not other.pre:
            return 1 if not self.pre else -1
        for a, b in zip(self.pre, other.pre, strict=False):
            if a == b:
                continue
            if a.isdigit() and b.isdigit():
                return -1 if int(a) < int(b) else 1
            if a.isdigit() != b.isdigit():
                return -1 if a.isdigit() else 1
            return -1 if a < b else 1
        return -1 if len(self.pre) < len(other.pre) else (1 if len(self.pre) > len(other.pre) else 0)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SemverValue) and self.compare(other) == 0

    def __hash__(self) -> int:
        return hash((self.major, self.minor, self.patch, self.pre))

    def __str__(self) -> str:
        return self.text


def _normalize(text: str) -> str:
    """kube's normalization: no leading `v`, missing minor and patch are 0, no leading zeros."""
    found = re.match(r"^v?([0-9]+(?:\.[0-9]+){0,2})(.*)$", text)
    if found is None:
        return text
    parts = [p.lstrip("0") or "0" for p in found.group(1).split(".")]
    return ".".join(parts + ["0"] * (3 - len(parts))) + found.group(2)


def parse_semver(text: str, normalize: bool = False) -> SemverValue | None:
    candidate = _normalize(text) if normalize else text
    found = _SEMVER.match(candidate)
    if found is None:
        return None
    pre = tuple(found.group(4).split(".")) if found.group(4) else ()
    return SemverValue(candidate, int(found.group(1)), int(found.group(2)), int(found.group(3)), pre)


def _semver(value: Any, normalize: Any = False) -> SemverValue:
    if not isinstance(value, str):
        raise _fail("no such overload")
    parsed = parse_semver(str(value), bool(normalize))
    if parsed is None:
        raise _fail(f"Semver parse error during conversion from string: {value}")
    return parsed


def _is_semver(value: Any, normalize: Any = False) -> Any:
    if not isinstance(value, str):
        raise _fail("no such overload")
    return celtypes.BoolType(parse_semver(str(value), bool(normalize)) is not None)


def _part(name: str) -> Callable[[Any], Any]:
    def read(target: Any) -> Any:
        if not isinstance(target, SemverValue):
            raise _fail("no such overload")
        return celtypes.IntType(getattr(target, name))
    return read


def semver_compare(target: Any, other: Any) -> int | None:
    """The comparison when both are semvers, None otherwise (the quantity library's turn)."""
    if isinstance(target, SemverValue) and isinstance(other, SemverValue):
        return target.compare(other)
    return None


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "format": format_string, "semver": _semver, "isSemver": _is_semver,
    "major": _part("major"), "minor": _part("minor"), "patch": _part("patch"),
}
