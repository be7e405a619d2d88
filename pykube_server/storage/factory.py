"""Backend selection from a storage URL, the one place that maps `--storage` to a class.

URLs follow SQLAlchemy's spelling, which operators already know: `sqlite:///abs/path.db` (three
slashes, absolute) or `sqlite://relative.db` (relative to the working directory), and
`memory://` for a throw-away store. Anything else is refused loudly at start-up rather than
silently falling back, because losing the cluster's data to a typo is worse than not starting.
"""

from __future__ import annotations

from pykube_server.storage.backend import Backend
from pykube_server.storage.memory import MemoryBackend
from pykube_server.storage.sqlite import SQLiteBackend

SUPPORTED_URLS = "memory:// or sqlite:///absolute/path.db (or sqlite://relative/path.db)"


async def open_backend(url: str) -> Backend:
    """Open the backend `url` names; the caller owns it and must `aclose()` it."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f"storage URL {url!r} has no scheme; expected {SUPPORTED_URLS}")
    if scheme == "memory":
        if rest:
            raise ValueError(f"storage URL {url!r}: memory:// takes no path")
        return MemoryBackend()
    if scheme == "sqlite":
        path = rest.partition("?")[0]
        if not path or path == "/":
            raise ValueError(f"storage URL {url!r} names no database file; expected {SUPPORTED_URLS}")
        return await SQLiteBackend.open(path)
    raise ValueError(f"unsupported storage URL scheme {scheme!r} in {url!r}; expected {SUPPORTED_URLS}")
