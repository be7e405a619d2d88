"""Server-side apply's answer to a field the schema does not declare.

kube-apiserver turns an apply patch into a typed value (structured-merge-diff) before merging,
whatever `fieldValidation` says, and that conversion refuses an undeclared field. The error is
a plain Go error, so the answer is a 500 Status without a reason:
`failed to create typed patch object (default/web; apps/v1, Kind=Deployment): .spec.bogus: field
not declared in schema` (several: `errors:` then one indented line each). Paths are printed the
structured-merge-diff way: keyed list items as `[name="web"]`, set items as `[="x"]`.
"""

from __future__ import annotations

import re
from typing import Any

from pykube_server.api import errors
from pykube_server.registry.managedfields import fieldpath as fp
from pykube_server.registry.managedfields.typed import Node

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


class TypedPatchError(errors.StatusError):
    """A plain (non-Status) error on kube's side: code 500, no reason in the body."""

    code = 500
    reason = ""

    def status(self) -> dict[str, Any]:
        body = super().status()
        body.pop("reason", None)
        return body


def smd_path(obj: Any, node: Node, kube_path: str) -> str:
    """`spec.containers[0].bogus` (fieldcheck's form) -> `.spec.containers[name="web"].bogus`."""
    out: list[str] = []
    value = obj
    for match in _SEGMENT.finditer(kube_path):
        name, index = match.group(1), match.group(2)
        if name is not None:
            out.append("." + name)
            node = node.field(name)
            value = value.get(name) if isinstance(value, dict) else None
        else:
            i = int(index)
            item = value[i] if isinstance(value, list) and i < len(value) else None
            out.append(fp.element_string(node.element(item, i)))
            node, value = node.items(), item
    return "".join(out)


def typed_patch_error(manifest: dict[str, Any], api_version: str, kind: str, node: Node,
                      unknown: list[str]) -> TypedPatchError:
    meta = manifest.get("metadata") if isinstance(manifest.get("metadata"), dict) else {}
    group, _, version = api_version.rpartition("/")
    where = f"{meta.get('namespace') or ''}/{meta.get('name') or ''}; {group}/{version}, Kind={kind}"
    texts = sorted(f"{smd_path(manifest, node, path)}: field not declared in schema" for path in unknown)
    detail = texts[0] if len(texts) == 1 else "errors:\n" + "\n".join("  " + t for t in texts)
    return TypedPatchError(f"failed to create typed patch object ({where}): {detail}")
