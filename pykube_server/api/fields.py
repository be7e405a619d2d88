"""Field errors: what validation returns, and how they become 422 causes.

Shaped after apimachinery's `field.Error`: a type, a path, the bad value and a detail. The
rendered texts are the ones kube-apiserver prints, because kubectl shows them verbatim.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


class Path:
    """Builds `spec.containers[0].image` style paths."""

    __slots__ = ("_text",)

    def __init__(self, text: str = "") -> None:
        self._text = text

    def child(self, name: str, *more: str) -> Path:
        text = f"{self._text}.{name}" if self._text else name
        path = Path(text)
        for m in more:
            path = path.child(m)
        return path

    def index(self, i: int) -> Path:
        return Path(f"{self._text}[{i}]")

    def key(self, k: str) -> Path:
        return Path(f"{self._text}[{k}]")

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"Path({self._text!r})"


_OMIT = object()

# FieldErrorType -> (cause reason, message prefix)
_TYPES = {
    "Required": ("FieldValueRequired", "Required value"),
    "Invalid": ("FieldValueInvalid", "Invalid value"),
    "Forbidden": ("FieldValueForbidden", "Forbidden"),
    "NotSupported": ("FieldValueNotSupported", "Unsupported value"),
    "Duplicate": ("FieldValueDuplicate", "Duplicate value"),
    "TooLong": ("FieldValueTooLong", "Too long"),
    "TooMany": ("FieldValueTooMany", "Too many"),
    "NotFound": ("FieldValueNotFound", "Not found"),
    "InternalError": ("InternalError", "Internal error"),
}


def _quote(value: Any) -> str:
    if isinstance(value, str):
        return orjson.dumps(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value)
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


@dataclass(frozen=True, slots=True)
class FieldError:
    type: str
    field: str
    bad_value: Any = _OMIT
    detail: str = ""

    @property
    def reason(self) -> str:
        return _TYPES[self.type][0]

    def body(self) -> str:
        """The message without the field path, as in a Status cause."""
        prefix = _TYPES[self.type][1]
        parts = [prefix]
        if self.type in ("Invalid", "NotSupported", "Duplicate", "NotFound") and self.bad_value is not _OMIT:
            parts[0] = f"{prefix}: {_quote(self.bad_value)}"
        if self.detail:
            return f"{parts[0]}: {self.detail}"
        return parts[0]

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()

    def cause(self) -> dict[str, str]:
        return {"reason": self.reason, "message": self.body(), "field": self.field}


def required(path: Path | str, detail: str = "") -> FieldError:
    return FieldError("Required", str(path), detail=detail)


def invalid(path: Path | str, value: Any, detail: str = "") -> FieldError:
    return FieldError("Invalid", str(path), value, detail)


def forbidden(path: Path | str, detail: str) -> FieldError:
    return FieldError("Forbidden", str(path), detail=detail)


def not_supported(path: Path | str, value: Any, supported: list[str]) -> FieldError:
    detail = "supported values: " + ", ".join(f'"{s}"' for s in supported) if supported else ""
    return FieldError("NotSupported", str(path), value, detail)


def duplicate(path: Path | str, value: Any) -> FieldError:
    return FieldError("Duplicate", str(path), value)


def too_long(path: Path | str, max_length: int) -> FieldError:
    return FieldError("TooLong", str(path), detail=f"may not be more than {max_length} bytes")


def aggregate_message(errors: list[FieldError]) -> str:
    """`a: x` for one error, `[a: x, b: y]` for several (apimachinery's aggregate, which lists a
    repeated message once; the causes keep every error)."""
    texts = list(dict.fromkeys(str(e) for e in errors))
    return texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
