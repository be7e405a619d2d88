"""PersistentVolumes end to end on a real `pykube-server up`, as on kind: the default class
`standard`, WaitForFirstConsumer, local-path provisioning, binding, the StatefulSet's claims,
Delete and Retain reclaim, and the protection finalizers."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ServerProcess, requires_kubectl

pytestmark = [requires_kubectl, pytest.mark.kubectl]

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="volume mounts need root (mount namespaces)")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def get_json(cluster: ServerProcess, *args: str) -> Any:
    result = cluster.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def claim_manifest(name: str, size: str = "64Mi", extra: str = "") -> str:
    return f"""
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {name}}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: {size}}}}}
{extra}"""


def pod_manifest(name: str, claim: str, command: str) -> str:
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "{command}"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes: [{{name: data, persistentVolumeClaim: {{claimName: {claim}}}}}]
"""


def test_default_storage_class_is_there(cluster: ServerProcess) -> None:
    sc = get_json(cluster, "storageclass", "standard")
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer" and sc["reclaimPolicy"] == "Delete"
    out = cluster.kubectl("get", "storageclass").stdout
    assert "standard (default)" in out and sc["provisioner"] in out
    assert get_json(cluster, "csidriver", sc["provisioner"])["spec"]["attachRequired"] is False


@needs_root
def test_claim_waits_for_first_consumer_then_binds_and_pod_writes(cluster: ServerProcess, namespace: str) -> None:
    ns = ["-n", namespace]
    cluster.kubectl("apply", *ns, "-f", "-", input=claim_manifest("data"))
    claim = get_json(cluster, "pvc", "data", *ns)
    assert claim["spec"]["storageClassName"] == "standard"
    assert claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]
    wait_for("WaitForFirstConsumer event", lambda: "waiting for first consumer to be created before binding"
             in cluster.kubectl("describe", "pvc", "data", *ns).stdout)
    assert "Pending" in cluster.kubectl("get", "pvc", "data", *ns).stdout

    cluster.kubectl("apply", *ns, "-f", "-", input=pod_manifest("writer", "data", "echo hello > /data/f; sleep 3600"))
    bound = wait_for("Bound claim", lambda: (c := get_json(cluster, "pvc", "data", *ns)) and
                     c["status"].get("phase") == "Bound" and c)
    pv_name = bound["spec"]["volumeName"]
    assert pv_name == f"pvc-{bound['metadata']['uid']}"
    assert bound["status"]["capacity"] == {"storage": "64Mi"} and bound["status"]["accessModes"] == ["ReadWriteOnce"]
    ann = bound["metadata"]["annotations"]
    assert ann["pv.kubernetes.io/bind-completed"] == "yes" and ann["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert ann["volume.kubernetes.io/selected-node"] == "pykube-node-1"
    assert ann["volume.kubernetes.io/storage-provisioner"] == ann["volume.beta.kubernetes.io/storage-provisioner"]

    pv = get_json(cluster, "pv", pv_name)
    assert pv["status"]["phase"] == "Bound" and pv["metadata"]["finalizers"] == ["kubernetes.io/pv-protection"]
    assert pv["spec"]["claimRef"]["uid"] == bound["metadata"]["uid"]
    assert pv["spec"]["persistentVolumeReclaimPolicy"] == "Delete" and pv["spec"]["storageClassName"] == "standard"
    assert pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == ["pykube-node-1"]
    host_dir = Path(pv["spec"]["hostPath"]["path"])
    assert host_dir.name == f"{pv_name}_{namespace}_data"

    row = cluster.kubectl("get", "pvc", "data", *ns).stdout.splitlines()[1].split()
    assert row[:5] == ["data", "Bound", pv_name, "64Mi", "RWO"] and row[5] == "standard"
    wait_for("pod Running", lambda: "Running" in cluster.kubectl("get", "pod", "writer", *ns).stdout)
    wait_for("file in the volume", lambda: (host_dir / "f").is_file() and (host_dir / "f").read_text() == "hello\n")
    events = cluster.kubectl("get", "events", *ns, "--field-selector", "involvedObject.name=data").stdout
    assert "ProvisioningSucceeded" in events and "ExternalProvisioning" in events

    # Deleting the claim while the pod uses it only marks it; the pod going releases it, and
    # the Delete policy removes the PV and its directory.
    cluster.kubectl("delete", "pvc", "data", *ns, "--wait=false")
    time.sleep(1.0)
    assert get_json(cluster, "pvc", "data", *ns)["metadata"].get("deletionTimestamp")
    cluster.kubectl("delete", "pod", "writer", *ns, "--grace-period=1", "--wait=true", timeout=60)
    wait_for("claim gone", lambda: get_json(cluster, "pvc", "data", *ns) is None)
    wait_for("volume gone", lambda: get_json(cluster, "pv", pv_name) is None)
    assert not host_dir.exists()


def test_pod_with_missing_claim_is_unschedulable(cluster: ServerProcess, namespace: str) -> None:
    ns = ["-n", namespace]
    cluster.kubectl("apply", *ns, "-f", "-", input=pod_manifest("orphan", "nope", "sleep 3600"))
    wait_for("FailedScheduling", lambda: 'persistentvolumeclaim "nope" not found'
             in cluster.kubectl("describe", "pod", "orphan", *ns).stdout)


def test_unbound_immediate_claim_keeps_pod_pending(cluster: ServerProcess, namespace: str) -> None:
    ns = ["-n", namespace]
    cluster.kubectl("apply", *ns, "-f", "-", input=claim_manifest("manual", extra="  storageClassName: \"\"\n"))
    cluster.kubectl("apply", *ns, "-f", "-", input=pod_manifest("waits", "manual", "sleep 3600"))
    wait_for("FailedScheduling", lambda: "pod has unbound immediate PersistentVolumeClaims"
             in cluster.kubectl("describe", "pod", "waits", *ns).stdout)
    wait_for("FailedBinding", lambda: "no persistent volumes available for this claim and no storage class is set"
             in cluster.kubectl("describe", "pvc", "manual", *ns).stdout)


@needs_root
def test_statefulset_claims_are_bound(cluster: ServerProcess, namespace: str) -> None:
    ns = ["-n", namespace]
    cluster.kubectl("apply", *ns, "-f", "-", input="""
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  serviceName: web
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: main
        image: busybox
        command: ["sh", "-c", "hostname > /data/who; sleep 3600"]
        volumeMounts: [{name: www, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 16Mi}}
""")
    def bound() -> list[str]:
        out = cluster.kubectl("get", "pvc", *ns, "--no-headers").stdout
        rows = [line.split() for line in out.splitlines() if line.strip()]
        return [r[0] for r in rows if r[1] == "Bound"] if len(rows) == 2 and all(r[1] == "Bound" for r in rows) else []
    assert sorted(wait_for("2 Bound claims", bound, timeout=90)) == ["www-web-0", "www-web-1"]
    wait_for("2 ready replicas", lambda: (s := get_json(cluster, "sts", "web", *ns)) and
             s.get("status", {}).get("readyReplicas") == 2, timeout=90)
    cluster.kubectl("delete", "sts", "web", *ns, "--wait=true", timeout=60)


def test_static_host_path_volume_with_retain_is_released(cluster: ServerProcess, namespace: str,
                                                         tmp_path: Path) -> None:
    ns = ["-n", namespace]
    pv_name = f"static-{namespace}"
    cluster.kubectl("apply", "-f", "-", input=f"""
apiVersion: v1
kind: PersistentVolume
metadata: {{name: {pv_name}, labels: {{disk: {namespace}}}}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  hostPath: {{path: {tmp_path}}}
""")
    wait_for("Available", lambda: "Available" in cluster.kubectl("get", "pv", pv_name).stdout)
    cluster.kubectl("apply", *ns, "-f", "-", input=claim_manifest("static", "500Mi", extra=(
        f"  storageClassName: \"\"\n  selector: {{matchLabels: {{disk: {namespace}}}}}\n")))
    claim = wait_for("Bound", lambda: (c := get_json(cluster, "pvc", "static", *ns)) and
                     c["status"].get("phase") == "Bound" and c)
    assert claim["spec"]["volumeName"] == pv_name and claim["status"]["capacity"] == {"storage": "1Gi"}
    pv = get_json(cluster, "pv", pv_name)
    assert pv["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
    assert pv["status"]["phase"] == "Bound"
    cluster.kubectl("delete", "pvc", "static", *ns, "--wait=true", timeout=60)
    wait_for("Released", lambda: "Released" in cluster.kubectl("get", "pv", pv_name).stdout)
    pv = get_json(cluster, "pv", pv_name)
    assert pv["spec"]["claimRef"]["name"] == "static" and tmp_path.is_dir()
    cluster.kubectl("delete", "pv", pv_name, "--wait=true", timeout=60)
