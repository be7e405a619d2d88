"""kubectl against `pykube-server up` with the scheduler running: Node objects created as a
kubelet would register them, a pod with a nodeSelector lands on the matching node, and a pod
that fits nowhere stays Pending with kube's FailedScheduling message."""

from __future__ import annotations

import json
import re
import time
import uuid

from tests.conftest import ServerProcess, requires_kubectl

pytestmark = requires_kubectl

NODE = """apiVersion: v1
kind: Node
metadata:
  name: {name}
  labels:
    kubernetes.io/hostname: {name}
    pykube-test: "{group}"
    disk: {disk}
status:
  capacity: {{cpu: "2", memory: 4Gi, pods: "110"}}
  allocatable: {{cpu: "2", memory: 4Gi, pods: "110"}}
  conditions:
  - {{type: Ready, status: "True", reason: KubeletReady, message: kubelet is posting ready status}}
"""


def wait_until(fn, timeout: float = 20.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_kubectl_sees_pods_scheduled_and_refused(cluster: ServerProcess, namespace: str) -> None:
    group = uuid.uuid4().hex[:8]
    names = [f"sched-{group}-{d}" for d in ("hdd", "ssd")]
    manifest = "---\n".join(NODE.format(name=n, group=group, disk=n.rsplit("-", 1)[1]) for n in names)
    cluster.kubectl("create", "-f", "-", input=manifest)
    try:
        overrides = json.dumps({"spec": {"nodeSelector": {"pykube-test": group, "disk": "ssd"}}})
        cluster.kubectl("run", "placed", "--image=busybox", "-n", namespace, f"--overrides={overrides}")

        def node_column() -> str:
            out = cluster.kubectl("get", "pod", "placed", "-n", namespace, "-o", "wide", "--no-headers").stdout.split()
            return out[6] if len(out) > 6 and out[6] != "<none>" else ""

        assert wait_until(node_column) == names[1]

        cluster.kubectl("run", "huge", "--image=busybox", "-n", namespace,
                        "--overrides=" + json.dumps({"spec": {"containers": [{
                            "name": "huge", "image": "busybox", "resources": {"requests": {"cpu": "1000"}}}]}}))
        pattern = (r"0/(\d+) nodes are available: .*\d+ Insufficient cpu.*\. "
                   r"preemption: 0/\1 nodes are available: \d+ Preemption is not helpful for scheduling\.\.")

        def described() -> str:
            out = cluster.kubectl("describe", "pod", "huge", "-n", namespace).stdout
            return out if "FailedScheduling" in out else ""

        text = wait_until(described)
        assert re.search(r"Warning\s+FailedScheduling\s+.*default-scheduler\s+" + pattern, text), text
        assert re.search(r"PodScheduled\s+False", text), text
        status = cluster.kubectl("get", "pod", "huge", "-n", namespace, "--no-headers").stdout.split()
        assert status[2] == "Pending"
        events = cluster.kubectl("get", "events", "-n", namespace, "--field-selector", "reason=Scheduled").stdout
        assert f"Successfully assigned {namespace}/placed to {names[1]}" in events
    finally:
        cluster.kubectl("delete", "node", *names, "--wait=false", check=False)
