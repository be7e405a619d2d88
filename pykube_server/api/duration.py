"""Go's `time.ParseDuration`, the format of every duration flag and query parameter kube takes
(`90s`, `1h30m`, `2.5h`, `500ms`): one parser for the whole project."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str) -> float | None:
    """Seconds, or None when `text` is not a Go duration ("0" is, as in Go)."""
    if text == "0":
        return 0.0
    matches = _PART.findall(text)
    if not matches or "".join(n + u for n, u in matches) != text:
        return None
    return sum(float(n) * _UNITS[u] for n, u in matches)
