"""A bootstrap token Secret's fields (`bootstrap.kubernetes.io/token` type, in kube-system), read
the same way by the API server's authenticator and the controllers that sign and clean tokens."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any


def token_fields(secret: dict[str, Any]) -> dict[str, str]:
    """The Secret's `data` decoded; a value that is not base64 UTF-8 text is left out."""
    out = {}
    for name, value in (secret.get("data") or {}).items():
        try:
            out[name] = base64.b64decode(value).decode()
        except (ValueError, UnicodeDecodeError, TypeError):
            continue
    return out


def expires_at(fields: dict[str, str]) -> dt.datetime | None:
    """The RFC 3339 `expiration`; None when there is none, the distant past when it cannot be read
    (kube treats an unreadable expiration as expired)."""
    text = fields.get("expiration", "")
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return dt.datetime.min.replace(tzinfo=dt.timezone.utc)


def expired(fields: dict[str, str], now: dt.datetime) -> bool:
    when = expires_at(fields)
    return when is not None and when <= now
