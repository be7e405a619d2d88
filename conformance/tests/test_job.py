"""Jobs: test/e2e/apps/job.go (the conformance tests; their containers run shell commands, which the
process runtime runs as real processes)."""

from __future__ import annotations

import datetime
import uuid

from kubernetes import client

from conformance.harness import conformance, wait_for
from conformance.tests._common import BUSYBOX, retry_on_conflict, wait_default_service_account, watch_until

COMMANDS = {"notTerminate": ["sleep", "1000000"], "succeed": ["/bin/sh", "-c", "exit 0"],
            "fail": ["/bin/sh", "-c", "exit 1"]}


def new_test_job(behavior: str, name: str, parallelism: int, completions: int, backoff_limit: int = 6) -> dict:
    """e2ejob.NewTestJob with restartPolicy Never: a busybox container `c` with an emptyDir at /data."""
    return {"metadata": {"name": name},
            "spec": {"parallelism": parallelism, "completions": completions, "backoffLimit": backoff_limit,
                     "manualSelector": False,
                     "template": {"metadata": {"labels": {"somekey": "somevalue"}},
                                  "spec": {"restartPolicy": "Never",
                                           "volumes": [{"name": "data", "emptyDir": {}}],
                                           "containers": [{"name": "c", "image": BUSYBOX,
                                                           "command": COMMANDS[behavior],
                                                           "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                                                           "securityContext": {}}]}}}}


def job_pods(core: client.CoreV1Api, ns: str, name: str) -> list:
    """e2ejob.GetJobPods: the pods labelled with the job's name."""
    return core.list_namespaced_pod(ns, label_selector=f"batch.kubernetes.io/job-name={name}").items


def wait_job_pods_running(core: client.CoreV1Api, ns: str, name: str, n: int) -> None:
    wait_for(lambda: sum(p.status.phase == "Running" for p in job_pods(core, ns, name)) == n, timeout=60,
             what=f"{n} running pods of job {name}")


def controller_of(pod):  # type: ignore[no-untyped-def]
    return next((o for o in pod.metadata.owner_references or [] if o.controller), None)


@conformance("[sig-apps] Job should delete a job [Conformance]")
def test_job_delete(api, ns) -> None:  # type: ignore[no-untyped-def]
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    batch.create_namespaced_job(ns, new_test_job("notTerminate", "foo", 2, 4))
    wait_job_pods_running(core, ns, "foo", 2)
    # e2eresource.DeleteResourceAndWaitForGC: background deletion, then the pods go too
    batch.delete_namespaced_job("foo", ns, propagation_policy="Background")
    wait_for(lambda: not job_pods(core, ns, "foo"), timeout=30, what="the job's pods to be collected")
    try:
        batch.read_namespaced_job("foo", ns)
    except client.exceptions.ApiException as exc:
        assert exc.status == 404
    else:
        raise AssertionError("the job still exists")


@conformance("[sig-apps] Job should adopt matching orphans and release non-matching pods [Conformance]")
def test_job_adopt_and_release(api, ns) -> None:  # type: ignore[no-untyped-def]
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    job = batch.create_namespaced_job(ns, new_test_job("notTerminate", "adopt-release", 2, 4))
    wait_job_pods_running(core, ns, "adopt-release", 2)
    pods = job_pods(core, ns, "adopt-release")
    assert len(pods) == 2
    target = pods[0].metadata.name

    def orphan() -> None:
        pod = core.read_namespaced_pod(target, ns)
        pod.metadata.owner_references = None
        body = core.api_client.sanitize_for_serialization(pod)
        body["metadata"]["ownerReferences"] = None
        core.replace_namespaced_pod(target, ns, body)
    retry_on_conflict(orphan)

    def adopted() -> bool:
        ref = controller_of(core.read_namespaced_pod(target, ns))
        if ref is None:
            return False
        assert ref.kind == "Job" and ref.name == "adopt-release" and ref.uid == job.metadata.uid, ref
        return True
    wait_for(adopted, timeout=30, what="the job to re-adopt the pod")

    def unlabel() -> None:
        body = core.api_client.sanitize_for_serialization(core.read_namespaced_pod(target, ns))
        body["metadata"]["labels"] = None
        core.replace_namespaced_pod(target, ns, body)
    retry_on_conflict(unlabel)
    wait_for(lambda: controller_of(core.read_namespaced_pod(target, ns)) is None, timeout=60,
             what="the job to release the pod")


@conformance("[sig-apps] Job should apply changes to a job status [Conformance]")
def test_job_apply_status(api, ns) -> None:  # type: ignore[no-untyped-def]
    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    job = batch.create_namespaced_job(ns, new_test_job("notTerminate", "suspend-false-to-true", 2, 4))
    name = job.metadata.name
    wait_job_pods_running(core, ns, name, 2)

    now1 = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    patched = batch.patch_namespaced_job_status(name, ns, {
        "metadata": {"annotations": {"patchedstatus": "true"}},
        "status": {"conditions": [{"type": "CustomConditionType", "status": "True",
                                   "lastTransitionTime": now1.strftime("%Y-%m-%dT%H:%M:%SZ")}]}},
        _content_type="application/merge-patch+json")
    cond = next((c for c in patched.status.conditions or [] if c.type == "CustomConditionType"), None)
    assert cond is not None, "patched object does not have the required condition"
    assert cond.last_transition_time == now1
    assert patched.metadata.annotations.get("patchedstatus") == "true"

    now2 = now1 + datetime.timedelta(seconds=1)

    def update():  # type: ignore[no-untyped-def]
        current = batch.api_client.sanitize_for_serialization(batch.read_namespaced_job(name, ns))
        for c in current["status"].get("conditions") or []:
            if c["type"] == "CustomConditionType":
                c["lastTransitionTime"] = now2.strftime("%Y-%m-%dT%H:%M:%SZ")
                break
        else:
            raise AssertionError("the object lost the required condition")
        return batch.replace_namespaced_job_status(name, ns, current)
    updated = retry_on_conflict(update)
    cond = next((c for c in updated.status.conditions or [] if c.type == "CustomConditionType"), None)
    assert cond is not None and cond.last_transition_time == now2

    got = batch.read_namespaced_job_status(name, ns)
    assert got.metadata.uid == job.metadata.uid


@conformance("[sig-apps] Job should manage the lifecycle of a job [Conformance]")
def test_job_lifecycle(api, ns) -> None:  # type: ignore[no-untyped-def]
    batch = client.BatchV1Api(api)
    wait_default_service_account(api, ns)
    name = f"e2e-{uuid.uuid4().hex[:5]}"
    selector = f"e2e-job-label={name}"
    listed = batch.list_namespaced_job(ns, label_selector=selector)
    body = new_test_job("succeed", name, 2, 4)
    body["metadata"]["labels"] = {"e2e-job-label": name}
    body["spec"]["suspend"] = True
    job = batch.create_namespaced_job(ns, body)
    assert job.metadata.resource_version.isdigit()

    patched = batch.patch_namespaced_job(name, ns, {"metadata": {"labels": {name: "patched"}}})
    assert int(job.metadata.resource_version) < int(patched.metadata.resource_version)
    watch_until(batch.list_namespaced_job, ns, selector, listed.metadata.resource_version,
                lambda t, j: t == "MODIFIED" and j.metadata.name == name and j.metadata.namespace == ns
                and (j.metadata.labels or {}).get(name) == "patched", timeout=60)
    assert patched.metadata.labels.get(name) == "patched"

    before_update = {}

    def update():  # type: ignore[no-untyped-def]
        current = batch.read_namespaced_job(name, ns)
        before_update["rv"] = current.metadata.resource_version
        current.spec.suspend = False
        current.metadata.annotations = {**(current.metadata.annotations or {}), "updated": "true"}
        return batch.replace_namespaced_job(name, ns, current)
    updated = retry_on_conflict(update)
    watch_until(batch.list_namespaced_job, ns, selector, before_update["rv"],
                lambda t, j: t == "MODIFIED" and j.metadata.name == name
                and (j.metadata.annotations or {}).get("updated") == "true", timeout=60)
    assert updated.metadata.annotations.get("updated") == "true"

    jobs = batch.list_job_for_all_namespaces(label_selector=selector)
    assert len(jobs.items) == 1

    # e2ejob.WaitForJobComplete: succeeded == completions and a Complete condition, reason CompletionsReached
    def complete() -> bool:
        j = batch.read_namespaced_job(name, ns)
        return (j.status.succeeded or 0) == 4 and any(
            c.type == "Complete" and c.status == "True" and c.reason == "CompletionsReached"
            for c in j.status.conditions or [])
    wait_for(complete, timeout=120, what="the job to complete")

    batch.delete_collection_namespaced_job(ns, propagation_policy="Background", label_selector=selector)
    watch_until(batch.list_namespaced_job, ns, selector, updated.metadata.resource_version,
                lambda t, j: t == "DELETED" and j.metadata.name == name
                and (j.metadata.labels or {}).get("e2e-job-label") == name, timeout=60)
    assert batch.list_job_for_all_namespaces(label_selector=selector).items == []
