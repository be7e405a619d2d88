"""API errors and their `metav1.Status` bodies.

One family on both sides of the wire: the server raises these and its middleware turns them
into a `Status`; the client rebuilds the same classes from a `Status` it receives. Messages
follow kube-apiserver's texts exactly, because kubectl prints them verbatim.
"""

from __future__ import annotations

from typing import Any

from pykube_server.api.fields import FieldError, aggregate_message


def qualified_resource(resource: str, group: str) -> str:
    """`deployments.apps`, or just `pods` for the core group."""
    return f"{resource}.{group}" if group else resource


class StatusError(Exception):
    code = 500
    reason = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        code: int | None = None,
        reason: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code
        if reason is not None:
            self.reason = reason

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body

    @classmethod
    def from_status(cls, body: dict[str, Any]) -> StatusError:
        """Rebuild the most specific class for a Status received over the wire."""
        reason = body.get("reason", "")
        code = int(body.get("code") or 500)
        for sub in _ALL:
            if sub.reason == reason and sub.code == code:
                return sub(body.get("message", ""), details=body.get("details"))
        return StatusError(body.get("message", ""), details=body.get("details"), code=code, reason=reason or None)


def _details(name: str, group: str, resource: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = resource
    return details


class BadRequest(StatusError):
    code, reason = 400, "BadRequest"


class Unauthorized(StatusError):
    code, reason = 401, "Unauthorized"


class Forbidden(StatusError):
    code, reason = 403, "Forbidden"


class NotFound(StatusError):
    code, reason = 404, "NotFound"

    @classmethod
    def resource(cls, resource: str, group: str, name: str) -> NotFound:
        return cls(
            f'{qualified_resource(resource, group)} "{name}" not found',
            details=_details(name, group, resource),
        )


class MethodNotAllowed(StatusError):
    code, reason = 405, "MethodNotAllowed"


class NotAcceptable(StatusError):
    code, reason = 406, "NotAcceptable"


class AlreadyExists(StatusError):
    code, reason = 409, "AlreadyExists"

    @classmethod
    def resource(cls, resource: str, group: str, name: str) -> AlreadyExists:
        return cls(
            f'{qualified_resource(resource, group)} "{name}" already exists',
            details=_details(name, group, resource),
        )


class Conflict(StatusError):
    code, reason = 409, "Conflict"

    @classmethod
    def resource(cls, resource: str, group: str, name: str, detail: str = "") -> Conflict:
        detail = detail or "the object has been modified; please apply your changes to the latest version and try again"
        return cls(
            f'Operation cannot be fulfilled on {qualified_resource(resource, group)} "{name}": {detail}',
            details=_details(name, group, resource),
        )


class Gone(StatusError):
    """410 with reason Expired: a resourceVersion or continue token too old to serve."""

    code, reason = 410, "Expired"


class RequestEntityTooLarge(StatusError):
    code, reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaType(StatusError):
    code, reason = 415, "UnsupportedMediaType"


class Invalid(StatusError):
    code, reason = 422, "Invalid"

    @classmethod
    def from_errors(cls, kind: str, group: str, name: str, errors: list[FieldError]) -> Invalid:
        qualified_kind = f"{kind}.{group}" if group else kind
        details: dict[str, Any] = {"name": name}
        if group:
            details["group"] = group
        details["kind"] = kind
        details["causes"] = [e.cause() for e in errors]
        return cls(f'{qualified_kind} "{name}" is invalid: {aggregate_message(errors)}', details=details)


class TooManyRequests(StatusError):
    code, reason = 429, "TooManyRequests"


class InternalError(StatusError):
    code, reason = 500, "InternalError"


class ServiceUnavailable(StatusError):
    code, reason = 503, "ServiceUnavailable"


class Timeout(StatusError):
    code, reason = 504, "Timeout"


_ALL: tuple[type[StatusError], ...] = (
    BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, NotAcceptable, AlreadyExists,
    Conflict, Gone, RequestEntityTooLarge, UnsupportedMediaType, Invalid, TooManyRequests,
    InternalError, ServiceUnavailable, Timeout,
)
