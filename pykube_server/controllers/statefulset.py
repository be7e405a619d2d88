"""The StatefulSet controller: pods with stable names, hostnames and volumes, as kube's does.

Each reconcile reads the StatefulSet, its pods, PVCs and ControllerRevisions fresh from the API
server, then:

* keeps the template history in ControllerRevisions (`<set>-<hash>`); `status.updateRevision`
  is the current template's, `status.currentRevision` the one the set is rolling from;
* creates pod `<set>-<ordinal>` for each ordinal in `[start, start + replicas)` with hostname =
  pod name, subdomain = `serviceName`, labels `statefulset.kubernetes.io/pod-name`,
  `apps.kubernetes.io/pod-index` and `controller-revision-hash` (the revision's name), and first
  its claims `<template>-<set>-<ordinal>` from `volumeClaimTemplates`; ordinals below the
  RollingUpdate partition get the current revision, the rest the update revision;
* `OrderedReady` creates one pod at a time, each only after its predecessors are Running and
  Ready, and removes pods above the range from the highest ordinal down, one at a time;
  `Parallel` creates and deletes without waiting; failed pods are deleted to be re-created;
* RollingUpdate deletes one out-of-date pod at a time, highest ordinal first and never below
  the partition, waiting for the set to be healthy in between; OnDelete updates nothing;
* the PVC retention policy (`whenDeleted`, `whenScaled`: Retain or Delete) becomes owner
  references on the claims (the set's, or the condemned pod's), for the garbage collector;
* status: replicas, readyReplicas, availableReplicas (minReadySeconds), currentReplicas,
  updatedReplicas, current/updateRevision, collisionCount, observedGeneration.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.events import NORMAL, WARNING
from pykube_server.client.rest import CONTROLLERREVISIONS, PERSISTENTVOLUMECLAIMS, PODS, STATEFULSETS, PatchType
from pykube_server.controllers.framework import Context, Controller, Request, Result, owner_requests
from pykube_server.controllers.workload_common import (
    REVISION_HASH_LABEL, delete_ignoring_missing, ensure_revision, is_available, is_controlled_by, is_deleting,
    is_ready, is_terminal, meta, owner_reference, pod_from_template, pod_phase, revision_template, selector_of,
    spec, status, truncate_history,
)

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


@dataclass
class _State:
    """What one reconcile works from."""

    sts: Obj
    pods: dict[int, Obj]
    claims: dict[str, Obj]
    current: Obj
    update: Obj
    revisions: list[Obj] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(meta(self.sts)["name"])

    @property
    def namespace(self) -> str:
        return str(meta(self.sts)["namespace"])


def ordinal_of(pod: Obj, set_name: str) -> int | None:
    name = str(meta(pod).get("name", ""))
    prefix, _, number = name.rpartition("-")
    if prefix != set_name or not number.isdigit():
        return None
    return int(number)


def start_ordinal(sts: Obj) -> int:
    return int((spec(sts).get("ordinals") or {}).get("start") or 0)


def partition(sts: Obj) -> int:
    strategy = spec(sts).get("updateStrategy") or {}
    if strategy.get("type", "RollingUpdate") != "RollingUpdate":
        return 0
    return int((strategy.get("rollingUpdate") or {}).get("partition") or 0)


def claim_name(template: Obj, set_name: str, ordinal: int) -> str:
    return f"{meta(template).get('name')}-{set_name}-{ordinal}"


def running_and_ready(pod: Obj) -> bool:
    return pod_phase(pod) == "Running" and is_ready(pod)


class StatefulSetReconciler:
    def __init__(self, ctx: Context) -> None:
        self.client = ctx.client
        self.clock = ctx.clock
        self.recorder = ctx.recorder

    @classmethod
    def create(cls, ctx: Context) -> Controller:
        return (Controller("statefulset-controller", cls(ctx), workers=5, clock=ctx.clock)
                .watches(ctx.informer(STATEFULSETS))
                .watches(ctx.informer(PODS), owner_requests("StatefulSet")))

    async def reconcile(self, request: Request) -> Result:
        try:
            sts = await self.client.get(STATEFULSETS, request.name, namespace=request.namespace)
        except errors.NotFound:
            return Result()
        state = await self._load(sts)
        if not is_deleting(sts):
            await self._update_claim_owners(state)
            await self._sync_pods(state)
            state = await self._load(sts, revisions=state.revisions, current=state.current, update=state.update)
        requeue = await self._write_status(state)
        live = {meta(state.current)["name"], meta(state.update)["name"]}
        live |= {(meta(p).get("labels") or {}).get(REVISION_HASH_LABEL, "") for p in state.pods.values()}
        await truncate_history(self.client, sts, state.revisions, live)
        return Result(requeue_after=requeue)

    async def _load(self, sts: Obj, *, revisions: list[Obj] | None = None, current: Obj | None = None,
                    update: Obj | None = None) -> _State:
        ns, name = meta(sts)["namespace"], meta(sts)["name"]
        selector = selector_of(sts).to_string()
        listed = await self.client.list(PODS, namespace=ns, label_selector=selector)
        pods: dict[int, Obj] = {}
        for pod in listed.get("items") or ():
            ordinal = ordinal_of(pod, name)
            if ordinal is not None and is_controlled_by(pod, sts):
                pods[ordinal] = pod
        claims_listed = await self.client.list(PERSISTENTVOLUMECLAIMS, namespace=ns)
        claims = {meta(c)["name"]: c for c in claims_listed.get("items") or ()}
        if update is None or current is None or revisions is None:
            listed_revs = await self.client.list(CONTROLLERREVISIONS, namespace=ns)
            update, revisions = await ensure_revision(self.client, sts, listed_revs.get("items") or [], kind="StatefulSet")
            current_name = status(sts).get("currentRevision")
            current = next((r for r in revisions if meta(r)["name"] == current_name), update)
        return _State(sts, pods, claims, current, update, revisions)

    # --- pods --------------------------------------------------------------------------------------

    def _revision_for(self, state: _State, ordinal: int) -> Obj:
        if ordinal < start_ordinal(state.sts) + partition(state.sts):
            return state.current
        return state.update

    def _new_pod(self, state: _State, ordinal: int) -> Obj:
        revision = self._revision_for(state, ordinal)
        template = revision_template(revision)
        pod = pod_from_template(template, owner_reference(state.sts, api_version="apps/v1", kind="StatefulSet"))
        pod_name = f"{state.name}-{ordinal}"
        pod["metadata"]["name"] = pod_name
        labels = pod["metadata"].setdefault("labels", {})
        labels[POD_NAME_LABEL] = pod_name
        labels[POD_INDEX_LABEL] = str(ordinal)
        labels[REVISION_HASH_LABEL] = meta(revision)["name"]
        pod_spec = pod["spec"]
        pod_spec["hostname"] = pod_name
        if spec(state.sts).get("serviceName"):
            pod_spec["subdomain"] = spec(state.sts)["serviceName"]
        volumes = [v for v in pod_spec.get("volumes") or ()
                   if v.get("name") not in {meta(t).get("name") for t in self._claim_templates(state)}]
        for claim in self._claim_templates(state):
            volumes.append({"name": meta(claim)["name"],
                            "persistentVolumeClaim": {"claimName": claim_name(claim, state.name, ordinal)}})
        if volumes:
            pod_spec["volumes"] = volumes
        return pod

    def _claim_templates(self, state: _State) -> list[Obj]:
        return list(spec(state.sts).get("volumeClaimTemplates") or [])

    async def _create_pod(self, state: _State, ordinal: int) -> None:
        await self._create_claims(state, ordinal)
        pod = self._new_pod(state, ordinal)
        try:
            created = await self.client.create(PODS, pod, namespace=state.namespace)
        except errors.AlreadyExists:
            return
        except errors.StatusError as exc:
            self.recorder.event(state.sts, WARNING, "FailedCreate",
                                f"create Pod {pod['metadata']['name']} in StatefulSet {state.name} failed error: {exc.message}")
            raise
        state.pods[ordinal] = created
        self.recorder.event(state.sts, NORMAL, "SuccessfulCreate",
                            f"create Pod {pod['metadata']['name']} in StatefulSet {state.name} successful")

    async def _delete_pod(self, state: _State, ordinal: int) -> None:
        pod = state.pods[ordinal]
        if await delete_ignoring_missing(self.client, PODS, pod):
            self.recorder.event(state.sts, NORMAL, "SuccessfulDelete",
                                f"delete Pod {meta(pod)['name']} in StatefulSet {state.name} successful")
        state.pods[ordinal] = {**pod, "metadata": {**meta(pod), "deletionTimestamp": "now"}}

    async def _create_claims(self, state: _State, ordinal: int) -> None:
        pod_name = f"{state.name}-{ordinal}"
        match_labels = (spec(state.sts).get("selector") or {}).get("matchLabels") or {}
        for template in self._claim_templates(state):
            name = claim_name(template, state.name, ordinal)
            if name in state.claims:
                continue
            claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                     "metadata": {"name": name, "namespace": state.namespace,
                                  "labels": {**(meta(template).get("labels") or {}), **match_labels}},
                     "spec": copy.deepcopy(template.get("spec") or {})}
            if meta(template).get("annotations"):
                claim["metadata"]["annotations"] = dict(meta(template)["annotations"])
            if self._retention(state, "whenDeleted") == "Delete":
                claim["metadata"]["ownerReferences"] = [self._set_ref(state)]
            try:
                created = await self.client.create(PERSISTENTVOLUMECLAIMS, claim)
            except errors.AlreadyExists:
                continue
            except errors.StatusError as exc:
                self.recorder.event(state.sts, WARNING, "FailedCreate",
                                    f"create Claim {name} for Pod {pod_name} in StatefulSet {state.name} failed error: {exc.message}")
                raise
            state.claims[name] = created
            self.recorder.event(state.sts, NORMAL, "SuccessfulCreate",
                                f"create Claim {name} Pod {pod_name} in StatefulSet {state.name} success")

    def _retention(self, state: _State, key: str) -> str:
        return str((spec(state.sts).get("persistentVolumeClaimRetentionPolicy") or {}).get(key) or "Retain")

    def _set_ref(self, state: _State) -> Obj:
        ref = owner_reference(state.sts, api_version="apps/v1", kind="StatefulSet")
        ref.pop("controller")
        return ref

    async def _update_claim_owners(self, state: _State) -> None:
        """Owner references on claims per the retention policy: the set's for whenDeleted=Delete,
        the condemned pod's for whenScaled=Delete (only while it is being scaled away)."""
        replicas = int(spec(state.sts).get("replicas", 1))
        end = start_ordinal(state.sts) + replicas
        for ordinal in set(state.pods) | set(range(start_ordinal(state.sts), end)):
            condemned = ordinal >= end or ordinal < start_ordinal(state.sts)
            for template in self._claim_templates(state):
                claim = state.claims.get(claim_name(template, state.name, ordinal))
                if claim is None:
                    continue
                await self._fix_claim_refs(state, claim, state.pods.get(ordinal), condemned)

    async def _fix_claim_refs(self, state: _State, claim: Obj, pod: Obj | None, condemned: bool) -> None:
        refs = [r for r in meta(claim).get("ownerReferences") or ()
                if r.get("uid") != meta(state.sts).get("uid") and not (pod and r.get("uid") == meta(pod).get("uid"))]
        if self._retention(state, "whenDeleted") == "Delete":
            refs.append(self._set_ref(state))
        if condemned and pod is not None and self._retention(state, "whenScaled") == "Delete":
            refs.append({"apiVersion": "v1", "kind": "Pod", "name": meta(pod)["name"], "uid": meta(pod)["uid"],
                         "blockOwnerDeletion": True})
        old = [r for r in meta(claim).get("ownerReferences") or ()]
        if sorted(map(str, refs)) == sorted(map(str, old)):
            return
        await self.client.patch(PERSISTENTVOLUMECLAIMS, meta(claim)["name"],
                                {"metadata": {"ownerReferences": refs or None,
                                              "resourceVersion": meta(claim).get("resourceVersion")}},
                                namespace=state.namespace, patch_type=PatchType.MERGE)

    async def _sync_pods(self, state: _State) -> None:
        sts = state.sts
        ordered = spec(sts).get("podManagementPolicy", "OrderedReady") != "Parallel"
        start = start_ordinal(sts)
        end = start + int(spec(sts).get("replicas", 1))
        for ordinal in range(start, end):
            pod = state.pods.get(ordinal)
            if pod is not None and is_terminal(pod) and not is_deleting(pod):
                await self._delete_pod(state, ordinal)
                if ordered:
                    return
                continue
            if pod is None:
                await self._create_pod(state, ordinal)
                if ordered:
                    return
                continue
            await self._create_claims(state, ordinal)
            if ordered and (is_deleting(pod) or not running_and_ready(pod)):
                return
        if not await self._scale_down(state, start, end, ordered):
            return
        await self._rolling_update(state, start, end)

    async def _scale_down(self, state: _State, start: int, end: int, ordered: bool) -> bool:
        """Delete pods outside the range, highest ordinal first; True when nothing is left to do."""
        condemned = sorted((o for o in state.pods if o >= end or o < start), reverse=True)
        unhealthy = any(not running_and_ready(state.pods[o]) or is_deleting(state.pods[o]) for o in range(start, end))
        for ordinal in condemned:
            pod = state.pods[ordinal]
            if is_deleting(pod):
                if ordered:
                    return False
                continue
            if ordered and unhealthy:
                return False
            await self._delete_pod(state, ordinal)
            if ordered:
                return False
        return not condemned

    async def _rolling_update(self, state: _State, start: int, end: int) -> None:
        strategy = spec(state.sts).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return
        target = meta(state.update)["name"]
        for ordinal in range(end - 1, start + partition(state.sts) - 1, -1):
            pod = state.pods.get(ordinal)
            if pod is None or is_deleting(pod):
                return
            labels = meta(pod).get("labels") or {}
            if labels.get(REVISION_HASH_LABEL) != target:
                await self._delete_pod(state, ordinal)
                return
            if not running_and_ready(pod):
                return

    # --- status -----------------------------------------------------------------------------------

    async def _write_status(self, state: _State) -> float | None:
        sts = state.sts
        min_ready = int(spec(sts).get("minReadySeconds") or 0)
        now = self.clock.wall()
        pods = [p for p in state.pods.values()]
        current_name, update_name = meta(state.current)["name"], meta(state.update)["name"]
        new_status = copy.deepcopy(status(sts))
        new_status.update({
            "observedGeneration": meta(sts).get("generation", 1),
            "replicas": len(pods),
            "readyReplicas": sum(1 for p in pods if running_and_ready(p)),
            "availableReplicas": sum(1 for p in pods if running_and_ready(p) and is_available(p, min_ready, now)),
            "currentReplicas": sum(1 for p in pods if (meta(p).get("labels") or {}).get(REVISION_HASH_LABEL) == current_name),
            "updatedReplicas": sum(1 for p in pods if (meta(p).get("labels") or {}).get(REVISION_HASH_LABEL) == update_name),
            "currentRevision": current_name,
            "updateRevision": update_name,
            "collisionCount": int(new_status.get("collisionCount") or 0),
        })
        if new_status["updatedReplicas"] == new_status["replicas"] and new_status["readyReplicas"] == new_status["replicas"] \
                and new_status["replicas"] == int(spec(sts).get("replicas", 1)):
            new_status["currentRevision"] = update_name
            new_status["currentReplicas"] = new_status["updatedReplicas"]
        for key in ("readyReplicas", "currentReplicas", "updatedReplicas"):
            if not new_status[key]:
                new_status.pop(key)
        if new_status != status(sts):
            await self.client.update(STATEFULSETS, {**sts, "status": new_status}, subresource="status")
        waiting = [p for p in pods if running_and_ready(p) and not is_available(p, min_ready, now)]
        return float(min_ready) if waiting else None
