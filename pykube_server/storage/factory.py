"""Backend selection from a storage URL, the one place that maps `--storage` to a class.

URLs follow SQLAlchemy's spelling, which operators already know: `sqlite:///abs/path.db` (three
slashes, absolute) or `sqlite://relative.db` (relative to the working directory),
`memory://` for a throw-away store, and `etcd://host:port[,host:port...]` for an etcd cluster,
with TLS switched on by any of the query options `cacert=`, `cert=`, `key=` (file paths, as
kube-apiserver's --etcd-cafile/--etcd-certfile/--etcd-keyfile) or `tls=true` (system CAs).
Anything else is refused loudly at start-up rather than silently falling back, because losing
the cluster's data to a typo is worse than not starting.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from pykube_server.storage.backend import Backend
from pykube_server.storage.etcd import EtcdBackend, TLSConfig
from pykube_server.storage.memory import MemoryBackend
from pykube_server.storage.sqlite import SQLiteBackend

SUPPORTED_URLS = (
    "memory://, sqlite:///absolute/path.db (or sqlite://relative/path.db)"
    " or etcd://host:port[,host:port...][?cacert=...&cert=...&key=...]"
)
_ETCD_OPTIONS = {"cacert", "cert", "key", "tls"}


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
    if scheme == "etcd":
        endpoints, tls = parse_etcd_url(url)
        return await EtcdBackend.open(endpoints, tls=tls)
    raise ValueError(f"unsupported storage URL scheme {scheme!r} in {url!r}; expected {SUPPORTED_URLS}")


def parse_etcd_url(url: str) -> tuple[list[str], TLSConfig | None]:
    """`etcd://h1:p1,h2:p2?cacert=ca.pem&cert=c.pem&key=k.pem` -> endpoints and TLS settings."""
    rest = url.partition("://")[2]
    hosts, _, query = rest.partition("?")
    endpoints = [h.strip() for h in hosts.rstrip("/").split(",") if h.strip()]
    if not endpoints:
        raise ValueError(f"storage URL {url!r} names no etcd endpoint; expected {SUPPORTED_URLS}")
    for endpoint in endpoints:
        host, sep, port = endpoint.rpartition(":")
        if not sep or not host or not port.isdigit() or "/" in endpoint:
            raise ValueError(f"storage URL {url!r}: etcd endpoint {endpoint!r} is not host:port")
    options = {name: values[-1] for name, values in parse_qs(query, keep_blank_values=True).items()}
    unknown = set(options) - _ETCD_OPTIONS
    if unknown:
        raise ValueError(f"storage URL {url!r}: unknown etcd option(s) {sorted(unknown)};"
                         f" known: {sorted(_ETCD_OPTIONS)}")
    if "key" in options and "cert" not in options:
        raise ValueError(f"storage URL {url!r}: key= needs cert=")
    tls_flag = options.get("tls", "").lower()
    if tls_flag not in ("", "true", "1", "false", "0"):
        raise ValueError(f"storage URL {url!r}: tls= must be true or false")
    wants_tls = tls_flag in ("true", "1") or any(options.get(o) for o in ("cacert", "cert", "key"))
    if not wants_tls:
        return endpoints, None
    return endpoints, TLSConfig(options.get("cacert") or None, options.get("cert") or None,
                                options.get("key") or None)
