"""Encryption at rest: kube's EncryptionConfiguration providers and their stored formats, the
transforming backend over SQLite (no Secret value in the file), reading plaintext written
before encryption, and key rotation by rewriting (a no-op update re-encrypts a stale value)."""

from __future__ import annotations

import base64
import os
import sqlite3
from pathlib import Path

import pytest
import yaml

from pykube_server.apiserver import encryption
from pykube_server.registry.resources import RESOURCES
from pykube_server.storage.transformer import AESCBC, AESGCM, Identity, Rule, Secretbox, TransformError, Transformers
from pykube_server.testing import local_cluster

KEY = os.urandom(32)


@pytest.mark.parametrize("provider", [AESCBC("k1", KEY), AESGCM("k1", KEY), Secretbox("k1", KEY)])
def test_round_trip_and_kube_prefixes(provider) -> None:  # type: ignore[no-untyped-def]
    stored = provider.encrypt(b'{"data":"x"}', "/registry/secrets/ns/s")
    name = type(provider).__name__.lower()
    assert stored.startswith(f"k8s:enc:{name}:v1:k1:".encode())
    assert b"data" not in stored
    assert provider.decrypt(stored[len(provider.prefix):], "/registry/secrets/ns/s") == b'{"data":"x"}'


def test_aesgcm_binds_the_storage_key() -> None:
    provider = AESGCM("k1", KEY)
    stored = provider.encrypt(b"v", "/registry/secrets/ns/a")
    with pytest.raises(TransformError):
        provider.decrypt(stored[len(provider.prefix):], "/registry/secrets/ns/b")  # copied to another key


def test_first_provider_writes_others_read_and_mark_stale() -> None:
    old, new = AESCBC("old", os.urandom(32)), AESGCM("new", os.urandom(32))
    before = Transformers([Rule("/registry/secrets/", (old, Identity()))])
    after = Transformers([Rule("/registry/secrets/", (new, old, Identity()))])
    key = "/registry/secrets/ns/s"
    written = before.encrypt(key, b"v")
    assert after.decrypt(key, written) == (b"v", True)
    assert after.decrypt(key, after.encrypt(key, b"v")) == (b"v", False)
    assert after.decrypt(key, b"plain") == (b"plain", True)  # written before encryption was on
    assert after.encrypt("/registry/configmaps/ns/c", b"v") == b"v"  # not configured: untouched
    with pytest.raises(TransformError, match="no matching prefix"):
        Transformers([Rule("/registry/secrets/", (new,))]).decrypt(key, AESCBC("other", KEY).encrypt(b"v", key))


def write_config(path: Path, providers: list[dict], resources: list[str] | None = None) -> Path:
    path.write_text(yaml.safe_dump({"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
                                    "resources": [{"resources": resources or ["secrets"], "providers": providers}]}))
    return path


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_config_resources_map_to_storage_prefixes(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.yaml", [{"identity": {}}], ["secrets", "deployments.apps", "*.batch", "widgets.example.com"])
    prefixes = {rule.key_prefix for rule in encryption.load(config, RESOURCES).rules}
    assert {"/registry/secrets/", "/registry/deployments/", "/registry/jobs/", "/registry/cronjobs/",
            "/registry/example.com/widgets"} <= prefixes
    with pytest.raises(encryption.ConfigError, match="unknown resource 'nopes'"):
        encryption.load(write_config(tmp_path / "d.yaml", [{"identity": {}}], ["nopes"]), RESOURCES)
    with pytest.raises(encryption.ConfigError, match="at least one key"):
        encryption.load(write_config(tmp_path / "e.yaml", [{"aescbc": {"keys": []}}]), RESOURCES)


def secret_rows(db: Path) -> list[bytes]:
    with sqlite3.connect(db) as conn:
        return [bytes(v) for (v,) in conn.execute("select value from kine where key like '/registry/secrets/%' order by id")
                if v]


def file_bytes(db: Path) -> bytes:
    """The database with its write-ahead log, as they lie on disk."""
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


async def test_secrets_are_not_stored_in_clear_and_rotate_by_rewriting(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    k1, k2 = os.urandom(32), os.urandom(32)
    first = write_config(tmp_path / "one.yaml", [{"aesgcm": {"keys": [{"name": "key1", "secret": b64(k1)}]}}, {"identity": {}}])
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
              "stringData": {"password": "hunter2-plaintext"}}
    async with local_cluster(tmp_path / "one", storage_url=f"sqlite:///{db}", encryption_provider_config=str(first)) as lc:
        store = lc.server.store_for("", "v1", "secrets")
        await store.create("default", secret)
        got = (await store.get("default", "s")).decode()
        assert base64.b64decode(got["data"]["password"]) == b"hunter2-plaintext"
    rows = secret_rows(db)
    assert rows and all(r.startswith(b"k8s:enc:aesgcm:v1:key1:") for r in rows)
    raw = file_bytes(db)
    assert b"hunter2" not in raw and b64(b"hunter2-plaintext").encode() not in raw

    # Rotation: key2 first, key1 still readable; a no-op rewrite moves the Secret to key2.
    second = write_config(tmp_path / "two.yaml", [{"aesgcm": {"keys": [{"name": "key2", "secret": b64(k2)},
                                                                       {"name": "key1", "secret": b64(k1)}]}}])
    async with local_cluster(tmp_path / "two", storage_url=f"sqlite:///{db}", encryption_provider_config=str(second)) as lc:
        store = lc.server.store_for("", "v1", "secrets")
        current = (await store.get("default", "s")).decode()

        async def same(_: object) -> dict:
            return current

        await store.update("default", "s", same)
    latest = secret_rows(db)[-1]
    assert latest.startswith(b"k8s:enc:aesgcm:v1:key2:")
