"""serviceaccount-controller and root-ca-certificate-publisher-controller against a real server.

Facts from kube-controller-manager recorded here: every Active namespace gets a ServiceAccount
`default` (recreated when deleted); every namespace gets ConfigMap `kube-root-ca.crt` whose
only data key is `ca.crt` (the CA from the manager's kubeconfig) and which carries the
`kubernetes.io/description` annotation; a drifted copy is rewritten (extra keys dropped,
other annotations kept); nothing is created in a Terminating namespace.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pykube_server.api import errors
from pykube_server.apiserver import certs
from pykube_server.client.rest import CONFIGMAPS, NAMESPACES, SERVICEACCOUNTS, Client
from pykube_server.controllers.rootcacert import DESCRIPTION, DESCRIPTION_ANNOTATION
from pykube_server.testing import LocalCluster
from tests.controllers import controllers_running, eventually

CONTROLLERS = ["serviceaccount-controller", "root-ca-certificate-publisher-controller"]


@pytest.fixture
async def client(cluster: LocalCluster) -> AsyncIterator[Client]:
    async with controllers_running(cluster, CONTROLLERS) as c:
        yield c


async def _get(client: Client, resource, name: str, namespace: str):  # type: ignore[no-untyped-def]
    try:
        return await client.get(resource, name, namespace=namespace)
    except errors.NotFound:
        return None


async def test_default_account_in_every_namespace_and_recreated(client: Client) -> None:
    await client.create(NAMESPACES, {"metadata": {"name": "team-a"}})
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease", "team-a"):
        await eventually(lambda ns=ns: _get(client, SERVICEACCOUNTS, "default", ns))
    first = await client.get(SERVICEACCOUNTS, "default", namespace="team-a")
    await client.delete(SERVICEACCOUNTS, "default", namespace="team-a")

    async def recreated():  # type: ignore[no-untyped-def]
        sa = await _get(client, SERVICEACCOUNTS, "default", "team-a")
        return sa if sa and sa["metadata"]["uid"] != first["metadata"]["uid"] else None

    await eventually(recreated)


async def test_root_ca_configmap_published(client: Client, cluster: LocalCluster) -> None:
    await client.create(NAMESPACES, {"metadata": {"name": "team-b"}})
    cm = await eventually(lambda: _get(client, CONFIGMAPS, "kube-root-ca.crt", "team-b"))
    assert cm["data"] == {"ca.crt": certs.ensure_pki(cluster.data_dir / "pki").ca.cert_pem.decode()}
    assert cm["metadata"]["annotations"] == {DESCRIPTION_ANNOTATION: DESCRIPTION}


async def test_root_ca_configmap_kept_in_sync(client: Client) -> None:
    cm = await eventually(lambda: _get(client, CONFIGMAPS, "kube-root-ca.crt", "default"))
    pem = cm["data"]["ca.crt"]
    cm["data"] = {"ca.crt": "tampered", "extra": "x"}
    cm["metadata"]["annotations"] = {"mine": "kept"}
    await client.update(CONFIGMAPS, cm)

    async def repaired():  # type: ignore[no-untyped-def]
        now = await _get(client, CONFIGMAPS, "kube-root-ca.crt", "default")
        return now if now and now["data"] == {"ca.crt": pem} else None

    fixed = await eventually(repaired)
    assert fixed["metadata"]["annotations"] == {"mine": "kept", DESCRIPTION_ANNOTATION: DESCRIPTION}
    await client.delete(CONFIGMAPS, "kube-root-ca.crt", namespace="default")
    await eventually(lambda: _get(client, CONFIGMAPS, "kube-root-ca.crt", "default"))


async def test_nothing_created_in_terminating_namespace(cluster: LocalCluster) -> None:
    async with Client.from_kubeconfig(cluster.kubeconfig) as setup:
        await setup.create(NAMESPACES, {"metadata": {"name": "going"}})
        await setup.delete(NAMESPACES, "going")  # Terminating, and no namespace controller here
    async with controllers_running(cluster, CONTROLLERS) as client:
        await eventually(lambda: _get(client, SERVICEACCOUNTS, "default", "default"))
        await eventually(lambda: _get(client, CONFIGMAPS, "kube-root-ca.crt", "default"))
        assert await _get(client, SERVICEACCOUNTS, "default", "going") is None
        assert await _get(client, CONFIGMAPS, "kube-root-ca.crt", "going") is None
