"""`pykube-server migrate`: a cluster filled through an API server on SQLite, moved to a real etcd
(and back, and SQLite to SQLite where etcd is missing), serves the same objects afterwards with
resourceVersions above every one handed out before, and its watches work."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import orjson
import pytest

from pykube_server.cmd.migrate import MigrationError, migrate
from pykube_server.storage.factory import open_backend
from pykube_server.testing import local_cluster
from tests.storage.etcd_server import EtcdCluster

NS = "moving"


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdCluster]:
    (tmp_path / "etcd").mkdir()
    cluster = EtcdCluster(tmp_path / "etcd").start()
    try:
        yield cluster
    finally:
        cluster.stop()


async def _session(cluster) -> aiohttp.ClientSession:  # type: ignore[no-untyped-def]
    import ssl

    from pykube_server.apiserver import certs

    pki = certs.ensure_pki(cluster.data_dir / "pki")
    cert, key = certs.issue_client_cert(pki.ca, certs.ADMIN_COMMON_NAME, [certs.ADMIN_ORGANIZATION])
    (cluster.data_dir / "t.crt").write_bytes(cert)
    (cluster.data_dir / "t.key").write_bytes(key)
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert_path))
    ctx.load_cert_chain(cluster.data_dir / "t.crt", cluster.data_dir / "t.key")
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx))


async def _call(session: aiohttp.ClientSession, method: str, url: str, body: object = None) -> dict:
    async with session.request(method, url, data=orjson.dumps(body) if body is not None else None,
                               headers={"Content-Type": "application/json"}) as resp:
        answer = orjson.loads(await resp.read())
        assert resp.status < 300, answer
        return answer  # type: ignore[no-any-return]


async def _fill(data_dir: Path, storage: str) -> tuple[dict[str, str], int]:
    """Objects written through an API server: {name: resourceVersion}, the highest RV seen."""
    async with local_cluster(data_dir, storage_url=storage) as cluster:
        async with await _session(cluster) as s:
            await _call(s, "POST", f"{cluster.url}/api/v1/namespaces", {"metadata": {"name": NS}})
            names = {}
            for i in range(30):
                cm = await _call(s, "POST", f"{cluster.url}/api/v1/namespaces/{NS}/configmaps",
                                 {"metadata": {"name": f"cm-{i}"}, "data": {"n": str(i)}})
                names[cm["metadata"]["name"]] = cm["metadata"]["resourceVersion"]
            await _call(s, "DELETE", f"{cluster.url}/api/v1/namespaces/{NS}/configmaps/cm-0")
            del names["cm-0"]
            listed = await _call(s, "GET", f"{cluster.url}/api/v1/namespaces/{NS}/configmaps")
            return names, int(listed["metadata"]["resourceVersion"])


async def _check_served(data_dir: Path, storage: str, names: dict[str, str], highest: int) -> int:
    """Start an API server on the migrated store: same objects, higher RVs, watches work."""
    async with local_cluster(data_dir, storage_url=storage) as cluster:
        async with await _session(cluster) as s:
            base = f"{cluster.url}/api/v1/namespaces/{NS}/configmaps"
            listed = await _call(s, "GET", base)
            assert sorted(i["metadata"]["name"] for i in listed["items"]) == sorted(names)
            assert {i["metadata"]["name"]: i["data"]["n"] for i in listed["items"]} == {
                n: n.split("-")[1] for n in names}
            rvs = [int(i["metadata"]["resourceVersion"]) for i in listed["items"]]
            assert min(rvs) > highest, (rvs, highest)
            list_rv = listed["metadata"]["resourceVersion"]
            assert int(list_rv) > highest
            # An old resourceVersion is history the new store does not have: 410, as after compaction.
            async with s.get(f"{base}?watch=1&resourceVersion={highest - 5}") as resp:
                line = await asyncio.wait_for(resp.content.readline(), 10)
                gone = orjson.loads(line)
                assert gone["type"] == "ERROR" and gone["object"]["code"] == 410
            async with s.get(f"{base}?watch=1&resourceVersion={list_rv}") as resp:
                created = await _call(s, "POST", base, {"metadata": {"name": "after"}})
                event = orjson.loads(await asyncio.wait_for(resp.content.readline(), 10))
                assert event["type"] == "ADDED" and event["object"]["metadata"]["name"] == "after"
                assert int(created["metadata"]["resourceVersion"]) > max(rvs)
            return int(created["metadata"]["resourceVersion"])


async def test_sqlite_to_sqlite_keeps_resource_versions_monotonic(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path / 'a.db'}"
    names, highest = await _fill(tmp_path / "a", source)
    target = f"sqlite:///{tmp_path / 'b.db'}"
    out = io.StringIO()
    copied, revision = await migrate(source, target, batch_size=7, out=out)
    assert copied >= len(names) and revision > highest
    assert "copied 7/" in out.getvalue() and out.getvalue().rstrip().startswith("migrating")
    await _check_served(tmp_path / "b", target, names, highest)
    # The destination now holds data: refused without --force, an exact copy with it.
    with pytest.raises(MigrationError, match="already holds data"):
        await migrate(source, target, out=io.StringIO())
    copied_again, _ = await migrate(source, target, force=True, out=io.StringIO())
    assert copied_again == copied
    db = await open_backend(target)
    try:
        assert not (await db.scan(f"/registry/configmaps/{NS}/after")).items  # not in the source
    finally:
        await db.aclose()


async def test_sqlite_to_etcd_and_back(tmp_path: Path, etcd: EtcdCluster) -> None:
    source = f"sqlite:///{tmp_path / 'a.db'}"
    names, highest = await _fill(tmp_path / "a", source)
    target = "etcd://" + ",".join(etcd.endpoints)
    result = subprocess.run([sys.executable, "-m", "pykube_server", "migrate", "--from", source, "--to", target,
                             "--batch-size", "10"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "copied 10/" in result.stderr and "done:" in result.stderr
    after_etcd = await _check_served(tmp_path / "b", target, names, highest)
    refused = subprocess.run([sys.executable, "-m", "pykube_server", "migrate", "--from", source, "--to", target],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "already holds data" in refused.stderr
    # etcd -> SQLite: the revisions continue above etcd's.
    back = f"sqlite:///{tmp_path / 'c.db'}"
    await migrate(target, back, out=io.StringIO())
    db = await open_backend(back)
    try:
        page = await db.scan(f"/registry/configmaps/{NS}/")
        assert sorted(kv.key.rsplit("/", 1)[1] for kv in page.items) == sorted([*names, "after"])
        assert min(kv.mod_revision for kv in page.items) > after_etcd
    finally:
        await db.aclose()
