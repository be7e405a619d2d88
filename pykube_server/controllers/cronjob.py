"""The CronJob controller: creates a Job at each time its schedule names, as kube's cronjob v2
controller does.

Each reconcile reads the CronJob and the namespace's Jobs fresh from the API server, then:
prunes `status.active` (finished Jobs leave it with a `SawCompletedJob` event and advance
`lastSuccessfulTime`, vanished ones leave with `MissingJob`), finds the most recent schedule time
since `lastScheduleTime` (or creation), skips it when it is older than `startingDeadlineSeconds`
(`MissSchedule`) or when `concurrencyPolicy: Forbid` meets a running Job (`JobAlreadyActive`),
deletes the running Jobs first under `Replace`, and creates the Job `<cronjob>-<minutes since the
epoch>` carrying the `batch.kubernetes.io/cronjob-scheduled-timestamp` annotation. Finished Jobs
beyond the history limits are deleted, oldest first. The key is re-queued for the next schedule
time on the injected clock, so tests move time instead of waiting.

Schedules are the standard 5-field cron syntax (robfig/cron's `ParseStandard`, which kube uses):
numbers, `*`/`?`, ranges, steps, month and weekday names, and the `@yearly`/`@annually`,
`@monthly`, `@weekly`, `@daily`/`@midnight`, `@hourly` macros; day-of-month and day-of-week are
OR-ed when both are restricted. `timeZone` is an IANA name read with `zoneinfo`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.events import NORMAL, WARNING
from pykube_server.client.rest import CRONJOBS, JOBS
from pykube_server.controllers.framework import Context, Controller, Request, Result, owner_requests
from pykube_server.controllers.workload_common import (
    condition_true, is_controlled_by, is_deleting, meta, owner_reference, parse_time, rfc3339, spec, status,
)

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
TOO_MANY_MISSED = 100
NEXT_SCHEDULE_DELTA = 0.1
"""Seconds added to the requeue so the key comes back just after the schedule time (kube's 100 ms)."""

MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
          "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
MONTHS = {name: i + 1 for i, name in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split())}
DAYS = {name: i for i, name in enumerate("sun mon tue wed thu fri sat".split())}


class ScheduleError(ValueError):
    """An unparseable schedule; the message follows robfig/cron's wording."""


@dataclass(frozen=True)
class _Field:
    low: int
    high: int
    names: dict[str, int] | None = None


_FIELDS = (_Field(0, 59), _Field(0, 23), _Field(1, 31), _Field(1, 12, MONTHS), _Field(0, 6, DAYS))


def _value(text: str, f: _Field) -> int:
    if f.names and text.lower() in f.names:
        return f.names[text.lower()]
    try:
        number = int(text)
    except ValueError:
        raise ScheduleError(f"failed to parse int from {text}: strconv.Atoi: parsing {text!r}: invalid syntax") from None
    if number < 0:
        raise ScheduleError(f"failed to parse int from {text}: negative number ({number}) not allowed")
    return number


def _parse_range(expr: str, f: _Field) -> tuple[set[int], bool]:
    """One comma-separated part: the values it allows and whether it is a bare star."""
    range_part, _, step_part = expr.partition("/")
    star = range_part in ("*", "?")
    if star:
        low, high = f.low, f.high
    else:
        bounds = range_part.split("-")
        if len(bounds) > 2:
            raise ScheduleError(f"too many hyphens: {expr}")
        low = _value(bounds[0], f)
        high = _value(bounds[1], f) if len(bounds) == 2 else low
    step = 1
    if step_part:
        step = _value(step_part, f)
        if step == 0:
            raise ScheduleError(f"step of range should be a positive number: {expr}")
        if not star and "-" not in range_part:
            high = f.high
    if low < f.low:
        raise ScheduleError(f"beginning of range ({low}) below minimum ({f.low}): {expr}")
    if high > f.high:
        raise ScheduleError(f"end of range ({high}) above maximum ({f.high}): {expr}")
    if low > high:
        raise ScheduleError(f"beginning of range ({low}) beyond end of range ({high}): {expr}")
    return set(range(low, high + 1, step)), star and step == 1


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_star: bool
    weekdays_star: bool

    @classmethod
    def parse(cls, text: str) -> Schedule:
        text = text.strip()
        if text.startswith("@"):
            if text not in MACROS:
                raise ScheduleError(f"unrecognized descriptor: {text}")
            text = MACROS[text]
        parts = text.split()
        if len(parts) != 5:
            raise ScheduleError(f"expected exactly 5 fields, found {len(parts)}: [{text}]" if parts else "empty spec string")
        sets, stars = [], []
        for part, f in zip(parts, _FIELDS):
            values: set[int] = set()
            star = False
            for expr in part.split(","):
                allowed, bare = _parse_range(expr, f)
                values |= allowed
                star = star or bare
            sets.append(frozenset(values))
            stars.append(star)
        return cls(sets[0], sets[1], sets[2], sets[3], sets[4], stars[2], stars[4])

    def _day_matches(self, t: datetime) -> bool:
        dom = t.day in self.days
        dow = (t.isoweekday() % 7) in self.weekdays
        if self.days_star or self.weekdays_star:
            return dom and dow
        return dom or dow

    def next(self, after: datetime, tz: ZoneInfo | timezone) -> datetime | None:
        """The first schedule time strictly after `after` (an aware datetime), in `tz`."""
        local = after.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=1)
        limit = local.year + 5
        while local.year <= limit:
            if local.month not in self.months:
                local = (local.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            elif not self._day_matches(local):
                local = local.replace(hour=0, minute=0) + timedelta(days=1)
            elif local.hour not in self.hours:
                local = local.replace(minute=0) + timedelta(hours=1)
            elif local.minute not in self.minutes:
                local += timedelta(minutes=1)
            else:
                candidate = local.replace(tzinfo=tz)
                if candidate > after:
                    return candidate
                local += timedelta(minutes=1)
        return None


def most_recent_schedule(schedule: Schedule, earliest: datetime, now: datetime,
                         tz: ZoneInfo | timezone) -> tuple[datetime | None, int]:
    """The latest schedule time in (earliest, now] and how many were missed in all."""
    first = schedule.next(earliest, tz)
    if first is None or first > now:
        return None, 0
    latest, count = first, 1
    while True:
        following = schedule.next(latest, tz)
        if following is None or following > now:
            return latest, count
        latest, count = following, count + 1
        if count > 10_000:  # an every-minute schedule missed for a week: jump near the end
            return _last_before(schedule, now, tz, latest), count


def _last_before(schedule: Schedule, now: datetime, tz: ZoneInfo | timezone, floor: datetime) -> datetime:
    probe = max(floor, now - timedelta(days=1))
    latest = floor
    while (following := schedule.next(probe, tz)) is not None and following <= now:
        latest = probe = following
    return latest


def job_name(cronjob_name: str, scheduled: datetime) -> str:
    return f"{cronjob_name}-{int(scheduled.timestamp()) // 60}"


def _job_ref(job: Obj) -> Obj:
    m = meta(job)
    return {"kind": "Job", "namespace": m.get("namespace", ""), "name": m.get("name", ""), "uid": m.get("uid", ""),
            "apiVersion": "batch/v1", "resourceVersion": m.get("resourceVersion", "")}


def _finished_condition(job: Obj) -> str | None:
    for kind in ("Complete", "Failed"):
        if condition_true(job, kind):
            return kind
    return None


class CronJobReconciler:
    """Reconciles one CronJob (see the module docstring)."""

    def __init__(self, ctx: Context) -> None:
        self.client = ctx.client
        self.clock = ctx.clock
        self.recorder = ctx.recorder

    @classmethod
    def create(cls, ctx: Context) -> Controller:
        return (Controller("cronjob-controller", cls(ctx), workers=5, clock=ctx.clock)
                .watches(ctx.informer(CRONJOBS))
                .watches(ctx.informer(JOBS), owner_requests("CronJob")))

    async def reconcile(self, request: Request) -> Result:
        try:
            cronjob = await self.client.get(CRONJOBS, request.name, namespace=request.namespace)
        except errors.NotFound:
            return Result()
        listed = await self.client.list(JOBS, namespace=request.namespace)
        jobs = [j for j in listed.get("items") or () if is_controlled_by(j, cronjob)]
        new_status = copy.deepcopy(status(cronjob))
        self._track_children(cronjob, jobs, new_status)
        requeue = await self._schedule(cronjob, jobs, new_status)
        await self._cleanup_history(cronjob, jobs, new_status)
        if new_status != status(cronjob):
            await self.client.update(CRONJOBS, {**cronjob, "status": new_status}, subresource="status")
        return Result(requeue_after=requeue)

    # --- children ----------------------------------------------------------------------------------

    def _track_children(self, cronjob: Obj, jobs: list[Obj], new_status: Obj) -> None:
        active = list(new_status.get("active") or [])
        active_uids = {ref.get("uid") for ref in active}
        for job in jobs:
            uid, finished = meta(job).get("uid"), _finished_condition(job)
            if uid not in active_uids and finished is None:
                self.recorder.event(cronjob, WARNING, "UnexpectedJob",
                                    f"Saw a job that the controller did not create or forgot: {meta(job)['name']}")
            elif uid in active_uids and finished is not None:
                active = [ref for ref in active if ref.get("uid") != uid]
                self.recorder.event(cronjob, NORMAL, "SawCompletedJob",
                                    f"Saw completed job: {meta(job)['name']}, condition: {finished}")
            if finished == "Complete":
                done = status(job).get("completionTime")
                last = new_status.get("lastSuccessfulTime")
                if done and (not last or parse_time(done) > parse_time(last)):  # type: ignore[operator]
                    new_status["lastSuccessfulTime"] = done
        present = {meta(j).get("uid") for j in jobs}
        for ref in list(active):
            if ref.get("uid") not in present:
                active.remove(ref)
                self.recorder.event(cronjob, NORMAL, "MissingJob", f"Active job went missing: {ref.get('name')}")
        if active:
            new_status["active"] = active
        else:
            new_status.pop("active", None)

    # --- scheduling --------------------------------------------------------------------------------

    def _zone(self, cronjob: Obj) -> ZoneInfo | timezone | None:
        name = spec(cronjob).get("timeZone")
        if not name:
            return timezone.utc
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return None

    async def _schedule(self, cronjob: Obj, jobs: list[Obj], new_status: Obj) -> float | None:
        if is_deleting(cronjob):
            return None
        tz = self._zone(cronjob)
        if tz is None:
            self.recorder.event(cronjob, WARNING, "UnknownTimeZone",
                                f"invalid timeZone: {spec(cronjob).get('timeZone')!r}")
            return None
        if spec(cronjob).get("suspend"):
            return None
        try:
            schedule = Schedule.parse(str(spec(cronjob).get("schedule") or ""))
        except ScheduleError as exc:
            self.recorder.event(cronjob, WARNING, "UnparseableSchedule",
                                f"unparseable schedule: {spec(cronjob).get('schedule')!r} : {exc}")
            return None
        now = self.clock.wall()
        scheduled = self._due_time(cronjob, schedule, now, tz)
        requeue = self._until_next(schedule, now, tz)
        if scheduled is None:
            return requeue
        deadline = spec(cronjob).get("startingDeadlineSeconds")
        if deadline is not None and scheduled + timedelta(seconds=int(deadline)) < now:
            self.recorder.event(cronjob, WARNING, "MissSchedule",
                                f"Missed scheduled time to start a job: {_rfc1123z(scheduled)}")
            return requeue
        name = job_name(meta(cronjob)["name"], scheduled)
        if any(ref.get("name") == name for ref in new_status.get("active") or ()):
            return requeue
        policy = spec(cronjob).get("concurrencyPolicy", "Allow")
        if policy == "Forbid" and new_status.get("active"):
            self.recorder.event(cronjob, NORMAL, "JobAlreadyActive",
                                "Not starting job because prior execution is running and concurrency policy is Forbid")
            return requeue
        if policy == "Replace":
            await self._replace_active(cronjob, new_status)
        await self._create_job(cronjob, name, scheduled, tz, new_status)
        return requeue

    def _due_time(self, cronjob: Obj, schedule: Schedule, now: datetime, tz: ZoneInfo | timezone) -> datetime | None:
        earliest = parse_time(status(cronjob).get("lastScheduleTime")) or parse_time(meta(cronjob).get("creationTimestamp"))
        if earliest is None:
            earliest = now
        deadline = spec(cronjob).get("startingDeadlineSeconds")
        if deadline is not None:
            earliest = max(earliest, now - timedelta(seconds=int(deadline)))
        scheduled, missed = most_recent_schedule(schedule, earliest, now, tz)
        if missed > TOO_MANY_MISSED:
            self.recorder.event(cronjob, WARNING, "TooManyMissedTimes",
                                f"too many missed start times: {missed}. Set or decrease .spec.startingDeadlineSeconds or check clock skew")
        return scheduled

    def _until_next(self, schedule: Schedule, now: datetime, tz: ZoneInfo | timezone) -> float | None:
        following = schedule.next(now, tz)
        if following is None:
            return None
        return (following - now).total_seconds() + NEXT_SCHEDULE_DELTA

    async def _replace_active(self, cronjob: Obj, new_status: Obj) -> None:
        for ref in list(new_status.get("active") or ()):
            try:
                await self.client.delete(JOBS, ref["name"], namespace=meta(cronjob)["namespace"],
                                         propagation_policy="Background")
            except errors.NotFound:
                pass
            self.recorder.event(cronjob, NORMAL, "SuccessfulDelete", f"Deleted job {ref['name']}")
            new_status["active"] = [r for r in new_status.get("active") or () if r.get("uid") != ref.get("uid")]
        if not new_status.get("active"):
            new_status.pop("active", None)

    async def _create_job(self, cronjob: Obj, name: str, scheduled: datetime, tz: ZoneInfo | timezone,
                          new_status: Obj) -> None:
        template = copy.deepcopy(spec(cronjob).get("jobTemplate") or {})
        tmeta = template.get("metadata") or {}
        annotations = dict(tmeta.get("annotations") or {})
        annotations[SCHEDULED_TIMESTAMP] = scheduled.astimezone(tz).isoformat().replace("+00:00", "Z")
        job_meta: Obj = {"name": name, "namespace": meta(cronjob)["namespace"], "annotations": annotations,
                         "ownerReferences": [owner_reference(cronjob, api_version="batch/v1", kind="CronJob")]}
        if tmeta.get("labels"):
            job_meta["labels"] = dict(tmeta["labels"])
        body = {"apiVersion": "batch/v1", "kind": "Job", "metadata": job_meta, "spec": template.get("spec") or {}}
        try:
            job = await self.client.create(JOBS, body)
        except errors.AlreadyExists:
            job = await self.client.get(JOBS, name, namespace=meta(cronjob)["namespace"])
            if not is_controlled_by(job, cronjob) or _finished_condition(job):
                new_status["lastScheduleTime"] = rfc3339(scheduled)
                return
        except errors.StatusError as exc:
            self.recorder.event(cronjob, WARNING, "FailedCreate", f"Error creating job: {exc.message}")
            raise
        else:
            self.recorder.event(cronjob, NORMAL, "SuccessfulCreate", f"Created job {name}")
        active = [r for r in new_status.get("active") or () if r.get("uid") != meta(job).get("uid")]
        new_status["active"] = [*active, _job_ref(job)]
        new_status["lastScheduleTime"] = rfc3339(scheduled)

    # --- history ------------------------------------------------------------------------------------

    async def _cleanup_history(self, cronjob: Obj, jobs: list[Obj], new_status: Obj) -> None:
        if is_deleting(cronjob):
            return
        active = {ref.get("uid") for ref in new_status.get("active") or ()}
        for kind, limit_field in (("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")):
            limit = spec(cronjob).get(limit_field)
            if limit is None:
                continue
            done = [j for j in jobs if _finished_condition(j) == kind and meta(j).get("uid") not in active]
            done.sort(key=lambda j: (status(j).get("startTime") or meta(j).get("creationTimestamp") or ""))
            for job in done[: max(len(done) - int(limit), 0)]:
                try:
                    await self.client.delete(JOBS, meta(job)["name"], namespace=meta(job)["namespace"],
                                             propagation_policy="Background")
                except errors.NotFound:
                    continue
                self.recorder.event(cronjob, NORMAL, "SuccessfulDelete", f"Deleted job {meta(job)['name']}")


def _rfc1123z(moment: datetime) -> str:
    return moment.strftime("%a, %d %b %Y %H:%M:%S %z")
