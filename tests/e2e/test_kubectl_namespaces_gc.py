"""The real kubectl against `pykube-server up` with its controller manager: namespace lifecycle
and garbage collection behave as on a real 1.33 cluster.

Recorded here: a new namespace gets ServiceAccount `default` and ConfigMap `kube-root-ca.crt`
within seconds; `kubectl delete ns` returns once the namespace and everything in it are gone;
deleting an owner deletes its dependents (Background by default), `--cascade=foreground` only
returns after the dependents that block owner deletion are gone, and `--cascade=orphan` leaves
the dependents without their reference to the owner.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable

from tests.conftest import ServerProcess, requires_kubectl

pytestmark = requires_kubectl

DEADLINE_SECONDS = 30.0


def k(cluster: ServerProcess, ns: str, *args: str, input: str | None = None,
      check: bool = True) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(*args, "-n", ns, input=input, check=check)


def wait_for(check: Callable[[], bool], what: str, timeout: float = DEADLINE_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def exists(cluster: ServerProcess, ns: str, *what: str) -> bool:
    return k(cluster, ns, "get", *what, "-o", "name", check=False).returncode == 0


def owner_with_dependent(cluster: ServerProcess, ns: str, *, block: bool) -> str:
    """ConfigMap `owner` and Secret `dep` owned by it; returns the owner's uid."""
    k(cluster, ns, "create", "configmap", "owner", "--from-literal=k=v")
    uid = k(cluster, ns, "get", "cm", "owner", "-o", "jsonpath={.metadata.uid}").stdout.strip()
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dep", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid, "blockOwnerDeletion": block}]},
        "stringData": {"a": "b"}}
    k(cluster, ns, "apply", "-f", "-", input=json.dumps(secret))
    return uid


def test_new_namespace_gets_default_account_and_root_ca(cluster: ServerProcess, namespace: str) -> None:
    wait_for(lambda: exists(cluster, namespace, "serviceaccount", "default"), "serviceaccount default")
    wait_for(lambda: exists(cluster, namespace, "configmap", "kube-root-ca.crt"), "configmap kube-root-ca.crt")
    data = json.loads(k(cluster, namespace, "get", "cm", "kube-root-ca.crt", "-o", "json").stdout)["data"]
    assert list(data) == ["ca.crt"] and data["ca.crt"].startswith("-----BEGIN CERTIFICATE-----")
    k(cluster, namespace, "delete", "sa", "default")
    wait_for(lambda: exists(cluster, namespace, "serviceaccount", "default"), "serviceaccount default again")


def test_kubectl_delete_namespace_returns_when_gone(cluster: ServerProcess) -> None:
    ns = f"del-{uuid.uuid4().hex[:8]}"
    cluster.kubectl("create", "namespace", ns)
    k(cluster, ns, "create", "configmap", "c", "--from-literal=k=v")
    k(cluster, ns, "create", "secret", "generic", "s", "--from-literal=k=v")
    out = cluster.kubectl("delete", "namespace", ns, "--timeout=60s", timeout=90)
    assert out.stdout.strip() == f'namespace "{ns}" deleted'
    gone = cluster.kubectl("get", "namespace", ns, check=False)
    assert gone.returncode == 1
    assert gone.stderr.strip() == f'Error from server (NotFound): namespaces "{ns}" not found'


def test_deleting_owner_deletes_dependent(cluster: ServerProcess, namespace: str) -> None:
    owner_with_dependent(cluster, namespace, block=False)
    assert k(cluster, namespace, "delete", "cm", "owner").stdout.strip() == 'configmap "owner" deleted'
    wait_for(lambda: not exists(cluster, namespace, "secret", "dep"), "the dependent to be collected")


def test_cascade_foreground_waits_for_blocking_dependent(cluster: ServerProcess, namespace: str) -> None:
    owner_with_dependent(cluster, namespace, block=True)
    out = k(cluster, namespace, "delete", "cm", "owner", "--cascade=foreground", "--timeout=60s")
    assert out.stdout.strip() == 'configmap "owner" deleted'
    # kubectl waited for the owner, and the owner waited for its blocking dependent
    assert not exists(cluster, namespace, "configmap", "owner")
    assert not exists(cluster, namespace, "secret", "dep")


def test_cascade_orphan_keeps_dependent(cluster: ServerProcess, namespace: str) -> None:
    owner_with_dependent(cluster, namespace, block=True)
    out = k(cluster, namespace, "delete", "cm", "owner", "--cascade=orphan", "--timeout=60s")
    assert out.stdout.strip() == 'configmap "owner" deleted'
    assert not exists(cluster, namespace, "configmap", "owner")
    refs = k(cluster, namespace, "get", "secret", "dep", "-o", "jsonpath={.metadata.ownerReferences}").stdout
    assert refs.strip() == ""
