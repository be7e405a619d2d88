"""Strategic-merge-patch schemas read from the OpenAPI definitions of the emulated release.

kube-apiserver takes patch strategies and merge keys from Go struct tags; the same tags are
published as `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` in the OpenAPI
definitions that the `kubernetes-validate` package ships, so we read them from there.

The definitions file is large (about 1.4 MB) and a patch touches a handful of fields, so the
file is loaded once on first use and `$ref`s are resolved only when a field is walked into.
Nodes are thin views over the loaded dicts; nothing here is mutated after loading. This
module keeps its own small loader (rather than sharing `registry/schemas.py`) so the patch
path depends on nothing but the file.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import kubernetes_validate
import orjson

from pykube_server.api.patch import PatchSchema

__all__ = ["DEFAULT_RELEASE", "OpenAPIPatchSchema", "schema_for_definition", "schema_for_kind"]

DEFAULT_RELEASE = "1.33"
_REF_PREFIX = "#/$defs/"


def _definitions_path(release: str) -> Path:
    root = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    return root / f"v{release}.0-local" / "_definitions.json"


@functools.cache
def _definitions(release: str) -> dict[str, Any]:
    data = orjson.loads(_definitions_path(release).read_bytes())
    defs: dict[str, Any] = data["$defs"]
    return defs


@functools.cache
def _kinds(release: str) -> dict[tuple[str, str, str], str]:
    index: dict[tuple[str, str, str], str] = {}
    for name, definition in _definitions(release).items():
        for gvk in definition.get("x-kubernetes-group-version-kind", ()):
            index.setdefault((gvk.get("group", ""), gvk.get("version", ""), gvk.get("kind", "")), name)
    return index


class OpenAPIPatchSchema:
    """A `PatchSchema` over one OpenAPI node (a property, an item or a definition).

    `strategy` and `merge_key` come from the node as it appears in its parent (the property
    carries them); `field`/`items` follow `$ref`s on demand.
    """

    __slots__ = ("_node", "_release")

    def __init__(self, node: dict[str, Any], release: str = DEFAULT_RELEASE) -> None:
        self._node = node
        self._release = release

    @property
    def strategy(self) -> str:
        return str(self._node.get("x-kubernetes-patch-strategy", ""))

    @property
    def merge_key(self) -> str:
        return str(self._node.get("x-kubernetes-patch-merge-key", ""))

    def _resolved(self) -> dict[str, Any]:
        node = self._node
        seen = 0
        while "$ref" in node and seen < 32:
            ref = node["$ref"]
            name = ref[len(_REF_PREFIX) :] if ref.startswith(_REF_PREFIX) else ref
            node = _definitions(self._release).get(name, {})
            seen += 1
        return node

    def field(self, name: str) -> PatchSchema | None:
        node = self._resolved()
        properties = node.get("properties")
        if properties and name in properties:
            return OpenAPIPatchSchema(properties[name], self._release)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            return OpenAPIPatchSchema(extra, self._release)
        return None

    def items(self) -> PatchSchema | None:
        item = self._resolved().get("items")
        return OpenAPIPatchSchema(item, self._release) if isinstance(item, dict) else None

    def __repr__(self) -> str:
        return f"OpenAPIPatchSchema(strategy={self.strategy!r}, merge_key={self.merge_key!r})"


@functools.cache
def schema_for_definition(name: str, *, release: str = DEFAULT_RELEASE) -> OpenAPIPatchSchema:
    """The schema of a definition such as `io.k8s.api.apps.v1.Deployment`; KeyError if unknown."""
    definitions = _definitions(release)
    if name not in definitions:
        raise KeyError(name)
    return OpenAPIPatchSchema(definitions[name], release)


def schema_for_kind(group: str, version: str, kind: str, *, release: str = DEFAULT_RELEASE) -> OpenAPIPatchSchema | None:
    """The schema of a built-in kind by its `x-kubernetes-group-version-kind`, else None
    (custom resources and unknown kinds: strategic merge then acts as a JSON merge patch)."""
    name = _kinds(release).get((group, version, kind))
    return schema_for_definition(name, release=release) if name else None
