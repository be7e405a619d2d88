"""Event validation as kube-apiserver 1.33 runs it, which depends on the request's group-version.

One Event is stored behind two APIs (`registry/sharedstorage.py`), and kube validates the
internal (core-shaped) object with the request's group-version in hand:

* every write, through either API, passes the *legacy* rules: without `eventTime` the
  involved object's namespace must match the Event's (or be empty in `default`); with it the
  reporting controller (a qualified name), reporting instance, action and reason are required,
  the first three and the reason are limited to 128 bytes and the message to 1024;
* through core/v1 nothing more is checked, for old clients' sake; the reporting controller's
  field path is then `reportingComponent`, the core/v1 JSON name;
* through events.k8s.io/v1 a create is also strict (DNS-subdomain names, `eventTime` required,
  `type` Normal or Warning, the deprecated core fields unset, a series counts at least 2 and
  has `lastObservedTime`), and an update may change little besides the series and metadata.

Field paths stay the internal ones whatever the API (`involvedObject`, `message`, `source`,
`count`), exactly as kube reports them, so an events.k8s.io body is converted to the core shape
before checking. Immutable-field errors show the Go rendering of the internal value
(`core.ObjectReference{...}`, a time's `String()`), because kubectl prints it verbatim.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pykube_server.api.fields import FieldError, Path, invalid, required
from pykube_server.registry import eventconv
from pykube_server.registry.kind_validation.common import IMMUTABLE_ERR, go_string, invalid_go
from pykube_server.registry.validation import (
    is_dns1123_subdomain, is_qualified_name, name_is_dns_subdomain, validate_object_meta,
)

Obj = dict[str, Any]

EVENTS_GROUP = "events.k8s.io"
REPORTING_INSTANCE_LENGTH_LIMIT = 128
ACTION_LENGTH_LIMIT = 128
REASON_LENGTH_LIMIT = 128
NOTE_LENGTH_LIMIT = 1024
EVENT_TYPES = ("Normal", "Warning")
_ZERO_TIME = datetime(1, 1, 1, tzinfo=timezone.utc)

_REFERENCE_FIELDS = (("Kind", "kind"), ("Namespace", "namespace"), ("Name", "name"), ("UID", "uid"),
                     ("APIVersion", "apiVersion"), ("ResourceVersion", "resourceVersion"), ("FieldPath", "fieldPath"))
_SOURCE_FIELDS = (("Component", "component"), ("Host", "host"))


# --- reading the internal object ----------------------------------------------------------------

def _internal(event: Obj, group: str) -> Obj:
    """The core-shaped Event kube validates; an events.k8s.io body is converted first."""
    return eventconv.to_core(event) if group == EVENTS_GROUP else event


def _text(obj: Any, key: str) -> str:
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, str) else ""


def _bytes(value: str) -> int:
    """Go's len(): bytes, not characters."""
    return len(value.encode())


def _instant(value: Any) -> datetime | None:
    """A metav1.Time/MicroTime as the instant it denotes (None: the zero time); microsecond
    precision, which is all a MicroTime carries over JSON."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return None if moment == _ZERO_TIME else moment


def _is_zero_time(value: Any) -> bool:
    return _instant(value) is None


def _namespace(event: Obj) -> str:
    return _text(event.get("metadata"), "namespace")


# --- Go renderings of the values immutable-field errors show ------------------------------------

def go_time(value: Any) -> str:
    """time.Time.String() of the apiserver's (UTC) reading of a timestamp: metav1.Time and
    MicroTime are Stringers, so kube shows `2026-11-27 13:00:00.123456 +0000 UTC`."""
    moment = _instant(value) or _ZERO_TIME
    text = (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} "
            f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}")
    if moment.microsecond:
        text += "." + f"{moment.microsecond:06d}".rstrip("0")
    return text + " +0000 UTC"


def _go_struct(type_name: str, fields: tuple[tuple[str, str], ...], value: Any) -> str:
    value = value if isinstance(value, dict) else {}
    body = ", ".join(f"{go}:{go_string(_text(value, js))}" for go, js in fields)
    return f"{type_name}{{{body}}}"


def go_object_reference(value: Any) -> str:
    """%#v of the internal core.ObjectReference (no String method)."""
    return _go_struct("core.ObjectReference", _REFERENCE_FIELDS, value)


def go_event_source(value: Any) -> str:
    return _go_struct("core.EventSource", _SOURCE_FIELDS, value)


# --- the legacy rules (every request version) ---------------------------------------------------

def _namespace_mismatch(event: Obj) -> FieldError:
    involved_ns = _text(event.get("involvedObject"), "namespace")
    return invalid(Path("involvedObject").child("namespace"), involved_ns, "does not match event.namespace")


def _too_long(path: str, limit: int) -> FieldError:
    return invalid(path, "", f"can have at most {limit} characters")


def legacy_errors(event: Obj, *, reporting_field: str) -> list[FieldError]:
    """legacyValidateEvent on a core-shaped Event; `reporting_field` is the reporting
    controller's field path (`reportingComponent` through core/v1, else `reportingController`)."""
    errs: list[FieldError] = []
    namespace = _namespace(event)
    involved_ns = _text(event.get("involvedObject"), "namespace")
    if _is_zero_time(event.get("eventTime")):
        if not involved_ns:
            if namespace not in ("", "default"):  # old clients wrote cluster objects' events to default
                errs.append(_namespace_mismatch(event))
        elif namespace != involved_ns:
            errs.append(_namespace_mismatch(event))
    else:
        if not involved_ns and namespace not in ("default", "kube-system"):
            errs.append(_namespace_mismatch(event))
        controller = _text(event, "reportingComponent")
        if not controller:
            errs.append(required(reporting_field))
        errs.extend(invalid(reporting_field, controller, m) for m in is_qualified_name(controller))
        instance = _text(event, "reportingInstance")
        if not instance:
            errs.append(required("reportingInstance"))
        if _bytes(instance) > REPORTING_INSTANCE_LENGTH_LIMIT:
            errs.append(_too_long("reportingInstance", REPORTING_INSTANCE_LENGTH_LIMIT))
        action = _text(event, "action")
        if not action:
            errs.append(required("action"))
        if _bytes(action) > ACTION_LENGTH_LIMIT:
            errs.append(_too_long("action", ACTION_LENGTH_LIMIT))
        reason = _text(event, "reason")
        if not reason:
            errs.append(required("reason"))
        if _bytes(reason) > REASON_LENGTH_LIMIT:
            errs.append(_too_long("reason", REASON_LENGTH_LIMIT))
        if _bytes(_text(event, "message")) > NOTE_LENGTH_LIMIT:
            errs.append(_too_long("message", NOTE_LENGTH_LIMIT))
    errs.extend(invalid("namespace", namespace, m) for m in is_dns1123_subdomain(namespace))
    return errs


# --- the events.k8s.io/v1 rules -----------------------------------------------------------------

def _series_errors(event: Obj) -> list[FieldError]:
    series = event.get("series")
    if not isinstance(series, dict):
        return []
    errs: list[FieldError] = []
    count = series.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count < 2:
        errs.append(invalid("series.count", "", "should be at least 2"))
    if _is_zero_time(series.get("lastObservedTime")):
        errs.append(required("series.lastObservedTime"))
    return errs


def _strict_create_errors(event: Obj) -> list[FieldError]:
    errs = validate_object_meta(event, namespaced=True, name_rule=name_is_dns_subdomain)
    errs += _series_errors(event)
    if _is_zero_time(event.get("eventTime")):
        errs.append(required("eventTime"))
    event_type = _text(event, "type")
    if event_type not in EVENT_TYPES:
        errs.append(invalid("type", "", f"has invalid value: {event_type}"))
    for name in ("firstTimestamp", "lastTimestamp"):
        if not _is_zero_time(event.get(name)):
            errs.append(invalid(name, "", "needs to be unset"))
    if event.get("count"):
        errs.append(invalid("count", "", "needs to be unset"))
    source = event.get("source")
    if _text(source, "component") or _text(source, "host"):
        errs.append(invalid("source", "", "needs to be unset"))
    return errs


def _reference(value: Any) -> tuple[str, ...] | None:
    """An ObjectReference for comparison: nil stays nil, absent fields are empty strings."""
    if not isinstance(value, dict):
        return None
    return tuple(_text(value, js) for _, js in _REFERENCE_FIELDS)


def _immutable_errors(new: Obj, old: Obj) -> list[FieldError]:
    """ValidateImmutableField over the fields an events.k8s.io update may not change, in kube's
    order (`reason` is checked twice there; the 422 message lists it once, the causes twice)."""
    errs: list[FieldError] = []

    def reference(name: str, *, pointer: bool = False) -> None:
        value = new.get(name)
        if _reference(value) != _reference(old.get(name)):
            rendered = "null" if pointer and not isinstance(value, dict) else go_object_reference(value)
            errs.append(invalid_go(name, rendered, IMMUTABLE_ERR))

    def string(name: str, path: str = "") -> None:
        if _text(new, name) != _text(old, name):
            errs.append(invalid(path or name, _text(new, name), IMMUTABLE_ERR))

    def timestamp(name: str) -> None:
        if _instant(new.get(name)) != _instant(old.get(name)):
            errs.append(invalid_go(name, go_time(new.get(name)), IMMUTABLE_ERR))

    reference("involvedObject")
    string("reason")
    string("message")
    source, old_source = new.get("source"), old.get("source")
    if tuple(_text(source, js) for _, js in _SOURCE_FIELDS) != tuple(_text(old_source, js) for _, js in _SOURCE_FIELDS):
        errs.append(invalid_go("source", go_event_source(source), IMMUTABLE_ERR))
    timestamp("firstTimestamp")
    timestamp("lastTimestamp")
    count = new.get("count") if isinstance(new.get("count"), int) else 0
    if count != (old.get("count") if isinstance(old.get("count"), int) else 0):
        errs.append(invalid("count", count, IMMUTABLE_ERR))
    string("reason")
    string("type")
    timestamp("eventTime")  # compared at microsecond precision, as kube tolerates finer changes
    string("action")
    reference("related", pointer=True)
    string("reportingComponent", "reportingController")  # the internal name: only events.k8s.io gets here
    string("reportingInstance")
    return errs


# --- the entry points (per request group) -------------------------------------------------------

def validate_core_event(event: Obj) -> list[FieldError]:
    """ValidateEventCreate for a core/v1 request: the legacy rules only."""
    return legacy_errors(event, reporting_field="reportingComponent")


def validate_core_event_update(event: Obj, old: Obj) -> list[FieldError]:
    """ValidateEventUpdate for a core/v1 request: the new object passes the legacy rules."""
    return legacy_errors(event, reporting_field="reportingComponent")


def validate_events_v1_event(event: Obj) -> list[FieldError]:
    """ValidateEventCreate for an events.k8s.io/v1 request: legacy, then strict."""
    internal = _internal(event, EVENTS_GROUP)
    return legacy_errors(internal, reporting_field="reportingController") + _strict_create_errors(internal)


def validate_events_v1_event_update(event: Obj, old: Obj) -> list[FieldError]:
    """ValidateEventUpdate for an events.k8s.io/v1 request: legacy on the new object, a changed
    series validated again, and the immutable fields."""
    new, previous = _internal(event, EVENTS_GROUP), _internal(old, EVENTS_GROUP)
    errs = legacy_errors(new, reporting_field="reportingController")
    if new.get("series") != previous.get("series"):
        errs += _series_errors(new)
    return errs + _immutable_errors(new, previous)


def validate_event(group: str, event: Obj) -> list[FieldError]:
    return validate_events_v1_event(event) if group == EVENTS_GROUP else validate_core_event(event)


def validate_event_update(group: str, event: Obj, old: Obj) -> list[FieldError]:
    if group == EVENTS_GROUP:
        return validate_events_v1_event_update(event, old)
    return validate_core_event_update(event, old)
