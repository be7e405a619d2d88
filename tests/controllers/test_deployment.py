"""The deployment controller (with the ReplicaSet controller) against an in-process API server.

Facts recorded here (kube-controller-manager 1.33, pkg/controller/deployment):
- a ReplicaSet per template version, named `<deployment>-<pod-template-hash>`, whose selector
  and template labels gain `pod-template-hash`; annotations `deployment.kubernetes.io/revision`,
  `desired-replicas` and `max-replicas` (= replicas + maxSurge);
- maxSurge percentages round up, maxUnavailable ones round down, both zero means unavailable 1;
- events: ScalingReplicaSet "Scaled up replica set <rs> from 0 to 3" on creation and
  "Scaled <up|down> replica set <rs> from <old> to <new>" on resizes, from deployment-controller;
- conditions: Progressing NewReplicaSetCreated -> ReplicaSetUpdated -> NewReplicaSetAvailable
  (or ProgressDeadlineExceeded), DeploymentPaused/DeploymentResumed with status Unknown;
  Available MinimumReplicasAvailable / MinimumReplicasUnavailable.
Pods are marked ready through `pods/status` (no kubelet yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pykube_server.client.events import EventRecorder, format_time
from pykube_server.client.informer import InformerFactory
from pykube_server.client.rest import DEPLOYMENTS, EVENTS, PODS, REPLICASETS, Client
from pykube_server.controllers.deployment import rollout as ro
from pykube_server.controllers.deployment.hashing import SAFE_ALPHABET, compute_hash, equal_ignore_hash
from pykube_server.controllers.deployment.handlers import deployment_controller
from pykube_server.controllers.framework import Context
from pykube_server.controllers.replicaset import replicaset_controller
from pykube_server.testing import local_cluster

NS = "default"


@dataclass
class Env:
    client: Client
    max_pods_seen: dict[str, int] = field(default_factory=dict)
    auto_ready: set[str] = field(default_factory=set)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with local_cluster(tmp_path, storage_url="memory://") as lc:
        async with Client.from_kubeconfig(lc.kubeconfig, user_agent="kube-controller-manager/v1.33.0") as client:
            ctx = Context(client, InformerFactory(client), EventRecorder(client, component="kube-controller-manager"))
            e = Env(client)
            controllers = [replicaset_controller(ctx), deployment_controller(ctx)]
            tasks = [asyncio.create_task(ctx.informers.run()), asyncio.create_task(_kubelet(e))]
            tasks += [asyncio.create_task(c.run()) for c in controllers]
            try:
                yield e
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)


async def _kubelet(env: Env) -> None:
    """Marks pods of the apps in `env.auto_ready` Running and Ready, and records the most pods
    each app had at once (a stand-in kubelet, reporting through pods/status)."""
    while True:
        pods = (await env.client.list(PODS, namespace=NS))["items"]
        counts: dict[str, int] = {}
        for pod in pods:
            app = (pod["metadata"].get("labels") or {}).get("app", "")
            counts[app] = counts.get(app, 0) + 1
            if app in env.auto_ready and (pod.get("status") or {}).get("phase") != "Running":
                with contextlib.suppress(Exception):
                    await mark_ready(env.client, pod)
        for app, n in counts.items():
            env.max_pods_seen[app] = max(env.max_pods_seen.get(app, 0), n)
        await asyncio.sleep(0.05)


async def mark_ready(client: Client, pod: dict[str, Any]) -> None:
    pod = {**pod, "status": {"phase": "Running", "conditions": [
        {"type": "Ready", "status": "True", "lastTransitionTime": format_time(datetime.now(timezone.utc))}]}}
    await client.update(PODS, pod, subresource="status")


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(0.05)


def deployment(name: str, replicas: int = 3, *, image: str = "nginx", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}, **spec}}


async def replicasets(client: Client, app: str) -> list[dict[str, Any]]:
    items = (await client.list(REPLICASETS, namespace=NS, label_selector=f"app={app}"))["items"]
    return sorted(items, key=lambda rs: ro.revision_of(rs))


async def get(client: Client, name: str) -> dict[str, Any]:
    return await client.get(DEPLOYMENTS, name, namespace=NS)


def condition(d: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in d["status"].get("conditions", []) if c["type"] == kind)


async def rolled_out(client: Client, name: str) -> dict[str, Any] | None:
    """kubectl rollout status's test for done."""
    d = await get(client, name)
    s, want = d.get("status") or {}, d["spec"]["replicas"]
    done = (s.get("observedGeneration", 0) >= d["metadata"]["generation"] and s.get("updatedReplicas", 0) >= want
            and s.get("replicas", 0) <= s.get("updatedReplicas", 0) and s.get("availableReplicas", 0) >= want)
    progressing = next((c for c in s.get("conditions", []) if c["type"] == "Progressing"), {})
    return d if done and progressing.get("reason") == ro.NEW_RS_AVAILABLE else None


async def scaling_events(client: Client, name: str) -> list[str]:
    items = (await client.list(EVENTS, namespace=NS, field_selector=f"involvedObject.name={name}"))["items"]
    return [e["message"] for e in sorted(items, key=lambda e: e["metadata"]["creationTimestamp"])
            if e["reason"] == "ScalingReplicaSet"]


# --- against the API server --------------------------------------------------------------------

async def test_creates_replicaset_and_reports_rollout(env: Env) -> None:
    created = await env.client.create(DEPLOYMENTS, deployment("web"), namespace=NS)
    [rs] = await eventually(lambda: _n_replicasets(env.client, "web", 1))
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{pod_hash}" and set(pod_hash) <= set(SAFE_ALPHABET)
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert rs["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                                  "uid": created["metadata"]["uid"], "controller": True,
                                                  "blockOwnerDeletion": True}]
    annotations = rs["metadata"]["annotations"]
    assert annotations == {"deployment.kubernetes.io/revision": "1", "deployment.kubernetes.io/desired-replicas": "3",
                           "deployment.kubernetes.io/max-replicas": "4"}
    assert rs["spec"]["replicas"] == 3
    d = await get(env.client, "web")
    assert condition(d, "Progressing")["reason"] in (ro.NEW_RS_CREATED, ro.RS_UPDATED)
    env.auto_ready.add("web")
    d = await eventually(lambda: rolled_out(env.client, "web"))
    assert d["status"] == {**d["status"], "observedGeneration": 1, "replicas": 3, "updatedReplicas": 3,
                           "readyReplicas": 3, "availableReplicas": 3}
    assert "unavailableReplicas" not in d["status"]
    assert [c["type"] for c in d["status"]["conditions"]] == ["Available", "Progressing"]
    assert condition(d, "Available")["reason"] == "MinimumReplicasAvailable"
    assert condition(d, "Progressing")["message"] == f'ReplicaSet "web-{pod_hash}" has successfully progressed.'
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    messages = await eventually(lambda: scaling_events(env.client, "web"))
    assert messages == [f"Scaled up replica set web-{pod_hash} from 0 to 3"]


async def test_rolling_update_respects_surge_and_keeps_history(env: Env) -> None:
    env.auto_ready.add("roll")
    await env.client.create(DEPLOYMENTS, deployment("roll", 4, strategy={
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}), namespace=NS)
    await eventually(lambda: rolled_out(env.client, "roll"))
    env.max_pods_seen.pop("roll", None)
    await env.client.patch(DEPLOYMENTS, "roll", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "nginx:2"}]}}}}, namespace=NS)
    d = await eventually(lambda: rolled_out(env.client, "roll"), timeout=30)
    assert d["status"]["observedGeneration"] == 2
    old, new = await replicasets(env.client, "roll")
    assert (old["spec"]["replicas"], new["spec"]["replicas"]) == (0, 4)
    assert ro.revision_of(new) == 2 and d["metadata"]["annotations"][ro.REVISION] == "2"
    assert env.max_pods_seen["roll"] <= 5  # replicas + maxSurge
    messages = await scaling_events(env.client, "roll")
    new_name, old_name = new["metadata"]["name"], old["metadata"]["name"]
    assert messages[1] == f"Scaled up replica set {new_name} from 0 to 1"
    assert f"Scaled down replica set {old_name} from 1 to 0" in messages


async def test_recreate_scales_old_to_zero_first(env: Env) -> None:
    env.auto_ready.add("rec")
    await env.client.create(DEPLOYMENTS, deployment("rec", 2, strategy={"type": "Recreate"}), namespace=NS)
    await eventually(lambda: rolled_out(env.client, "rec"))
    env.max_pods_seen.pop("rec", None)
    await env.client.patch(DEPLOYMENTS, "rec", {"spec": {"template": {"spec": {"containers": [
        {"name": "c", "image": "nginx:2"}]}}}}, namespace=NS)
    await eventually(lambda: rolled_out(env.client, "rec"), timeout=30)
    assert env.max_pods_seen["rec"] <= 2
    messages = await scaling_events(env.client, "rec")
    assert messages[1].startswith("Scaled down replica set rec-") and messages[1].endswith("from 2 to 0")
    assert messages[2].startswith("Scaled up replica set rec-") and messages[2].endswith("from 0 to 2")


async def test_scaling_pause_resume_and_history_limit(env: Env) -> None:
    env.auto_ready.add("ops")
    await env.client.create(DEPLOYMENTS, deployment("ops", 2, revisionHistoryLimit=1), namespace=NS)
    await eventually(lambda: rolled_out(env.client, "ops"))
    await env.client.patch(DEPLOYMENTS, "ops", {"spec": {"replicas": 5}}, namespace=NS)
    [rs] = await eventually(lambda: _n_replicasets(env.client, "ops", 1, replicas=5))
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "5"
    await env.client.patch(DEPLOYMENTS, "ops", {"spec": {"paused": True}}, namespace=NS)
    d = await eventually(lambda: _progressing_reason(env.client, "ops", ro.PAUSED))
    assert condition(d, "Progressing")["status"] == "Unknown"
    for image in ("nginx:2", "nginx:3"):
        await env.client.patch(DEPLOYMENTS, "ops", {"spec": {"template": {"spec": {"containers": [
            {"name": "c", "image": image}]}}}}, namespace=NS)
    await eventually(lambda: _observed(env.client, "ops", 5))
    assert len(await replicasets(env.client, "ops")) == 1  # paused: no rollout
    await env.client.patch(DEPLOYMENTS, "ops", {"spec": {"paused": False}}, namespace=NS)
    await eventually(lambda: rolled_out(env.client, "ops"), timeout=30)
    rss = await eventually(lambda: _n_replicasets(env.client, "ops", 2))  # revisionHistoryLimit=1
    assert [ro.revision_of(rs) for rs in rss] == [1, 2] and rss[0]["spec"]["replicas"] == 0


async def test_progress_deadline_exceeded(env: Env) -> None:
    await env.client.create(DEPLOYMENTS, deployment("slow", 1, progressDeadlineSeconds=1), namespace=NS)
    d = await eventually(lambda: _progressing_reason(env.client, "slow", ro.TIMED_OUT), timeout=20)
    cond = condition(d, "Progressing")
    assert cond["status"] == "False" and cond["message"].endswith("has timed out progressing.")
    assert condition(d, "Available") == {**condition(d, "Available"), "status": "False",
                                         "reason": "MinimumReplicasUnavailable",
                                         "message": "Deployment does not have minimum availability."}
    assert d["status"]["unavailableReplicas"] == 1


# --- pure parts ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("replicas", "surge", "unavailable", "want"), [
    (10, "25%", "25%", (3, 2)),
    (3, "25%", "25%", (1, 0)),
    (1, "25%", "25%", (1, 0)),
    (4, 0, "10%", (0, 1)),
    (10, "0%", "0%", (0, 1)),
    (5, 2, 3, (2, 3)),
], ids=["ten", "three-rounds", "one", "zero-surge-rounds-up-unavailable", "both-zero", "ints"])
def test_fenceposts(replicas: int, surge: int | str, unavailable: int | str, want: tuple[int, int]) -> None:
    d = deployment("x", replicas, strategy={"type": "RollingUpdate",
                                            "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}})
    assert ro.resolve_fenceposts(d) == want


def test_hash_is_safe_encoded_and_moves_with_collision_count() -> None:
    template = deployment("x")["spec"]["template"]
    plain = compute_hash(template, None)
    assert set(plain) <= set(SAFE_ALPHABET) and 1 <= len(plain) <= 10
    assert compute_hash(template, None) == plain != compute_hash(template, 1) != compute_hash(template, 2)
    hashed = {**template, "metadata": {"labels": {"app": "x", "pod-template-hash": plain}}}
    assert equal_ignore_hash(hashed, template)
    assert not equal_ignore_hash(hashed, deployment("x", image="other")["spec"]["template"])


def test_proportional_scaling_shares() -> None:
    d = deployment("x", 15, strategy={"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 1}})
    big = {"metadata": {"name": "a", "annotations": {ro.MAX_REPLICAS: "13"}}, "spec": {"replicas": 8}}
    small = {"metadata": {"name": "b", "annotations": {ro.MAX_REPLICAS: "13"}}, "spec": {"replicas": 5}}
    # 10 -> 15 replicas (max 13 -> 18): 8 * 18/13 = 11.08 -> 11, 5 * 18/13 = 6.92 -> 7
    assert ro.proportion(big, d, 5, 0) == 3
    assert ro.proportion(small, d, 5, 3) == 2


def test_revision_history_is_kept_when_a_replicaset_is_reused() -> None:
    d = deployment("x")
    d["metadata"]["annotations"] = {"team": "a", ro.LAST_APPLIED: "{}"}
    rs = {"metadata": {"annotations": {ro.REVISION: "1"}}, "spec": {"replicas": 0}}
    assert ro.set_new_rs_annotations(d, rs, 3, exists=True)
    assert rs["metadata"]["annotations"] == {ro.REVISION: "3", ro.REVISION_HISTORY: "1", "team": "a"}
    ro.set_new_rs_annotations(d, rs, 5, exists=True)
    assert rs["metadata"]["annotations"][ro.REVISION_HISTORY] == "1,3"


# --- polling helpers ----------------------------------------------------------------------------

async def _n_replicasets(client: Client, app: str, n: int, *, replicas: int | None = None) -> list[dict[str, Any]] | None:
    rss = await replicasets(client, app)
    if len(rss) != n or (replicas is not None and rss[-1]["spec"]["replicas"] != replicas):
        return None
    return rss


async def _progressing_reason(client: Client, name: str, reason: str) -> dict[str, Any] | None:
    d = await get(client, name)
    conds = [c for c in (d.get("status") or {}).get("conditions", []) if c["type"] == "Progressing"]
    return d if conds and conds[0]["reason"] == reason else None


async def _observed(client: Client, name: str, generation: int) -> bool:
    return bool(((await get(client, name)).get("status") or {}).get("observedGeneration") == generation)
