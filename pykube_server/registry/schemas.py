"""OpenAPI definitions of the emulated release, read from the `kubernetes-validate` package.

kubernetes-validate ships the upstream OpenAPI definitions of each release as JSON Schema
(`kubernetes-json-schema/v1.33.0-local/_definitions.json`, a `$defs` map keyed by the OpenAPI
definition name such as `io.k8s.api.core.v1.Pod`). They carry descriptions,
`x-kubernetes-group-version-kind`, patch strategies, merge keys and list types, so the registry
writes none of that by hand. The file is 1.4 MB: it is parsed lazily, once, and then shared
read-only (a cache of static data, not mutable state). Callers must not mutate what they get.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import orjson

RELEASE = "v1.33.0"
"""The Kubernetes release whose definitions are served."""

_DEFINITIONS_FILE = f"kubernetes-json-schema/{RELEASE}-local/_definitions.json"


def _package_dir() -> Path:
    import kubernetes_validate  # imported here: only the first lookup pays for it

    return Path(kubernetes_validate.__file__).resolve().parent


def definitions_path() -> Path:
    """Where the definitions file of `RELEASE` lives inside the installed package."""
    return _package_dir() / _DEFINITIONS_FILE


@functools.cache
def all_definitions() -> dict[str, dict[str, Any]]:
    """Every definition by name (read once; treat as read-only)."""
    document = orjson.loads(definitions_path().read_bytes())
    defs: dict[str, dict[str, Any]] = document["$defs"]
    return defs


def definition(name: str) -> dict[str, Any]:
    """One definition by its OpenAPI name; KeyError names the missing definition."""
    try:
        return all_definitions()[name]
    except KeyError:
        raise KeyError(f"no OpenAPI definition {name!r} in kubernetes-validate {RELEASE}") from None


def group_version_kinds(name: str) -> list[dict[str, str]]:
    """The definition's `x-kubernetes-group-version-kind` entries ([] for non-top-level types)."""
    gvks: list[dict[str, str]] = definition(name).get("x-kubernetes-group-version-kind", [])
    return gvks
