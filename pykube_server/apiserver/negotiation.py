"""Content negotiation: what a request body is, and what form the answer takes.

Bodies: JSON (also when no Content-Type is sent, as the Python client does), YAML, and
Kubernetes protobuf (kubectl's typed clients send nothing else). Answers: JSON, YAML, a
`meta.k8s.io` Table, or PartialObjectMetadata, picked from the Accept header in order, the
way kube-apiserver's negotiation does.
"""

from __future__ import annotations

import re

from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from pykube_server.api import errors
from pykube_server.apiserver import duplicates
from pykube_server.apiserver.duplicates import Repeats

MAX_BODY_BYTES = 3 * 1024 * 1024
JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
_YAML_TYPES = (YAML, "application/apply-patch+yaml", "text/yaml", "application/x-yaml")
PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


@dataclass(frozen=True, slots=True)
class MediaType:
    type: str
    params: dict[str, str]

    @property
    def as_(self) -> str:
        return self.params.get("as", "")


@dataclass(frozen=True, slots=True)
class Output:
    """What the client asked to get back."""

    format: str
    """json, yaml, table, or metadata (PartialObjectMetadata)."""
    version: str = "v1"
    """meta.k8s.io version for table/metadata outputs."""


def parse_media_types(header: str) -> list[MediaType]:
    out = []
    for item in header.split(","):
        pieces = [p.strip() for p in item.split(";")]
        if not pieces[0]:
            continue
        params = {}
        for p in pieces[1:]:
            k, _, v = p.partition("=")
            params[k.strip()] = v.strip()
        out.append(MediaType(pieces[0].lower(), params))
    return out


def choose_output(accept: str) -> Output:
    if not accept:
        return Output("json")
    for media in parse_media_types(accept):
        if media.type in (JSON, "*/*", "application/*") or media.type == PROTOBUF:
            if media.as_ in ("Table",) and media.params.get("g") == "meta.k8s.io":
                return Output("table", media.params.get("v", "v1"))
            if media.as_ in ("PartialObjectMetadata", "PartialObjectMetadataList") and media.params.get("g") == "meta.k8s.io":
                return Output("metadata", media.params.get("v", "v1"))
            if media.as_:
                continue
            if media.type == PROTOBUF:
                continue  # we only answer in JSON; a later alternative will match
            return Output("json")
        if media.type in (YAML, "application/yaml", "text/yaml"):
            return Output("yaml")
    for media in parse_media_types(accept):
        if media.type == PROTOBUF:
            raise errors.NotAcceptable(
                "only the following media types are accepted: application/json, application/yaml"
            )
    raise errors.NotAcceptable("only the following media types are accepted: application/json, application/yaml, application/vnd.kubernetes.protobuf")


def output_without_table(accept: str) -> Output:
    """The answer form for a resource kube serves without a Table conversion (the access and
    identity reviews): its negotiation does not offer `as=Table`, so an Accept asking for
    nothing else is 406 NotAcceptable before the body is even read."""
    if not accept:
        return Output("json")
    kept = [item for item in accept.split(",")
            if not any(p.strip().replace(" ", "") == "as=Table" for p in item.split(";")[1:])]
    if not kept:
        raise errors.NotAcceptable(_NOT_ACCEPTABLE)
    return choose_output(",".join(kept))


_NOT_ACCEPTABLE = ("only the following media types are accepted: application/json, application/yaml, "
                   "application/vnd.kubernetes.protobuf")


def content_type_of(header: str | None) -> str:
    if not header:
        return JSON
    return header.split(";")[0].strip().lower()


def _decode_json(data: bytes) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise errors.BadRequest(f"couldn't get version/kind; json parse error: {exc}") from None


MAX_NESTING = 100
"""How deep a body may nest. Real objects stay far below it; deeper bodies are refused before any
recursive walk (defaulting, validation, managedFields) could run out of stack."""
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(rb"[\[\]{}]")


def check_nesting(data: bytes) -> None:
    """Refuse a JSON or YAML flow body nested deeper than MAX_NESTING. Cheap for the common case:
    only a body with many brackets is looked at closely."""
    if data.count(b"[") + data.count(b"{") <= MAX_NESTING:
        return
    depth = 0
    for match in _BRACKETS.finditer(_JSON_STRING.sub(b'""', data)):
        depth += 1 if match.group() in (b"[", b"{") else -1
        if depth > MAX_NESTING:
            raise errors.BadRequest(f"the request body is nested more than {MAX_NESTING} levels deep")


def decode_body(data: bytes, content_type: str) -> Any:
    """Body bytes -> JSON value. Raises BadRequest / UnsupportedMediaType."""
    if len(data) > MAX_BODY_BYTES:
        raise errors.RequestEntityTooLarge(f"Request entity too large: limit is {MAX_BODY_BYTES}")
    if content_type != PROTOBUF:
        check_nesting(data)
    if content_type in (JSON, "application/json-patch+json", "application/merge-patch+json",
                        "application/strategic-merge-patch+json", "text/plain", "*/*"):
        return _decode_json(data)
    if content_type in _YAML_TYPES:
        try:
            return yaml.safe_load(data)
        except RecursionError:
            raise errors.BadRequest(f"the request body is nested more than {MAX_NESTING} levels deep") from None
        except yaml.YAMLError as exc:
            raise errors.BadRequest(f"error converting YAML to JSON: {exc}".replace("\n", " ")) from None
    if content_type == PROTOBUF:
        from pykube_server.apiserver.protobuf import ProtobufError, decode_body as decode_protobuf

        try:
            return decode_protobuf(data)
        except ProtobufError as exc:
            raise errors.BadRequest(f"failed to decode protobuf body: {exc}") from None
    raise errors.UnsupportedMediaType(
        f'the body of the request was in an unknown format - accepted media types include: '
        f'application/json, application/yaml, application/vnd.kubernetes.protobuf'
    )


def decode_body_repeats(data: bytes, content_type: str, detect: bool) -> tuple[Any, Repeats | None]:
    """Like `decode_body`, and also the body's repeated keys (JSON ones only when `detect`: the
    fast check costs a re-encoding, which `fieldValidation=Ignore` does not need)."""
    if content_type in _YAML_TYPES and len(data) <= MAX_BODY_BYTES:
        check_nesting(data)
        try:
            value, lines = duplicates.load_yaml(data)
        except RecursionError:
            raise errors.BadRequest(f"the request body is nested more than {MAX_NESTING} levels deep") from None
        except yaml.YAMLError as exc:
            raise errors.BadRequest(f"error converting YAML to JSON: {exc}".replace("\n", " ")) from None
        return value, duplicates.Repeats(yaml=sorted(lines, key=_line_number)) if lines else None
    value = decode_body(data, content_type)
    if detect and content_type != PROTOBUF:
        found = duplicates.find_json(data, value)
        if found is not None:
            return value, duplicates.Repeats(json=found)
    return value, None


def _line_number(text: str) -> int:
    return int(text.split(":", 1)[0].removeprefix("line "))


def encode(value: Any, output: Output) -> tuple[bytes, str]:
    if output.format == "yaml":
        return yaml.safe_dump(orjson.loads(orjson.dumps(value)), sort_keys=False).encode(), YAML
    return orjson.dumps(value), JSON
