"""Two API servers on one data directory (one etcd, each on its own loopback address): the
second start keeps the CA and adds its address to the serving certificate, so clients that
verify the server's name reach both, also after the first one restarts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509

from pykube_server.apiserver import certs
from tests.e2e.apiservers import APIServerProcess, Client, admin_session, free_port, stop_servers
from tests.storage.etcd_server import EtcdCluster

ADDRESSES = ["127.0.0.2", "127.0.0.3"]


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdCluster]:
    (tmp_path / "etcd").mkdir()
    cluster = EtcdCluster(tmp_path / "etcd").start()
    try:
        yield cluster
    finally:
        cluster.stop()


async def _reachable(pki_dir: Path, servers: list[APIServerProcess]) -> None:
    async with admin_session(pki_dir) as session:
        for server in servers:  # the session verifies the certificate's names (check_hostname)
            assert (await Client(session, server.url).ok("GET", "/version"))["major"] == "1"


async def test_two_servers_share_one_data_dir(tmp_path: Path, etcd: EtcdCluster) -> None:
    data = tmp_path / "data"
    port = free_port(ADDRESSES)
    storage = "etcd://" + ",".join(etcd.endpoints)
    a, b = (APIServerProcess(data, address, port, storage) for address in ADDRESSES)
    servers = [a, b]
    try:
        a.launch()
        a.wait_ready()
        ca_pem = (data / "pki" / "ca.crt").read_bytes()
        b.launch()
        b.wait_ready()
        assert (data / "pki" / "ca.crt").read_bytes() == ca_pem
        sans = certs.certificate_sans(x509.load_pem_x509_certificate((data / "pki" / "apiserver.crt").read_bytes()))
        assert set(ADDRESSES) <= sans
        await _reachable(data / "pki", servers)
        a.kill()
        a.launch()
        a.wait_ready()
        await _reachable(data / "pki", servers)
        async with admin_session(data / "pki") as session:
            await Client(session, a.url).ok("POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "x"}})
            await Client(session, b.url).ok("GET", "/api/v1/namespaces/default/configmaps/x")
    finally:
        stop_servers(servers)
