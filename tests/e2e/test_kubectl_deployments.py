"""Deployments through the real kubectl against `pykube-server up` (controllers in their child
process): create, rollout status/history/undo/restart/pause/resume, set image, scale.

With no kubelet yet, `ready()` plays one: it reports every pod Running and Ready through the
`pods/status` subresource. Deleting a deployment's ReplicaSets and pods is the garbage
collector's job and is not asserted here.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import ServerProcess, requires_kubectl

pytestmark = [requires_kubectl, pytest.mark.kubectl]

READY_PATCH = json.dumps({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})


def k(cluster: ServerProcess, ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl("-n", ns, *args, check=check)


def get_json(cluster: ServerProcess, ns: str, *args: str) -> Any:
    return json.loads(k(cluster, ns, "get", *args, "-o", "json").stdout)


def ready(cluster: ServerProcess, ns: str) -> None:
    """What a kubelet would report for each pod that is not running yet."""
    for pod in get_json(cluster, ns, "pods")["items"]:
        if (pod.get("status") or {}).get("phase") != "Running" and not pod["metadata"].get("deletionTimestamp"):
            k(cluster, ns, "patch", "pod", pod["metadata"]["name"], "--subresource=status", "--type=merge",
              "-p", READY_PATCH, check=False)


def until(check: Callable[[], Any], timeout: float = 45.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.2)


def rolled_out(cluster: ServerProcess, ns: str, name: str = "web") -> str:
    """Play kubelet until `kubectl rollout status` says the rollout is done; return its output."""
    def done() -> str | None:
        ready(cluster, ns)
        out = k(cluster, ns, "rollout", "status", f"deployment/{name}", "--watch=false", check=False).stdout
        return out if "successfully rolled out" in out else None

    return str(until(done, what=f"rollout of {name}"))


def replicasets(cluster: ServerProcess, ns: str) -> list[dict[str, Any]]:
    items = get_json(cluster, ns, "rs")["items"]
    return sorted(items, key=lambda rs: int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]))


def live_pods(cluster: ServerProcess, ns: str) -> list[dict[str, Any]]:
    return [p for p in get_json(cluster, ns, "pods")["items"] if not p["metadata"].get("deletionTimestamp")]


def test_deployment_lifecycle_with_kubectl(cluster: ServerProcess, namespace: str) -> None:
    ns = namespace
    k(cluster, ns, "create", "deployment", "web", "--image=nginx", "--replicas=3")
    until(lambda: len(live_pods(cluster, ns)) == 3, what="3 pods")
    [rs] = replicasets(cluster, ns)
    assert rs["metadata"]["name"] == f"web-{rs['metadata']['labels']['pod-template-hash']}"
    # the real kubectl's own wait loop (watch) ends once pods report ready
    ready(cluster, ns)
    out = k(cluster, ns, "rollout", "status", "deployment/web", "--timeout=60s").stdout
    assert 'deployment "web" successfully rolled out' in out

    k(cluster, ns, "set", "image", "deployment/web", "nginx=nginx:1.27")
    assert 'deployment "web" successfully rolled out' in rolled_out(cluster, ns)
    old, new = replicasets(cluster, ns)
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 3)
    assert new["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"

    history = k(cluster, ns, "rollout", "history", "deployment/web").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]

    assert "rolled back" in k(cluster, ns, "rollout", "undo", "deployment/web").stdout
    rolled_out(cluster, ns)
    rss = replicasets(cluster, ns)
    assert [rs["metadata"]["name"] for rs in rss] == [new["metadata"]["name"], old["metadata"]["name"]]
    assert rss[-1]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
    assert rss[-1]["spec"]["replicas"] == 3

    k(cluster, ns, "rollout", "pause", "deployment/web")
    k(cluster, ns, "rollout", "restart", "deployment/web", check=False)  # refused while paused
    k(cluster, ns, "rollout", "resume", "deployment/web")
    k(cluster, ns, "rollout", "restart", "deployment/web")
    rolled_out(cluster, ns)
    assert len(replicasets(cluster, ns)) == 3

    k(cluster, ns, "scale", "deployment/web", "--replicas=1")
    until(lambda: len(live_pods(cluster, ns)) == 1, what="scale down to 1 pod")
    status = get_json(cluster, ns, "deployment", "web")["status"]
    until(lambda: get_json(cluster, ns, "deployment", "web")["status"].get("replicas") == 1, what="status.replicas 1")
    assert status["observedGeneration"] >= 1

    events = get_json(cluster, ns, "events", "--field-selector", "reason=ScalingReplicaSet")["items"]
    assert {e["source"]["component"] for e in events} == {"deployment-controller"}
    assert any(e["message"].startswith("Scaled up replica set web-") and e["message"].endswith("from 0 to 3")
               for e in events)
