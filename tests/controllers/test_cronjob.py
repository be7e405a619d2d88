"""cronjob-controller against an in-process API server, with a FakeClock moving time.

Facts from kube-controller-manager 1.33 recorded here: a scheduled Job is named
`<cronjob>-<scheduled time in minutes since the epoch>` and annotated
`batch.kubernetes.io/cronjob-scheduled-timestamp` (RFC 3339 in the CronJob's time zone);
`status.active` holds ObjectReferences, `lastScheduleTime` the schedule time; events are
SuccessfulCreate "Created job X", SawCompletedJob "Saw completed job: X, condition: Complete",
JobAlreadyActive for Forbid, SuccessfulDelete "Deleted job X" for Replace and history limits,
UnexpectedJob for a Job the controller did not create (such as `kubectl create job --from`).
Schedules follow robfig/cron's standard parser (dom/dow OR-ed when both restricted).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from pykube_server.client.clock import FakeClock
from pykube_server.client.rest import CRONJOBS, JOBS, Client
from pykube_server.controllers.cronjob import SCHEDULED_TIMESTAMP, Schedule, ScheduleError, job_name
from pykube_server.testing import LocalCluster

from tests.controllers.workloads import TEMPLATE_SPEC, event_messages, event_reasons, eventually, running

NS = "default"
UTC = timezone.utc


def cronjob(name: str, schedule: str = "* * * * *", **spec: object) -> dict:
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": schedule, "jobTemplate": {"metadata": {"labels": {"from": name}},
                                                           "spec": {"template": {"spec": TEMPLATE_SPEC}}}, **spec}}


# --- schedule parsing ---------------------------------------------------------------------------------

def _next(expr: str, after: datetime, tz: timezone | ZoneInfo = UTC) -> datetime | None:
    return Schedule.parse(expr).next(after, tz)


def test_schedule_syntax() -> None:
    t = datetime(2025, 3, 10, 12, 7, 30, tzinfo=UTC)  # a Monday
    assert _next("*/15 * * * *", t) == datetime(2025, 3, 10, 12, 15, tzinfo=UTC)
    assert _next("@hourly", t) == datetime(2025, 3, 10, 13, 0, tzinfo=UTC)
    assert _next("@daily", t) == datetime(2025, 3, 11, 0, 0, tzinfo=UTC)
    assert _next("@weekly", t) == datetime(2025, 3, 16, 0, 0, tzinfo=UTC)
    assert _next("@monthly", t) == datetime(2025, 4, 1, 0, 0, tzinfo=UTC)
    assert _next("@yearly", t) == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert _next("30 9-17/4 * * MON-FRI", t) == datetime(2025, 3, 10, 13, 30, tzinfo=UTC)
    assert _next("0 0 * FEB sun", t) == datetime(2026, 2, 1, 0, 0, tzinfo=UTC)
    assert _next("5,10 1 13 * 5", t) == datetime(2025, 3, 13, 1, 5, tzinfo=UTC)  # dom OR dow
    assert _next("0 9 * * *", t, ZoneInfo("Europe/Berlin")) == datetime(2025, 3, 11, 8, 0, tzinfo=UTC)
    # minute 7, hour 7 and July are ordinary values (7 is not Sunday outside day of week)
    assert _next("* * * * *", datetime(2026, 7, 27, 7, 43, 30, tzinfo=UTC)) == datetime(2026, 7, 27, 7, 44, tzinfo=UTC)
    assert _next("7 7 * 7 *", t) == datetime(2025, 7, 1, 7, 7, tzinfo=UTC)
    for bad in ("* * * *", "61 * * * *", "@often", "5-1 * * * *", "*/0 * * * *"):
        with pytest.raises(ScheduleError):
            Schedule.parse(bad)
    assert job_name("hello", datetime(2025, 1, 1, 0, 5, tzinfo=UTC)) == "hello-28928165"


# --- the controller ---------------------------------------------------------------------------------

@pytest.fixture
def clock() -> FakeClock:
    now = datetime.now(UTC).replace(microsecond=0)
    return FakeClock(start=now.replace(second=0) + timedelta(seconds=30))


@pytest.fixture
async def client(cluster: LocalCluster, clock: FakeClock) -> AsyncIterator[Client]:
    async with running(cluster, ["cronjob-controller"], clock=clock) as c:
        yield c


async def _jobs(client: Client, cj: str) -> list[dict]:
    listed = await client.list(JOBS, namespace=NS, label_selector=f"from={cj}")
    return sorted(listed.get("items") or [], key=lambda j: j["metadata"]["name"])


async def _count(client: Client, cj: str, n: int) -> list[dict] | None:
    jobs = await _jobs(client, cj)
    return jobs if len(jobs) == n else None


async def _complete(client: Client, job: dict) -> None:
    fresh = await client.get(JOBS, job["metadata"]["name"], namespace=NS)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    fresh["status"] = {"startTime": now, "completionTime": now, "succeeded": 1, "conditions": [
        {"type": "SuccessCriteriaMet", "status": "True", "lastTransitionTime": now},
        {"type": "Complete", "status": "True", "lastTransitionTime": now}]}
    await client.update(JOBS, fresh, subresource="status")


async def _armed(clock: FakeClock) -> None:
    """Wait until the controller has armed its timer for the next schedule (at most a minute
    away): stepping the fake clock before that would skip past a timer not yet set."""
    await eventually(lambda: _async(any(0 < d <= 60 for d in clock.pending()) or None))


async def _async(value: object) -> object:
    return value


async def test_schedules_jobs_and_forbid(client: Client, clock: FakeClock) -> None:
    await client.create(CRONJOBS, cronjob("every", concurrencyPolicy="Forbid"), namespace=NS)
    await eventually(lambda: _cj_with(client, "every", lambda s: True))
    await _armed(clock)
    clock.step(60)
    [job] = await eventually(lambda: _count(client, "every", 1))
    scheduled = (clock.wall() - timedelta(seconds=clock.wall().second + 60) + timedelta(seconds=60)).replace(microsecond=0)
    minutes = int(datetime.fromisoformat(job["metadata"]["annotations"][SCHEDULED_TIMESTAMP].replace("Z", "+00:00")).timestamp()) // 60
    assert job["metadata"]["name"] == f"every-{minutes}" and abs(minutes * 60 - scheduled.timestamp()) <= 120
    ref = job["metadata"]["ownerReferences"][0]
    assert ref["kind"] == "CronJob" and ref["controller"] is True
    cj = await eventually(lambda: _cj_with(client, "every", lambda s: s.get("active")))
    assert cj["status"]["active"][0]["name"] == job["metadata"]["name"]
    assert cj["status"]["active"][0]["kind"] == "Job" and cj["status"]["lastScheduleTime"].endswith("Z")
    await _armed(clock)
    clock.step(60)  # Forbid: the first job still runs
    await eventually(lambda: _has(client, "every", "JobAlreadyActive"))
    assert len(await _jobs(client, "every")) == 1
    await _complete(client, job)
    # the schedule Forbid skipped was never recorded as run: it starts as soon as the first is done
    cj = await eventually(lambda: _cj_with(client, "every", lambda s: s.get("lastSuccessfulTime") and s.get("active")))
    assert cj["status"]["active"][0]["name"] != job["metadata"]["name"]
    assert f"Saw completed job: {job['metadata']['name']}, condition: Complete" in await event_messages(client, NS, "every")
    assert f"Created job {job['metadata']['name']}" in await event_messages(client, NS, "every")
    await eventually(lambda: _count(client, "every", 2))


async def test_replace_deletes_running_job(client: Client, clock: FakeClock) -> None:
    await client.create(CRONJOBS, cronjob("rep", concurrencyPolicy="Replace"), namespace=NS)
    await _armed(clock)
    clock.step(60)
    [first] = await eventually(lambda: _count(client, "rep", 1))
    await _armed(clock)
    clock.step(60)

    async def replaced() -> bool:
        names = [j["metadata"]["name"] for j in await _jobs(client, "rep") if not j["metadata"].get("deletionTimestamp")]
        return len(names) == 1 and names[0] != first["metadata"]["name"]
    await eventually(replaced)
    assert f"Deleted job {first['metadata']['name']}" in await event_messages(client, NS, "rep")


async def test_suspend_and_history_limit(client: Client, clock: FakeClock) -> None:
    await client.create(CRONJOBS, cronjob("hist", successfulJobsHistoryLimit=1, suspend=True), namespace=NS)
    clock.step(120)
    await eventually(lambda: _cj_with(client, "hist", lambda s: True))
    assert await _jobs(client, "hist") == []
    await client.patch(CRONJOBS, "hist", {"spec": {"suspend": False}}, namespace=NS)
    [first] = await eventually(lambda: _count(client, "hist", 1))
    await _complete(client, first)
    await eventually(lambda: _cj_with(client, "hist", lambda s: s.get("lastSuccessfulTime")))
    second = await _next_scheduled_job(client, clock, "hist", after=first)
    await _complete(client, second)

    async def only_second_kept() -> list[dict] | None:
        names = [j["metadata"]["name"] for j in await _jobs(client, "hist")]
        return names if first["metadata"]["name"] not in names and second["metadata"]["name"] in names else None

    # successfulJobsHistoryLimit=1: the older successful Job goes, the newer one stays.
    await eventually(only_second_kept)


async def _next_scheduled_job(client: Client, clock: FakeClock, name: str, *, after: dict) -> dict:
    """Step a minute until the next scheduled Job exists. The controller arms its timer for the
    next schedule when it reconciles the finished Job; on a loaded machine that can land just
    after a step, so one step may not be enough (a real minute would simply pass)."""
    for _ in range(4):
        clock.step(60)
        try:
            jobs = await eventually(lambda: _newer_jobs(client, name, after), timeout=5.0)
        except AssertionError:
            continue
        return jobs[0]
    raise AssertionError(f"no Job scheduled for {name} after {after['metadata']['name']}")


async def _newer_jobs(client: Client, name: str, after: dict) -> list[dict] | None:
    jobs = [j for j in await _jobs(client, name) if j["metadata"]["name"] != after["metadata"]["name"]]
    return jobs or None


async def test_starting_deadline_missed(client: Client, clock: FakeClock) -> None:
    await client.create(CRONJOBS, cronjob("late", "0 0 1 1 *", startingDeadlineSeconds=10), namespace=NS)
    await eventually(lambda: _cj_with(client, "late", lambda s: True))
    assert await _jobs(client, "late") == []


async def _cj_with(client: Client, name: str, pred) -> dict | None:  # type: ignore[no-untyped-def]
    cj = await client.get(CRONJOBS, name, namespace=NS)
    return cj if pred(cj.get("status") or {}) else None


async def _has(client: Client, name: str, reason: str) -> bool:
    return reason in await event_reasons(client, NS, name)
