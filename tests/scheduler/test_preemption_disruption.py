"""A preempted victim carries the DisruptionTarget condition before it is deleted, as
kube-scheduler's preemption patches it through pods/status (reason PreemptionByScheduler, message
naming the preemptor's scheduler)."""

from __future__ import annotations

import random

from pykube_server.client.rest import PatchType
from pykube_server.scheduler.cache import Cache
from pykube_server.scheduler.framework import Diagnosis, Handle, PodInfo, unschedulable
from pykube_server.scheduler.plugins import PLUGINS
from pykube_server.scheduler.preemption import Preemptor
from pykube_server.scheduler.profile import DEFAULT_PROFILE
from pykube_server.scheduler.runtime import Framework
from tests.scheduler.builders import node, node_info, pod


class _Recorder:
    def event(self, *args: object, **kwargs: object) -> None:
        pass


class _Client:
    """Records the calls in order, so the test can see the condition comes before the delete."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []

    async def patch(self, resource: object, name: str, body: dict, **kwargs: object) -> None:
        self.calls.append(("patch", name, {"body": body, **kwargs}))

    async def delete(self, resource: object, name: str, **kwargs: object) -> None:
        self.calls.append(("delete", name, dict(kwargs)))


async def test_victim_gets_disruption_target_before_deletion() -> None:
    victim = pod("low", cpu="2", priority=1)
    nodes = [node_info(node("n1", cpu="2"), victim)]
    fwk = Framework(DEFAULT_PROFILE, PLUGINS, Handle(), rand=random.Random(1))
    client = _Client()
    preemptor = Preemptor(client, _Recorder(), Cache())  # type: ignore[arg-type]
    high = pod("high", cpu="2", priority=100)
    high.setdefault("spec", {})["schedulerName"] = "my-scheduler"
    diagnosis = Diagnosis(node_statuses={"n1": unschedulable("Insufficient cpu")})
    chosen, message = await preemptor.preempt(fwk, PodInfo.of(high), nodes, diagnosis)
    assert (chosen, message) == ("n1", "")
    assert [(c[0], c[1]) for c in client.calls] == [("patch", "low"), ("delete", "low")]
    patch = client.calls[0][2]
    assert patch["subresource"] == "status" and patch["patch_type"] is PatchType.STRATEGIC
    [condition] = patch["body"]["status"]["conditions"]
    assert condition["type"] == "DisruptionTarget" and condition["status"] == "True"
    assert condition["reason"] == "PreemptionByScheduler"
    assert condition["message"] == "my-scheduler: preempting to accommodate a higher priority pod"
    assert condition["lastTransitionTime"]
