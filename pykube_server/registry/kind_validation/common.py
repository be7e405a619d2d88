"""Shared pieces of kind validation: kube's string checks, Go-style value rendering, helpers.

kube-apiserver renders a non-string bad value with Go's `%#v` (`map[string]string{"a":"b"}`,
`v1.LabelSelector{...}`); kubectl prints it verbatim, so those renderings are reproduced here
for the values that appear in common messages.
"""

from __future__ import annotations

import re
from typing import Any

from pykube_server.api.fields import FieldError, Path, invalid
from pykube_server.registry.validation import max_len_error, regex_error

Obj = dict[str, Any]

PORT_RANGE_ERR = "must be between 1 and 65535, inclusive"
IMMUTABLE_ERR = "field is immutable"
NEGATIVE_ERR = "must be greater than or equal to 0"
SUPPORTED_PROTOCOLS = ["SCTP", "TCP", "UDP"]
MAX_SECRET_SIZE = 1024 * 1024

_PORT_NAME_CHARSET = re.compile(r"[-a-z0-9]+")
_CONFIG_KEY_FMT = "[-._a-zA-Z0-9]+"
_CONFIG_KEY = re.compile(_CONFIG_KEY_FMT)
_CONFIG_KEY_ERR = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"


def go_string(value: str) -> str:
    """Go's %q for the plain strings that appear in labels and names."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def go_string_map(value: Any) -> str:
    if not value:
        return "map[string]string(nil)"
    items = ", ".join(f"{go_string(k)}:{go_string(str(v))}" for k, v in sorted(value.items()))
    return f"map[string]string{{{items}}}"


def go_string_slice(values: list[str]) -> str:
    return "[]string{" + ", ".join(go_string(v) for v in values) + "}"


def go_label_selector(selector: Any) -> str:
    selector = selector if isinstance(selector, dict) else {}
    exprs = selector.get("matchExpressions") or []
    if exprs:
        rendered = ", ".join(
            f"v1.LabelSelectorRequirement{{Key:{go_string(e.get('key', ''))}, Operator:{go_string(e.get('operator', ''))}, "
            f"Values:{go_string_slice(e.get('values') or []) if e.get('values') else '[]string(nil)'}}}" for e in exprs)
        expr_text = f"[]v1.LabelSelectorRequirement{{{rendered}}}"
    else:
        expr_text = "[]v1.LabelSelectorRequirement(nil)"
    return f"v1.LabelSelector{{MatchLabels:{go_string_map(selector.get('matchLabels'))}, MatchExpressions:{expr_text}}}"


def invalid_go(path: Path | str, rendered: str, detail: str) -> FieldError:
    """An Invalid error whose value is already rendered the Go way."""
    return FieldError("Invalid", str(path), detail=f"{rendered}: {detail}")


def is_valid_port_num(port: Any) -> list[str]:
    return [] if isinstance(port, int) and 1 <= port <= 65535 else [PORT_RANGE_ERR]


def is_valid_port_name(name: str) -> list[str]:
    errs = [max_len_error(15)] if len(name) > 15 else []
    if not _PORT_NAME_CHARSET.fullmatch(name):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", name):
        errs.append("must contain at least one letter (a-z)")
    if "--" in name:
        errs.append("must not contain consecutive hyphens")
    if name and (name[0] == "-" or name[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_config_map_key(key: str) -> list[str]:
    errs = [max_len_error(253)] if len(key) > 253 else []
    if not _CONFIG_KEY.fullmatch(key):
        errs.append(regex_error(_CONFIG_KEY_ERR, _CONFIG_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if key == ".":
        errs.append("must not be '.'")
    elif key == "..":
        errs.append("must not be '..'")
    elif key.startswith(".."):
        errs.append("must not start with '..'")
    return errs


def nonnegative(obj: Obj, key: str, path: Path) -> list[FieldError]:
    value = obj.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        return [invalid(path.child(key), value, NEGATIVE_ERR)]
    return []


def immutable(new: Any, old: Any, path: Path | str) -> list[FieldError]:
    return [] if new == old else [invalid(path, new, IMMUTABLE_ERR)]


def selector_matches(selector: Any, labels: Any) -> bool:
    """LabelSelectorAsSelector(selector).Matches(labels); a nil selector matches nothing."""
    if not isinstance(selector, dict):
        return False
    labels = labels if isinstance(labels, dict) else {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        if not _expression_matches(expr, labels):
            return False
    return True


def _expression_matches(expr: Obj, labels: Obj) -> bool:
    key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    return False
