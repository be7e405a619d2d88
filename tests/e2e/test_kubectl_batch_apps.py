"""The real kubectl against `pykube-server up` (controller manager included) for Jobs, CronJobs
and StatefulSets. Pods are moved along by writing pods/status as a kubelet would.

Facts recorded: `kubectl create job` output "job.batch/x created"; `kubectl wait
--for=condition=complete` prints "job.batch/x condition met"; `kubectl create job --from=cronjob/x`
creates a Job owned by the CronJob with the `cronjob.kubernetes.io/instantiate: manual`
annotation; a StatefulSet's pods appear in ordinal order; `kubectl rollout status` prints
"partitioned roll out complete: N new pods have been updated..." or "statefulset rolling update
complete N pods at revision R...".
"""

from __future__ import annotations

import json
import time

from tests.conftest import ServerProcess, requires_kubectl

pytestmark = requires_kubectl


def _pods(cluster: ServerProcess, ns: str, selector: str) -> list[dict]:
    out = cluster.kubectl("get", "pods", "-n", ns, "-l", selector, "-o", "json").stdout
    return [p for p in json.loads(out)["items"] if not p["metadata"].get("deletionTimestamp")]


def _poll(fn, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.2)


def _set_status(cluster: ServerProcess, ns: str, name: str, phase: str, ready: bool) -> None:
    status = {"status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}
    cluster.kubectl("patch", "pod", name, "-n", ns, "--subresource=status", "--type=merge", "-p", json.dumps(status),
                    check=False)


def test_job_completes_and_kubectl_wait(cluster: ServerProcess, namespace: str) -> None:
    out = cluster.kubectl("create", "job", "hello", "-n", namespace, "--image=busybox", "--", "true").stdout
    assert out.strip() == "job.batch/hello created"
    [pod] = _poll(lambda: _pods(cluster, namespace, "job-name=hello"))
    assert pod["metadata"]["ownerReferences"][0]["kind"] == "Job"
    # the kubelet may already have run `true`; if not, report success as it would
    _set_status(cluster, namespace, pod["metadata"]["name"], "Succeeded", False)
    waited = cluster.kubectl("wait", "--for=condition=complete", "job/hello", "-n", namespace, "--timeout=60s")
    assert waited.stdout.strip() == "job.batch/hello condition met"
    job = json.loads(cluster.kubectl("get", "job", "hello", "-n", namespace, "-o", "json").stdout)
    assert job["status"]["succeeded"] == 1 and job["status"]["completionTime"]


def test_cronjob_and_create_job_from_it(cluster: ServerProcess, namespace: str) -> None:
    out = cluster.kubectl("create", "cronjob", "tick", "-n", namespace, "--image=busybox", "--schedule=*/5 * * * *").stdout
    assert out.strip() == "cronjob.batch/tick created"
    out = cluster.kubectl("create", "job", "manual", "--from=cronjob/tick", "-n", namespace).stdout
    assert out.strip() == "job.batch/manual created"
    job = json.loads(cluster.kubectl("get", "job", "manual", "-n", namespace, "-o", "json").stdout)
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    assert job["metadata"]["ownerReferences"][0]["kind"] == "CronJob"
    _poll(lambda: _pods(cluster, namespace, "job-name=manual"))  # the job controller runs it


def test_statefulset_pods_in_order(cluster: ServerProcess, namespace: str) -> None:
    manifest = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
                "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                         "template": {"metadata": {"labels": {"app": "db"}},
                                      "spec": {"containers": [{"name": "c", "image": "busybox",
                                                              "command": ["sleep", "3600"]}]}}}}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=json.dumps(manifest))
    first = _poll(lambda: _pods(cluster, namespace, "app=db"))[0]
    assert first["metadata"]["name"] == "db-0"
    if len(_pods(cluster, namespace, "app=db")) == 1:  # no kubelet got to it yet: play the kubelet
        _set_status(cluster, namespace, "db-0", "Running", True)
    pods = _poll(lambda: (lambda ps: ps if len(ps) == 2 else None)(_pods(cluster, namespace, "app=db")))
    ready = next(c for c in pods[0]["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True" and pods[1]["metadata"]["creationTimestamp"] >= ready["lastTransitionTime"]
    _set_status(cluster, namespace, "db-1", "Running", True)
    out = cluster.kubectl("rollout", "status", "statefulset/db", "-n", namespace, "--timeout=60s").stdout
    assert out.strip() == "partitioned roll out complete: 2 new pods have been updated..."  # partition defaults to 0
