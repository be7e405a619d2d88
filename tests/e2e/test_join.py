"""Joining a node the kubeadm way: `pykube-server token create --print-join-command` on the
cluster, then the printed `pykube-server kubelet --server ... --token ...` on the "other
machine": discovery through the signed cluster-info, TLS bootstrap through an auto-approved CSR,
and the node registers with its own certificate."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
import yaml

from pykube_server.api import jws
from pykube_server.client.tlsbootstrap import ca_cert_hash
from tests.conftest import ServerProcess


def pykube(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pykube_server", *args], capture_output=True, text=True, timeout=timeout)


def test_join_command_brings_up_a_new_node(cluster: ServerProcess, tmp_path: Path) -> None:
    made = pykube("token", "create", "--print-join-command", "--ttl", "1h", "--kubeconfig", str(cluster.kubeconfig))
    assert made.returncode == 0, made.stderr
    words = made.stdout.split()
    assert words[:2] == ["pykube-server", "kubelet"]
    token = words[words.index("--token") + 1]
    pin = words[words.index("--discovery-token-ca-cert-hash") + 1]
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    ca_pem = base64.b64decode(admin["clusters"][0]["cluster"]["certificate-authority-data"])
    assert pin == ca_cert_hash(ca_pem)

    # The bootstrap signer signs cluster-info with the new token.
    token_id, token_secret = token.split(".")
    deadline = time.monotonic() + 20
    while True:
        cm = orjson.loads(cluster.kubectl("get", "configmap", "cluster-info", "-n", "kube-public", "-o", "json").stdout)
        signature = cm["data"].get(f"jws-kubeconfig-{token_id}")
        if signature or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert signature and jws.verify_detached(signature, cm["data"]["kubeconfig"].encode(), token_id, token_secret)

    # A wrong pin is refused before anything is sent with the token.
    bad = pykube("kubelet", "--server", cluster.url, "--token", token, "--discovery-token-ca-cert-hash",
                 "sha256:" + "0" * 64, "--kubeconfig", str(tmp_path / "never.yaml"), "--runtime", "simulated",
                 "--node-name-prefix", "bad-node-", "--data-dir", str(tmp_path / "bad"), timeout=60)
    assert bad.returncode != 0 and "are pinned" in bad.stderr
    assert not (tmp_path / "never.yaml").exists()

    kubeconfig = tmp_path / "kubelet.yaml"
    proc = subprocess.Popen([sys.executable, "-m", "pykube_server", "kubelet", "--server", cluster.url, "--token", token,
                             "--discovery-token-ca-cert-hash", pin, "--kubeconfig", str(kubeconfig),
                             "--runtime", "simulated", "--node-name-prefix", "joined-node-", "--data-dir",
                             str(tmp_path / "kubelet")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        ready = ""
        while time.monotonic() < deadline:
            got = cluster.kubectl("get", "node", "joined-node-1", "-o",
                                  "jsonpath={.status.conditions[?(@.type=='Ready')].status}", check=False)
            ready = got.stdout
            if ready == "True":
                break
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.5)
        assert ready == "True"
        issued = yaml.safe_load(kubeconfig.read_text())
        assert os.stat(kubeconfig).st_mode & 0o777 == 0o600
        assert "client-certificate-data" in issued["users"][0]["user"]
        csrs = orjson.loads(cluster.kubectl("get", "csr", "-o", "json").stdout)["items"]
        mine = [c for c in csrs if c["spec"].get("username") == f"system:bootstrap:{token_id}"]
        assert mine, "no CSR from the bootstrap token"
        approved = [c for c in mine[0]["status"]["conditions"] if c["type"] == "Approved"]
        assert approved[0]["reason"] == "AutoApproved"
        assert mine[0]["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        cluster.kubectl("delete", "node", "joined-node-1", check=False)


def test_token_list_and_delete(cluster: ServerProcess) -> None:
    token = "abcdef.0123456789abcdef"
    made = pykube("token", "create", token, "--kubeconfig", str(cluster.kubeconfig))
    assert made.returncode == 0 and made.stdout.strip() == token, made.stderr
    listed = pykube("token", "list", "--kubeconfig", str(cluster.kubeconfig))
    assert token in listed.stdout and "authentication,signing" in listed.stdout
    gone = pykube("token", "delete", "abcdef", "--kubeconfig", str(cluster.kubeconfig))
    assert gone.stdout.strip() == 'bootstrap token "abcdef" deleted'


def test_bootstrap_token_authenticates_only_while_valid(cluster: ServerProcess) -> None:
    import urllib.request
    import ssl

    token = "zyxwvu.0123456789zyxwvu"
    assert pykube("token", "create", token, "--kubeconfig", str(cluster.kubeconfig)).returncode == 0
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

    def whoami(bearer: str) -> tuple[int, dict]:
        body = orjson.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        req = urllib.request.Request(cluster.url + "/apis/authentication.k8s.io/v1/selfsubjectreviews", data=body,
                                     headers={"Authorization": f"Bearer {bearer}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
                return resp.status, orjson.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, {}

    status, review = whoami(token)
    assert status == 201
    info = review["status"]["userInfo"]
    assert info["username"] == "system:bootstrap:zyxwvu"
    assert info["groups"] == ["system:bootstrappers", "system:bootstrappers:kubeadm:default-node-token",
                              "system:authenticated"]
    assert whoami("zyxwvu.wrongwrongwrong1")[0] == 401
    pykube("token", "delete", "zyxwvu", "--kubeconfig", str(cluster.kubeconfig))
    time.sleep(0.5)
    assert whoami(token)[0] == 401


def test_proxy_joins_once_an_administrator_approves(cluster: ServerProcess, tmp_path: Path) -> None:
    made = pykube("token", "create", "--print-join-command", "--kubeconfig", str(cluster.kubeconfig))
    words = made.stdout.split()
    token, pin = words[words.index("--token") + 1], words[words.index("--discovery-token-ca-cert-hash") + 1]
    kubeconfig = tmp_path / "proxy.yaml"
    proc = subprocess.Popen([sys.executable, "-m", "pykube_server", "proxy", "--server", cluster.url, "--token", token,
                             "--discovery-token-ca-cert-hash", pin, "--kubeconfig", str(kubeconfig),
                             "--nodeport-address", "127.0.0.1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 30
        pending = []
        while time.monotonic() < deadline and not pending:
            csrs = orjson.loads(cluster.kubectl("get", "csr", "-o", "json").stdout)["items"]
            pending = [c for c in csrs if c["spec"]["username"] == f"system:bootstrap:{token.split('.')[0]}"
                       and c["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client"]
            time.sleep(0.3)
        assert pending, "the proxy made no CSR"
        time.sleep(1)
        assert not kubeconfig.exists()  # nothing until a person approves
        cluster.kubectl("certificate", "approve", pending[0]["metadata"]["name"])
        deadline = time.monotonic() + 30
        while not kubeconfig.exists() and time.monotonic() < deadline:
            time.sleep(0.3)
        issued = yaml.safe_load(kubeconfig.read_text())
        assert issued["users"][0]["name"] == "system:kube-proxy"
        assert proc.poll() is None  # and it runs on with its new identity
    finally:
        proc.terminate()
        proc.wait(timeout=30)
