"""Duplicate keys in request bodies, found the way kube-apiserver's strict decoders find them.

orjson and PyYAML both keep the last of two equal keys without a word, which is what
`fieldValidation=Ignore` wants. Strict and Warn must name them instead, in kube's words:

- JSON (sigs.k8s.io/json): `duplicate field "spec.template.spec.containers[0].imagePullPolicy"`,
  one entry per repeated key, in document order, mixed with the unknown fields by position.
- YAML (sigs.k8s.io/yaml over yaml.v2): `line 12: key "paused" already set in map`, the line of
  the repeated key, counted from 1.

The JSON check must cost next to nothing on the create path, where nearly every body is clean:
counting colons in the request and in orjson's re-encoding of what was parsed gives the
same number unless a key was dropped, so the exact (slow) scan runs only for bodies that differ.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml

_KEY_END = b":"


@dataclass(slots=True)
class JsonDuplicates:
    """Where each key of a JSON body first appeared, and each repeated key (both by position)."""

    first: dict[str, int] = field(default_factory=dict)
    """path -> position of its first occurrence."""
    repeats: list[tuple[int, str]] = field(default_factory=list)
    """(position, path) of every repeated key, in document order."""

    def order_of(self, path: str) -> int:
        return self.first.get(path, 1 << 60)


class _Pairs(list):  # type: ignore[type-arg]
    """An object's members in document order, repeats kept (json's object_pairs_hook)."""


def find_json(data: bytes, value: Any) -> JsonDuplicates | None:
    """The repeated keys of a JSON body already parsed into `value`, or None when it has none."""
    if not isinstance(value, (dict, list)) or data.count(_KEY_END) == orjson.dumps(value).count(_KEY_END):
        return None
    try:
        tree = json.loads(data, object_pairs_hook=_Pairs)
    except ValueError:  # orjson took it, json did not (e.g. lone surrogates): no exact answer
        return None
    found = JsonDuplicates()
    _scan(tree, "", found, [0])
    return found if found.repeats else None


def _scan(node: Any, path: str, found: JsonDuplicates, counter: list[int]) -> None:
    if isinstance(node, _Pairs):
        seen: set[str] = set()
        for key, child in node:
            counter[0] += 1
            sub = f"{path}.{key}" if path else key
            if key in seen:
                found.repeats.append((counter[0], sub))
            else:
                seen.add(key)
                found.first[sub] = counter[0]
            _scan(child, sub, found, counter)
    elif isinstance(node, list):
        for i, child in enumerate(node):
            counter[0] += 1
            found.first.setdefault(f"{path}[{i}]", counter[0])
            _scan(child, f"{path}[{i}]", found, counter)


class DuplicateRecordingLoader(yaml.SafeLoader):
    """A safe YAML loader that notes every repeated mapping key with yaml.v2's text."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in seen
                seen.add(key)
            except TypeError:
                continue
            if repeated:
                shown = json.dumps(key) if isinstance(key, str) else str(key).lower() if isinstance(key, bool) else str(key)
                self.duplicates.append(f"line {key_node.start_mark.line + 1}: key {shown} already set in map")
        return super().construct_mapping(node, deep=deep)


def load_yaml(data: bytes) -> tuple[Any, list[str]]:
    """One YAML document and yaml.v2's texts for its repeated keys."""
    loader = DuplicateRecordingLoader(data)
    try:
        return loader.get_single_data(), loader.duplicates
    finally:
        loader.dispose()


def yaml_error(lines: list[str]) -> str:
    """yaml.v2's one error for all repeated keys of a document."""
    return "yaml: unmarshal errors:\n  " + "\n  ".join(lines)


@dataclass(slots=True)
class Repeats:
    """What a decoded body repeated: JSON keys by position, or yaml.v2's per-line texts."""

    json: JsonDuplicates | None = None
    yaml: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.json is not None or bool(self.yaml)
