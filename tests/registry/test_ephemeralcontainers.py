"""`pods/<name>/ephemeralcontainers` against an in-process API server, as kube-apiserver 1.33
serves it: GET returns the Pod; PUT and strategic-merge PATCH change only
`spec.ephemeralContainers` (labels or containers in the same body are ignored); adding is
allowed, removing or changing an existing one is a 422 with a Forbidden cause on
`spec.ephemeralContainers` ("existing ephemeral containers "x" may not be changed"); ports,
probes, lifecycle and resources are "cannot be set for an Ephemeral Container"; names are
unique across all containers; a plain pod update cannot add them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pykube_server.api import errors
from pykube_server.client.rest import PODS, Client, PatchType
from pykube_server.testing import LocalCluster, local_cluster

NS = "default"
SUB = "ephemeralcontainers"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with local_cluster(tmp_path, storage_url="memory://") as lc:
        async with Client.from_kubeconfig(lc.kubeconfig) as c:
            yield c


async def _pod(client: Client, name: str = "target") -> dict:
    return await client.create(PODS, {"metadata": {"name": name, "labels": {"a": "b"}}, "spec": {
        "containers": [{"name": "c", "image": "busybox"}]}}, namespace=NS)


def _debugger(name: str = "debugger", **fields: object) -> dict:
    return {"name": name, "image": "busybox", "command": ["sh"], "stdin": True, "tty": True, **fields}


async def _add(client: Client, *containers: dict) -> dict:
    return await client.patch(PODS, "target", {"spec": {"ephemeralContainers": list(containers)}}, namespace=NS,
                              patch_type=PatchType.STRATEGIC, subresource=SUB)


async def _invalid(call) -> list[dict]:  # type: ignore[no-untyped-def]
    with pytest.raises(errors.StatusError) as info:
        await call
    assert info.value.code == 422, info.value
    return info.value.status()["details"]["causes"]


async def test_get_returns_the_pod_and_patch_adds_defaulted_containers(client: Client) -> None:
    await _pod(client)
    got = await client.get(PODS, "target", namespace=NS, subresource=SUB)
    assert got["kind"] == "Pod" and got["metadata"]["name"] == "target"
    patched = await _add(client, _debugger(targetContainerName="c"))
    ec = patched["spec"]["ephemeralContainers"]
    assert [e["name"] for e in ec] == ["debugger"]
    assert ec[0]["terminationMessagePolicy"] == "File" and ec[0]["imagePullPolicy"] == "Always"
    assert ec[0]["targetContainerName"] == "c"
    # strategic merge by name: a second patch adds, keeping the first
    patched = await _add(client, _debugger("debugger2"))
    assert {e["name"] for e in patched["spec"]["ephemeralContainers"]} == {"debugger", "debugger2"}


async def test_put_changes_only_ephemeral_containers(client: Client) -> None:
    pod = await _pod(client)
    pod["metadata"]["labels"] = {"changed": "yes"}
    pod["spec"]["containers"][0]["image"] = "nginx"
    pod["spec"]["ephemeralContainers"] = [_debugger()]
    put = await client.update(PODS, pod, subresource=SUB)
    assert put["metadata"]["labels"] == {"a": "b"}
    assert put["spec"]["containers"][0]["image"] == "busybox"
    assert [e["name"] for e in put["spec"]["ephemeralContainers"]] == ["debugger"]


async def test_existing_ephemeral_containers_may_not_change_or_go(client: Client) -> None:
    await _pod(client)
    pod = await _add(client, _debugger())
    changed = {**pod, "spec": {**pod["spec"], "ephemeralContainers": [
        {**pod["spec"]["ephemeralContainers"][0], "image": "alpine"}]}}
    causes = await _invalid(client.update(PODS, changed, subresource=SUB))
    assert causes[0]["reason"] == "FieldValueForbidden" and causes[0]["field"] == "spec.ephemeralContainers"
    assert causes[0]["message"].startswith('Forbidden: existing ephemeral containers "debugger" may not be changed')
    removed = {**pod, "spec": {**pod["spec"], "ephemeralContainers": []}}
    causes = await _invalid(client.update(PODS, removed, subresource=SUB))
    assert causes[0]["message"].startswith('Forbidden: existing ephemeral containers "debugger" may not be removed')


async def test_ephemeral_container_validation(client: Client) -> None:
    await _pod(client)
    causes = await _invalid(_add(client, _debugger(ports=[{"containerPort": 80}],
                                                   readinessProbe={"exec": {"command": ["true"]}},
                                                   resources={"limits": {"cpu": "1"}})))
    fields = {(c["field"], c["message"]) for c in causes}
    for name in ("ports", "readinessProbe", "resources"):
        assert (f"spec.ephemeralContainers[0].{name}", "Forbidden: cannot be set for an Ephemeral Container") in fields
    causes = await _invalid(_add(client, _debugger("c")))
    assert ("spec.ephemeralContainers[0].name", 'Duplicate value: "c"') in {(c["field"], c["message"]) for c in causes}
    causes = await _invalid(_add(client, _debugger(targetContainerName="nope")))
    assert causes[0]["field"] == "spec.ephemeralContainers[0].targetContainerName"


async def test_plain_pod_update_cannot_add_ephemeral_containers(client: Client) -> None:
    pod = await _pod(client)
    pod["spec"]["ephemeralContainers"] = [_debugger()]
    await _invalid(client.update(PODS, pod))


def test_logs_and_exec_accept_an_ephemeral_container_name() -> None:
    """kube-apiserver validates the `container` of pods/log, exec and attach against every
    container of the pod, ephemeral ones included; a name that is none of them stays a 400."""
    from pykube_server.apiserver.handlers.proxy import _container

    pod = {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}],
                                               "ephemeralContainers": [{"name": "debugger"}]}}
    assert _container(pod, "debugger") == "debugger"
    assert _container(pod, "") == "c"
    with pytest.raises(errors.BadRequest, match="container nope is not valid for pod p"):
        _container(pod, "nope")
