"""CronJobs: test/e2e/apps/cronjob.go ("should support CronJob API operations"; the scheduling tests,
which wait on minute-granular schedules, are in test_ctl_apps.py)."""

from __future__ import annotations

import datetime
import uuid

from kubernetes import client

from conformance.harness import conformance
from conformance.tests._common import BUSYBOX, EventStream, retry_on_conflict


def new_test_cronjob(name: str, schedule: str, policy: str, command: list[str] | None,
                     success_limit: int | None, failed_limit: int | None) -> dict:
    """Upstream's newTestCronJob: one busybox pod per job, restartPolicy OnFailure, an emptyDir at /data."""
    container: dict = {"name": "c", "image": BUSYBOX, "volumeMounts": [{"mountPath": "/data", "name": "data"}]}
    if command is not None:
        container["command"] = command
    spec: dict = {"schedule": schedule, "concurrencyPolicy": policy,
                  "jobTemplate": {"spec": {"parallelism": 1, "completions": 1, "backoffLimit": 1,
                                           "template": {"spec": {"restartPolicy": "OnFailure",
                                                                 "volumes": [{"name": "data", "emptyDir": {}}],
                                                                 "containers": [container]}}}}}
    if success_limit is not None:
        spec["successfulJobsHistoryLimit"] = success_limit
    if failed_limit is not None:
        spec["failedJobsHistoryLimit"] = failed_limit
    return {"metadata": {"name": name}, "spec": spec}


def rfc3339(t: datetime.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@conformance("[sig-apps] CronJob should support CronJob API operations [Conformance]")
def test_cronjob_api_operations(api, ns) -> None:  # type: ignore[no-untyped-def]
    batch = client.BatchV1Api(api)
    unique = f"{ns}-{uuid.uuid4().hex[:4]}"
    selector = f"special-label={unique}"
    template = new_test_cronjob("test-api", "* */1 * * ?", "Allow", ["/bin/true"], 1, 0)
    template["metadata"]["labels"] = {"special-label": unique}

    created = batch.create_namespaced_cron_job(ns, template)
    assert batch.read_namespaced_cron_job(created.metadata.name, ns).metadata.uid == created.metadata.uid
    cjs = batch.list_namespaced_cron_job(ns, label_selector=selector)
    assert len(cjs.items) == 1
    stream = EventStream(batch.list_namespaced_cron_job, ns, selector, cjs.metadata.resource_version)
    try:
        assert len(batch.list_cron_job_for_all_namespaces(label_selector=selector).items) == 1
        cluster_stream = EventStream(lambda _ns, **kw: batch.list_cron_job_for_all_namespaces(**kw), ns, selector,
                                     cjs.metadata.resource_version)
        cluster_stream.stop()

        patched = batch.patch_namespaced_cron_job(created.metadata.name, ns,
                                                  {"metadata": {"annotations": {"patched": "true"}}},
                                                  _content_type="application/merge-patch+json")
        assert patched.metadata.annotations.get("patched") == "true"

        def update():  # type: ignore[no-untyped-def]
            cj = batch.read_namespaced_cron_job(created.metadata.name, ns)
            cj.metadata.annotations["updated"] = "true"
            return batch.replace_namespaced_cron_job(created.metadata.name, ns, cj)
        updated = retry_on_conflict(update)
        assert updated.metadata.annotations.get("updated") == "true"

        def annotated(kind: str, cj) -> bool:  # type: ignore[no-untyped-def]
            assert kind == "MODIFIED", kind
            return (cj.metadata.annotations or {}).get("patched") == "true"
        stream.until(annotated, timeout=30)
    finally:
        stream.stop()

    now1 = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    patched_status = batch.patch_namespaced_cron_job_status(
        created.metadata.name, ns, {"metadata": {"annotations": {"patchedstatus": "true"}},
                                    "status": {"lastScheduleTime": rfc3339(now1)}},
        _content_type="application/merge-patch+json")
    assert patched_status.status.last_schedule_time == now1
    assert patched_status.metadata.annotations.get("patchedstatus") == "true"

    now2 = now1 + datetime.timedelta(seconds=1)

    def update_status():  # type: ignore[no-untyped-def]
        cj = batch.api_client.sanitize_for_serialization(batch.read_namespaced_cron_job(created.metadata.name, ns))
        cj.setdefault("status", {})["lastScheduleTime"] = rfc3339(now2)
        return batch.replace_namespaced_cron_job_status(created.metadata.name, ns, cj)
    updated_status = retry_on_conflict(update_status)
    assert updated_status.status.last_schedule_time == now2

    assert batch.read_namespaced_cron_job_status(created.metadata.name, ns).metadata.uid == created.metadata.uid

    def expect_finalizer(cj, step: str) -> None:  # type: ignore[no-untyped-def]
        assert cj.metadata.deletion_timestamp is not None, f"expected deletionTimestamp on step {step!r}"
        assert cj.metadata.finalizers, f"expected finalizers on step {step!r}"

    template["metadata"]["name"] = "for-removal"
    removal = batch.create_namespaced_cron_job(ns, template)
    batch.delete_namespaced_cron_job(removal.metadata.name, ns)
    try:
        expect_finalizer(batch.read_namespaced_cron_job(removal.metadata.name, ns), "deleting cronjob")
    except client.exceptions.ApiException as exc:
        assert exc.status == 404, exc.body

    batch.delete_collection_namespaced_cron_job(ns, label_selector=selector)
    left = batch.list_namespaced_cron_job(ns, label_selector=selector)
    assert len(left.items) <= 2
    for cj in left.items:
        expect_finalizer(cj, "deleting cronjob collection")
