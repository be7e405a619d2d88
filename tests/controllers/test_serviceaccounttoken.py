"""serviceaccount-token-controller against a real server: legacy token Secrets, as in kube 1.24+.

Facts recorded here (kube-controller-manager's TokensController, and the docs' "Manually create
a long-lived API token for a ServiceAccount"): no Secret is made for a ServiceAccount on its own;
a user-made Secret of type kubernetes.io/service-account-token naming an account in the
`kubernetes.io/service-account.name` annotation gets `token`, `ca.crt` and `namespace` data and
the account's uid in `kubernetes.io/service-account.uid`; its token authenticates as the account
(TokenReview) until the account is deleted, which deletes the Secret too; each day a token is
used, the API server labels its Secret `kubernetes.io/legacy-token-last-used: <UTC date>`.
"""

from __future__ import annotations

import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from pykube_server.api import errors
from pykube_server.client.rest import SECRETS, SERVICEACCOUNTS, Client, Resource
from pykube_server.testing import LocalCluster
from tests.controllers import controllers_running, eventually

TOKENREVIEWS = Resource("authentication.k8s.io", "v1", "tokenreviews", namespaced=False)


@pytest.fixture
async def client(cluster: LocalCluster, tmp_path: Path) -> AsyncIterator[Client]:
    key = cluster.server.service_accounts.keys.signing
    assert key is not None
    key_file = tmp_path / "sa.key"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    async with controllers_running(cluster, ["serviceaccount-token-controller"],
                                   service_account_private_key_file=str(key_file)) as c:
        yield c


def _token_secret(name: str, account: str) -> dict:
    return {"metadata": {"name": name, "annotations": {"kubernetes.io/service-account.name": account}},
            "type": "kubernetes.io/service-account-token"}


async def test_token_secret_is_filled_and_authenticates(client: Client, cluster: LocalCluster) -> None:
    account = await client.create(SERVICEACCOUNTS, {"metadata": {"name": "build"}}, namespace="default")
    await client.create(SECRETS, _token_secret("build-token", "build"), namespace="default")

    async def filled():  # type: ignore[no-untyped-def]
        secret = await client.get(SECRETS, "build-token", namespace="default")
        return secret if len(secret.get("data") or {}) == 3 else None

    secret = await eventually(filled)
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert data["namespace"] == b"default"
    assert data["ca.crt"] == cluster.kubeconfig.parent.joinpath("pki", "ca.crt").read_bytes()
    assert secret["metadata"]["annotations"]["kubernetes.io/service-account.uid"] == account["metadata"]["uid"]
    review = await client.create(TOKENREVIEWS, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                                "spec": {"token": data["token"].decode()}})
    assert review["status"]["authenticated"] is True
    assert review["status"]["user"]["username"] == "system:serviceaccount:default:build"
    assert review["status"]["user"]["uid"] == account["metadata"]["uid"]
    used = await client.get(SECRETS, "build-token", namespace="default")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert used["metadata"]["labels"] == {"kubernetes.io/legacy-token-last-used": today}

    await client.delete(SERVICEACCOUNTS, "build", namespace="default")

    async def secret_gone() -> bool:
        try:
            await client.get(SECRETS, "build-token", namespace="default")
        except errors.NotFound:
            return True
        return False

    await eventually(secret_gone)
    review = await client.create(TOKENREVIEWS, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                                "spec": {"token": data["token"].decode()}})
    assert "authenticated" not in review["status"]


async def test_secret_naming_a_missing_account_is_deleted(client: Client) -> None:
    await client.create(SECRETS, _token_secret("orphan-token", "ghost"), namespace="default")
    plain = await client.create(SECRETS, {"metadata": {"name": "plain"}, "data": {}}, namespace="default")

    async def orphan_gone() -> bool:
        try:
            await client.get(SECRETS, "orphan-token", namespace="default")
        except errors.NotFound:
            return True
        return False

    await eventually(orphan_gone)
    still = await client.get(SECRETS, "plain", namespace="default")
    assert still["metadata"]["uid"] == plain["metadata"]["uid"]
