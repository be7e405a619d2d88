"""Jobs whose pods' outcome matters: the Indexed, podFailurePolicy, backoffLimitPerIndex and
successPolicy conformance tests of test/e2e/apps/job.go. The pods run e2ejob.NewTestJob's busybox
shell scripts as real local processes (a hostPath directory carries marker files between the
pods of a job pinned to one node)."""

from __future__ import annotations

import time
import uuid

from kubernetes import client

from conformance.harness import conformance, wait_for
from conformance.tests._common import BUSYBOX, PAUSE, wait_default_service_account

SCRIPTS = {
    "fail": ["/bin/sh", "-c", "exit 1"],
    "succeed": ["/bin/sh", "-c", "exit 0"],
    "failOddSucceedEven": ["sh", "-c", "if [ $(expr ${JOB_COMPLETION_INDEX} % 2) -ne 0 ]; then exit 1; else exit 0; fi"],
    "failOnce": ["/bin/sh", "-c", "if [[ -r /data/foo ]]; then exit 0; else touch /data/foo; exit 1; fi"],
    "notTerminateOncePerIndex": ["/bin/sh", "-c", "if [[ -r /data/foo-$JOB_COMPLETION_INDEX ]]; then exit 0; "
                                 "else touch /data/foo-$JOB_COMPLETION_INDEX; sleep 1000000; fi"],
}
MAX_INT32 = 2**31 - 1


def new_test_job(behavior: str, name: str, policy: str, parallelism: int, completions: int,
                 backoff_limit: int | None = 6, node: str | None = None) -> dict:
    """e2ejob.NewTestJob / NewTestJobOnNode: busybox container `c` with the volume `data` at
    /data (an emptyDir, or a hostPath directory when the job is pinned to a node)."""
    container: dict = {"name": "c", "image": BUSYBOX, "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                       "securityContext": {}}
    if behavior == "notTerminate":
        container["image"] = PAUSE
    elif behavior in SCRIPTS:
        container["command"] = SCRIPTS[behavior]
    volume: dict = {"name": "data", "emptyDir": {}}
    pod_spec: dict = {"restartPolicy": policy, "containers": [container], "volumes": [volume]}
    if node:
        pod_spec["nodeSelector"] = {"kubernetes.io/hostname": node}
        if behavior in ("failOnce", "notTerminateOncePerIndex"):
            volume.pop("emptyDir")
            volume["hostPath"] = {"path": f"/tmp/job-e2e/{uuid.uuid4().hex[:10]}", "type": "DirectoryOrCreate"}
            container["securityContext"]["privileged"] = True
    spec: dict = {"parallelism": parallelism, "completions": completions, "manualSelector": False,
                  "template": {"metadata": {"labels": {"somekey": "somevalue"}}, "spec": pod_spec}}
    if backoff_limit is not None:
        spec["backoffLimit"] = backoff_limit
    return {"metadata": {"name": name}, "spec": spec}


def create_job(api, ns: str, job: dict):  # type: ignore[no-untyped-def]
    wait_default_service_account(api, ns)
    return client.BatchV1Api(api).create_namespaced_job(ns, job)


def condition(job, kind: str):  # type: ignore[no-untyped-def]
    return next((c for c in job.status.conditions or [] if c.type == kind and c.status == "True"), None)


def read(api, ns: str, name: str):  # type: ignore[no-untyped-def]
    return client.BatchV1Api(api).read_namespaced_job(name, ns)


def wait_condition(api, ns: str, name: str, kind: str, reason: str | None = None, timeout: float = 120,  # type: ignore[no-untyped-def]
                   max_failed: int | None = None):
    """e2ejob.WaitForJobCondition (and WaitForJobFailed for `Failed`); with `max_failed`, more
    failed pods than that means the condition can no longer be the expected outcome: stop early."""
    deadline = time.monotonic() + timeout
    while True:
        job = read(api, ns, name)
        c = condition(job, kind)
        if c is not None and (reason is None or c.reason == reason):
            return job
        if max_failed is not None and (job.status.failed or 0) > max_failed:
            raise AssertionError(f"job {name} has {job.status.failed} failed pods, at most {max_failed} expected: "
                                 f"{job.status}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for job {name} condition {kind} {reason or ''}")
        time.sleep(0.5)


def wait_complete(api, ns: str, name: str, reason: str, completions: int, timeout: float = 120):  # type: ignore[no-untyped-def]
    """e2ejob.WaitForJobComplete: `completions` pods succeeded and Complete with `reason`."""
    job = wait_condition(api, ns, name, "Complete", timeout=timeout)
    assert job.status.succeeded == completions, job.status
    assert condition(job, "Complete").reason == reason, job.status.conditions
    return job


def any_node(api) -> str:  # type: ignore[no-untyped-def]
    """e2enode.GetRandomReadySchedulableNode."""
    for node in client.CoreV1Api(api).list_node().items:
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        if ready and not node.spec.unschedulable:
            return str(node.metadata.name)
    raise AssertionError("no ready schedulable node")


@conformance("[sig-apps] Job should create pods for an Indexed job with completion indexes and specified hostname "
             "[Conformance]")
def test_indexed_job_hostnames(api, ns) -> None:  # type: ignore[no-untyped-def]
    job = new_test_job("succeed", "indexed-job", "Never", 2, 4)
    job["spec"]["completionMode"] = "Indexed"
    create_job(api, ns, job)
    wait_complete(api, ns, "indexed-job", "CompletionsReached", 4)
    pods = client.CoreV1Api(api).list_namespaced_pod(ns, label_selector="batch.kubernetes.io/job-name=indexed-job")
    indexes = set()
    for pod in pods.items:
        if pod.status.phase == "Succeeded" and pod.metadata.annotations:
            ix = int(pod.metadata.annotations["batch.kubernetes.io/job-completion-index"])
            indexes.add(ix)
            assert pod.spec.hostname == f"indexed-job-{ix}", pod.spec.hostname
    assert sorted(indexes) == [0, 1, 2, 3]


@conformance("[sig-apps] Job should run a job to completion when tasks sometimes fail and are locally restarted "
             "[Conformance]")
def test_job_fail_once_locally_restarted(api, ns) -> None:  # type: ignore[no-untyped-def]
    create_job(api, ns, new_test_job("failOnce", "fail-once-local", "OnFailure", 2, 4))
    wait_complete(api, ns, "fail-once-local", "CompletionsReached", 4, timeout=180)


@conformance("[sig-apps] Job should allow to use the pod failure policy on exit code to fail the job early "
             "[Conformance]")
def test_job_pod_failure_policy_fail_job(api, ns) -> None:  # type: ignore[no-untyped-def]
    job = new_test_job("failOnce", "pod-failure-failjob", "Never", 2, 4, node=any_node(api))
    job["spec"]["podFailurePolicy"] = {"rules": [{"action": "FailJob",
                                                  "onExitCodes": {"operator": "In", "values": [1]}}]}
    create_job(api, ns, job)
    wait_condition(api, ns, "pod-failure-failjob", "Failed")


@conformance("[sig-apps] Job should allow to use a pod failure policy to ignore failure matching on "
             "DisruptionTarget condition [Conformance]")
def test_job_pod_failure_policy_ignore_disruption(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    name = "evicted-pod-ignore-on-disruption-condition"
    job = new_test_job("notTerminateOncePerIndex", name, "Never", 3, 3, backoff_limit=2, node=any_node(api))
    job["spec"]["completionMode"] = "Indexed"
    job["spec"]["podFailurePolicy"] = {"rules": [{"action": "Ignore", "onPodConditions": [
        {"type": "DisruptionTarget", "status": "True"}]}]}
    create_job(api, ns, job)
    wait_for(lambda: read(api, ns, name).status.ready == 3, timeout=90, what="3 ready pods")
    selector = f"batch.kubernetes.io/job-name={name}"
    pods = [p for p in core.list_namespaced_pod(ns, label_selector=selector).items if p.status.phase == "Running"]
    assert len(pods) == 3, [p.status.phase for p in pods]
    for pod in pods:
        core.create_namespaced_pod_eviction(pod.metadata.name, ns, {
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": pod.metadata.name, "namespace": ns}})
    for pod in pods:
        def gone(pod_name: str = pod.metadata.name) -> bool:
            try:
                core.read_namespaced_pod(pod_name, ns)
            except client.exceptions.ApiException as exc:
                return exc.status == 404
            return False
        wait_for(gone, timeout=120, what=f"evicted pod {pod.metadata.name} to be deleted")
    wait_complete(api, ns, name, "CompletionsReached", 3, timeout=180)


def assert_settled(job) -> None:  # type: ignore[no-untyped-def]
    assert job.status.active in (None, 0), job.status
    assert job.status.ready == 0, job.status
    assert job.status.terminating == 0, job.status


@conformance("[sig-apps] Job with successPolicy should succeeded when all indexes succeeded [Conformance]")
def test_job_success_policy_all_indexes(api, ns) -> None:  # type: ignore[no-untyped-def]
    name = "with-success-policy-all-index-succeeded"
    # upstream's behaviour "succeeded" is no case of NewTestJob: busybox runs its default command
    # (`sh` with no input), which exits 0 at once; `exit 0` is the same outcome
    job = new_test_job("succeed", name, "Never", 2, 2)
    job["spec"]["completionMode"] = "Indexed"
    job["spec"]["successPolicy"] = {"rules": [{"succeededCount": 2}]}
    create_job(api, ns, job)
    wait_condition(api, ns, name, "SuccessCriteriaMet", "SuccessPolicy")
    done = wait_complete(api, ns, name, "SuccessPolicy", 2)
    assert_settled(done)
    assert done.status.failed in (None, 0), done.status


@conformance("[sig-apps] Job with successPolicy succeededIndexes rule should succeeded even when some indexes "
             "remain pending [Conformance]")
def test_job_success_policy_succeeded_indexes(api, ns) -> None:  # type: ignore[no-untyped-def]
    name = "with-success-policy-succeeded-indexed"
    job = new_test_job("failOddSucceedEven", name, "Never", 2, 5)
    job["spec"]["completionMode"] = "Indexed"
    job["spec"]["successPolicy"] = {"rules": [{"succeededIndexes": "0"}]}
    create_job(api, ns, job)
    wait_condition(api, ns, name, "SuccessCriteriaMet", "SuccessPolicy")
    wait_complete(api, ns, name, "SuccessPolicy", 1)
    done = read(api, ns, name)
    assert done.status.completed_indexes == "0", done.status
    assert_settled(done)


@conformance("[sig-apps] Job with successPolicy succeededCount rule should succeeded even when some indexes "
             "remain pending [Conformance]")
def test_job_success_policy_succeeded_count(api, ns) -> None:  # type: ignore[no-untyped-def]
    name = "with-success-policy-succeeded-count"
    job = new_test_job("failOddSucceedEven", name, "Never", 2, 5, backoff_limit=MAX_INT32)
    job["spec"]["completionMode"] = "Indexed"
    job["spec"]["successPolicy"] = {"rules": [{"succeededCount": 1}]}
    create_job(api, ns, job)
    wait_condition(api, ns, name, "SuccessCriteriaMet", "SuccessPolicy")
    wait_complete(api, ns, name, "SuccessPolicy", 1)
    done = read(api, ns, name)
    assert done.status.completed_indexes == "0", done.status
    assert_settled(done)


@conformance("[sig-apps] Job should execute all indexes despite some failing when using backoffLimitPerIndex "
             "[Conformance]")
def test_job_backoff_limit_per_index(api, ns) -> None:  # type: ignore[no-untyped-def]
    name = "with-backoff-limit-per-index"
    job = new_test_job("failOddSucceedEven", name, "Never", 2, 4, backoff_limit=None)
    job["spec"].update({"backoffLimitPerIndex": 1, "completionMode": "Indexed"})
    create_job(api, ns, job)
    done = wait_condition(api, ns, name, "Failed", timeout=180, max_failed=4)
    assert done.status.failed_indexes == "1,3", done.status
    assert done.status.completed_indexes == "0,2", done.status
    assert done.status.failed == 4, done.status
    assert done.status.succeeded == 2, done.status


@conformance("[sig-apps] Job should terminate job execution when the number of failed indexes exceeds "
             "maxFailedIndexes [Conformance]")
def test_job_max_failed_indexes(api, ns) -> None:  # type: ignore[no-untyped-def]
    name = "with-max-failed-indexes"
    job = new_test_job("fail", name, "Never", 1, 4, backoff_limit=None)
    job["spec"].update({"backoffLimitPerIndex": 0, "maxFailedIndexes": 0, "completionMode": "Indexed"})
    create_job(api, ns, job)
    done = wait_condition(api, ns, name, "Failed", max_failed=1)
    assert done.status.failed_indexes == "0", done.status
    assert done.status.failed == 1, done.status


@conformance("[sig-apps] Job should mark indexes as failed when the FailIndex action is matched in "
             "podFailurePolicy [Conformance]")
def test_job_fail_index_action(api, ns) -> None:  # type: ignore[no-untyped-def]
    name = "matching-fail-index-action"
    job = new_test_job("failOddSucceedEven", name, "Never", 2, 2, backoff_limit=None)
    job["spec"].update({"backoffLimitPerIndex": 1, "completionMode": "Indexed", "podFailurePolicy": {"rules": [
        {"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [1]}}]}})
    create_job(api, ns, job)
    done = wait_condition(api, ns, name, "Failed", max_failed=1)
    assert done.status.failed_indexes == "1", done.status
    assert done.status.completed_indexes == "0", done.status
    assert done.status.failed == 1, done.status
    assert done.status.succeeded == 1, done.status
