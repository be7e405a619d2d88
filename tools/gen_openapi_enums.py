"""Derive the OpenAPI `enum` table of the built-in kinds from the k8s.io/api Go sources.

kube's OpenAPI generator gives a string field an `enum` (the sorted values of the constants of
its type) when the field's Go type carries the `+enum` marker, and appends a "Possible enum
values:" list to its description with one remark per value. The definitions pykube serves (from
kubernetes-validate) lack both, and `kubectl explain` prints them, so this tool lists, per OpenAPI
definition and property, the values kube 1.33 publishes and each value's remark.

A value's remark is what kube-openapi derives from its constant's doc comment (as gengo reads it:
the comment group that ends on the line right above the constant): the comment's lines joined
with spaces, trimmed, a leading copy of the constant's name dropped, runs of whitespace collapsed
to one space; empty when the constant has no comment.

Usage: .venv/bin/python tools/gen_openapi_enums.py <git dir of kubernetes/api> [tag]
(default tag v0.33.13); writes pykube_server/registry/openapi_enums.json. Only facts are kept:
definition names, property names, values, remarks.
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
_DIRECTIVE = re.compile(r"^(line |extern |export |[a-z0-9]+:[a-z0-9])")
_SPACES = re.compile(r"\s+")


def go_quote(value: str) -> str:
    """Go's %q of a printable ASCII string (all enum values are): quotes and backslashes escaped."""
    if not value.isascii() or not value.isprintable():
        raise ValueError(f"enum value {value!r} needs Go's full %q rules")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


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


def _doc_comment(lines: list[str], i: int) -> list[str]:
    """The doc comment gengo gives the declaration on line `i`: the comment group ending on the
    line above it, i.e. the run of comment-only lines there, or else the trailing comment of that
    line (Go's parser makes a comment after code on the same line a group of its own)."""
    j = i - 1
    if j < 0:
        return []
    if not lines[j].lstrip().startswith("//"):
        trailing = _trailing_comment(lines[j])
        return [trailing] if trailing else []
    start = j
    while start > 0 and lines[start - 1].lstrip().startswith("//"):
        start -= 1
    return [ln.lstrip() for ln in lines[start:j + 1]]


def _trailing_comment(line: str) -> str:
    """The `//` comment after the code on a line (outside string and rune literals), or ""."""
    quote = ""
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if ch == "\\" and quote != "`":
                i += 1
            elif ch == quote:
                quote = ""
        elif ch in "\"'`":
            quote = ch
        elif line.startswith("//", i):
            return line[i:]
        i += 1
    return ""


def _comment_text(comment: list[str]) -> list[str]:
    """go/ast CommentGroup.Text line by line: the `//` and one space after it dropped, directives
    (`//go:...`) skipped, trailing blanks cut."""
    out = []
    for line in comment:
        body = line[2:]
        if not body.startswith(" ") and _DIRECTIVE.match(body):
            continue
        out.append((body[1:] if body.startswith(" ") else body).rstrip())
    return out


def remark(const_name: str, comment: list[str]) -> str:
    """kube-openapi's remark for one enum value: the comment lines joined by spaces, trimmed, a
    leading constant name removed (a plain prefix cut, as kube does it), whitespace collapsed."""
    text = " ".join(_comment_text(comment)).strip()
    if text.startswith(const_name):
        text = text[len(const_name):]
    return _SPACES.sub(" ", text.strip())


def main(repo: str, tag: str = "v0.33.13") -> None:
    files = [f for f in _git(repo, "ls-tree", "-r", "--name-only", tag).split()
             if f.endswith(".go") and not f.endswith("_test.go") and "/" in f and not f.startswith(("testdata", "hack"))
             and "generated" not in f.rsplit("/", 1)[-1]]
    sources = {f: _git(repo, "show", f"{tag}:{f}").splitlines() for f in files}
    packages: dict[str, list[str]] = {}
    for f in files:
        packages.setdefault(f.rsplit("/", 1)[0], []).append(f)
    enum_types: dict[str, set[str]] = {p: set().union(*(_enum_types(sources[f]) for f in fs)) for p, fs in packages.items()}
    values: dict[tuple[str, str], dict[str, str]] = {}  # (package, type) -> value -> remark
    for pkg, fs in packages.items():
        for f in fs:
            for i, line in enumerate(sources[f]):
                match = _CONST.match(line)
                if match and match.group(2) in enum_types[pkg]:
                    said = remark(match.group(1), _doc_comment(sources[f], i))
                    known = values.setdefault((pkg, match.group(2)), {})
                    if match.group(3) in known and known[match.group(3)] != said:
                        # kube keeps whichever constant it meets first (map order): say so
                        print(f"warning: {pkg}.{match.group(2)} value {match.group(3)!r} has two remarks",
                              file=sys.stderr)
                    known.setdefault(match.group(3), said)
    table: dict[str, dict[str, list[str]]] = {}
    remarks: dict[str, dict[str, dict[str, str]]] = {}
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
                    ordered = sorted(found, key=go_quote)  # kube sorts the quoted literals
                    table.setdefault(definition, {})[field.group(3)] = ordered
                    remarks.setdefault(definition, {})[field.group(3)] = {v: found[v] for v in ordered}
    for outer, inner in inlined:  # an embedded struct's fields are the outer definition's own
        if inner in table:
            table.setdefault(outer, {}).update(table[inner])
            remarks.setdefault(outer, {}).update(remarks[inner])
    OUT.write_text(json.dumps({"source": f"k8s.io/api {tag}", "enums": dict(sorted(table.items())),
                               "remarks": dict(sorted(remarks.items()))},
                              indent=1, sort_keys=False, ensure_ascii=False) + "\n")
    print(f"{sum(len(v) for v in table.values())} enum properties in {len(table)} definitions -> {OUT}")


if __name__ == "__main__":
    main(*sys.argv[1:])
