"""Client configuration: where the API server is, how to trust it and who we are.

`load_kubeconfig()` reads a kubeconfig the way kubectl does for the fields components need
(the current or a named context; server URL; CA, client certificate and key as inline `*-data`
or as files relative to the kubeconfig; a bearer token or token file; the context's namespace;
`insecure-skip-tls-verify`). The result is a frozen `ClientConfig` holding bytes, not paths, so
it can be handed to another process or rebuilt into an `ssl.SSLContext` at any time.

QPS and burst live here because client-go keeps them on `rest.Config`; our defaults (50/100)
are ten times client-go's 5/10 because the components share one machine with the server and
the server is not protected by priority and fairness yet.
"""

from __future__ import annotations

import base64
import importlib.metadata
import os
import ssl
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

try:  # the client may import only `pykube_server.api`, so ask the installed metadata
    __version__ = importlib.metadata.version("pykube-server")
except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a bare tree
    __version__ = "0.0.0"

DEFAULT_QPS = 50.0
DEFAULT_BURST = 100
DEFAULT_NAMESPACE = "default"
DEFAULT_TIMEOUT_SECONDS = 60.0


class ConfigError(ValueError):
    """The kubeconfig is missing, malformed, or lacks what a client needs."""


def user_agent(component: str) -> str:
    """`pykube-controller-manager/v0.1.0`: what the server logs as our client."""
    return f"{component}/v{__version__}"


@dataclass(frozen=True)
class ClientConfig:
    server: str
    """`https://host:port`, without a trailing slash."""
    ca_data: bytes | None = None
    """PEM bundle of CAs to trust; None uses the system's trust store."""
    cert_data: bytes | None = None
    """PEM client certificate (with `key_data`)."""
    key_data: bytes | None = None
    token: str = ""
    """Bearer token, sent when set (alongside a client certificate if both are given)."""
    namespace: str = DEFAULT_NAMESPACE
    insecure_skip_tls_verify: bool = False
    qps: float = DEFAULT_QPS
    """Sustained requests per second the client allows itself (client-go default: 5)."""
    burst: int = DEFAULT_BURST
    """Requests that may go out at once above `qps` (client-go default: 10)."""
    user_agent: str = user_agent("pykube")
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    """Per request, except watches, which end on their server-side timeout."""

    def with_options(self, **changes: Any) -> ClientConfig:
        """A copy with fields replaced (e.g. `qps=`, `user_agent=`)."""
        return replace(self, **changes)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context for this server, or None for plain HTTP."""
        if not self.server.startswith("https://"):
            return None
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        if self.insecure_skip_tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        elif self.ca_data:
            ctx.load_verify_locations(cadata=self.ca_data.decode("ascii"))
        if self.cert_data and self.key_data:
            _load_cert_chain(ctx, self.cert_data, self.key_data)
        return ctx


def _load_cert_chain(ctx: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    """`ssl` only loads a key pair from files: write them to a private temp dir briefly."""
    with tempfile.TemporaryDirectory(prefix="pykube-client-") as tmp:
        cert_path, key_path = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        for path, data in ((cert_path, cert), (key_path, key)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
        ctx.load_cert_chain(cert_path, key_path)


def load_kubeconfig(path: str | os.PathLike[str], *, context: str = "", **overrides: Any) -> ClientConfig:
    """Read the kubeconfig at `path` (its `current-context` unless `context` is given).

    `overrides` replace ClientConfig fields (qps, burst, user_agent, namespace...).
    Raises ConfigError.
    """
    file = Path(path)
    try:
        doc = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read kubeconfig {file}: {exc}") from exc
    if not isinstance(doc, dict):
        raise ConfigError(f"kubeconfig {file} is not a mapping")
    return config_from_dict(doc, context=context, base_dir=file.parent, **overrides)


def config_from_dict(doc: dict[str, Any], *, context: str = "", base_dir: Path | None = None,
                     **overrides: Any) -> ClientConfig:
    """Build a ClientConfig from a decoded kubeconfig; relative file paths resolve to `base_dir`."""
    base = base_dir or Path.cwd()
    name = context or doc.get("current-context") or ""
    ctx = _named(doc, "contexts", name, "context")
    cluster = _named(doc, "clusters", ctx.get("cluster", ""), "cluster")
    user = _named(doc, "users", ctx.get("user", ""), "user") if ctx.get("user") else {}
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise ConfigError(f"cluster {ctx.get('cluster')!r} has no server")
    fields: dict[str, Any] = {
        "server": server,
        "ca_data": _data(cluster, "certificate-authority", base),
        "cert_data": _data(user, "client-certificate", base),
        "key_data": _data(user, "client-key", base),
        "token": _token(user, base),
        "namespace": ctx.get("namespace") or DEFAULT_NAMESPACE,
        "insecure_skip_tls_verify": bool(cluster.get("insecure-skip-tls-verify", False)),
    }
    if (fields["cert_data"] is None) != (fields["key_data"] is None):
        raise ConfigError("client-certificate and client-key must be given together")
    fields.update(overrides)
    return ClientConfig(**fields)


def _named(doc: dict[str, Any], section: str, name: str, inner: str) -> dict[str, Any]:
    for entry in doc.get(section) or []:
        if isinstance(entry, dict) and entry.get("name") == name:
            return dict(entry.get(inner) or {})
    raise ConfigError(f"{inner} {name!r} not found in kubeconfig {section}")


def _data(section: dict[str, Any], field: str, base: Path) -> bytes | None:
    """`<field>-data` (base64) wins over `<field>` (a path relative to the kubeconfig)."""
    inline = section.get(f"{field}-data")
    if inline:
        try:
            return base64.b64decode(inline)
        except ValueError as exc:
            raise ConfigError(f"{field}-data is not valid base64") from exc
    path = section.get(field)
    if not path:
        return None
    return _read(base / os.path.expanduser(path))


def _token(user: dict[str, Any], base: Path) -> str:
    if user.get("token"):
        return str(user["token"])
    if user.get("tokenFile"):
        return _read(base / os.path.expanduser(user["tokenFile"])).decode().strip()
    return ""


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def in_cluster_config(*, sa_dir: Path = SERVICE_ACCOUNT_DIR, env: dict[str, str] | None = None,
                      **overrides: Any) -> ClientConfig:
    """The config of a process running in a pod, as client-go's `rest.InClusterConfig()` builds it:
    the API server at https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT, trusted with the
    mounted `ca.crt`, authenticated by the mounted service account `token`, in the mounted
    `namespace`. The token is read once: tokens the kubelet requests are extended to a year by the
    API server (`--service-account-extend-token-expiration`), so one read outlives the process.
    Raises ConfigError outside a pod."""
    env = dict(os.environ) if env is None else env
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if (not host or not port) and not overrides.get("server"):
        raise ConfigError("unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
                          "KUBERNETES_SERVICE_PORT must be defined")
    token = _read(sa_dir / "token").decode().strip()
    try:
        namespace = (sa_dir / "namespace").read_text().strip() or DEFAULT_NAMESPACE
    except OSError:
        namespace = DEFAULT_NAMESPACE
    server = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    fields: dict[str, Any] = {"server": server, "ca_data": _read(sa_dir / "ca.crt"), "token": token,
                              "namespace": namespace}
    fields.update(overrides)
    return ClientConfig(**fields)
