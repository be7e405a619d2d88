"""The Job controller: runs pods until enough of them succeed, as kube-controller-manager does.

One reconcile reads the Job and its pods fresh from the API server (a consistent read, so a pod
is never counted twice however late a watch event arrives), then:

1. counts finished pods through the job-tracking protocol: a pod carries the
   `batch.kubernetes.io/job-tracking` finalizer while it runs; once finished, its uid goes into
   `status.uncountedTerminatedPods`, then the finalizer is removed, then the uid moves into the
   `succeeded`/`failed` counters; a crash between steps loses and doubles nothing;
2. decides whether the Job is finished: podFailurePolicy `FailJob` rules, `backoffLimit`,
   `activeDeadlineSeconds`, and for Indexed Jobs with `backoffLimitPerIndex` more failed indexes
   than `maxFailedIndexes` (`MaxFailedIndexesExceeded`) or every index either completed or
   failed with at least one failed (`FailedIndexes`) give a `FailureTarget` condition (then `Failed` once no pod is still
   terminating); enough completions (or a matching successPolicy) give `SuccessCriteriaMet`
   (then `Complete` with `completionTime`);
3. otherwise keeps `parallelism` pods running (NonIndexed, or Indexed with one pod per pending
   completion index), delaying re-creation after failures by 10 s doubling up to 10 minutes
   (kube's `DefaultJobPodFailureBackOff`/`MaxJobPodFailureBackOff`), and deletes all active pods
   while `suspend` is true;
4. writes the status (active, ready, terminating, succeeded, failed, completedIndexes,
   failedIndexes, startTime, completionTime, conditions) with compare-and-swap on the
   resourceVersion.

Per-index backoff (kube's JobBackoffLimitPerIndex): each pod of an index carries in the
annotation `batch.kubernetes.io/job-index-failure-count` how many earlier pods of its index
failed (and `...-ignored-failure-count` how many failed under an `Ignore` rule). A failed pod
fails its index when that count already reached `backoffLimitPerIndex`, or at once when it
matches a podFailurePolicy `FailIndex` rule; failed indexes go into `status.failedIndexes`
(the same interval notation as completedIndexes) and are never retried.

The TTL-after-finished controller lives in `ttlafterfinished.py`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from pykube_server.api import errors
from pykube_server.api.selectors import SelectorError
from pykube_server.api.types import Obj
from pykube_server.client.events import NORMAL, WARNING
from pykube_server.client.rest import JOBS, PODS, PatchType
from pykube_server.client.cache import Lister
from pykube_server.controllers.controllerref import RefManager, controller_ref
from pykube_server.controllers.framework import Context, Controller, Mapper, Request, Result, owner_requests
from pykube_server.controllers.workload_common import (
    condition_true, delete_ignoring_missing, find_condition, is_deleting, is_ready, is_terminal, meta,
    now_text, owner_reference, parse_time, pod_from_template, pod_phase, selector_of, spec, status,
)

log = logging.getLogger(__name__)

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
INDEX_FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
INDEX_IGNORED_FAILURE_COUNT = "batch.kubernetes.io/job-index-ignored-failure-count"
POD_FAILURE_BACKOFF = 10.0
MAX_POD_FAILURE_BACKOFF = 600.0
MAX_UNCOUNTED = 500
"""At most this many uids per list in uncountedTerminatedPods per write (kube's MaxUncountedPods)."""

COMPLETIONS_REACHED = ("CompletionsReached", "Reached expected number of succeeded pods")
BACKOFF_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")
FAILED_INDEXES = ("FailedIndexes", "Job has failed indexes")
MAX_FAILED_INDEXES_EXCEEDED = ("MaxFailedIndexesExceeded",
                               "Job has exceeded the specified maximal number of failed indexes")


@dataclass
class _Backoff:
    """Failures since the last success, and when the latest one was seen (kube's backoffRecord)."""

    failures: int = 0
    last_failure: float = 0.0


@dataclass
class _Pods:
    """A Job's pods sorted into the buckets the controller counts."""

    active: list[Obj] = field(default_factory=list)
    terminating: list[Obj] = field(default_factory=list)
    finished_uncounted: list[Obj] = field(default_factory=list)
    with_finalizer: list[Obj] = field(default_factory=list)
    released: list[Obj] = field(default_factory=list)
    """Pods deleted by suspension: their finalizer goes without them being counted."""
    all: list[Obj] = field(default_factory=list)


def completion_index(pod: Obj) -> int | None:
    m = meta(pod)
    raw = (m.get("annotations") or {}).get(COMPLETION_INDEX) or (m.get("labels") or {}).get(COMPLETION_INDEX)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def format_indexes(indexes: set[int]) -> str:
    """`1,3-5,7` as kube writes `completedIndexes` (ranges of three or more... and of two as `a-b`)."""
    out: list[str] = []
    ordered = sorted(indexes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def parse_indexes(text: str | None, completions: int) -> set[int]:
    result: set[int] = set()
    for part in (text or "").split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            continue
        result.update(i for i in range(first, last + 1) if i < completions)
    return result


def only_replace_failed(job: Obj) -> bool:
    return spec(job).get("podReplacementPolicy") == "Failed" or bool(spec(job).get("podFailurePolicy"))


def is_pod_failed(pod: Obj, job: Obj) -> bool:
    """kube's isPodFailed: Failed, or (unless only failed pods are replaced) deleted before success."""
    if pod_phase(pod) == "Failed":
        return True
    if only_replace_failed(job) or spec(job).get("suspend"):
        return False  # pods deleted by suspension are not failures
    return is_deleting(pod) and pod_phase(pod) != "Succeeded"


def is_finished(job: Obj) -> bool:
    return condition_true(job, "Complete") or condition_true(job, "Failed")


def _exit_codes(pod: Obj) -> list[tuple[str, int]]:
    out = []
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in status(pod).get(key) or ():
            term = (cs.get("state") or {}).get("terminated")
            if term and term.get("exitCode", 0) != 0:
                out.append((cs.get("name", ""), int(term["exitCode"])))
    return out


def match_failure_policy(job: Obj, pod: Obj) -> tuple[str, str] | None:
    """(action, message) of the first podFailurePolicy rule matching a failed pod."""
    policy = spec(job).get("podFailurePolicy") or {}
    pod_ref = f"{meta(pod).get('namespace')}/{meta(pod).get('name')}"
    for index, rule in enumerate(policy.get("rules") or ()):
        action = rule.get("action", "")
        exits = rule.get("onExitCodes")
        if exits:
            for name, code in _exit_codes(pod):
                if exits.get("containerName") and exits["containerName"] != name:
                    continue
                hit = code in (exits.get("values") or ())
                if (exits.get("operator") == "In") == hit:
                    return action, (f"Container {name} for pod {pod_ref} failed with exit code {code} "
                                    f"matching {action} rule at index {index}")
        for pattern in rule.get("onPodConditions") or ():
            cond = next((c for c in status(pod).get("conditions") or () if c.get("type") == pattern.get("type")), None)
            if cond is not None and cond.get("status") == pattern.get("status", "True"):
                return action, f"Pod {pod_ref} has condition {pattern.get('type')} matching {action} rule at index {index}"
    return None


def has_backoff_limit_per_index(job: Obj) -> bool:
    return spec(job).get("completionMode") == "Indexed" and spec(job).get("backoffLimitPerIndex") is not None


def _annotation_int(pod: Obj, key: str) -> int:
    try:
        return max(int((meta(pod).get("annotations") or {}).get(key) or 0), 0)
    except ValueError:
        return 0


def is_index_failed(job: Obj, pod: Obj) -> bool:
    """kube's isIndexFailed: a failed pod fails its index when it matches a `FailIndex` rule,
    or when it counts as a failure and its index already used up `backoffLimitPerIndex`."""
    if not is_pod_failed(pod, job):
        return False
    if spec(job).get("podFailurePolicy"):
        match = match_failure_policy(job, pod)
        if match and match[0] == "FailIndex":
            return True
        if match and match[0] == "Ignore":
            return False
    return _annotation_int(pod, INDEX_FAILURE_COUNT) >= int(spec(job).get("backoffLimitPerIndex") or 0)


def index_failure_counts(job: Obj, pods: list[Obj]) -> dict[int, tuple[int, int]]:
    """(failures, ignored failures) so far per index: the latest failed pod's annotations plus
    its own failure (kube's getNewIndexFailureCounts on the pod being replaced)."""
    counts: dict[int, tuple[int, int]] = {}
    for pod in pods:
        index = completion_index(pod)
        if index is None or not is_pod_failed(pod, job):
            continue
        failures, ignored = _annotation_int(pod, INDEX_FAILURE_COUNT), _annotation_int(pod, INDEX_IGNORED_FAILURE_COUNT)
        match = match_failure_policy(job, pod) if spec(job).get("podFailurePolicy") else None
        if match and match[0] == "Ignore":
            ignored += 1
        else:
            failures += 1
        counts[index] = max(counts.get(index, (0, 0)), (failures, ignored))
    return counts


def new_condition(kind: str, cond_status: str, reason: str, message: str, now: str) -> Obj:
    return {"type": kind, "status": cond_status, "lastProbeTime": now, "lastTransitionTime": now,
            "reason": reason, "message": message}


def set_condition(conditions: list[Obj], cond: Obj) -> bool:
    """Add or update a condition; True when something changed (the transition time moves only
    when the status flips, as kube's ensureJobConditionStatus does)."""
    current = find_condition(conditions, cond["type"])
    if current is None:
        conditions.append(cond)
        return True
    if current.get("status") == cond["status"]:
        return False
    current.update(cond)
    return True


class JobReconciler:
    """Reconciles one Job (see the module docstring)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.client = ctx.client
        self.clock = ctx.clock
        self.recorder = ctx.recorder
        self._backoff: dict[str, _Backoff] = {}

    @classmethod
    def create(cls, ctx: Context) -> Controller:
        reconciler = cls(ctx)
        jobs = ctx.informer(JOBS)
        return (Controller("job-controller", reconciler, workers=5, clock=ctx.clock)
                .watches(jobs)
                .watches(ctx.informer(PODS), pod_requests(jobs.lister)))

    # --- reconcile ------------------------------------------------------------------------------

    async def reconcile(self, request: Request) -> Result:
        try:
            job = await self.client.get(JOBS, request.name, namespace=request.namespace)
        except errors.NotFound:
            await self._release_orphans(request)
            return Result()
        pods = await self._pods(job)
        if is_finished(job) or is_deleting(job):
            await self._remove_finalizers(pods.with_finalizer)
            return Result()
        job = await self._count_finished(job, pods)
        await self._remove_finalizers(pods.released)
        new_status = copy.deepcopy(status(job))
        requeue = await self._sync(job, pods, new_status)
        await self._write_status(job, new_status)
        return Result(requeue_after=requeue)

    async def _release_orphans(self, request: Request) -> None:
        """Pods of a Job that is gone keep no tracking finalizer: nothing will count them any
        more, and with it they would stay Terminating forever once the garbage collector
        deletes them (kube's job controller removes it from orphaned pods)."""
        listed = await self.client.list(PODS, namespace=request.namespace)
        orphans = [pod for pod in listed.get("items") or ()
                   if TRACKING_FINALIZER in (meta(pod).get("finalizers") or ())
                   and any(r.get("controller") and r.get("kind") == "Job" and r.get("name") == request.name
                           for r in meta(pod).get("ownerReferences") or ())]
        await self._remove_finalizers(orphans)

    async def _pods(self, job: Obj) -> _Pods:
        """The Job's pods after claiming (kube's getPodsForJob): every pod of the namespace is
        listed, not only the matching ones, so owned pods whose labels stopped matching are
        released and matching orphans adopted (with the tracking finalizer)."""
        listed = await self.client.list(PODS, namespace=meta(job)["namespace"])
        manager = RefManager(self.client, job, JOBS, PODS, selector_of(job), finalizers=(TRACKING_FINALIZER,))
        claimed = await manager.claim(listed.get("items") or ())
        uid = meta(job).get("uid")
        out = _Pods()
        for pod in claimed:
            refs = [r for r in meta(pod).get("ownerReferences") or () if r.get("controller")]
            if not refs or refs[0].get("uid") != uid:
                continue
            out.all.append(pod)
            if TRACKING_FINALIZER in (meta(pod).get("finalizers") or ()):
                out.with_finalizer.append(pod)
            if is_terminal(pod) or is_pod_failed(pod, job):
                if TRACKING_FINALIZER in (meta(pod).get("finalizers") or ()):
                    out.finished_uncounted.append(pod)
                if not is_terminal(pod) and is_deleting(pod):
                    out.terminating.append(pod)
            elif is_deleting(pod):
                out.terminating.append(pod)
                if spec(job).get("suspend") and TRACKING_FINALIZER in (meta(pod).get("finalizers") or ()):
                    out.released.append(pod)
            else:
                out.active.append(pod)
        return out

    # --- counting through the tracking finalizer -------------------------------------------------

    async def _count_finished(self, job: Obj, pods: _Pods) -> Obj:
        """Move newly finished pods into the counters via uncountedTerminatedPods."""
        st = status(job)
        uncounted = st.get("uncountedTerminatedPods") or {}
        known = set(uncounted.get("succeeded") or ()) | set(uncounted.get("failed") or ())
        fresh = [p for p in pods.finished_uncounted if meta(p)["uid"] not in known]
        if not fresh and not known:
            return job
        now = self.clock.now()
        record = self._backoff.setdefault(meta(job)["uid"], _Backoff())
        new_status = copy.deepcopy(st)
        counted = new_status.setdefault("uncountedTerminatedPods", {})
        for pod in fresh[:MAX_UNCOUNTED]:
            bucket = "succeeded" if pod_phase(pod) == "Succeeded" else "failed"
            counted.setdefault(bucket, []).append(meta(pod)["uid"])
            if bucket == "failed":
                record.failures += 1
                record.last_failure = now
            else:
                record.failures = 0
            if bucket == "failed" and has_backoff_limit_per_index(job):
                self._mark_index_failed(job, pod, new_status)
            if self._is_indexed(job) and bucket == "succeeded":
                index = completion_index(pod)
                if index is not None and index < int(spec(job).get("completions") or 0):
                    done = parse_indexes(new_status.get("completedIndexes"), int(spec(job)["completions"]))
                    done.add(index)
                    new_status["completedIndexes"] = format_indexes(done)
        self._check_failure_policy(job, fresh, new_status)
        if fresh:
            job = await self._put_status(job, new_status)
        pending = status(job).get("uncountedTerminatedPods") or {}
        listed = set(pending.get("succeeded") or ()) | set(pending.get("failed") or ())
        ignored = {meta(p)["uid"] for p in fresh[:MAX_UNCOUNTED]} - listed
        await self._remove_finalizers([p for p in pods.finished_uncounted if meta(p)["uid"] in listed | ignored])
        new_status = copy.deepcopy(status(job))
        counted = new_status.get("uncountedTerminatedPods") or {}
        if self._is_indexed(job):
            done = parse_indexes(new_status.get("completedIndexes"), int(spec(job).get("completions") or 0))
            new_status["succeeded"] = len(done)
        else:
            new_status["succeeded"] = int(new_status.get("succeeded") or 0) + len(counted.get("succeeded") or ())
        new_status["failed"] = int(new_status.get("failed") or 0) + len(counted.get("failed") or ())
        new_status["uncountedTerminatedPods"] = {}
        return await self._put_status(job, new_status)

    def _mark_index_failed(self, job: Obj, pod: Obj, new_status: Obj) -> None:
        """Add the pod's index to `failedIndexes` when this failure fails the index."""
        completions = int(spec(job).get("completions") or 0)
        index = completion_index(pod)
        if index is None or index >= completions or not is_index_failed(job, pod):
            return
        if index in parse_indexes(new_status.get("completedIndexes"), completions):
            return
        failed = parse_indexes(new_status.get("failedIndexes"), completions)
        failed.add(index)
        new_status["failedIndexes"] = format_indexes(failed)

    def _check_failure_policy(self, job: Obj, fresh: list[Obj], new_status: Obj) -> None:
        """A FailJob rule matching a newly failed pod sets FailureTarget (reason PodFailurePolicy)."""
        if not spec(job).get("podFailurePolicy"):
            return
        conditions = new_status.setdefault("conditions", [])
        for pod in fresh:
            if pod_phase(pod) != "Failed":
                continue
            match = match_failure_policy(job, pod)
            if match and match[0] == "FailJob" and not find_condition(conditions, "FailureTarget"):
                set_condition(conditions, new_condition("FailureTarget", "True", "PodFailurePolicy", match[1],
                                                        now_text(self.clock)))
            if match and match[0] == "Ignore":
                self._uncount_failure(new_status, pod)

    def _uncount_failure(self, new_status: Obj, pod: Obj) -> None:
        """An `Ignore` rule: the pod is not counted towards backoffLimit (its finalizer still goes)."""
        failed = new_status.get("uncountedTerminatedPods", {}).get("failed") or []
        if meta(pod)["uid"] in failed:
            failed.remove(meta(pod)["uid"])

    async def _remove_finalizers(self, pods: list[Obj]) -> None:
        for pod in pods:
            finalizers = [f for f in meta(pod).get("finalizers") or () if f != TRACKING_FINALIZER]
            patch = [{"op": "test", "path": "/metadata/resourceVersion", "value": meta(pod)["resourceVersion"]},
                     {"op": "replace", "path": "/metadata/finalizers", "value": finalizers}]
            try:
                await self.client.patch(PODS, meta(pod)["name"], patch, namespace=meta(pod)["namespace"],
                                        patch_type=PatchType.JSON)
            except errors.NotFound:
                continue
            except (errors.Conflict, errors.Invalid):
                fresh = await self.client.get(PODS, meta(pod)["name"], namespace=meta(pod)["namespace"])
                if TRACKING_FINALIZER in (meta(fresh).get("finalizers") or ()):
                    await self._remove_finalizers([fresh])

    # --- the decision ------------------------------------------------------------------------------

    async def _sync(self, job: Obj, pods: _Pods, new_status: Obj) -> float | None:
        """Decide success/failure or manage pods; fills `new_status`; returns a requeue delay."""
        now = now_text(self.clock)
        conditions = new_status.setdefault("conditions", [])
        js = spec(job)
        suspended = bool(js.get("suspend"))
        if not suspended and not new_status.get("startTime"):
            new_status["startTime"] = now
        requeue = None
        if not find_condition(conditions, "FailureTarget") and not self._success_met(job, new_status, pods):
            failure = self._failure_reason(job, pods, new_status)
            if failure is not None:
                set_condition(conditions, new_condition("FailureTarget", "True", failure[0], failure[1], now))
            else:
                requeue = self._deadline_remaining(job, new_status)
        failure_target = find_condition(conditions, "FailureTarget")
        if failure_target is None and self._success_met(job, new_status, pods) \
                and not find_condition(conditions, "SuccessCriteriaMet"):
            reason, message = self._success_reason(job, new_status)
            set_condition(conditions, new_condition("SuccessCriteriaMet", "True", reason, message, now))
        success = find_condition(conditions, "SuccessCriteriaMet")
        if failure_target is not None or success is not None:
            await self._delete_pods(job, pods.active)
            pods.terminating += pods.active
            pods.active = []
            self._finish(job, pods, new_status, failure_target or success, failed=failure_target is not None)
        elif suspended:
            await self._suspend(job, pods, new_status)
        else:
            self._resume(job, new_status)
            delay = await self._manage(job, pods, new_status)
            requeue = _min(requeue, delay)
        self._fill_counts(job, pods, new_status)
        return requeue

    def _finish(self, job: Obj, pods: _Pods, new_status: Obj, target: Obj, *, failed: bool) -> None:
        """Once nothing is terminating, the interim condition becomes Failed or Complete."""
        if pods.terminating or pods.active:
            return
        if (new_status.get("uncountedTerminatedPods") or {}).get("succeeded") or \
                (new_status.get("uncountedTerminatedPods") or {}).get("failed"):
            return
        now = now_text(self.clock)
        conditions = new_status["conditions"]
        final = "Failed" if failed else "Complete"
        if not set_condition(conditions, new_condition(final, "True", target["reason"], target["message"], now)):
            return
        if failed:
            self.recorder.event(job, WARNING, target["reason"], target["message"])
        else:
            new_status["completionTime"] = now
            self.recorder.event(job, NORMAL, "Completed", "Job completed")

    def _success_met(self, job: Obj, new_status: Obj, pods: _Pods) -> bool:
        js = spec(job)
        succeeded = int(new_status.get("succeeded") or 0)
        if self._success_policy_rule(job, new_status) is not None:
            return True
        completions = js.get("completions")
        if completions is None:
            return succeeded > 0 and not pods.active
        return succeeded >= int(completions)

    def _success_reason(self, job: Obj, new_status: Obj) -> tuple[str, str]:
        rule = self._success_policy_rule(job, new_status)
        if rule is not None:
            return "SuccessPolicy", f"Matched rules at index {rule}"
        return COMPLETIONS_REACHED

    def _success_policy_rule(self, job: Obj, new_status: Obj) -> int | None:
        """Index of the first successPolicy rule the completed indexes satisfy (Indexed jobs)."""
        policy = spec(job).get("successPolicy") or {}
        if not policy or not self._is_indexed(job):
            return None
        done = parse_indexes(new_status.get("completedIndexes"), int(spec(job).get("completions") or 0))
        for index, rule in enumerate(policy.get("rules") or ()):
            wanted = parse_indexes(rule.get("succeededIndexes"), 1 << 30) if rule.get("succeededIndexes") else None
            hits = done & wanted if wanted is not None else done
            count = rule.get("succeededCount")
            if wanted is not None and count is None and wanted <= done:
                return index
            if count is not None and len(hits) >= int(count):
                return index
        return None

    def _failure_reason(self, job: Obj, pods: _Pods, new_status: Obj) -> tuple[str, str] | None:
        js = spec(job)
        if has_backoff_limit_per_index(job):
            completions = int(js.get("completions") or 0)
            failed_indexes = parse_indexes(new_status.get("failedIndexes"), completions)
            done = parse_indexes(new_status.get("completedIndexes"), completions)
            if js.get("maxFailedIndexes") is not None and len(failed_indexes) > int(js["maxFailedIndexes"]):
                return MAX_FAILED_INDEXES_EXCEEDED
            if failed_indexes and len(failed_indexes | done) >= completions:
                return FAILED_INDEXES
        failed = int(new_status.get("failed") or 0)
        restarts = 0
        if (js.get("template") or {}).get("spec", {}).get("restartPolicy") == "OnFailure":
            restarts = sum(int(cs.get("restartCount") or 0) for pod in pods.active
                           for cs in status(pod).get("containerStatuses") or ())
        if failed + restarts > int(js.get("backoffLimit", 6)):
            return BACKOFF_EXCEEDED
        remaining = self._deadline_remaining(job, new_status)
        if remaining is not None and remaining <= 0:
            return DEADLINE_EXCEEDED
        return None

    def _deadline_remaining(self, job: Obj, new_status: Obj) -> float | None:
        deadline = spec(job).get("activeDeadlineSeconds")
        start = parse_time(new_status.get("startTime"))
        if deadline is None or start is None or spec(job).get("suspend"):
            return None
        return float(deadline) - (self.clock.wall() - start).total_seconds()

    # --- suspend and resume ------------------------------------------------------------------------

    async def _suspend(self, job: Obj, pods: _Pods, new_status: Obj) -> None:
        await self._delete_pods(job, pods.active)
        pods.terminating += pods.active
        pods.active = []
        conditions = new_status["conditions"]
        now = now_text(self.clock)
        if set_condition(conditions, new_condition("Suspended", "True", "JobSuspended", "Job suspended", now)):
            new_status.pop("startTime", None)
            self.recorder.event(job, NORMAL, "Suspended", "Job suspended")

    def _resume(self, job: Obj, new_status: Obj) -> None:
        conditions = new_status["conditions"]
        current = find_condition(conditions, "Suspended")
        if current is not None and current.get("status") == "True":
            set_condition(conditions, new_condition("Suspended", "False", "JobResumed", "Job resumed",
                                                    now_text(self.clock)))
            new_status["startTime"] = now_text(self.clock)
            self.recorder.event(job, NORMAL, "Resumed", "Job resumed")

    # --- pods ----------------------------------------------------------------------------------------

    def _is_indexed(self, job: Obj) -> bool:
        return spec(job).get("completionMode") == "Indexed"

    async def _manage(self, job: Obj, pods: _Pods, new_status: Obj) -> float | None:
        js = spec(job)
        parallelism = int(js.get("parallelism", 1))
        in_flight = len(pods.active) + (len(pods.terminating) if only_replace_failed(job) else 0)
        if len(pods.active) > parallelism:
            extra = sorted(pods.active, key=lambda p: (is_ready(p), meta(p).get("creationTimestamp", "")))
            await self._delete_pods(job, extra[: len(pods.active) - parallelism])
            return None
        wanted = self._wanted(job, pods, new_status, parallelism - in_flight)
        if not wanted:
            return None
        delay = self._backoff_remaining(job)
        if delay > 0:
            return delay
        counts = index_failure_counts(job, pods.all) if has_backoff_limit_per_index(job) else {}
        for index in wanted:
            pod = await self._create_pod(job, index, counts.get(index, (0, 0)))
            if pod is not None:
                pods.active.append(pod)
        return None

    def _wanted(self, job: Obj, pods: _Pods, new_status: Obj, room: int) -> list[int | None]:
        """What to create: up to `room` pods (NonIndexed: Nones; Indexed: the lowest free indexes)."""
        if room <= 0:
            return []
        completions = spec(job).get("completions")
        if not self._is_indexed(job):
            if completions is None:
                if int(new_status.get("succeeded") or 0) > 0:
                    return []
                return [None] * room
            missing = int(completions) - int(new_status.get("succeeded") or 0) - len(pods.active)
            return [None] * max(min(room, missing), 0)
        done = parse_indexes(new_status.get("completedIndexes"), int(completions or 0))
        busy = {completion_index(p) for p in pods.active}
        if only_replace_failed(job):
            busy |= {completion_index(p) for p in pods.terminating}
        failed = parse_indexes(new_status.get("failedIndexes"), int(completions or 0))
        free = [i for i in range(int(completions or 0)) if i not in done and i not in busy and i not in failed]
        return list(free[:room])

    def _backoff_remaining(self, job: Obj) -> float:
        record = self._backoff.get(meta(job)["uid"])
        if record is None or record.failures == 0:
            return 0.0
        delay = min(POD_FAILURE_BACKOFF * 2 ** (record.failures - 1), MAX_POD_FAILURE_BACKOFF)
        return record.last_failure + delay - self.clock.now()

    async def _create_pod(self, job: Obj, index: int | None,
                          failure_counts: tuple[int, int] | None = None) -> Obj | None:
        template = copy.deepcopy(spec(job).get("template") or {})
        pod = pod_from_template(template, owner_reference(job, api_version="batch/v1", kind="Job"))
        name = meta(job)["name"]
        pod["metadata"]["generateName"] = f"{name}-" if index is None else f"{name}-{index}-"
        pod["metadata"]["finalizers"] = [*pod["metadata"].get("finalizers", []), TRACKING_FINALIZER]
        if index is not None:
            _add_index(pod, name, index)
            if has_backoff_limit_per_index(job) and failure_counts is not None:
                annotations = pod["metadata"].setdefault("annotations", {})
                annotations[INDEX_FAILURE_COUNT] = str(failure_counts[0])
                if failure_counts[1]:
                    annotations[INDEX_IGNORED_FAILURE_COUNT] = str(failure_counts[1])
        try:
            created = await self.client.create(PODS, pod, namespace=meta(job)["namespace"])
        except errors.StatusError as exc:
            self.recorder.event(job, WARNING, "FailedCreate", f"Error creating: {exc.message}")
            raise
        self.recorder.event(job, NORMAL, "SuccessfulCreate", f"Created pod: {meta(created)['name']}")
        return created

    async def _delete_pods(self, job: Obj, pods: list[Obj]) -> None:
        for pod in pods:
            if await delete_ignoring_missing(self.client, PODS, pod):
                self.recorder.event(job, NORMAL, "SuccessfulDelete", f"Deleted pod: {meta(pod)['name']}")

    # --- status ----------------------------------------------------------------------------------------

    def _fill_counts(self, job: Obj, pods: _Pods, new_status: Obj) -> None:
        new_status["active"] = len(pods.active)
        new_status["ready"] = sum(1 for p in pods.active if is_ready(p))
        new_status["terminating"] = len(pods.terminating)
        new_status.setdefault("uncountedTerminatedPods", {})
        if self._is_indexed(job):
            new_status.setdefault("completedIndexes", "")
        if has_backoff_limit_per_index(job):
            new_status.setdefault("failedIndexes", "")
        if not new_status.get("conditions"):
            new_status.pop("conditions", None)
        for key in ("active", "succeeded", "failed"):
            if not new_status.get(key):
                new_status.pop(key, None)

    async def _write_status(self, job: Obj, new_status: Obj) -> None:
        if new_status != status(job):
            await self._put_status(job, new_status)

    async def _put_status(self, job: Obj, new_status: Obj) -> Obj:
        body = {**job, "status": new_status}
        return await self.client.update(JOBS, body, subresource="status")


def pod_requests(jobs: Lister) -> Mapper:
    """Map a pod event to the Jobs to sync: its controlling Job, or, for an orphan, every Job of
    its namespace whose selector matches it (kube's getPodJobs), so orphans get adopted."""
    owners = owner_requests("Job")

    def mapper(pod: Obj) -> Iterable[Request]:
        if controller_ref(pod) is not None:
            return list(owners(pod))
        if is_deleting(pod):
            return []
        namespace, labels = meta(pod).get("namespace", ""), meta(pod).get("labels") or {}
        if not labels:
            return []
        return [Request(namespace, meta(job)["name"]) for job in jobs.list(namespace=namespace)
                if _selects(job, labels)]

    return mapper


def _selects(job: Obj, labels: dict[str, str]) -> bool:
    try:
        return selector_of(job).matches(labels)
    except SelectorError:
        return False


def _add_index(pod: Obj, job_name: str, index: int) -> None:
    """Indexed pods: the index as annotation and label, a stable hostname, and the env var."""
    pod_meta = pod["metadata"]
    pod_meta.setdefault("annotations", {})[COMPLETION_INDEX] = str(index)
    pod_meta.setdefault("labels", {})[COMPLETION_INDEX] = str(index)
    pod_spec = pod["spec"]
    if not pod_spec.get("hostname"):
        pod_spec["hostname"] = f"{job_name}-{index}"
    env = {"name": COMPLETION_INDEX_ENV, "valueFrom": {"fieldRef": {
        "apiVersion": "v1", "fieldPath": f"metadata.labels['{COMPLETION_INDEX}']"}}}
    for key in ("initContainers", "containers"):
        for container in pod_spec.get(key) or ():
            names = {e.get("name") for e in container.get("env") or ()}
            if COMPLETION_INDEX_ENV not in names:
                container.setdefault("env", []).append(copy.deepcopy(env))


def _min(a: float | None, b: float | None) -> float | None:
    values = [v for v in (a, b) if v is not None]
    return max(min(values), 0.01) if values else None


def job_finish_time(job: Obj) -> datetime | None:
    """When the Job finished: the Complete or Failed condition's transition time."""
    for cond in status(job).get("conditions") or ():
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return parse_time(cond.get("lastTransitionTime"))
    return None
