"""Kubernetes resource quantities (`100m`, `1Gi`, `1e3`, `0.5`): parse, compare, format.

apimachinery's `resource.Quantity` is both a number and the format it was written in, and the
API server answers with its *canonical* text (`0.5` comes back as `500m`, `1024Mi` as `1Gi`),
so a faithful copy needs exact arithmetic: values are `Fraction`s, rounded up to the nano unit
the way apimachinery rounds, and formatted back by its canonicalisation rules. Pure, no I/O;
shared by the server (defaulting, validation) and future clients (scheduler, kubelet).
"""

from __future__ import annotations

import functools

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

Format = Literal["DecimalSI", "BinarySI", "DecimalExponent"]

QUANTITY_REGEX = "^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"
ERR_FORMAT_WRONG = f"quantities must match the regular expression '{QUANTITY_REGEX}'"
ERR_NUMERIC = "unable to parse numeric part of quantity"
ERR_SUFFIX = "unable to parse quantity's suffix"

_DECIMAL_SUFFIXES = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_BY_EXP = {v: k for k, v in _DECIMAL_SUFFIXES.items()}
_BINARY_BY_EXP = {v: k for k, v in _BINARY_SUFFIXES.items()}
_SUFFIX_CHARS = "eEinumkKMGTP"
_NANO = Fraction(1, 10**9)


class QuantityError(ValueError):
    """The text is not a quantity; `str(err)` is apimachinery's message."""


@dataclass(frozen=True, slots=True)
class Quantity:
    value: Fraction
    format: Format = "DecimalSI"

    def __str__(self) -> str:
        return format_quantity(self)

    def __lt__(self, other: Quantity) -> bool:
        return self.value < other.value

    def __le__(self, other: Quantity) -> bool:
        return self.value <= other.value

    def cmp(self, other: Quantity) -> int:
        """-1, 0 or 1, as `Quantity.Cmp`."""
        return (self.value > other.value) - (self.value < other.value)

    def milli_value(self) -> int:
        return math.ceil(self.value * 1000)

    def int_value(self) -> int:
        """`Quantity.Value()`: rounded up to an integer."""
        return math.ceil(self.value)


def _split(text: str) -> tuple[str, str, str]:
    """(sign, number, suffix), following apimachinery's parseQuantityString."""
    if not text:
        raise QuantityError(ERR_FORMAT_WRONG)
    pos, end = 0, len(text)
    sign = ""
    if text[0] in "+-":
        sign, pos = text[0], 1
    start = pos
    while pos < end and (text[pos].isdigit() or text[pos] == "."):
        if text[pos] == "." and "." in text[start:pos]:
            raise QuantityError(ERR_FORMAT_WRONG)
        pos += 1
    number = text[start:pos]
    if not number.strip(".") or not any(ch.isdigit() for ch in number):
        raise QuantityError(ERR_FORMAT_WRONG)
    suffix = text[pos:]
    if not re.fullmatch(f"[{_SUFFIX_CHARS}]*[-+]?[0-9]*", suffix):
        raise QuantityError(ERR_FORMAT_WRONG)
    return sign, number, suffix


def _interpret_suffix(suffix: str) -> tuple[int, int, Format]:
    """(base, exponent, format) for a suffix, or QuantityError(ERR_SUFFIX)."""
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], "DecimalSI"
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], "BinarySI"
    if len(suffix) > 1 and suffix[0] in "eE" and re.fullmatch(r"[-+]?[0-9]+", suffix[1:]):
        return 10, int(suffix[1:]), "DecimalExponent"
    raise QuantityError(ERR_SUFFIX)


def _round_up_nano(value: Fraction) -> Fraction:
    """Precision below 1n rounds away from zero, as apimachinery does."""
    scaled = value / _NANO
    if scaled.denominator == 1:
        return value
    whole = math.ceil(scaled) if scaled > 0 else math.floor(scaled)
    return whole * _NANO


@functools.lru_cache(maxsize=4096, typed=True)
def parse_quantity(text: str | int | float) -> Quantity:
    """`ParseQuantity`: raises QuantityError with kube's message on bad text. Results are
    immutable and the same few quantities recur in every pod, so they are remembered."""
    if isinstance(text, bool):
        raise QuantityError(ERR_FORMAT_WRONG)
    if isinstance(text, int):
        text = str(text)
    elif isinstance(text, float):
        text = repr(text).replace("e+", "e")
    text = text.strip()
    sign, number, suffix = _split(text)
    base, exponent, fmt = _interpret_suffix(suffix)
    try:
        magnitude = Fraction(number if not number.endswith(".") else number + "0")
    except ValueError:
        raise QuantityError(ERR_NUMERIC) from None
    value = magnitude * (Fraction(base) ** exponent)
    if sign == "-":
        value = -value
    return Quantity(_round_up_nano(value), fmt)


def is_quantity(text: object) -> bool:
    try:
        parse_quantity(text)  # type: ignore[arg-type]
    except QuantityError:
        return False
    return True


def _canonical_decimal(value: Fraction) -> tuple[int, int]:
    """(mantissa, exponent), exponent a multiple of 3, as `AsCanonicalBytes`."""
    exponent = -9
    amount = int(value / _NANO)
    while amount and amount % 10 == 0:
        amount //= 10
        exponent += 1
    shift = exponent % 3
    return amount * 10**shift, exponent - shift


def _format_decimal(value: Fraction, fmt: Format) -> str:
    mantissa, exponent = _canonical_decimal(value)
    if fmt == "DecimalExponent":
        return f"{mantissa}e{exponent}" if exponent else str(mantissa)
    suffix = _DECIMAL_BY_EXP.get(exponent)
    if suffix is None:  # beyond E: spell the digits out
        return str(mantissa * 10**exponent) if exponent > 0 else f"{mantissa}e{exponent}"
    return f"{mantissa}{suffix}"


def _format_binary(value: int) -> str:
    exponent = 0
    while value and value % 1024 == 0 and exponent < 60:
        value //= 1024
        exponent += 10
    return f"{value}{_BINARY_BY_EXP.get(exponent, '')}"


def format_quantity(q: Quantity) -> str:
    """`Quantity.String()`: the canonical text in the quantity's own format."""
    if q.value == 0:
        return "0"
    fmt = q.format
    if fmt == "BinarySI":
        if -1024 < q.value < 1024 or q.value.denominator != 1:
            fmt = "DecimalSI"
        else:
            return _format_binary(int(q.value))
    return _format_decimal(q.value, fmt)


@functools.lru_cache(maxsize=4096, typed=True)
def canonical(text: str | int | float) -> str:
    """The text kube-apiserver stores and returns for a quantity."""
    return format_quantity(parse_quantity(text))


def compare(a: str | Quantity, b: str | Quantity) -> int:
    qa = a if isinstance(a, Quantity) else parse_quantity(a)
    qb = b if isinstance(b, Quantity) else parse_quantity(b)
    return qa.cmp(qb)
