"""Two API servers on one etcd, as two control-plane machines would run them (on 127.0.0.2 and
127.0.0.3, one port): they start at once (their bootstraps race), a write through one is seen
in order by a watcher on the other, a service-account token issued by one is accepted by the
other, each keeps an identity Lease, and the `kubernetes` Service's endpoints list both until
one is killed, after which the survivor removes it once its master lease is older than the TTL."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.apiservers import APIServerProcess, Client, admin_session, poll, shared_pki, start_servers, stop_servers
from tests.storage.etcd_server import EtcdCluster

ADDRESSES = ["127.0.0.2", "127.0.0.3"]
TTL = 2.0
FAST_RECONCILE = ("--endpoint-reconciler-ttl", str(TTL), "--endpoint-reconciler-interval", "0.3")


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdCluster]:
    (tmp_path / "etcd").mkdir()
    cluster = EtcdCluster(tmp_path / "etcd").start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def two_servers(tmp_path: Path, etcd: EtcdCluster) -> Iterator[list[APIServerProcess]]:
    dirs = shared_pki(tmp_path, 2)
    servers = start_servers(dirs, ADDRESSES, "etcd://" + ",".join(etcd.endpoints), *FAST_RECONCILE)
    try:
        yield servers
    finally:
        stop_servers(servers)


async def _endpoint_ips(client: Client) -> tuple[list[str], list[str]]:
    ep = await client.ok("GET", "/api/v1/namespaces/default/endpoints/kubernetes")
    sl = await client.ok("GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes")
    ep_ips = [a["ip"] for subset in ep.get("subsets") or [] for a in subset.get("addresses") or []]
    sl_ips = [addr for e in sl.get("endpoints") or [] for addr in e["addresses"]]
    return ep_ips, sl_ips


async def test_writes_through_one_server_reach_watchers_on_the_other_in_order(
        two_servers: list[APIServerProcess]) -> None:
    a, b = two_servers
    async with admin_session(a.data_dir / "pki") as session:
        ca, cb = Client(session, a.url), Client(session, b.url)
        await ca.ok("POST", "/api/v1/namespaces", {"metadata": {"name": "relay"}})
        listed = await cb.ok("GET", "/api/v1/namespaces/relay/configmaps")
        rv = listed["metadata"]["resourceVersion"]
        events: list[dict] = []

        async def follow() -> None:
            async for event in cb.watch(f"/api/v1/namespaces/relay/configmaps?watch=1&resourceVersion={rv}"):
                events.append(event)
                if len(events) == 50:
                    return

        watcher = asyncio.create_task(follow())
        await asyncio.sleep(0.2)
        written = []
        for i in range(50):
            created = await ca.ok("POST", "/api/v1/namespaces/relay/configmaps",
                                  {"metadata": {"name": f"cm-{i:02d}"}, "data": {"i": str(i)}})
            written.append((created["metadata"]["name"], created["metadata"]["resourceVersion"]))
        await asyncio.wait_for(watcher, 20)
        seen = [(e["object"]["metadata"]["name"], e["object"]["metadata"]["resourceVersion"]) for e in events]
        assert [e["type"] for e in events] == ["ADDED"] * 50
        assert seen == written  # same objects, same resourceVersions, in write order, none missing
        assert [int(v) for _, v in seen] == sorted(int(v) for _, v in seen)
        # B answers reads consistently with what A acknowledged.
        got = await cb.ok("GET", "/api/v1/namespaces/relay/configmaps/cm-49")
        assert got["metadata"]["resourceVersion"] == written[-1][1]


async def test_tokens_from_one_server_verify_on_the_other(two_servers: list[APIServerProcess]) -> None:
    a, b = two_servers
    async with admin_session(a.data_dir / "pki") as session:
        ca = Client(session, a.url)
        await ca.ok("POST", "/api/v1/namespaces/default/serviceaccounts", {"metadata": {"name": "robot"}})
        issued = await ca.ok("POST", "/api/v1/namespaces/default/serviceaccounts/robot/token",
                             {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
        token = issued["status"]["token"]
    async with admin_session(a.data_dir / "pki", token=True) as anonymous:
        cb = Client(anonymous, b.url)
        status, review = await cb.request("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                          {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
                                          token=token)
        assert status == 201, review
        assert review["status"]["userInfo"]["username"] == "system:serviceaccount:default:robot"
        status, _ = await cb.request("GET", "/api", token=token + "x")
        assert status == 401


async def test_kubernetes_endpoints_follow_live_servers(two_servers: list[APIServerProcess]) -> None:
    a, b = two_servers
    async with admin_session(a.data_dir / "pki") as session:
        ca, cb = Client(session, a.url), Client(session, b.url)

        async def both_listed() -> bool:
            return await _listed(ca, ADDRESSES) and await _listed(cb, ADDRESSES)

        assert await poll(both_listed), await _endpoint_ips(ca)
        ep = await ca.ok("GET", "/api/v1/namespaces/default/endpoints/kubernetes")
        assert ep["subsets"] == [{"addresses": [{"ip": ip} for ip in ADDRESSES],
                                  "ports": [{"name": "https", "port": a.port, "protocol": "TCP"}]}]
        leases = await ca.ok("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases"
                                    "?labelSelector=apiserver.kubernetes.io/identity%3Dkube-apiserver")
        names = sorted(item["metadata"]["name"] for item in leases["items"])
        assert len(names) == 2 and all(n.startswith("apiserver-") for n in names)
        for item in leases["items"]:
            assert item["spec"]["leaseDurationSeconds"] == 3600
            assert item["spec"]["holderIdentity"].startswith(item["metadata"]["name"] + "_")
            assert item["metadata"]["labels"]["kubernetes.io/hostname"]

        b.kill(signal.SIGKILL)
        killed = time.monotonic()

        async def only_a() -> bool:
            return await _endpoint_ips(ca) == ([a.address], [a.address])

        assert await poll(only_a, timeout=TTL + 10), await _endpoint_ips(ca)
        assert time.monotonic() - killed >= TTL * 0.5  # removed by the TTL, not at once


async def test_clean_stop_removes_the_server_at_once(two_servers: list[APIServerProcess]) -> None:
    a, b = two_servers
    async with admin_session(a.data_dir / "pki") as session:
        ca = Client(session, a.url)
        assert await poll(lambda: _listed(ca, ADDRESSES))
        b.kill(signal.SIGTERM)
        # A clean stop deletes its master lease; the survivor notices on its next round.
        stopped = time.monotonic()
        assert await poll(lambda: _listed(ca, [a.address]), timeout=TTL + 10), await _endpoint_ips(ca)
        assert time.monotonic() - stopped < TTL * 0.75, "removed by the TTL, not by the clean stop"


async def _listed(client: Client, ips: list[str]) -> bool:
    return await _endpoint_ips(client) == (ips, ips)


def test_kubectl_sees_one_cluster_through_either_server(two_servers: list[APIServerProcess], tmp_path: Path) -> None:
    """The real kubectl, with one admin kubeconfig: applied through A, read through B (B's serving
    certificate is signed by the shared CA for B's own address)."""
    import os
    import subprocess

    from pykube_server.apiserver import certs
    from pykube_server.apiserver.kubeconfig import write_kubeconfig
    from tests.conftest import KUBECTL

    if not os.path.exists(KUBECTL):
        pytest.skip(f"{KUBECTL} is not installed on this machine")
    a, b = two_servers
    ca = certs.ensure_pki(a.data_dir / "pki").ca
    cert, key = certs.issue_client_cert(ca, certs.ADMIN_COMMON_NAME, [certs.ADMIN_ORGANIZATION])
    config = write_kubeconfig(tmp_path / "admin.yaml", server=a.url, ca_pem=ca.cert_pem,
                              client_cert_pem=cert, client_key_pem=key)
    env = {**os.environ, "KUBECONFIG": str(config), "HOME": str(tmp_path)}

    def kubectl(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run([KUBECTL, *args], capture_output=True, text=True, input=stdin, env=env, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    kubectl("--server", a.url, "create", "configmap", "shared", "--from-literal=k=v")
    assert kubectl("--server", b.url, "get", "configmap", "shared", "-o", "jsonpath={.data.k}") == "v"
    kubectl("--server", b.url, "label", "configmap", "shared", "via=b")
    assert kubectl("--server", a.url, "get", "configmap", "shared", "-o", "jsonpath={.metadata.labels.via}") == "b"
