"""Label and field selectors: parsing, matching and canonical strings.

Both grammars follow apimachinery's `labels` and `fields` packages (release 1.33) closely,
down to the lexer, because kube-apiserver answers a bad `?labelSelector=` or
`?fieldSelector=` with the parser's own error text (400 BadRequest) and kubectl prints it
verbatim. Selectors are immutable values: parse once per request, match many objects.

The label grammar is a tiny token stream (identifiers, `in`/`notin`, `=`/`==`/`!=`, `!`,
`(`, `)`, `,`, `>`/`<`), so a hand-written lexer and recursive-descent parser mirror the
upstream one token for token; a regular expression would not reproduce its messages.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EVERYTHING",
    "FIELDS_EVERYTHING",
    "NOTHING",
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Requirement",
    "SelectorError",
    "format_label_selector",
    "parse_field_selector",
    "parse_label_selector",
    "requires_exact",
    "selector_from_object",
    "selector_from_set",
]


class SelectorError(ValueError):
    """A selector that kube-apiserver would reject with 400 BadRequest; `message` is its text."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --------------------------------------------------------------------------- validation texts

_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
_LABEL_VALUE_FMT = f"({_QNAME_FMT})?"
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character"
)
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = f"{_DNS1123_LABEL_FMT}(\\.{_DNS1123_LABEL_FMT})*"
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character"
)
_QNAME_RE = re.compile(_QNAME_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_INT64_RE = re.compile(r"[+-]?[0-9]+")


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """apimachinery's RegexError, including its doubled space before each ` or `."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _byte_len(value: str) -> int:
    return len(value.encode("utf-8", "surrogatepass"))


def _dns1123_subdomain_errors(value: str) -> list[str]:
    errs = []
    if _byte_len(value) > 253:
        errs.append(_max_len_error(253))
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def qualified_name_errors(value: str) -> list[str]:
    """apimachinery `IsQualifiedName`: the rule for label keys (optional DNS prefix + '/')."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) > 2:
        return [
            "a qualified name "
            + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs.extend("prefix part " + m for m in _dns1123_subdomain_errors(prefix))
    if not name:
        errs.append("name part must be non-empty")
    elif _byte_len(name) > 63:
        errs.append("name part " + _max_len_error(63))
    if not _QNAME_RE.fullmatch(name):
        errs.append("name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def label_value_errors(value: str) -> list[str]:
    """apimachinery `IsValidLabelValue`."""
    errs = []
    if _byte_len(value) > 63:
        errs.append(_max_len_error(63))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errs


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def _go_quote(value: str) -> str:
    """Go's `%q` for a string (what field errors print around a bad value)."""
    out = []
    for ch in value:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def _go_string_slice(values: list[str] | None) -> str:
    """Go's `%#v` for a []string, as printed for a bad `values` set."""
    if values is None:
        return "[]string(nil)"
    return "[]string{" + ", ".join(_go_quote(v) for v in values) + "}"


def _invalid(path: str, shown_value: str, detail: str) -> str:
    return f"{path}: Invalid value: {shown_value}: {detail}"


def _aggregate(messages: list[str]) -> str:
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


# --------------------------------------------------------------------------- label requirements

_UNARY = ("exists", "!")
_EQUALITY = ("=", "==", "!=")


@dataclass(frozen=True, slots=True)
class Requirement:
    """One `key <op> values` term. `operator` uses apimachinery's spellings:
    `=`, `==`, `!=`, `in`, `notin`, `exists`, `!` (does not exist), `gt`, `lt`."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in ("exists", "!"):
            return (self.key in labels) == (op == "exists")
        if self.key not in labels:
            return op in ("!=", "notin")
        value = labels[self.key]
        if op in ("=", "==", "in"):
            return value in self.values
        if op in ("!=", "notin"):
            return value not in self.values
        return _compare_int(value, self.values, greater=op == "gt")

    def to_string(self) -> str:
        op = self.operator
        if op == "exists":
            return self.key
        if op == "!":
            return "!" + self.key
        joined = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if op in ("in", "notin"):
            return f"{self.key} {op} ({joined})"
        symbol = {"gt": ">", "lt": "<"}.get(op, op)
        return f"{self.key}{symbol}{joined}"


def _parse_int64(text: str) -> int | None:
    if not _INT64_RE.fullmatch(text):
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None


def _compare_int(value: str, values: tuple[str, ...], *, greater: bool) -> bool:
    have = _parse_int64(value)
    if have is None or len(values) != 1:
        return False
    want = _parse_int64(values[0])
    if want is None:
        return False
    return have > want if greater else have < want


def new_requirement(key: str, operator: str, values: list[str] | None) -> Requirement:
    """apimachinery `NewRequirement`: validate key, operator arity and every value."""
    errs: list[str] = []
    key_errs = qualified_name_errors(key)
    if key_errs:
        errs.append(_invalid("key", _go_quote(key), "; ".join(key_errs)))
    errs.extend(_arity_errors(operator, values))
    for i, value in enumerate(values or ()):
        value_errs = label_value_errors(value)
        if value_errs:
            errs.append(_invalid(f"values[{i}][{key}]", _go_quote(value), "; ".join(value_errs)))
    if errs:
        raise SelectorError(_aggregate(errs))
    return Requirement(key, operator, tuple(values or ()))


def _arity_errors(operator: str, values: list[str] | None) -> list[str]:
    count = len(values or ())
    shown = _go_string_slice(values)
    if operator in ("in", "notin") and count == 0:
        return [_invalid("values", shown, "for 'in', 'notin' operators, values set can't be empty")]
    if operator in _EQUALITY and count != 1:
        return [_invalid("values", shown, "exact-match compatibility requires one single value")]
    if operator in _UNARY and count != 0:
        return [_invalid("values", shown, "values set must be empty for exists and does not exist")]
    if operator in ("gt", "lt"):
        errs = []
        if count != 1:
            errs.append(_invalid("values", shown, "for 'Gt', 'Lt' operators, exactly one value is required"))
        for i, value in enumerate(values or ()):
            if _parse_int64(value) is None:
                errs.append(
                    _invalid(f"values[{i}]", _go_quote(value), "for 'Gt', 'Lt' operators, the value must be an integer")
                )
        return errs
    return []


# --------------------------------------------------------------------------- label selector


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """An AND of requirements, sorted by key as upstream sorts them.

    `nothing` marks the selector of a nil `LabelSelector` object, which matches no object.
    """

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    @property
    def empty(self) -> bool:
        """True when the selector matches everything (no requirements)."""
        return not self.nothing and not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def to_string(self) -> str:
        return ",".join(r.to_string() for r in self.requirements)

    def __str__(self) -> str:
        return self.to_string()

    def requires_exact_match(self, key: str) -> str | None:
        """The value when the first requirement on `key` pins one value (`=`, `==`, `in (x)`)."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in ("=", "==", "in") and len(r.values) == 1:
                    return r.values[0]
                return None
        return None


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)


def _sorted_selector(requirements: list[Requirement]) -> LabelSelector:
    return LabelSelector(tuple(sorted(requirements, key=lambda r: r.key)))


# Lexer tokens.
_ERROR, _EOS, _CLOSE, _COMMA, _NOT, _DEQ, _EQ, _GT, _ID, _IN, _LT, _NEQ, _NOTIN, _OPEN = range(14)
_SYMBOLS = {
    ")": _CLOSE, ",": _COMMA, "!": _NOT, "==": _DEQ, "=": _EQ, ">": _GT, "in": _IN,
    "<": _LT, "!=": _NEQ, "notin": _NOTIN, "(": _OPEN,
}  # fmt: skip
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_BINARY_OPERATORS = "in, notin, =, ==, !=, gt, lt"
_OPERATOR_TOKENS = {_IN: "in", _EQ: "=", _DEQ: "==", _GT: "gt", _LT: "lt", _NOTIN: "notin", _NEQ: "!="}


def _lex(text: str) -> list[tuple[int, str]]:
    items: list[tuple[int, str]] = []
    pos, end = 0, len(text)
    while True:
        while pos < end and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= end:
            items.append((_EOS, ""))
            return items
        token, literal, pos = (_scan_symbol if text[pos] in _SPECIAL else _scan_word)(text, pos)
        items.append((token, literal))


def _scan_word(text: str, pos: int) -> tuple[int, str, int]:
    start = pos
    while pos < len(text) and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
        pos += 1
    word = text[start:pos]
    return _SYMBOLS.get(word, _ID), word, pos


def _scan_symbol(text: str, pos: int) -> tuple[int, str, int]:
    """Longest run of special characters that is still a token (`!=` but `=` then `(`)."""
    buffer, best, best_end = "", None, pos
    while pos < len(text) and text[pos] in _SPECIAL:
        buffer += text[pos]
        pos += 1
        if buffer in _SYMBOLS:
            best, best_end = buffer, pos
        elif best is not None:
            break
    if best is None:
        return _ERROR, f"error expected: keyword found '{buffer}'", pos
    return _SYMBOLS[best], best, best_end


class _LabelParser:
    def __init__(self, text: str) -> None:
        self._items = _lex(text)
        self._pos = 0

    def _peek(self, values: bool = True) -> tuple[int, str]:
        return self._as_context(self._items[self._pos], values)

    def _next(self, values: bool = True) -> tuple[int, str]:
        item = self._items[self._pos]
        self._pos += 1
        return self._as_context(item, values)

    @staticmethod
    def _as_context(item: tuple[int, str], values: bool) -> tuple[int, str]:
        # In a value (or key) position `in`/`notin` are plain identifiers.
        if values and item[0] in (_IN, _NOTIN):
            return _ID, item[1]
        return item

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            token, literal = self._peek()
            if token == _EOS:
                return requirements
            if token not in (_ID, _NOT):
                raise SelectorError(f"found '{literal}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self._requirement())
            except SelectorError as e:
                raise SelectorError(f"unable to parse requirement: {e.message}") from None
            token, literal = self._next()
            if token == _EOS:
                return requirements
            if token != _COMMA:
                raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            token, literal = self._peek()
            if token not in (_ID, _NOT):
                raise SelectorError(f"found '{literal}', expected: identifier after ','")

    def _requirement(self) -> Requirement:
        key, operator = self._key_and_inferred_operator()
        if operator in _UNARY:
            return new_requirement(key, operator, [])
        operator = self._operator()
        values = self._value_set() if operator in ("in", "notin") else self._exact_value()
        return new_requirement(key, operator, sorted(values))

    def _key_and_inferred_operator(self) -> tuple[str, str]:
        operator = ""
        token, literal = self._next()
        if token == _NOT:
            operator = "!"
            token, literal = self._next()
        if token != _ID:
            raise SelectorError(f"found '{literal}', expected: identifier")
        key_errs = qualified_name_errors(literal)
        if key_errs:
            # The parser validates keys with a nil field path, which Go prints as "<nil>".
            raise SelectorError(_invalid("<nil>", _go_quote(literal), "; ".join(key_errs)))
        if self._peek()[0] in (_EOS, _COMMA) and operator != "!":
            operator = "exists"
        return literal, operator

    def _operator(self) -> str:
        token, literal = self._next(values=False)
        if token not in _OPERATOR_TOKENS:
            raise SelectorError(f"found '{literal}', expected: {_BINARY_OPERATORS}")
        return _OPERATOR_TOKENS[token]

    def _value_set(self) -> set[str]:
        token, literal = self._next()
        if token != _OPEN:
            raise SelectorError(f"found '{literal}' expected: '('")
        token, literal = self._peek()
        if token == _CLOSE:
            self._next()
            return {""}
        if token not in (_ID, _COMMA):
            raise SelectorError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self._identifiers()
        if self._next()[0] != _CLOSE:
            raise SelectorError(f"found '{literal}', expected: ')'")
        return values

    def _identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            token, literal = self._next()
            if token == _ID:
                values.add(literal)
                after, after_literal = self._peek()
                if after == _CLOSE:
                    return values
                if after != _COMMA:
                    raise SelectorError(f"found '{after_literal}', expected: ',' or ')'")
            elif token == _COMMA:
                if not values:
                    values.add("")
                after = self._peek()[0]
                if after == _CLOSE:
                    values.add("")
                    return values
                if after == _COMMA:
                    self._next()
                    values.add("")
            else:
                raise SelectorError(f"found '{literal}', expected: ',', or identifier")

    def _exact_value(self) -> set[str]:
        if self._peek()[0] in (_EOS, _COMMA):
            return {""}
        token, literal = self._next()
        if token == _ID:
            return {literal}
        raise SelectorError(f"found '{literal}', expected: identifier")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse `?labelSelector=` text; raises `SelectorError` with kube-apiserver's message."""
    if not text:
        return EVERYTHING
    return _sorted_selector(_LabelParser(text).parse())


def selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """`key=value` for each entry (no validation), e.g. a Service's `spec.selector`."""
    if not labels:
        return EVERYTHING
    return _sorted_selector([Requirement(k, "=", (v,)) for k, v in labels.items()])


_EXPRESSION_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}


def selector_from_object(selector: Mapping[str, Any] | None) -> LabelSelector:
    """A `metav1.LabelSelector` object (`matchLabels`/`matchExpressions`) as a selector.

    `None` matches nothing and `{}` matches everything, as `LabelSelectorAsSelector` does.
    """
    if selector is None:
        return NOTHING
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return EVERYTHING
    requirements = [new_requirement(k, "=", [v]) for k, v in match_labels.items()]
    for expression in expressions:
        operator = expression.get("operator", "")
        if operator not in _EXPRESSION_OPERATORS:
            raise SelectorError(f"{_go_quote(str(operator))} is not a valid label selector operator")
        values = expression.get("values")
        requirements.append(
            new_requirement(expression.get("key", ""), _EXPRESSION_OPERATORS[operator], list(values) if values else None)
        )
    return _sorted_selector(requirements)


def format_label_selector(selector: Mapping[str, Any] | None) -> str:
    """`metav1.FormatLabelSelector`: canonical text, `<none>` when empty, `<error>` if invalid."""
    try:
        text = selector_from_object(selector).to_string()
    except SelectorError:
        return "<error>"
    return text or "<none>"


# --------------------------------------------------------------------------- field selectors


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """`field=value` (operator `=`, also for `==`) or `field!=value`."""

    field: str
    operator: str
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        # A field the object does not have reads as "", as in apimachinery's fields.Set.
        equal = fields.get(self.field, "") == self.value
        return equal if self.operator == "=" else not equal

    def to_string(self) -> str:
        return f"{self.field}{self.operator}{escape_field_value(self.value)}"


FieldTransform = Callable[[str, str], tuple[str, str]]
"""(field, value) -> (field, value); raises SelectorError for an unsupported field."""

DEFAULT_FIELDS = ("metadata.name", "metadata.namespace")
"""The field selectors every kind supports (`runtime.DefaultMetaV1FieldSelectorConversion`)."""


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """An AND of field requirements, in the order upstream keeps them (terms sorted as text)."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def to_string(self) -> str:
        return ",".join(r.to_string() for r in self.requirements)

    def __str__(self) -> str:
        return self.to_string()

    def requires_exact_match(self, field: str) -> str | None:
        for r in self.requirements:
            if r.field == field and r.operator == "=":
                return r.value
        return None

    def transform(self, fn: FieldTransform) -> FieldSelector:
        """Rewrite every term, dropping terms mapped to ("", "") (upstream `Transform`)."""
        out = []
        for r in self.requirements:
            field, value = fn(r.field, r.value)
            if field or value:
                out.append(FieldRequirement(field, r.operator, value))
        return FieldSelector(tuple(out))

    def validate_fields(
        self, supported: Collection[str] | None = None, *, aliases: Mapping[str, str] | None = None
    ) -> FieldSelector:
        """Check every field as kube-apiserver's per-kind field label conversion does.

        `supported=None` is a kind without its own conversion: only `metadata.name` and
        `metadata.namespace`, and the generic "is not a known field selector" message. With a
        collection (a kind's selectable fields) the message is `field label not supported: X`.
        `aliases` renames old spellings first (pods: `spec.host` -> `spec.nodeName`).
        """
        return self.transform(_field_checker(supported, aliases or {}))


def _field_checker(supported: Collection[str] | None, aliases: Mapping[str, str]) -> FieldTransform:
    def check(field: str, value: str) -> tuple[str, str]:
        if field in aliases:
            return aliases[field], value
        if supported is None:
            if field in DEFAULT_FIELDS:
                return field, value
            raise SelectorError(
                f'{_go_quote(field)} is not a known field selector: only "metadata.name", "metadata.namespace"'
            )
        if field in supported:
            return field, value
        raise SelectorError(f"field label not supported: {field}")

    return check


FIELDS_EVERYTHING = FieldSelector()


def escape_field_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_field_value(value: str) -> str:
    if not any(c in value for c in "\\,="):
        return value
    out, in_slash = [], False
    for ch in value:
        if in_slash:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            # Go prints the rune with %v, i.e. as its code point number.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    terms, start, in_slash = [], 0, False
    for i, ch in enumerate(text):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def parse_field_selector(text: str) -> FieldSelector:
    """Parse `?fieldSelector=` text; raises `SelectorError` with kube-apiserver's message."""
    if not text:
        return FIELDS_EVERYTHING
    requirements = []
    for term in sorted(_split_terms(text)):
        if not term:
            continue
        split = _split_term(term)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, raw = split
        requirements.append(FieldRequirement(field, "!=" if op == "!=" else "=", unescape_field_value(raw)))
    return FieldSelector(tuple(requirements))


def requires_exact(selector: LabelSelector | FieldSelector | None, field: str) -> str | None:
    """The value `selector` pins `field` to with `=`/`==`, else None (for name short-cuts)."""
    if selector is None:
        return None
    return selector.requires_exact_match(field)
