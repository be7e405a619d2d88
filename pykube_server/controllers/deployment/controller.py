"""The deployment reconciler: one sync per key, shaped like upstream's `syncDeployment`.

Order of a sync: claim ReplicaSets (adopt/release); a deployment being deleted only gets its
status refreshed; pause and resume are recorded as Progressing=Unknown; a paused deployment or
a change of `spec.replicas` is handled by proportional scaling (`sync`); otherwise the strategy
runs (`rolling` or `recreate`), then history is cleaned up once complete, and the status and
Progressing/Available conditions are written. The deployment is a private working copy that
each write refreshes (resourceVersion), and ReplicaSets updated during a sync replace their
cached copies in the sync's list, so one sync never trips over its own writes.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Sequence
from typing import Any

from pykube_server.api import errors
from pykube_server.api.selectors import SelectorError, selector_from_object
from pykube_server.api.types import Obj
from pykube_server.client.events import NORMAL, WARNING, EventRecorder
from pykube_server.client.rest import DEPLOYMENTS, PODS, REPLICASETS, PatchType
from pykube_server.controllers.deployment import rollout as ro
from pykube_server.controllers.deployment.hashing import HASH_LABEL, compute_hash, equal_ignore_hash
from pykube_server.controllers.framework import Context, Request, Result
from pykube_server.controllers.replicaset.objects import (
    RefManager, controller_ref, meta, new_controller_ref, remove_condition, set_condition)

log = logging.getLogger(__name__)

RSList = list[Obj]


class DeploymentReconciler:
    def __init__(self, ctx: Context, recorder: EventRecorder) -> None:
        self.client = ctx.client
        self.clock = ctx.clock
        self.recorder = recorder
        self.deployments = ctx.informer(DEPLOYMENTS)
        self.replicasets = ctx.informer(REPLICASETS)
        self.pods = ctx.informer(PODS)
        self.requeue_rate_limited: Callable[[Request], None] = lambda request: None

    async def reconcile(self, request: Request) -> Result:
        cached = self.deployments.lister.get(request.name, namespace=request.namespace)
        if cached is None:
            return Result()
        d = copy.deepcopy({**cached, "apiVersion": "apps/v1", "kind": "Deployment"})
        if ro.spec(d).get("selector") in ({}, {"matchLabels": {}}, {"matchLabels": {}, "matchExpressions": []}):
            return await self._selecting_all(d)
        rs_list = await self._claim(d)
        if meta(d).get("deletionTimestamp"):
            return await self._sync_status_only(d, rs_list)
        await self._check_paused_conditions(d)
        if ro.spec(d).get("paused") or await self._is_scaling_event(d, rs_list):
            return await self._sync(d, rs_list)
        if (ro.spec(d).get("strategy") or {}).get("type") == "Recreate":
            return await self._recreate(d, rs_list)
        return await self._rolling(d, rs_list)

    async def _selecting_all(self, d: Obj) -> Result:
        self.recorder.event(d, WARNING, "SelectingAll",
                            "This deployment is selecting all pods. A non-empty selector is required.")
        status = d.setdefault("status", {})
        if status.get("observedGeneration", 0) < meta(d).get("generation", 0):
            status["observedGeneration"] = meta(d)["generation"]
            await self._write_status(d)
        return Result()

    async def _claim(self, d: Obj) -> RSList:
        try:
            selector = selector_from_object(ro.spec(d).get("selector"))
        except SelectorError:
            return []
        candidates = self.replicasets.lister.list(namespace=meta(d)["namespace"])
        manager = RefManager(self.client, d, DEPLOYMENTS, REPLICASETS, selector)
        return [copy.deepcopy(rs) for rs in await manager.claim(candidates)]

    def _pod_map(self, d: Obj, rs_list: RSList) -> dict[str, list[Obj]]:
        uids = {meta(rs)["uid"]: [] for rs in rs_list}  # type: dict[str, list[Obj]]
        selector = selector_from_object(ro.spec(d).get("selector"))
        for pod in self.pods.lister.list(selector, namespace=meta(d)["namespace"]):
            ref = controller_ref(pod)
            if ref is not None and ref.get("uid") in uids:
                uids[ref["uid"]].append(pod)
        return uids

    # --- writes ------------------------------------------------------------------------------

    async def _write_status(self, d: Obj) -> None:
        """PUT /status, then (status writes cannot change metadata here) the revision annotation."""
        written = await self.client.update(DEPLOYMENTS, d, subresource="status")
        meta(d)["resourceVersion"] = meta(written)["resourceVersion"]
        want = (meta(d).get("annotations") or {}).get(ro.REVISION)
        if want is not None and (meta(written).get("annotations") or {}).get(ro.REVISION) != want:
            patched = await self.client.patch(DEPLOYMENTS, meta(d)["name"], {"metadata": {"annotations": {ro.REVISION: want}}},
                                              namespace=meta(d)["namespace"], patch_type=PatchType.MERGE)
            meta(d)["resourceVersion"] = meta(patched)["resourceVersion"]

    async def _update_rs(self, rs: Obj, rs_list: RSList | None = None) -> Obj:
        updated = await self.client.update(REPLICASETS, rs)
        if rs_list is not None:
            rs_list[:] = [updated if meta(x)["uid"] == meta(updated)["uid"] else x for x in rs_list]
        return updated

    # --- new and old ReplicaSets ---------------------------------------------------------------

    async def _all_replicasets(self, d: Obj, rs_list: RSList, *, create: bool) -> tuple[Obj | None, RSList]:
        found = ro.find_new(d, rs_list)
        olds = [rs for rs in rs_list if found is None or meta(rs)["uid"] != meta(found)["uid"]]
        new = await self._new_replicaset(d, rs_list, olds, found, create=create)
        return new, olds

    async def _new_replicaset(self, d: Obj, rs_list: RSList, olds: RSList, found: Obj | None, *,
                              create: bool) -> Obj | None:
        new_revision = max((ro.revision_of(rs) for rs in olds), default=0) + 1
        if found is not None:
            return await self._sync_existing_new(d, rs_list, found, new_revision)
        if not create:
            return None
        return await self._create_new(d, rs_list, olds, new_revision)

    async def _sync_existing_new(self, d: Obj, rs_list: RSList, found: Obj, new_revision: int) -> Obj:
        rs = copy.deepcopy(found)
        changed = ro.set_new_rs_annotations(d, rs, new_revision, exists=True)
        min_ready = ro.spec(d).get("minReadySeconds", 0)
        if changed or ro.spec(rs).get("minReadySeconds", 0) != min_ready:
            rs["spec"]["minReadySeconds"] = min_ready
            return await self._update_rs(rs, rs_list)
        needs_update = _set_revision(d, (meta(rs).get("annotations") or {}).get(ro.REVISION, ""))
        status = d.setdefault("status", {})
        if ro.has_progress_deadline(d) and ro.condition(status, "Progressing") is None:
            set_condition(status, ro.new_condition("Progressing", "True", ro.FOUND_NEW_RS,
                                                   f'Found new replica set "{meta(rs)["name"]}"', self.clock.wall()))
            needs_update = True
        if needs_update:
            await self._write_status(d)
        return rs

    def _new_rs_body(self, d: Obj, olds: RSList) -> Obj:
        template = copy.deepcopy(ro.spec(d).get("template") or {})
        pod_hash = compute_hash(template, (d.get("status") or {}).get("collisionCount"))
        template.setdefault("metadata", {})["labels"] = {**(template["metadata"].get("labels") or {}), HASH_LABEL: pod_hash}
        selector = copy.deepcopy(ro.spec(d).get("selector") or {})
        selector["matchLabels"] = {**(selector.get("matchLabels") or {}), HASH_LABEL: pod_hash}
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{meta(d)['name']}-{pod_hash}", "namespace": meta(d)["namespace"],
                           "labels": dict(template["metadata"]["labels"]), "ownerReferences": [new_controller_ref(d)]},
              "spec": {"replicas": 0, "minReadySeconds": ro.spec(d).get("minReadySeconds", 0),
                       "selector": selector, "template": template}}
        rs["spec"]["replicas"] = ro.new_rs_new_replicas(d, [*olds, rs], rs)
        return rs

    async def _create_new(self, d: Obj, rs_list: RSList, olds: RSList, new_revision: int) -> Obj:
        rs = self._new_rs_body(d, olds)
        ro.set_new_rs_annotations(d, rs, new_revision, exists=False)
        try:
            created, existed = await self.client.create(REPLICASETS, rs, namespace=meta(d)["namespace"]), False
        except errors.AlreadyExists:
            created, existed = await self._existing_or_collision(d, rs), True
        except errors.StatusError as exc:
            await self._report_create_failure(d, rs, exc)
            raise
        rs_list.append(created)
        if not existed and ro.replicas(created) > 0:
            self.recorder.event(d, NORMAL, "ScalingReplicaSet",
                                f"Scaled up replica set {meta(created)['name']} from 0 to {ro.replicas(created)}")
        needs_update = _set_revision(d, str(new_revision))
        if not existed and ro.has_progress_deadline(d):
            set_condition(d.setdefault("status", {}), ro.new_condition(
                "Progressing", "True", ro.NEW_RS_CREATED, f'Created new replica set "{meta(created)["name"]}"',
                self.clock.wall()))
            needs_update = True
        if needs_update:
            await self._write_status(d)
        return created

    async def _existing_or_collision(self, d: Obj, rs: Obj) -> Obj:
        """An AlreadyExists: our own ReplicaSet seen late, or a hash collision to step past."""
        name = meta(rs)["name"]
        existing = self.replicasets.lister.get(name, namespace=meta(d)["namespace"])
        if existing is None:
            existing = await self.client.get(REPLICASETS, name, namespace=meta(d)["namespace"])
        ref = controller_ref(existing)
        if ref is not None and ref.get("uid") == meta(d)["uid"] and equal_ignore_hash(
                ro.spec(d).get("template") or {}, ro.spec(existing).get("template") or {}):
            return copy.deepcopy(existing)
        status = d.setdefault("status", {})
        status["collisionCount"] = status.get("collisionCount", 0) + 1
        try:
            await self._write_status(d)
        except errors.StatusError:
            pass
        raise errors.AlreadyExists(f'replicasets.apps "{name}" already exists')

    async def _report_create_failure(self, d: Obj, rs: Obj, exc: errors.StatusError) -> None:
        if any(c.get("reason") == "NamespaceTerminating" for c in (exc.details or {}).get("causes") or ()):
            return
        msg = f'Failed to create new replica set "{meta(rs)["name"]}": {exc.message}'
        if ro.has_progress_deadline(d):
            set_condition(d.setdefault("status", {}),
                          ro.new_condition("Progressing", "False", ro.FAILED_RS_CREATE, msg, self.clock.wall()))
            try:
                await self._write_status(d)
            except errors.StatusError:
                pass
        self.recorder.event(d, WARNING, ro.FAILED_RS_CREATE, msg)

    # --- scaling -------------------------------------------------------------------------------

    async def _scale_rs(self, rs: Obj, new_scale: int, d: Obj, rs_list: RSList,
                        operation: str | None = None) -> tuple[bool, Obj]:
        """Resize `rs` (and refresh its desired/max annotations), with a ScalingReplicaSet event.

        Without `operation` (upstream's scaleReplicaSetAndRecordEvent) an unchanged size is a
        no-op; with one (proportional scaling) stale annotations are still rewritten."""
        if operation is None:
            if ro.replicas(rs) == new_scale:
                return False, rs
            operation = "up" if ro.replicas(rs) < new_scale else "down"
        maximum = ro.replicas(d) + ro.max_surge(d)
        size_changes = ro.replicas(rs) != new_scale
        if not size_changes and not ro.replicas_annotations_need_update(rs, ro.replicas(d), maximum):
            return False, rs
        old_scale, updated = ro.replicas(rs), copy.deepcopy(rs)
        updated["spec"]["replicas"] = new_scale
        ro.set_replicas_annotations(updated, ro.replicas(d), maximum)
        updated = await self._update_rs(updated, rs_list)
        if size_changes:
            self.recorder.event(d, NORMAL, "ScalingReplicaSet",
                                f"Scaled {operation} replica set {meta(updated)['name']} from {old_scale} to {new_scale}")
        return size_changes, updated

    async def _is_scaling_event(self, d: Obj, rs_list: RSList) -> bool:
        new, olds = await self._all_replicasets(d, rs_list, create=False)
        for rs in ro.active([*olds, new]):
            desired = ro.annotation_int(rs, ro.DESIRED_REPLICAS)
            if desired is not None and desired != ro.replicas(d):
                return True
        return False

    async def _scale(self, d: Obj, new: Obj | None, olds: RSList, rs_list: RSList) -> None:
        """Proportional scaling of every active ReplicaSet (upstream's `scale`)."""
        target = ro.find_active_or_latest(new, olds)
        if target is not None:
            if ro.replicas(target) != ro.replicas(d):
                await self._scale_rs(target, ro.replicas(d), d, rs_list)
            return
        if ro.is_saturated(d, new):
            for old in ro.active(olds):
                await self._scale_rs(old, 0, d, rs_list)
            return
        if ro.is_rolling(d):
            await self._scale_proportionally(d, ro.active([*olds, new]), rs_list)

    async def _scale_proportionally(self, d: Obj, live: RSList, rs_list: RSList) -> None:
        allowed = ro.replicas(d) + ro.max_surge(d) if ro.replicas(d) > 0 else 0
        to_add = allowed - ro.total_replicas(live)
        operation = "up" if to_add > 0 else "down" if to_add < 0 else ""
        if to_add:
            live = ro.by_size(live, newer_first=to_add > 0)
        sizes, added = {}, 0
        for rs in live:
            share = ro.proportion(rs, d, to_add, added) if to_add else 0
            sizes[meta(rs)["name"]], added = ro.replicas(rs) + share, added + share
        for i, rs in enumerate(live):
            name = meta(rs)["name"]
            if i == 0 and to_add:
                sizes[name] = max(sizes[name] + to_add - added, 0)
            await self._scale_rs(rs, sizes[name], d, rs_list, operation)

    # --- the sync paths ------------------------------------------------------------------------

    async def _sync(self, d: Obj, rs_list: RSList) -> Result:
        new, olds = await self._all_replicasets(d, rs_list, create=False)
        await self._scale(d, new, olds, rs_list)
        new, olds = _refresh(new, olds, rs_list)
        if ro.spec(d).get("paused"):
            await self._cleanup(olds, d)
        return await self._sync_deployment_status([*olds, new], new, d)

    async def _sync_status_only(self, d: Obj, rs_list: RSList) -> Result:
        new, olds = await self._all_replicasets(d, rs_list, create=False)
        return await self._sync_deployment_status([*olds, new], new, d)

    async def _check_paused_conditions(self, d: Obj) -> None:
        if not ro.has_progress_deadline(d):
            return
        status = d.setdefault("status", {})
        cond = ro.condition(status, "Progressing")
        if cond is not None and cond.get("reason") == ro.TIMED_OUT:
            return
        paused_recorded = cond is not None and cond.get("reason") == ro.PAUSED
        paused = bool(ro.spec(d).get("paused"))
        if paused == paused_recorded:
            return
        reason, message = (ro.PAUSED, "Deployment is paused") if paused else (ro.RESUMED, "Deployment is resumed")
        set_condition(status, ro.new_condition("Progressing", "Unknown", reason, message, self.clock.wall()))
        await self._write_status(d)

    async def _rolling(self, d: Obj, rs_list: RSList) -> Result:
        new, olds = await self._all_replicasets(d, rs_list, create=True)
        assert new is not None
        all_rss = [*olds, new]
        if await self._reconcile_new(d, all_rss, new, rs_list):
            return await self._sync_rollout_status(*_all(_refresh(new, olds, rs_list)), d)
        new, olds = _refresh(new, olds, rs_list)
        if await self._reconcile_olds(d, [*olds, new], ro.active(olds), new, rs_list):
            return await self._sync_rollout_status(*_all(_refresh(new, olds, rs_list)), d)
        if ro.complete(d, d.get("status") or {}):
            await self._cleanup(olds, d)
        return await self._sync_rollout_status([*olds, new], new, d)

    async def _reconcile_new(self, d: Obj, all_rss: RSList, new: Obj, rs_list: RSList) -> bool:
        if ro.replicas(new) == ro.replicas(d):
            return False
        if ro.replicas(new) > ro.replicas(d):
            return (await self._scale_rs(new, ro.replicas(d), d, rs_list))[0]
        return (await self._scale_rs(new, ro.new_rs_new_replicas(d, all_rss, new), d, rs_list))[0]

    async def _reconcile_olds(self, d: Obj, all_rss: RSList, olds: RSList, new: Obj, rs_list: RSList) -> bool:
        if ro.total_replicas(olds) == 0:
            return False
        min_available = ro.replicas(d) - ro.max_unavailable(d)
        new_unavailable = ro.replicas(new) - ro.status_count(new, "availableReplicas")
        max_scaled_down = ro.total_replicas(all_rss) - min_available - new_unavailable
        if max_scaled_down <= 0:
            return False
        olds, cleaned = await self._cleanup_unhealthy(olds, d, max_scaled_down, rs_list)
        scaled = await self._scale_down_olds(d, [*olds, new], olds, rs_list)
        return cleaned + scaled > 0

    async def _cleanup_unhealthy(self, olds: RSList, d: Obj, limit: int, rs_list: RSList) -> tuple[RSList, int]:
        olds, total = ro.by_creation(olds), 0
        for i, rs in enumerate(olds):
            if total >= limit:
                break
            unhealthy = ro.replicas(rs) - ro.status_count(rs, "availableReplicas")
            if ro.replicas(rs) == 0 or unhealthy == 0:
                continue
            count = min(limit - total, unhealthy)
            _, olds[i] = await self._scale_rs(rs, ro.replicas(rs) - count, d, rs_list)
            total += count
        return olds, total

    async def _scale_down_olds(self, d: Obj, all_rss: RSList, olds: RSList, rs_list: RSList) -> int:
        min_available = ro.replicas(d) - ro.max_unavailable(d)
        available = ro.total_status(all_rss, "availableReplicas")
        if available <= min_available:
            return 0
        budget, total = available - min_available, 0
        for rs in ro.by_creation(olds):
            if total >= budget:
                break
            if ro.replicas(rs) == 0:
                continue
            count = min(ro.replicas(rs), budget - total)
            await self._scale_rs(rs, ro.replicas(rs) - count, d, rs_list)
            total += count
        return total

    async def _recreate(self, d: Obj, rs_list: RSList) -> Result:
        pod_map = self._pod_map(d, rs_list)
        new, olds = await self._all_replicasets(d, rs_list, create=False)
        scaled_down = False
        for rs in ro.active(olds):
            scaled_down = (await self._scale_rs(rs, 0, d, rs_list))[0] or scaled_down
        new, olds = _refresh(new, olds, rs_list)
        if scaled_down or _old_pods_running(new, olds, pod_map):
            return await self._sync_rollout_status([*olds, new], new, d)
        if new is None:
            new, olds = await self._all_replicasets(d, rs_list, create=True)
            assert new is not None
        await self._scale_rs(new, ro.replicas(d), d, rs_list)
        new, olds = _refresh(new, olds, rs_list)
        if ro.complete(d, d.get("status") or {}):
            await self._cleanup(olds, d)
        return await self._sync_rollout_status([*olds, new], new, d)

    async def _cleanup(self, olds: RSList, d: Obj) -> None:
        """Delete the oldest idle ReplicaSets beyond revisionHistoryLimit."""
        limit = ro.spec(d).get("revisionHistoryLimit")
        if limit is None or limit == ro.MAX_INT32:
            return
        alive = [rs for rs in olds if not meta(rs).get("deletionTimestamp")]
        for rs in ro.by_revision(alive)[:max(len(alive) - limit, 0)]:
            idle = ro.status_count(rs, "replicas") == 0 and ro.replicas(rs) == 0
            if not idle or meta(rs).get("generation", 0) > ro.status_count(rs, "observedGeneration"):
                continue
            try:
                await self.client.delete(REPLICASETS, meta(rs)["name"], namespace=meta(rs)["namespace"])
            except errors.NotFound:
                pass

    # --- status --------------------------------------------------------------------------------

    async def _sync_deployment_status(self, all_rss: Sequence[Obj | None], new: Obj | None, d: Obj) -> Result:
        status = ro.calculate_status(all_rss, new, d, self.clock.wall())
        if status != (d.get("status") or {}):
            d["status"] = status
            await self._write_status(d)
        return Result()

    async def _sync_rollout_status(self, all_rss: Sequence[Obj | None], new: Obj | None, d: Obj) -> Result:
        now = self.clock.wall()
        status = ro.calculate_status(all_rss, new, d, now)
        if not ro.has_progress_deadline(d):
            remove_condition(status, "Progressing")
        current = ro.condition(d.get("status") or {}, "Progressing")
        done_before = (status.get("replicas", 0) == status.get("updatedReplicas", 0)
                       and current is not None and current.get("reason") == ro.NEW_RS_AVAILABLE)
        if ro.has_progress_deadline(d) and not done_before:
            self._estimate_progress(d, status, new, current, now)
        _copy_replica_failure(status, all_rss, new)
        if status == (d.get("status") or {}):
            return self._requeue_stuck(d, status, now)
        d["status"] = status
        await self._write_status(d)
        return Result()

    def _estimate_progress(self, d: Obj, status: Obj, new: Obj | None, current: Obj | None, now: Any) -> None:
        subject = f'ReplicaSet "{meta(new)["name"]}"' if new is not None else f'Deployment "{meta(d)["name"]}"'
        if ro.complete(d, status):
            set_condition(status, ro.new_condition("Progressing", "True", ro.NEW_RS_AVAILABLE,
                                                   f"{subject} has successfully progressed.", now))
        elif ro.progressing(d, status):
            cond = ro.new_condition("Progressing", "True", ro.RS_UPDATED, f"{subject} is progressing.", now)
            if current is not None:
                if current.get("status") == "True":
                    cond["lastTransitionTime"] = current.get("lastTransitionTime")
                remove_condition(status, "Progressing")
            status["conditions"] = [*status.get("conditions", []), cond]
        elif ro.timed_out(d, status, now):
            set_condition(status, ro.new_condition("Progressing", "False", ro.TIMED_OUT,
                                                   f"{subject} has timed out progressing.", now))

    def _requeue_stuck(self, d: Obj, status: Obj, now: Any) -> Result:
        """No progress to record: look again when the progress deadline would pass."""
        current = ro.condition(d.get("status") or {}, "Progressing")
        if not ro.has_progress_deadline(d) or current is None:
            return Result()
        if ro.complete(d, status) or current.get("reason") == ro.TIMED_OUT:
            return Result()
        since = ro.parse_time(current.get("lastUpdateTime"))
        if since is None:
            return Result()
        after = (since - now).total_seconds() + ro.spec(d)["progressDeadlineSeconds"]
        if after < 1:
            self.requeue_rate_limited(Request(meta(d)["namespace"], meta(d)["name"]))
            return Result()
        return Result(requeue_after=after + 1)


def _set_revision(d: Obj, revision: str) -> bool:
    annotations = meta(d).setdefault("annotations", {})
    if annotations.get(ro.REVISION) == revision:
        return False
    annotations[ro.REVISION] = revision
    return True


def _refresh(new: Obj | None, olds: RSList, rs_list: RSList) -> tuple[Obj | None, RSList]:
    """The same ReplicaSets as in `rs_list` now (after updates made during this sync)."""
    by_uid = {meta(rs)["uid"]: rs for rs in rs_list}
    fresh_new = by_uid.get(meta(new)["uid"], new) if new is not None else None
    return fresh_new, [by_uid.get(meta(rs)["uid"], rs) for rs in olds]


def _all(pair: tuple[Obj | None, RSList]) -> tuple[list[Obj | None], Obj | None]:
    new, olds = pair
    return [*olds, new], new


def _old_pods_running(new: Obj | None, olds: RSList, pod_map: dict[str, list[Obj]]) -> bool:
    if ro.total_status(olds, "replicas") > 0:
        return True
    for uid, pods in pod_map.items():
        if new is not None and uid == meta(new)["uid"]:
            continue
        if any((p.get("status") or {}).get("phase") not in ("Failed", "Succeeded") for p in pods):
            return True
    return False


def _copy_replica_failure(status: Obj, all_rss: Sequence[Obj | None], new: Obj | None) -> None:
    """The first ReplicaFailure of the new ReplicaSet (else of any) becomes the deployment's."""
    candidates = [new] if new is not None and _failures(new) else [rs for rs in all_rss if rs is not None]
    failures = [c for rs in candidates for c in _failures(rs)]
    if not failures:
        remove_condition(status, "ReplicaFailure")
        return
    c = failures[0]
    set_condition(status, {"type": "ReplicaFailure", "status": c.get("status"), "lastUpdateTime": c.get("lastTransitionTime"),
                           "lastTransitionTime": c.get("lastTransitionTime"), "reason": c.get("reason"),
                           "message": c.get("message")})


def _failures(rs: Obj) -> list[Obj]:
    return [c for c in (rs.get("status") or {}).get("conditions") or () if c.get("type") == "ReplicaFailure"]
