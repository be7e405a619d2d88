"""Decode Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``) to JSON dicts.

kubectl's typed-client commands (``create configmap|secret|deployment|...``, ``create token``,
``auth can-i``, ``auth whoami``) send protobuf and never retry as JSON, so the server must read
it. We only *decode*: a JSON answer is fine for those clients (wire-contract §1.3).

A body is ``k8s\\0`` followed by a ``runtime.Unknown`` (``1: typeMeta{1: apiVersion, 2: kind}``,
``2: raw``, ``3: contentEncoding``, ``4: contentType``); ``raw`` is the object's own message.
Field numbers and types come from ``protobuf_schema.json``, generated from the release's
``generated.proto`` files and Go struct tags by ``tools/gen_protobuf_table.py`` (see there for the
table's format). The wire reader here is our own: varint, 64-bit, length-delimited and 32-bit
fields, packed repeated scalars, unknown fields skipped as protobuf requires.

**What the result looks like.** The decoded dict is what Go's ``encoding/json`` prints for the Go
struct that the protobuf decodes into, i.e. exactly the JSON the same kubectl command sends
(``--dry-run=client -o json``), so the JSON and protobuf paths hand the server the same dict.
Go's protobuf marshaller writes every non-pointer scalar and struct even when zero, so presence
on the wire means little; the Go struct tags recorded in the table decide instead:

* a **pointer** field (``*int32``, ``*bool``, ``*string``, ``*Struct``) is on the wire only when
  set, and is kept even when zero: ``replicas: 0`` from ``--replicas=0`` survives;
* an ``omitempty`` non-pointer **scalar** is dropped when zero (``""``, ``0``, ``false``), which
  removes ``ObjectMeta.generation = 0``, the empty ``uid``/``namespace`` strings, and so on;
* a non-``omitempty`` scalar is always present, zero included (``PodDisruptionBudgetStatus``'s
  counters, ``ServicePort.port``), as Go prints it;
* a non-pointer **struct** is always present, since ``omitempty`` never drops a struct in Go:
  ``"status": {}``, ``"resources": {}``, and ``creationTimestamp: None`` (a zero ``Time``
  travels as an empty message and prints as ``null``);
* **lists and maps** appear when non-empty; an empty one without ``omitempty`` is ``None``
  (Go's nil slice prints as ``null``); ``inline`` structs are merged into their parent.

Special types take their JSON form: ``Time`` -> ``2024-01-02T03:04:05Z``, ``MicroTime`` ->
``2024-01-02T03:04:05.123456Z``, ``Duration`` -> Go duration string (``1h0m0s``),
``IntOrString`` -> int or str, ``Quantity`` -> its string, ``RawExtension``/``FieldsV1``/
apiextensions ``JSON`` -> the embedded JSON decoded, ``bytes`` -> base64 (Secret data), Go named
slices (``Verbs``, ``ExtraValue``) -> lists. JSON names come from the Go tags, which differ from
the proto names in a few places (``BoundObjectReference.uID`` -> ``uid``,
``IngressClassParametersReference.aPIGroup`` -> ``apiGroup``, ``...WebhookConfiguration.Webhooks``
-> ``webhooks``).

Anything malformed, truncated or of an unknown kind raises :class:`ProtobufError`.
"""
from __future__ import annotations

import base64
import datetime as dt
import struct
from collections.abc import Callable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

MAGIC = b"k8s\x00"
MAX_DEPTH = 100
SCHEMA_PATH = Path(__file__).with_name("protobuf_schema.json")
META_V1 = "apimachinery.pkg.apis.meta.v1"
# Registered in every group version by metav1.AddToGroupVersion, so a typed client may send e.g.
# "apps/v1 DeleteOptions".
META_OPTION_KINDS = frozenset({"DeleteOptions", "CreateOptions", "UpdateOptions", "PatchOptions",
                               "GetOptions", "ListOptions"})
VARINT_TYPES = frozenset({"int32", "int64", "uint32", "uint64", "bool"})
SIGNED_TYPES = frozenset({"int32", "int64"})
WT_VARINT, WT_I64, WT_LEN, WT_I32 = 0, 1, 2, 5

Field = tuple[int, str, str, str]  # number, json name, type, flags


class ProtobufError(ValueError):
    """The body is not valid Kubernetes protobuf, or names a kind we have no schema for."""


# ---------------------------------------------------------------------------------------------
# wire reader

def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Read a base-128 varint at ``pos``; return ``(value, next_pos)``."""
    result = shift = 0
    for i in range(pos, min(pos + 10, len(buf))):
        byte = buf[i]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, i + 1
        shift += 7
    if len(buf) - pos >= 10:
        raise ProtobufError("varint longer than 10 bytes")
    raise ProtobufError("truncated varint")


def iter_fields(buf: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """Yield ``(field_number, wire_type, value)``: an int for varints, bytes for the others."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = read_varint(buf, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("invalid field number 0")
        if wire_type == WT_VARINT:
            value, pos = read_varint(buf, pos)
            yield number, wire_type, value
            continue
        if wire_type == WT_LEN:
            size, pos = read_varint(buf, pos)
        elif wire_type in (WT_I64, WT_I32):
            size = 8 if wire_type == WT_I64 else 4
        else:
            raise ProtobufError(f"unsupported wire type {wire_type} for field {number}")
        if pos + size > end:
            raise ProtobufError(f"truncated field {number}: needs {size} bytes, {end - pos} left")
        yield number, wire_type, buf[pos:pos + size]
        pos += size


def _packed_varints(buf: bytes) -> list[int]:
    out, pos = [], 0
    while pos < len(buf):
        value, pos = read_varint(buf, pos)
        out.append(value)
    return out


# ---------------------------------------------------------------------------------------------
# schema

@lru_cache(maxsize=1)
def _schema() -> tuple[dict[str, tuple[Field, ...]], frozenset[str], dict[str, str]]:
    raw = orjson.loads(SCHEMA_PATH.read_bytes())
    messages = {
        name: tuple(sorted((int(num), *entry) for num, entry in fields.items()))
        for name, fields in raw["messages"].items()
    }
    return messages, frozenset(raw["wrappers"]), raw["kinds"]


@lru_cache(maxsize=None)
def _field_index(message: str) -> dict[int, Field]:
    return {f[0]: f for f in _schema()[0][message]}


def message_for(api_version: str, kind: str) -> str:
    """The protobuf message name for ``apiVersion``/``kind``, or raise :class:`ProtobufError`."""
    kinds = _schema()[2]
    name = kinds.get(f"{api_version} {kind}")
    if name is None and kind in META_OPTION_KINDS:
        name = kinds.get(f"meta.k8s.io/v1 {kind}")
    if name is None:
        raise ProtobufError(f'no kind "{kind}" is registered for version "{api_version}"')
    return name


# ---------------------------------------------------------------------------------------------
# envelope

def decode_body(data: bytes) -> dict[str, Any]:
    """Decode a ``k8s\\0`` + ``runtime.Unknown`` body into the object's JSON form."""
    if not data.startswith(MAGIC):
        raise ProtobufError("body does not start with the Kubernetes protobuf prefix k8s\\0")
    try:
        return _decode_envelope(bytes(data[len(MAGIC):]))
    except RecursionError as err:  # RawExtensions nesting k8s\0 bodies inside each other
        raise ProtobufError("protobuf body nested too deeply") from err


def _decode_envelope(buf: bytes) -> dict[str, Any]:
    api_version, kind, raw = _read_unknown(buf)
    if not kind:
        raise ProtobufError("Object 'Kind' is missing in the protobuf envelope")
    obj = decode_message(raw, message_for(api_version, kind))
    return {"kind": kind, "apiVersion": api_version, **obj}


def _read_unknown(buf: bytes) -> tuple[str, str, bytes]:
    api_version = kind = encoding = content_type = ""
    raw = b""
    for number, wire_type, value in iter_fields(buf):
        if number in (1, 2, 3, 4):
            _expect(wire_type, WT_LEN, number, "runtime.Unknown")
        if number == 1:
            for n, wt, v in iter_fields(value):
                if n in (1, 2):
                    _expect(wt, WT_LEN, n, "runtime.TypeMeta")
                    api_version, kind = (_text(v), kind) if n == 1 else (api_version, _text(v))
        elif number == 2:
            raw = value
        elif number == 3:
            encoding = _text(value)
        elif number == 4:
            content_type = _text(value)
    if encoding:
        raise ProtobufError(f"unsupported content encoding {encoding!r} in the protobuf envelope")
    if content_type not in ("", "application/vnd.kubernetes.protobuf"):
        raise ProtobufError(f"unsupported content type {content_type!r} in the protobuf envelope")
    return api_version, kind, raw


# ---------------------------------------------------------------------------------------------
# messages

def decode_message(buf: bytes, message: str, depth: int = 0) -> Any:
    """Decode one message's bytes to its JSON form (a dict, or a special type's JSON value)."""
    if depth > MAX_DEPTH:
        raise ProtobufError(f"message nesting deeper than {MAX_DEPTH}")
    special = SPECIAL.get(message)
    if special is not None:
        return special(buf)
    messages, wrappers, _ = _schema()
    if message in wrappers:
        return [_text(v) for n, wt, v in iter_fields(buf) if n == 1 and _expect(wt, WT_LEN, n, message)]
    if message not in messages:
        raise ProtobufError(f"no protobuf schema for message {message}")
    return _emit(message, _collect(buf, message, depth), depth)


def _collect(buf: bytes, message: str, depth: int) -> dict[int, Any]:
    """Read the wire fields we know; repeated fields and maps accumulate, others: last wins."""
    index = _field_index(message)
    got: dict[int, Any] = {}
    for number, wire_type, value in iter_fields(buf):
        field = index.get(number)
        if field is None:
            continue  # unknown field: protobuf readers skip these
        _, _, ftype, flags = field
        if ftype.startswith("map:"):
            key, item = _map_entry(value, ftype, wire_type, message, depth)
            got.setdefault(number, {})[key] = item
        elif "r" in flags:
            got.setdefault(number, []).extend(_repeated_values(ftype, wire_type, value, field, message, depth))
        else:
            got[number] = _value(ftype, wire_type, value, field, message, depth)
    return got


def _emit(message: str, got: dict[int, Any], depth: int) -> dict[str, Any]:
    """Apply Go encoding/json's rules (see the module docstring) in struct field order."""
    out: dict[str, Any] = {}
    for field in _schema()[0][message]:
        number, name, ftype, flags = field
        if "i" in flags:
            inner = got.get(number)
            out.update(inner if inner is not None else decode_message(b"", ftype, depth + 1))
        elif number in got:
            value = got[number]
            if "p" in flags or "o" not in flags or not _is_empty(value, ftype, flags):
                out[name] = value
        elif "p" not in flags and "o" not in flags:
            out[name] = _zero(ftype, flags, depth)
    return out


def _is_empty(value: Any, ftype: str, flags: str) -> bool:
    """Whether Go's ``omitempty`` drops this value: zero scalars, empty lists/maps, never structs."""
    if "r" in flags or ftype.startswith("map:") or ftype in _schema()[1]:
        return not value
    if ftype in VARINT_TYPES or ftype in ("string", "bytes", "double", "float"):
        return not value
    return False


def _zero(ftype: str, flags: str, depth: int) -> Any:
    """What Go prints for a field that is absent from the wire and has no ``omitempty``."""
    if "r" in flags or ftype.startswith("map:") or ftype in ("bytes",) or ftype in _schema()[1]:
        return None
    if ftype == "string":
        return ""
    if ftype == "bool":
        return False
    if ftype in VARINT_TYPES or ftype in ("double", "float"):
        return 0
    return decode_message(b"", ftype, depth + 1)


# ---------------------------------------------------------------------------------------------
# field values

def _value(ftype: str, wire_type: int, value: int | bytes, field: Field, message: str, depth: int) -> Any:
    number = field[0]
    if ftype in VARINT_TYPES:
        _expect(wire_type, WT_VARINT, number, message)
        return _varint_value(ftype, value)  # type: ignore[arg-type]
    if ftype == "double":
        _expect(wire_type, WT_I64, number, message)
        return struct.unpack("<d", value)[0]
    if ftype == "float":
        _expect(wire_type, WT_I32, number, message)
        return struct.unpack("<f", value)[0]
    _expect(wire_type, WT_LEN, number, message)
    if ftype == "string":
        return _text(value)  # type: ignore[arg-type]
    if ftype == "bytes":
        return base64.b64encode(value).decode("ascii")  # type: ignore[arg-type]
    return decode_message(value, ftype, depth + 1)  # type: ignore[arg-type]


def _repeated_values(ftype: str, wire_type: int, value: int | bytes, field: Field, message: str,
                     depth: int) -> list[Any]:
    if ftype in VARINT_TYPES and wire_type == WT_LEN:
        return [_varint_value(ftype, v) for v in _packed_varints(value)]  # type: ignore[arg-type]
    if ftype in ("double", "float") and wire_type == WT_LEN:
        fmt, size = ("<d", 8) if ftype == "double" else ("<f", 4)
        if len(value) % size:  # type: ignore[arg-type]
            raise ProtobufError(f"packed field {field[0]} of {message} has a partial element")
        return [v for (v,) in struct.iter_unpack(fmt, value)]  # type: ignore[arg-type]
    return [_value(ftype, wire_type, value, field, message, depth)]


def _map_entry(value: int | bytes, ftype: str, wire_type: int, message: str, depth: int) -> tuple[str, Any]:
    _, key_type, value_type = ftype.split(":", 2)
    if wire_type != WT_LEN:
        raise ProtobufError(f"map entry in {message}: wire type {wire_type}, want {WT_LEN}")
    key_field: Field = (1, "key", key_type, "")
    value_field: Field = (2, "value", value_type, "")
    key: Any = _zero(key_type, "", depth)
    item: Any = _zero(value_type, "", depth) if value_type != "bytes" else ""
    for number, wt, v in iter_fields(value):  # type: ignore[arg-type]
        if number == 1:
            key = _value(key_type, wt, v, key_field, message, depth)
        elif number == 2:
            item = _value(value_type, wt, v, value_field, message, depth)
    return str(key), item


def _varint_value(ftype: str, value: int) -> int | bool:
    if ftype == "bool":
        return value != 0
    if ftype in SIGNED_TYPES and value >= 1 << 63:
        value -= 1 << 64
    if ftype == "int32" and not -(1 << 31) <= value < 1 << 31:
        raise ProtobufError(f"value {value} out of range for int32")
    if ftype == "uint32":
        value &= 0xFFFFFFFF
    return value


def _expect(wire_type: int, want: int, number: int, message: str) -> bool:
    if wire_type != want:
        raise ProtobufError(f"field {number} of {message}: wire type {wire_type}, want {want}")
    return True


def _text(value: bytes) -> str:
    # Go strings may hold any bytes; encoding/json prints invalid UTF-8 as U+FFFD, as we do.
    return bytes(value).decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------------------
# special types: their JSON form differs from their protobuf shape

def _scalar_fields(buf: bytes, name: str) -> dict[int, int | bytes]:
    return {number: value for number, _, value in iter_fields(buf)}


def _timestamp(buf: bytes, name: str) -> tuple[int, int] | None:
    """``{1: seconds, 2: nanos}``; an empty message is Go's zero time."""
    if not buf:
        return None
    fields = _scalar_fields(buf, name)
    seconds, nanos = fields.get(1, 0), fields.get(2, 0)
    if isinstance(seconds, bytes) or isinstance(nanos, bytes):
        raise ProtobufError(f"{name}: seconds and nanos must be varints")
    return _varint_value("int64", seconds), _varint_value("int32", nanos)  # type: ignore[return-value]


def _datetime(seconds: int, name: str) -> dt.datetime:
    try:
        return dt.datetime(1970, 1, 1) + dt.timedelta(seconds=seconds)
    except OverflowError as err:
        raise ProtobufError(f"{name}: timestamp {seconds} out of range") from err


def _time(buf: bytes) -> str | None:
    ts = _timestamp(buf, "meta.v1.Time")
    if ts is None:
        return None
    t = _datetime(ts[0], "meta.v1.Time")
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"


def _micro_time(buf: bytes) -> str | None:
    ts = _timestamp(buf, "meta.v1.MicroTime")
    if ts is None:
        return None
    t = _datetime(ts[0], "meta.v1.MicroTime")
    micros = max(ts[1], 0) // 1000
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{micros:06d}Z"


def go_duration(nanos: int) -> str:
    """Format nanoseconds like Go's ``time.Duration.String`` (``1h0m0s``, ``1.5s``, ``300ms``)."""
    if nanos == 0:
        return "0s"
    sign, u = ("-" if nanos < 0 else ""), abs(nanos)
    if u < 1_000_000_000:
        for unit, scale in (("ns", 1), ("µs", 1_000), ("ms", 1_000_000)):
            if u < scale * 1000:
                return sign + _decimal(u, scale) + unit
    secs, frac = divmod(u, 1_000_000_000)
    hours, rest = divmod(secs, 3600)
    minutes, seconds = divmod(rest, 60)
    text = _decimal(seconds * 1_000_000_000 + frac, 1_000_000_000) + "s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def _decimal(value: int, scale: int) -> str:
    whole, frac = divmod(value, scale)
    if not frac:
        return str(whole)
    return f"{whole}." + str(frac).rjust(len(str(scale)) - 1, "0").rstrip("0")


def _duration(buf: bytes) -> str:
    value = _scalar_fields(buf, "meta.v1.Duration").get(1, 0)
    if isinstance(value, bytes):
        raise ProtobufError("meta.v1.Duration: duration must be a varint")
    return go_duration(_varint_value("int64", value))  # type: ignore[arg-type]


def _int_or_string(buf: bytes) -> int | str:
    fields = _scalar_fields(buf, "IntOrString")
    kind, int_val, str_val = fields.get(1, 0), fields.get(2, 0), fields.get(3, b"")
    if isinstance(kind, bytes) or isinstance(int_val, bytes) or not isinstance(str_val, bytes):
        raise ProtobufError("util.intstr.IntOrString: malformed fields")
    return _text(str_val) if kind == 1 else _varint_value("int32", int_val)  # type: ignore[return-value]


def _quantity(buf: bytes) -> str:
    value = _scalar_fields(buf, "resource.Quantity").get(1, b"")
    if not isinstance(value, bytes):
        raise ProtobufError("api.resource.Quantity: string must be length-delimited")
    return _text(value) or "0"  # Go prints a zero Quantity as "0"


def _embedded_json(buf: bytes) -> Any:
    """``RawExtension``/``FieldsV1``/``JSON``: field 1 holds raw JSON (or a nested k8s\\0 body)."""
    raw = _scalar_fields(buf, "embedded JSON").get(1, b"")
    if not isinstance(raw, bytes):
        raise ProtobufError("embedded JSON: raw must be length-delimited")
    if not raw:
        return None
    if raw.startswith(MAGIC):
        return decode_body(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ProtobufError(f"embedded JSON is not valid JSON: {err}") from err


SPECIAL: dict[str, Callable[[bytes], Any]] = {
    f"{META_V1}.Time": _time,
    f"{META_V1}.MicroTime": _micro_time,
    f"{META_V1}.Duration": _duration,
    f"{META_V1}.FieldsV1": _embedded_json,
    "apimachinery.pkg.util.intstr.IntOrString": _int_or_string,
    "apimachinery.pkg.api.resource.Quantity": _quantity,
    "apimachinery.pkg.runtime.RawExtension": _embedded_json,
    "apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON": _embedded_json,
}
