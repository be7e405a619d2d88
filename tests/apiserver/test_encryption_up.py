"""`up` encrypts Secrets at rest by default: a Secret created with kubectl reads back intact,
while neither the SQLite database nor its write-ahead log holds the value in clear text."""

from __future__ import annotations

import base64

from tests.conftest import ServerProcess


def test_up_stores_secrets_encrypted(cluster: ServerProcess, namespace: str) -> None:
    value = "pykube-cleartext-canary-4f1d"
    cluster.kubectl("create", "secret", "generic", "canary", "-n", namespace, f"--from-literal=token={value}")
    got = cluster.kubectl("get", "secret", "canary", "-n", namespace, "-o", "jsonpath={.data.token}").stdout
    assert base64.b64decode(got).decode() == value
    config = cluster.data_dir / "encryption-config.yaml"
    assert config.exists() and "aesgcm" in config.read_text()
    raw = b"".join(p.read_bytes() for p in cluster.data_dir.glob("state.db*"))
    assert raw, "no database found in the data dir"
    assert value.encode() not in raw
    assert base64.b64encode(value.encode()) not in raw
