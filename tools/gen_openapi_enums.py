"""Derive the OpenAPI `enum` table of the built-in kinds from the k8s.io/api Go sources.

kube's OpenAPI generator gives a string field an `enum` (the sorted values of the constants of
its type) when the field's Go type carries the `+enum` marker. The definitions pykube serves
(from kubernetes-validate) lack them, and `kubectl explain` prints them (ENUM: ...), so this tool
lists, per OpenAPI definition and property, the values kube 1.33 publishes.

Usage: .venv/bin/python tools/gen_openapi_enums.py <git dir of kubernetes/api> [tag]
(default tag v0.33.13); writes pykube_server/registry/openapi_enums.json. Only facts are kept:
definition names, property names, values.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "pykube_server" / "registry" / "openapi_enums.json"
_TYPE = re.compile(r"^type (\w+) string\s*$")
_CONST = re.compile(r'^\s*(\w+)\s+(\w+)\s*=\s*"([^"]*)"')
_STRUCT = re.compile(r"^type (\w+) struct \{")
_FIELD = re.compile(r'^\s+\w+\s+((?:\*|\[\])*)([\w.]+)\s+`json:"([^",]*)')
_INLINE = re.compile(r'^\s+(\w+)\s+`json:",inline"')
_IMPORT = re.compile(r'^\s*(\w+)?\s*"k8s\.io/api/([\w/]+)"')


def _git(repo: str, *args: str) -> str:
    return subprocess.run(["git", "--git-dir", repo, *args], check=True, capture_output=True, text=True).stdout


def _enum_types(lines: list[str]) -> set[str]:
    found = set()
    for i, line in enumerate(lines):
        match = _TYPE.match(line)
        if not match:
            continue
        j = i - 1
        while j >= 0 and lines[j].startswith("//"):
            if lines[j].strip() == "// +enum":
                found.add(match.group(1))
                break
            j -= 1
    return found


def main(repo: str, tag: str = "v0.33.13") -> None:
    files = [f for f in _git(repo, "ls-tree", "-r", "--name-only", tag).split()
             if f.endswith(".go") and not f.endswith("_test.go") and "/" in f and not f.startswith(("testdata", "hack"))
             and "generated" not in f.rsplit("/", 1)[-1]]
    sources = {f: _git(repo, "show", f"{tag}:{f}").splitlines() for f in files}
    packages: dict[str, list[str]] = {}
    for f in files:
        packages.setdefault(f.rsplit("/", 1)[0], []).append(f)
    enum_types: dict[str, set[str]] = {p: set().union(*(_enum_types(sources[f]) for f in fs)) for p, fs in packages.items()}
    values: dict[tuple[str, str], set[str]] = {}
    for pkg, fs in packages.items():
        for f in fs:
            for line in sources[f]:
                match = _CONST.match(line)
                if match and match.group(2) in enum_types[pkg]:
                    values.setdefault((pkg, match.group(2)), set()).add(match.group(3))
    table: dict[str, dict[str, list[str]]] = {}
    inlined: list[tuple[str, str]] = []  # (definition, the definition it embeds)
    for pkg, fs in packages.items():
        for f in fs:
            lines = sources[f]
            aliases = {}
            for line in lines:
                imp = _IMPORT.match(line)
                if imp:
                    aliases[imp.group(1) or imp.group(2).rsplit("/", 1)[-1]] = imp.group(2)
            struct = None
            for line in lines:
                start = _STRUCT.match(line)
                if start:
                    struct = start.group(1)
                    continue
                if line.startswith("}"):
                    struct = None
                    continue
                inline = _INLINE.match(line) if struct else None
                if inline:
                    prefix = "io.k8s.api." + pkg.replace("/", ".") + "."
                    inlined.append((prefix + struct, prefix + inline.group(1)))
                    continue
                field = _FIELD.match(line) if struct else None
                if not field or not field.group(3):
                    continue
                if "[]" in field.group(1):
                    continue  # kube's generator marks enum-typed fields, not lists of them
                typ = field.group(2)
                owner = pkg
                if "." in typ:
                    alias, typ = typ.split(".", 1)
                    owner = aliases.get(alias, "")
                found = values.get((owner, typ))
                if found and typ in enum_types.get(owner, set()):
                    definition = "io.k8s.api." + pkg.replace("/", ".") + "." + struct
                    table.setdefault(definition, {})[field.group(3)] = sorted(found)
    for outer, inner in inlined:  # an embedded struct's fields are the outer definition's own
        if inner in table:
            table.setdefault(outer, {}).update(table[inner])
    OUT.write_text(json.dumps({"source": f"k8s.io/api {tag}", "enums": dict(sorted(table.items()))},
                              indent=1, sort_keys=False) + "\n")
    print(f"{sum(len(v) for v in table.values())} enum properties in {len(table)} definitions -> {OUT}")


if __name__ == "__main__":
    main(*sys.argv[1:])
