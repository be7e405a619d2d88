"""Preemption respects PodDisruptionBudgets where it can (kube's selectVictimsOnNode and
pickOneNodeForPreemption): budget-protected victims are reprieved first, and the node whose
eviction violates the fewest budgets wins before any priority comparison."""

from __future__ import annotations

import random

from pykube_server.scheduler.cache import Cache
from pykube_server.scheduler.framework import Diagnosis, Handle, PodInfo, unschedulable
from pykube_server.scheduler.plugins import PLUGINS
from pykube_server.scheduler.preemption import Preemptor, split_by_budget
from pykube_server.scheduler.profile import DEFAULT_PROFILE
from pykube_server.scheduler.runtime import Framework
from tests.scheduler.builders import node, node_info, pod


def budget(name: str, labels: dict[str, str], allowed: int, disrupted: tuple[str, ...] = ()) -> dict:
    return {"metadata": {"name": name, "namespace": "default"}, "spec": {"selector": {"matchLabels": labels}},
            "status": {"disruptionsAllowed": allowed, "disruptedPods": {p: "2026-01-01T00:00:00Z" for p in disrupted}}}


def info(name: str, priority: int, labels: dict[str, str] | None = None) -> PodInfo:
    return PodInfo.of(pod(name, cpu="1", labels=labels, priority=priority))


def test_each_victim_uses_up_one_allowed_disruption() -> None:
    pods = [info("a", 1, {"app": "db"}), info("b", 1, {"app": "db"}), info("c", 1, {"app": "web"})]
    violating, fine = split_by_budget(pods, [budget("db", {"app": "db"}, 1)])
    assert [p.pod["metadata"]["name"] for p in violating] == ["b"]
    assert [p.pod["metadata"]["name"] for p in fine] == ["a", "c"]
    # a pod the budget already counts as disrupted does not use up another disruption
    violating, _ = split_by_budget(pods, [budget("db", {"app": "db"}, 1, disrupted=("a",))])
    assert violating == []


class _Recorder:
    def event(self, *args: object, **kwargs: object) -> None:
        pass


async def test_the_node_without_budget_violations_is_preempted() -> None:
    protected = pod("guarded", cpu="2", labels={"app": "db"}, priority=1)
    plain = pod("plain", cpu="2", labels={"app": "web"}, priority=5)  # higher priority, but no budget
    nodes = [node_info(node("n1", cpu="2"), protected), node_info(node("n2", cpu="2"), plain)]
    fwk = Framework(DEFAULT_PROFILE, PLUGINS, Handle(), rand=random.Random(1))
    evicted: list[str] = []

    class Client:
        async def patch(self, resource: object, name: str, body: object, **kwargs: object) -> None:
            pass

        async def delete(self, resource: object, name: str, **kwargs: object) -> None:
            evicted.append(name)

    preemptor = Preemptor(Client(), _Recorder(), Cache(), budgets=lambda: [budget("db", {"app": "db"}, 0)])  # type: ignore[arg-type]
    high = PodInfo.of(pod("high", cpu="2", priority=100))
    diagnosis = Diagnosis(node_statuses={n.name: unschedulable("Insufficient cpu") for n in nodes})
    chosen, message = await preemptor.preempt(fwk, high, nodes, diagnosis)
    assert (chosen, message) == ("n2", "")
    assert evicted == ["plain"]
    # without the budget the lower-priority victim's node is chosen, as before
    evicted.clear()
    preemptor = Preemptor(Client(), _Recorder(), Cache())  # type: ignore[arg-type]
    chosen, _ = await preemptor.preempt(fwk, high, nodes, diagnosis)
    assert chosen == "n1" and evicted == ["guarded"]
