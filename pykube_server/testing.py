"""`local_cluster()`: a real pykube API server on an ephemeral loopback port, for tests.

It serves HTTPS with its own CA and writes an admin kubeconfig, exactly as `pykube-server up`
does, so the real kubectl and the official client talk to it as to any cluster (the role
envtest plays for Go controllers). Use it as an async context manager or through the pytest
fixtures in `tests/conftest.py`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from pykube_server.apiserver import certs
from pykube_server.apiserver.app import SERVER, APIServer, Settings, make_app
from pykube_server.apiserver.kubeconfig import write_kubeconfig


@dataclass(frozen=True)
class LocalCluster:
    url: str
    port: int
    kubeconfig: Path
    data_dir: Path
    app: web.Application

    @property
    def server(self) -> APIServer:
        return self.app[SERVER]


@contextlib.asynccontextmanager
async def local_cluster(
    data_dir: str | Path,
    *,
    storage_url: str = "",
    port: int = 0,
    token_auth_file: str = "",
    watch_history_seconds: float = 300.0,
    disable_admission_plugins: tuple[str, ...] = ("ServiceAccount",),
    encryption_provider_config: str = "",
    authorization_mode: str = "AlwaysAllow",
) -> AsyncIterator[LocalCluster]:
    data = Path(data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    pki = certs.ensure_pki(data / "pki", extra_sans=["127.96.0.1"])
    settings = Settings(
        storage_url=storage_url or f"sqlite:///{data / 'state.db'}",
        token_auth_file=token_auth_file,
        compaction_retention_seconds=watch_history_seconds,
        # Controllers run only when a test starts them, so no `default` ServiceAccount is made:
        # like envtest's kube-apiserver, the ServiceAccount admission plugin is off.
        disable_admission_plugins=disable_admission_plugins,
        encryption_provider_config=encryption_provider_config,
        authorization_mode=authorization_mode,
    )
    app = await make_app(settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=certs.server_ssl_context(pki))
    await site.start()
    try:
        bound = runner.addresses[0][1]
        url = f"https://127.0.0.1:{bound}"
        cert_pem, key_pem = certs.issue_client_cert(pki.ca, certs.ADMIN_COMMON_NAME, [certs.ADMIN_ORGANIZATION])
        kubeconfig = write_kubeconfig(data / "admin.yaml", server=url, ca_pem=pki.ca.cert_pem,
                                      client_cert_pem=cert_pem, client_key_pem=key_pem)
        yield LocalCluster(url, bound, Path(kubeconfig), data, app)
    finally:
        await runner.cleanup()
