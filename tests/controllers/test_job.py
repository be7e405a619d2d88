"""job-controller and ttl-after-finished-controller against an in-process API server.

Facts from kube-controller-manager 1.33 recorded here: Job pods are named `<job>-<random>`
(Indexed: `<job>-<index>-<random>`) and carry the `batch.kubernetes.io/job-tracking` finalizer
until counted; Indexed pods get the `batch.kubernetes.io/job-completion-index` annotation and
label, hostname `<job>-<index>` and the JOB_COMPLETION_INDEX env var; status always has
`ready`, `terminating` and `uncountedTerminatedPods: {}`; a Job that reaches its completions
gets SuccessCriteriaMet then Complete (reason CompletionsReached, "Reached expected number of
succeeded pods") and a `Completed` event; too many failures give FailureTarget then Failed
with reason BackoffLimitExceeded ("Job has reached the specified backoff limit");
activeDeadlineSeconds gives DeadlineExceeded ("Job was active longer than specified
deadline"); suspend gives Suspended/JobSuspended; pod failure back-off is 10 s doubling to
10 minutes (DefaultJobPodFailureBackOff / MaxJobPodFailureBackOff).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from pykube_server.api import errors
from pykube_server.client.rest import JOBS, Client
from pykube_server.controllers.job import (
    COMPLETION_INDEX, INDEX_FAILURE_COUNT, INDEX_IGNORED_FAILURE_COUNT, MAX_POD_FAILURE_BACKOFF, POD_FAILURE_BACKOFF,
    TRACKING_FINALIZER, format_indexes, index_failure_counts, is_index_failed, parse_indexes,
)
from pykube_server.testing import LocalCluster

from tests.controllers.workloads import TEMPLATE_SPEC, event_reasons, eventually, pods_of, running, set_pod_status

NS = "default"


def job(name: str, **spec: object) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": TEMPLATE_SPEC}, **spec}}


@pytest.fixture
async def client(cluster: LocalCluster) -> AsyncIterator[Client]:
    async with running(cluster, ["job-controller", "ttl-after-finished-controller"]) as c:
        yield c


def cond(obj: dict, kind: str) -> dict | None:
    return next((c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), None)


async def wait_pods(client: Client, selector: str, count: int) -> list[dict]:
    async def check() -> tuple[list[dict]] | None:
        pods = [p for p in await pods_of(client, NS, selector) if not p["metadata"].get("deletionTimestamp")]
        return (pods,) if len(pods) == count else None
    return (await eventually(check, timeout=30))[0]


def test_index_formatting() -> None:
    assert format_indexes({0, 1, 2, 4, 6, 7}) == "0-2,4,6-7"
    assert parse_indexes("0-2,4,6-7", 7) == {0, 1, 2, 4, 6}
    assert (POD_FAILURE_BACKOFF, MAX_POD_FAILURE_BACKOFF) == (10.0, 600.0)


async def test_completions_and_parallelism(client: Client) -> None:
    await client.create(JOBS, job("pi", completions=3, parallelism=2), namespace=NS)
    pods = await wait_pods(client, "job-name=pi", 2)
    for pod in pods:
        assert pod["metadata"]["name"].startswith("pi-") and len(pod["metadata"]["name"]) == len("pi-") + 5
        assert TRACKING_FINALIZER in pod["metadata"]["finalizers"]
        ref = pod["metadata"]["ownerReferences"][0]
        assert ref["kind"] == "Job" and ref["controller"] and ref["blockOwnerDeletion"]
    j = await eventually(lambda: _job_with(client, "pi", lambda s: s.get("active") == 2))
    assert j["status"]["ready"] == 0 and j["status"]["terminating"] == 0
    assert j["status"]["uncountedTerminatedPods"] == {} and j["status"]["startTime"]
    await set_pod_status(client, pods[0], "Running", ready=True)
    await eventually(lambda: _job_with(client, "pi", lambda s: s.get("ready") == 1))
    for pod in pods:
        await set_pod_status(client, pod, "Succeeded", exit_code=0)
    third = await eventually(lambda: _new_pod(client, "job-name=pi", {p["metadata"]["name"] for p in pods}), timeout=30)
    await set_pod_status(client, third, "Succeeded", exit_code=0)
    done = await eventually(lambda: _job_with(client, "pi", lambda s: cond({"status": s}, "Complete")), timeout=30)
    st = done["status"]
    assert st["succeeded"] == 3 and "active" not in st and "failed" not in st and st["completionTime"]
    complete, met = cond(done, "Complete"), cond(done, "SuccessCriteriaMet")
    assert complete and met and complete["reason"] == met["reason"] == "CompletionsReached"
    assert complete["message"] == "Reached expected number of succeeded pods"
    async def finalizers_gone() -> bool:
        return all(TRACKING_FINALIZER not in (p["metadata"].get("finalizers") or []) for p in await pods_of(client, NS, "job-name=pi"))
    await eventually(finalizers_gone)
    await eventually(lambda: _has_events(client, "pi", {"SuccessfulCreate", "Completed"}))


async def test_indexed_job(client: Client) -> None:
    await client.create(JOBS, job("ix", completions=3, parallelism=3, completionMode="Indexed"), namespace=NS)
    pods = await wait_pods(client, "job-name=ix", 3)
    by_index = {p["metadata"]["annotations"][COMPLETION_INDEX]: p for p in pods}
    assert sorted(by_index) == ["0", "1", "2"]
    for index, pod in by_index.items():
        assert pod["metadata"]["labels"][COMPLETION_INDEX] == index
        assert pod["metadata"]["name"].startswith(f"ix-{index}-")
        assert pod["spec"]["hostname"] == f"ix-{index}"
        env = pod["spec"]["containers"][0]["env"]
        assert env[0]["name"] == "JOB_COMPLETION_INDEX"
    await set_pod_status(client, by_index["1"], "Succeeded", exit_code=0)
    await eventually(lambda: _job_with(client, "ix", lambda s: s.get("completedIndexes") == "1"))
    await set_pod_status(client, by_index["0"], "Failed", exit_code=1)
    await set_pod_status(client, by_index["2"], "Succeeded", exit_code=0)
    j = await eventually(lambda: _job_with(client, "ix", lambda s: s.get("failed") == 1 and s.get("completedIndexes") == "1-2"))
    assert j["status"]["succeeded"] == 2


async def test_backoff_limit_exceeded(client: Client) -> None:
    await client.create(JOBS, job("bad", backoffLimit=0), namespace=NS)
    [pod] = await wait_pods(client, "job-name=bad", 1)
    await set_pod_status(client, pod, "Failed", exit_code=2)
    failed = await eventually(lambda: _job_with(client, "bad", lambda s: cond({"status": s}, "Failed")), timeout=30)
    for kind in ("Failed", "FailureTarget"):
        c = cond(failed, kind)
        assert c and c["reason"] == "BackoffLimitExceeded" and c["message"] == "Job has reached the specified backoff limit"
    assert failed["status"]["failed"] == 1 and "completionTime" not in failed["status"]
    await eventually(lambda: _has_events(client, "bad", {"BackoffLimitExceeded"}))


async def test_failed_pod_replaced_after_backoff(client: Client) -> None:
    await client.create(JOBS, job("retry", backoffLimit=3), namespace=NS)
    [pod] = await wait_pods(client, "job-name=retry", 1)
    await set_pod_status(client, pod, "Failed", exit_code=1)
    await eventually(lambda: _job_with(client, "retry", lambda s: s.get("failed") == 1 and not s.get("active")))
    # the replacement waits out the 10 s back-off
    replacement = await eventually(lambda: _new_pod(client, "job-name=retry", {pod["metadata"]["name"]}), timeout=25)
    assert replacement["metadata"]["name"] != pod["metadata"]["name"]


async def test_active_deadline(client: Client) -> None:
    await client.create(JOBS, job("slow", activeDeadlineSeconds=1), namespace=NS)
    failed = await eventually(lambda: _job_with(client, "slow", lambda s: cond({"status": s}, "Failed")), timeout=30)
    c = cond(failed, "Failed")
    assert c["reason"] == "DeadlineExceeded" and c["message"] == "Job was active longer than specified deadline"


async def test_suspend_and_resume(client: Client) -> None:
    await client.create(JOBS, job("sus", parallelism=2, completions=2), namespace=NS)
    await wait_pods(client, "job-name=sus", 2)
    await client.patch(JOBS, "sus", {"spec": {"suspend": True}}, namespace=NS)
    j = await eventually(lambda: _job_with(client, "sus", lambda s: cond({"status": s}, "Suspended")))
    c = cond(j, "Suspended")
    assert c["status"] == "True" and c["reason"] == "JobSuspended" and c["message"] == "Job suspended"
    await wait_pods(client, "job-name=sus", 0)
    await client.patch(JOBS, "sus", {"spec": {"suspend": False}}, namespace=NS)
    j = await eventually(lambda: _job_with(client, "sus", lambda s: (cond({"status": s}, "Suspended") or {}).get("status") == "False"))
    assert cond(j, "Suspended")["reason"] == "JobResumed"
    await wait_pods(client, "job-name=sus", 2)
    j = await client.get(JOBS, "sus", namespace=NS)
    assert "failed" not in j["status"]  # pods deleted by suspension are not failures


async def test_pod_failure_policy_fail_job(client: Client) -> None:
    policy = {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [42]}}]}
    await client.create(JOBS, job("pfp", podFailurePolicy=policy), namespace=NS)
    [pod] = await wait_pods(client, "job-name=pfp", 1)
    await set_pod_status(client, pod, "Failed", exit_code=42)
    failed = await eventually(lambda: _job_with(client, "pfp", lambda s: cond({"status": s}, "Failed")), timeout=30)
    c = cond(failed, "Failed")
    assert c["reason"] == "PodFailurePolicy"
    assert c["message"] == (f"Container c for pod {NS}/{pod['metadata']['name']} failed with exit code 42 "
                            "matching FailJob rule at index 0")


async def test_ttl_after_finished(client: Client) -> None:
    await client.create(JOBS, job("ttl", ttlSecondsAfterFinished=0), namespace=NS)
    [pod] = await wait_pods(client, "job-name=ttl", 1)
    await set_pod_status(client, pod, "Succeeded", exit_code=0)

    async def deleted() -> bool:  # Foreground: the garbage collector (not running here) finishes it
        try:
            j = await client.get(JOBS, "ttl", namespace=NS)
        except errors.NotFound:
            return True
        return bool(j["metadata"].get("deletionTimestamp")) and "foregroundDeletion" in j["metadata"]["finalizers"]
    await eventually(deleted, timeout=30)


async def _job_with(client: Client, name: str, pred) -> dict | None:  # type: ignore[no-untyped-def]
    j = await client.get(JOBS, name, namespace=NS)
    return j if pred(j.get("status") or {}) else None


async def _new_pod(client: Client, selector: str, old: set[str]) -> dict | None:
    for pod in await pods_of(client, NS, selector):
        if pod["metadata"]["name"] not in old and not pod["metadata"].get("deletionTimestamp"):
            return pod
    return None


async def _has_events(client: Client, name: str, reasons: set[str]) -> bool:
    return reasons <= set(await event_reasons(client, NS, name))


async def test_deleting_a_job_releases_its_pods_tracking_finalizers(client: Client) -> None:
    """Pods of a deleted Job must not stay Terminating: the controller takes its tracking
    finalizer off them once their Job is gone (the garbage collector then deletes them)."""
    await client.create(JOBS, job("gone", parallelism=2, completions=2), namespace=NS)
    pods = await eventually(lambda: _pods_with_finalizer(client, "gone", 2))
    assert all("batch.kubernetes.io/job-tracking" in p["metadata"]["finalizers"] for p in pods)
    await client.delete(JOBS, "gone", namespace=NS, propagation_policy="Background")
    await eventually(lambda: _released(client, "gone"))


async def _pods_with_finalizer(client: Client, name: str, count: int) -> list:
    pods = await pods_of(client, NS, f"job-name={name}")
    tracked = [p for p in pods if "batch.kubernetes.io/job-tracking" in (p["metadata"].get("finalizers") or [])]
    return tracked if len(tracked) == count else []


async def _released(client: Client, name: str) -> bool:
    """The Job is gone and none of its pods keeps the tracking finalizer (no garbage collector
    runs here, so the pods themselves stay)."""
    pods = await pods_of(client, NS, f"job-name={name}")
    return bool(pods) and not any("batch.kubernetes.io/job-tracking" in (p["metadata"].get("finalizers") or [])
                                  for p in pods)


# --- backoffLimitPerIndex / maxFailedIndexes / FailIndex (kube 1.33 JobBackoffLimitPerIndex) -------------------
# Facts: pods of such Jobs carry `batch.kubernetes.io/job-index-failure-count` (earlier failures of
# their index; "0" on the first pod); a failed pod fails its index once that count reached
# backoffLimitPerIndex, or at once on a FailIndex rule; failed indexes are listed in
# status.failedIndexes ("1,3-5" notation, "" while none) and not retried; the Job then fails with
# FailedIndexes ("Job has failed indexes") once every index completed or failed, or at once with
# MaxFailedIndexesExceeded ("Job has exceeded the specified maximal number of failed indexes").


def _failed_pod(index: int, failures: int, exit_code: int = 1, ignored: int = 0) -> dict:
    annotations = {COMPLETION_INDEX: str(index), INDEX_FAILURE_COUNT: str(failures)}
    if ignored:
        annotations[INDEX_IGNORED_FAILURE_COUNT] = str(ignored)
    return {"metadata": {"name": f"p{index}-{failures}", "namespace": NS, "annotations": annotations},
            "status": {"phase": "Failed", "containerStatuses": [
                {"name": "c", "state": {"terminated": {"exitCode": exit_code}}}]}}


def test_index_failure_counting() -> None:
    per_index = {"spec": {"completionMode": "Indexed", "completions": 3, "backoffLimitPerIndex": 1}}
    assert not is_index_failed(per_index, _failed_pod(0, 0))
    assert is_index_failed(per_index, _failed_pod(0, 1))
    policy = {"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [3]}},
                        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [4]}}]}
    with_policy = {"spec": {**per_index["spec"], "podFailurePolicy": policy}}
    assert is_index_failed(with_policy, _failed_pod(0, 0, exit_code=3))
    assert not is_index_failed(with_policy, _failed_pod(0, 5, exit_code=4))
    counts = index_failure_counts(with_policy, [_failed_pod(0, 0), _failed_pod(0, 1), _failed_pod(2, 0, exit_code=4)])
    assert counts == {0: (2, 0), 2: (0, 1)}


async def test_max_failed_indexes_exceeded(client: Client) -> None:
    await client.create(JOBS, job("mfi", completions=3, parallelism=1, completionMode="Indexed",
                                  backoffLimitPerIndex=0, maxFailedIndexes=0), namespace=NS)
    [pod] = await wait_pods(client, "job-name=mfi", 1)
    assert pod["metadata"]["annotations"][INDEX_FAILURE_COUNT] == "0"
    assert INDEX_IGNORED_FAILURE_COUNT not in pod["metadata"]["annotations"]
    j = await client.get(JOBS, "mfi", namespace=NS)
    assert j["spec"]["backoffLimit"] == 2**31 - 1
    await set_pod_status(client, pod, "Failed", exit_code=1)
    failed = await eventually(lambda: _job_with(client, "mfi", lambda s: cond({"status": s}, "Failed")), timeout=30)
    for kind in ("Failed", "FailureTarget"):
        c = cond(failed, kind)
        assert c and c["reason"] == "MaxFailedIndexesExceeded"
        assert c["message"] == "Job has exceeded the specified maximal number of failed indexes"
    assert failed["status"]["failedIndexes"] == "0" and failed["status"]["failed"] == 1
    assert len(await pods_of(client, NS, "job-name=mfi")) == 1  # the failed index is not retried


async def test_fail_index_action(client: Client) -> None:
    policy = {"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [3]}}]}
    await client.create(JOBS, job("fix", completions=2, parallelism=2, completionMode="Indexed",
                                  backoffLimitPerIndex=1, podFailurePolicy=policy), namespace=NS)
    pods = await wait_pods(client, "job-name=fix", 2)
    by_index = {p["metadata"]["annotations"][COMPLETION_INDEX]: p for p in pods}
    j = await client.get(JOBS, "fix", namespace=NS)
    assert j["status"]["failedIndexes"] == ""
    await set_pod_status(client, by_index["1"], "Failed", exit_code=3)
    await eventually(lambda: _job_with(client, "fix", lambda s: s.get("failedIndexes") == "1"))
    j = await client.get(JOBS, "fix", namespace=NS)
    assert not cond(j, "FailureTarget")  # index 0 still runs
    await set_pod_status(client, by_index["0"], "Succeeded", exit_code=0)
    failed = await eventually(lambda: _job_with(client, "fix", lambda s: cond({"status": s}, "Failed")), timeout=30)
    c = cond(failed, "Failed")
    assert (c["reason"], c["message"]) == ("FailedIndexes", "Job has failed indexes")
    st = failed["status"]
    assert (st["failedIndexes"], st["completedIndexes"], st["failed"], st["succeeded"]) == ("1", "0", 1, 1)


async def test_backoff_limit_per_index_retries_then_fails_the_index(client: Client) -> None:
    await client.create(JOBS, job("bpi", completions=1, completionMode="Indexed", backoffLimitPerIndex=1),
                        namespace=NS)
    [pod] = await wait_pods(client, "job-name=bpi", 1)
    await set_pod_status(client, pod, "Failed", exit_code=1)
    retry = await eventually(lambda: _new_pod(client, "job-name=bpi", {pod["metadata"]["name"]}), timeout=25)
    assert retry["metadata"]["annotations"][INDEX_FAILURE_COUNT] == "1"
    j = await client.get(JOBS, "bpi", namespace=NS)
    assert j["status"]["failedIndexes"] == "" and not cond(j, "FailureTarget")
    await set_pod_status(client, retry, "Failed", exit_code=1)
    failed = await eventually(lambda: _job_with(client, "bpi", lambda s: cond({"status": s}, "Failed")), timeout=30)
    assert cond(failed, "Failed")["reason"] == "FailedIndexes"
    assert failed["status"]["failedIndexes"] == "0" and failed["status"]["failed"] == 2
