"""Generate ``pykube_server/apiserver/protobuf_schema.json`` for the protobuf body decoder.

kubectl's typed clients send request bodies as Kubernetes protobuf (see
``pykube_server/apiserver/protobuf.py``). Decoding them needs two kinds of fact per field:

* the **wire facts**: field number, scalar or message type, repeated, map. These come from
  the ``generated.proto`` files of ``k8s.io/api`` and ``k8s.io/apimachinery`` (read with a
  small parser for the proto2 subset go-to-protobuf emits: ``package``, ``import``, nested
  ``message``, ``optional|repeated <type> <name> = N;``, ``map<k, v>``).
* the **JSON facts**: the field's JSON name, whether it is ``omitempty``, a Go pointer
  (presence is meaningful: a zero value was set on purpose) or an ``inline`` embedding, and
  which Go types are API objects (``runtime.Object``). The .proto files cannot tell these: a
  ``*int32`` and an ``int32`` look the same there. They come from the Go struct tags of the same
  release's ``types.go`` files, e.g.
  ``Replicas *int32 `json:"replicas,omitempty" protobuf:"varint,1,opt,name=replicas"```.

Both trees are reference data, read at generation time and never committed. Lay them out as
``<root>/k8s.io/api/...`` and ``<root>/k8s.io/apimachinery/pkg/...``; for the Go tree, e.g.
``git -C api archive v0.33.1 | tar -x -C ROOT/k8s.io/api`` (same for apimachinery).

Output (compact JSON)::

    {"messages": {"api.core.v1.ConfigMap": {"2": ["data", "map:string:string", "o"], ...}},
     "wrappers": ["apimachinery.pkg.apis.meta.v1.Verbs", ...],   # named slices: JSON is a list
     "kinds": {"v1 ConfigMap": "api.core.v1.ConfigMap", "apps/v1 Deployment": ...}}

Message names drop the common ``k8s.io.`` prefix. A field entry is ``[json_name, type,
flags]``: ``type`` is a proto scalar (``string``, ``int32``, ``int64``, ``bool``, ``bytes``), a
message name, or ``map:<key>:<value>``; ``flags`` holds ``r`` repeated, ``o`` omitempty, ``p``
Go pointer, ``i`` inline. Only messages reachable from a kind are written.

Usage: ``python tools/gen_protobuf_table.py --proto-root DIR --go-root DIR [--out FILE]``.
"""
from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import orjson

PREFIX = "k8s.io."
OUT_DEFAULT = Path(__file__).resolve().parent.parent / "pykube_server/apiserver/protobuf_schema.json"
SCALARS = frozenset({"string", "int32", "int64", "uint32", "uint64", "bool", "bytes", "double", "float"})

# API group of each k8s.io/api package directory (the part before the version).
GROUPS: dict[str, str] = {
    "core": "", "apps": "apps", "batch": "batch", "autoscaling": "autoscaling", "policy": "policy",
    "extensions": "extensions", "rbac": "rbac.authorization.k8s.io",
    "authorization": "authorization.k8s.io", "authentication": "authentication.k8s.io",
    "certificates": "certificates.k8s.io", "coordination": "coordination.k8s.io",
    "discovery": "discovery.k8s.io", "events": "events.k8s.io", "networking": "networking.k8s.io",
    "node": "node.k8s.io", "scheduling": "scheduling.k8s.io", "storage": "storage.k8s.io",
    "admissionregistration": "admissionregistration.k8s.io", "admission": "admission.k8s.io",
    "flowcontrol": "flowcontrol.apiserver.k8s.io", "apiserverinternal": "internal.apiserver.k8s.io",
    "resource": "resource.k8s.io", "storagemigration": "storagemigration.k8s.io",
    "imagepolicy": "imagepolicy.k8s.io", "apidiscovery": "apidiscovery.k8s.io",
}
# apimachinery packages whose runtime.Objects are kinds, with their group.
META_GROUPS: dict[str, str] = {"apimachinery.pkg.apis.meta.v1": "meta.k8s.io",
                               "apimachinery.pkg.apis.meta.v1beta1": "meta.k8s.io"}


@dataclass
class ProtoField:
    name: str
    type: str  # scalar, fully qualified message (no leading dot), or map:k:v
    number: int
    repeated: bool


@dataclass
class ProtoMessage:
    name: str  # fully qualified, without the k8s.io. prefix
    fields: list[ProtoField] = field(default_factory=list)
    wrapper: bool = False  # "+protobuf.nullable=true": a Go named slice type


@dataclass(frozen=True)
class GoField:
    json_name: str
    omitempty: bool
    pointer: bool
    inline: bool


@dataclass
class GoStruct:
    fields: dict[int, GoField]
    is_object: bool


# ---------------------------------------------------------------------------------------------
# .proto parsing

_TOKEN = re.compile(r'//[^\n]*|/\*.*?\*/|"[^"]*"|map\s*<[^>]*>|[A-Za-z0-9_.]+|[{};=<>,\[\]()]', re.S)


def _tokens(text: str) -> list[str]:
    """Tokens, keeping ``//`` comments (they carry ``+protobuf`` hints) but not block comments."""
    return [t for t in _TOKEN.findall(text) if not t.startswith("/*")]


def parse_proto(text: str) -> list[ProtoMessage]:
    toks = _tokens(text)
    package = ""
    out: list[ProtoMessage] = []
    stack: list[ProtoMessage] = []
    comments: list[str] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.startswith("//"):
            comments.append(t)
            i += 1
            continue
        if t == "package":
            package = toks[i + 1].removeprefix(PREFIX)
            i += 3
        elif t in ("import", "syntax", "option"):
            i = toks.index(";", i) + 1
        elif t == "message":
            scope = stack[-1].name if stack else package
            msg = ProtoMessage(f"{scope}.{toks[i + 1]}", wrapper=any("+protobuf.nullable=true" in c for c in comments))
            out.append(msg)
            stack.append(msg)
            i += 3
        elif t == "}":
            stack.pop()
            i += 1
        elif t in ("optional", "repeated", "required") or t.startswith("map"):
            i = _parse_field(toks, i, stack[-1], package, out)
        else:
            raise ValueError(f"unexpected token {t!r} in package {package}")
        if not t.startswith("//"):
            comments = []
    return out


def _parse_field(toks: list[str], i: int, msg: ProtoMessage, package: str, all_msgs: list[ProtoMessage]) -> int:
    t = toks[i]
    if t.startswith("map"):
        key, value = (s.strip() for s in t[t.index("<") + 1:-1].split(","))
        ftype, repeated, j = f"map:{_qualify(key, msg, package)}:{_qualify(value, msg, package)}", False, i + 1
    else:
        ftype, repeated, j = _qualify(toks[i + 1], msg, package), t == "repeated", i + 2
    name, number = toks[j], int(toks[j + 2])
    msg.fields.append(ProtoField(name, ftype, number, repeated))
    return toks.index(";", j) + 1


def _qualify(type_name: str, msg: ProtoMessage, package: str) -> str:
    """Resolve a type reference: scalar, ``.k8s.io.x.Y`` absolute, or relative to the package."""
    if type_name in SCALARS:
        return type_name
    if type_name.startswith("."):
        return type_name[1:].removeprefix(PREFIX)
    return f"{package}.{type_name}"  # go-to-protobuf never nests messages, so package scope suffices


def load_protos(root: Path) -> dict[str, ProtoMessage]:
    messages: dict[str, ProtoMessage] = {}
    for path in sorted((root / "k8s.io").rglob("generated.proto")):
        for msg in parse_proto(path.read_text()):
            messages[msg.name] = msg
    return messages


# ---------------------------------------------------------------------------------------------
# Go struct tag parsing

_STRUCT = re.compile(r"^type (\w+) struct \{$")
_FIELD = re.compile(r"^\s+(?:(\w+)\s+)?(\S+)\s+`([^`]*)`")
_TAG = re.compile(r'(\w+):"([^"]*)"')
_ALIAS = re.compile(r"^type (\w+) (\w+)\.(\w+)$", re.M)  # `type MatchCondition v1.MatchCondition`
_IMPORT = re.compile(r'^\s*(\w+)\s+"k8s\.io/([^"]+)"', re.M)


def parse_go(text: str) -> dict[str, GoStruct]:
    structs: dict[str, GoStruct] = {}
    comments: list[str] = []
    current: GoStruct | None = None
    for line in text.splitlines():
        if current is not None:
            if line == "}":
                current = None
            else:
                _parse_go_field(line, current)
            continue
        if m := _STRUCT.match(line):
            is_obj = any("deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object" in c for c in comments)
            current = structs[m.group(1)] = GoStruct({}, is_obj)
            comments = []
        elif line.startswith("//"):
            comments.append(line)
        elif line.strip() and not line.startswith("//"):
            comments = []
    return structs


def _parse_go_field(line: str, struct: GoStruct) -> None:
    m = _FIELD.match(line)
    if not m:
        return
    _, gotype, tagtext = m.groups()
    tags = dict(_TAG.findall(tagtext))
    proto_tag = tags.get("protobuf", "").split(",")
    if len(proto_tag) < 2 or not proto_tag[1].isdigit():
        return  # not in the protobuf schema (`protobuf:"-"` or untagged)
    number = int(proto_tag[1])
    json_parts = tags.get("json", "").split(",")
    struct.fields[number] = GoField(
        json_name=json_parts[0], omitempty="omitempty" in json_parts[1:],
        pointer=gotype.startswith("*"), inline="inline" in json_parts[1:])


def load_go(root: Path) -> dict[str, GoStruct]:
    """Go structs keyed like proto messages: ``<package path with dots>.<TypeName>``."""
    out: dict[str, GoStruct] = {}
    aliases: dict[str, str] = {}
    base = root / "k8s.io"
    for path in sorted(base.rglob("*.go")):
        if path.name.endswith("_test.go") or path.name.startswith(("generated.pb", "zz_generated")):
            continue
        package = ".".join(path.parent.relative_to(base).parts)
        text = path.read_text()
        for name, struct in parse_go(text).items():
            out[f"{package}.{name}"] = struct
        imports = {alias: target.replace("/", ".") for alias, target in _IMPORT.findall(text)}
        for name, pkg_alias, target in _ALIAS.findall(text):
            if pkg_alias in imports:
                aliases[f"{package}.{name}"] = f"{imports[pkg_alias]}.{target}"
    for name, target in aliases.items():
        if name not in out and target in out:
            out[name] = GoStruct(out[target].fields, is_object=False)
    return out


# ---------------------------------------------------------------------------------------------
# joining and output

def group_version(package: str) -> str | None:
    """``api.apps.v1`` -> ``apps/v1``; ``api.core.v1`` -> ``v1``; unknown -> None."""
    if package in META_GROUPS:
        return f"{META_GROUPS[package]}/{package.rsplit('.', 1)[1]}"
    parts = package.split(".")
    if len(parts) != 3 or parts[0] != "api" or parts[1] not in GROUPS:
        return None
    group = GROUPS[parts[1]]
    return f"{group}/{parts[2]}" if group else parts[2]


def build_table(protos: dict[str, ProtoMessage], go: dict[str, GoStruct]) -> dict:
    kinds: dict[str, str] = {}
    for name, struct in go.items():
        package, _, kind = name.rpartition(".")
        gv = group_version(package)
        if struct.is_object and gv and name in protos:
            kinds[f"{gv} {kind}"] = name
    reachable = _reachable(protos, sorted(kinds.values()))
    messages = {name: _fields_entry(protos[name], go, name) for name in reachable}
    wrappers = sorted(n for n in reachable if protos[n].wrapper)
    return {"messages": messages, "wrappers": wrappers, "kinds": dict(sorted(kinds.items()))}


def _reachable(protos: dict[str, ProtoMessage], roots: list[str]) -> list[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for f in protos[name].fields:
            todo.extend(t for t in f.type.split(":") if t in protos)
    return sorted(seen)


def _fields_entry(msg: ProtoMessage, go: dict[str, GoStruct], name: str) -> dict[str, list]:
    struct = go.get(name)
    entry: dict[str, list] = {}
    for f in msg.fields:
        gof = struct.fields.get(f.number) if struct else None
        json_name = gof.json_name if gof else f.name
        flags = "r" * f.repeated
        if gof:
            flags += "o" * gof.omitempty + "p" * gof.pointer + "i" * gof.inline
        elif struct is None:
            flags += "o"  # no Go struct (hand-written marshaller): treat as omitempty
        if json_name == "-":
            continue
        entry[str(f.number)] = [json_name, f.type, flags]
        if gof and not gof.inline and json_name != f.name:
            print(f"note: {name}.{f.name} is {json_name!r} in JSON", file=sys.stderr)
    return entry


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--proto-root", type=Path, required=True)
    ap.add_argument("--go-root", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=OUT_DEFAULT)
    args = ap.parse_args(argv)
    table = build_table(load_protos(args.proto_root), load_go(args.go_root))
    args.out.write_bytes(orjson.dumps(table, option=orjson.OPT_SORT_KEYS) + b"\n")
    print(f"{len(table['kinds'])} kinds, {len(table['messages'])} messages -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
