"""Kubeconfig loading: inline data, files relative to the kubeconfig, tokens, contexts, TLS."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import pytest
import yaml

from pykube_server.client.config import ClientConfig, ConfigError, load_kubeconfig, user_agent
from pykube_server.testing import LocalCluster


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def write(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def kubeconfig(user: dict, *, cluster: dict | None = None, namespace: str = "") -> dict:
    ctx = {"cluster": "c", "user": "u", **({"namespace": namespace} if namespace else {})}
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "main",
        "clusters": [{"name": "c", "cluster": cluster or {"server": "https://127.0.0.1:6443/"}}],
        "contexts": [{"name": "main", "context": ctx}, {"name": "other", "context": {"cluster": "c", "user": "u2"}}],
        "users": [{"name": "u", "user": user}, {"name": "u2", "user": {"token": "second"}}],
    }


def test_inline_data_token_and_namespace(tmp_path: Path) -> None:
    doc = kubeconfig({"client-certificate-data": b64(b"CERT"), "client-key-data": b64(b"KEY"), "token": "abc"},
                     cluster={"server": "https://h:1/", "certificate-authority-data": b64(b"CA")}, namespace="ns1")
    cfg = load_kubeconfig(write(tmp_path / "k.yaml", doc))
    assert (cfg.server, cfg.ca_data, cfg.cert_data, cfg.key_data) == ("https://h:1", b"CA", b"CERT", b"KEY")
    assert (cfg.token, cfg.namespace) == ("abc", "ns1")
    assert (cfg.qps, cfg.burst) == (50.0, 100)


def test_files_are_relative_to_the_kubeconfig(tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.crt").write_bytes(b"CA")
    (tmp_path / "pki" / "c.crt").write_bytes(b"CERT")
    (tmp_path / "pki" / "c.key").write_bytes(b"KEY")
    (tmp_path / "tok").write_text("tok123\n")
    doc = kubeconfig({"client-certificate": "pki/c.crt", "client-key": "pki/c.key", "tokenFile": "tok"},
                     cluster={"server": "https://h:1", "certificate-authority": "pki/ca.crt"})
    cfg = load_kubeconfig(write(tmp_path / "k.yaml", doc))
    assert (cfg.ca_data, cfg.cert_data, cfg.key_data, cfg.token) == (b"CA", b"CERT", b"KEY", "tok123")
    assert cfg.namespace == "default"


def test_named_context_and_overrides(tmp_path: Path) -> None:
    path = write(tmp_path / "k.yaml", kubeconfig({"token": "first"}))
    cfg = load_kubeconfig(path, context="other", qps=5, burst=10, user_agent=user_agent("pykube-scheduler"))
    assert cfg.token == "second"
    assert (cfg.qps, cfg.burst, cfg.user_agent) == (5, 10, "pykube-scheduler/v0.1.0")


@pytest.mark.parametrize("doc, message", [
    ({"current-context": "nope", "contexts": []}, "context 'nope' not found"),
    (kubeconfig({"client-certificate-data": b64(b"C")}), "must be given together"),
    (kubeconfig({}, cluster={"server": ""}), "has no server"),
    (kubeconfig({"tokenFile": "missing"}), "cannot read"),
], ids=["missing-context", "cert-without-key", "no-server", "missing-token-file"])
def test_bad_kubeconfigs(tmp_path: Path, doc: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_kubeconfig(write(tmp_path / "k.yaml", doc))


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_kubeconfig(tmp_path / "absent.yaml")


def test_ssl_context_from_generated_kubeconfig(cluster: LocalCluster) -> None:
    cfg = load_kubeconfig(cluster.kubeconfig)
    ctx = cfg.ssl_context()
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert cfg.cert_data and cfg.key_data


def test_ssl_context_insecure_and_plain_http() -> None:
    insecure = ClientConfig("https://h:1", insecure_skip_tls_verify=True).ssl_context()
    assert insecure is not None and insecure.verify_mode == ssl.CERT_NONE
    assert ClientConfig("http://h:1").ssl_context() is None
