"""The JSONPath subset of `additionalPrinterColumns` and `selectableFields`.

kube-apiserver parses a column's `jsonPath` with client-go's JSONPath as `{<path>}` and prints
the first value found: `.spec.replicas`, `.status.conditions[0].type`, `.metadata.labels['app']`,
`.spec.items[*].name` and filters such as `.status.conditions[?(@.type=="Ready")].status`.
"""

from __future__ import annotations

import re
from typing import Any

_TOKEN = re.compile(
    r"""\.(?P<field>[A-Za-z0-9_\-$]+)      # .field
      | \[\s*(?P<index>-?\d+)\s*\]         # [0]
      | \[\s*\*\s*\]                       # [*]
      | \.\*                               # .*
      | \[\s*'(?P<sq>[^']*)'\s*\]          # ['key']
      | \[\s*"(?P<dq>[^"]*)"\s*\]          # ["key"]
      | \[\?\(\s*@\.(?P<fpath>[A-Za-z0-9_.\-]+)\s*(?P<op>==|!=)\s*(?P<fval>'[^']*'|"[^"]*"|[^)\s]+)\s*\)\]
    """,
    re.VERBOSE,
)


class JSONPathError(ValueError):
    pass


def parse(path: str) -> list[tuple[str, Any]]:
    """Steps of a path: ("field", name), ("index", i), ("all", None), ("filter", (path, op, value))."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if not text.startswith(".") and not text.startswith("["):
        raise JSONPathError(f"unrecognized identifier {text}")
    steps: list[tuple[str, Any]] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise JSONPathError(f"unrecognized character in action: {text[pos:]!r}")
        if m.group("field") is not None:
            steps.append(("field", m.group("field")))
        elif m.group("index") is not None:
            steps.append(("index", int(m.group("index"))))
        elif m.group("sq") is not None or m.group("dq") is not None:
            steps.append(("field", m.group("sq") if m.group("sq") is not None else m.group("dq")))
        elif m.group("fpath") is not None:
            raw = m.group("fval")
            value: Any = raw[1:-1] if raw[0] in "'\"" else _literal(raw)
            steps.append(("filter", (m.group("fpath").split("."), m.group("op"), value)))
        else:
            steps.append(("all", None))
        pos = m.end()
    return steps


def _literal(raw: str) -> Any:
    if raw in ("true", "false"):
        return raw == "true"
    try:
        return int(raw)
    except ValueError:
        try:
            return float(raw)
        except ValueError:
            return raw


def find(obj: Any, steps: list[tuple[str, Any]]) -> list[Any]:
    """Every value the path selects (missing fields select nothing)."""
    current = [obj]
    for kind, arg in steps:
        out: list[Any] = []
        for value in current:
            if kind == "field" and isinstance(value, dict) and arg in value:
                out.append(value[arg])
            elif kind == "index" and isinstance(value, list) and -len(value) <= arg < len(value):
                out.append(value[arg])
            elif kind == "all":
                out.extend(value if isinstance(value, list) else value.values() if isinstance(value, dict) else [])
            elif kind == "filter" and isinstance(value, list):
                fpath, op, expected = arg
                for item in value:
                    found = find(item, [("field", p) for p in fpath])
                    hit = bool(found) and found[0] == expected
                    if (op == "==" and hit) or (op == "!=" and found and not hit):
                        out.append(item)
        current = out
    return current


def first(obj: Any, path: str) -> tuple[bool, Any]:
    """(found, the first value) for a path given as text."""
    values = find(obj, parse(path))
    return (True, values[0]) if values else (False, None)
