"""Shared helpers for the per-group printers: column construction and cell formatting.

kube-apiserver's printers (`pkg/printers/internalversion`) build every cell from a handful of
formatters: ages via `duration.HumanDuration`, comma-joined container names and images,
`<none>`/`<unset>`/`<unknown>` placeholders, `labels.FormatLabels`. They live here once so that
each group module only says which columns a kind has and how each cell is computed. Column
descriptions are read from the release's OpenAPI definitions where upstream takes them from a
type's SwaggerDoc, so they match the API documentation rather than being typed by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, Literal

from pykube_server.api.selectors import format_label_selector
from pykube_server.registry.strategy import AGE, NAME, Column

Obj = dict[str, Any]
Cell = Callable[[Obj, float], object]
ColumnType = Literal["string", "integer", "number", "boolean", "date"]

NONE = "<none>"
UNSET = "<unset>"
UNKNOWN = "<unknown>"

CONTAINERS_DOC = "Names of each container in the template."
IMAGES_DOC = "Images referenced by each container in the template."


def doc(definition: str, field: str) -> str:
    """The OpenAPI description of `definition.field` ("" when the release lacks it)."""
    from pykube_server.registry.schemas import all_definitions

    try:
        props = all_definitions().get(f"io.k8s.{definition}", {}).get("properties", {})
    except (OSError, ImportError, ValueError):
        return ""
    return str((props.get(field) or {}).get("description", ""))


def col(name: str, value: Cell, description: str = "", *, type: ColumnType = "string",
        priority: int = 0, format: str = "") -> Column:
    return Column(name, type, value, description, priority, format)


def wide(name: str, value: Cell, description: str = "", *, type: ColumnType = "string") -> Column:
    """A `-o wide` column (priority 1)."""
    return Column(name, type, value, description, 1)


def get(obj: Any, *path: str | int, default: Any = None) -> Any:
    """Walk dicts and lists; `default` when any step is missing or null."""
    cur = obj
    for part in path:
        if isinstance(part, int):
            if not isinstance(cur, list) or not -len(cur) <= part < len(cur):
                return default
            cur = cur[part]
        else:
            if not isinstance(cur, dict):
                return default
            cur = cur.get(part)
        if cur is None:
            return default
    return cur


def field(*path: str | int, default: Any = "") -> Cell:
    """A cell holding the value at `path` as stored."""
    return lambda o, now: get(o, *path, default=default)


def count(*path: str) -> Cell:
    """A cell holding the length of the list or map at `path`."""
    return lambda o, now: len(get(o, *path, default=()))


def int_field(*path: str) -> Cell:
    return lambda o, now: int(get(o, *path, default=0))


def timestamp(text: object) -> float | None:
    """RFC 3339 (with or without fractional seconds) to epoch seconds; None if absent."""
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def human_duration(seconds: float) -> str:
    """`duration.HumanDuration`, including its `<invalid>` for clocks more than 1s behind."""
    from pykube_server.registry.strategy import human_duration as base

    if int(seconds) < -1:
        return "<invalid>"
    return base(max(seconds, 0))


def since(text: object, now: float) -> str:
    """`translateTimestampSince`: the age of a timestamp, `<unknown>` when it is unset."""
    ts = timestamp(text)
    return UNKNOWN if ts is None else human_duration(now - ts)


def created_at(obj: Obj, now: float) -> str:
    """The default table convertor's RFC 3339 UTC creation time."""
    ts = timestamp(get(obj, "metadata", "creationTimestamp"))
    if ts is None:
        return "0001-01-01T00:00:00Z"
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_labels(labels: Mapping[str, str] | None) -> str:
    """`labels.FormatLabels`: sorted `k=v` joined by commas, `<none>` when empty."""
    if not labels:
        return NONE
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def label_selector(*path: str) -> Cell:
    """`metav1.FormatLabelSelector` of the LabelSelector object at `path`."""
    def cell(o: Obj, now: float) -> str:
        return format_label_selector(get(o, *path))

    return cell


def containers_and_images(containers: Iterable[Obj] | None) -> tuple[str, str]:
    """`layoutContainerCells`: names and images, each comma-joined."""
    items = list(containers or [])
    return ",".join(c.get("name", "") for c in items), ",".join(c.get("image", "") for c in items)


def template_columns(*path: str) -> tuple[Column, Column]:
    """The wide CONTAINERS and IMAGES columns of a kind with a pod template at `path`."""
    def names(o: Obj, now: float) -> str:
        return containers_and_images(get(o, *path, "spec", "containers"))[0]

    def images(o: Obj, now: float) -> str:
        return containers_and_images(get(o, *path, "spec", "containers"))[1]

    return wide("Containers", names, CONTAINERS_DOC), wide("Images", images, IMAGES_DOC)


def bool_word(value: object) -> str:
    """`printBoolPtr`: True, False or `<unset>`."""
    if value is None:
        return UNSET
    return "True" if value else "False"


def int_or_string(value: object) -> str:
    """`intstr.IntOrString.String()`."""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def list_with_more(items: list[str], total: int, limit: int = 3, *, empty: str = UNSET) -> str:
    """`listWithMoreString`: the first `limit` entries, then `+ N more...`."""
    text = ",".join(items[:limit])
    if total > limit:
        return f"{text} + {total - limit} more..."
    return text or empty


def condition(conditions: object, kind: str) -> Obj | None:
    for c in conditions if isinstance(conditions, list) else []:
        if isinstance(c, dict) and c.get("type") == kind:
            return c
    return None


CREATED_AT = Column("Created At", "date", created_at, AGE.description)

DEFAULT_COLUMNS: tuple[Column, ...] = (NAME, CREATED_AT)
"""What the generic `rest.NewDefaultTableConvertor` prints for kinds without a printer."""

__all__ = ["AGE", "NAME", "CREATED_AT", "DEFAULT_COLUMNS", "Column", "Obj"]
