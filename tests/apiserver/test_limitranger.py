"""The LimitRanger admission plugin over the wire (an in-process API server, no controllers).

Kube 1.33's behaviour recorded here (plugin/pkg/admission/limitranger): Container defaults fill
in missing limits and requests on pod create and the pod is annotated
`kubernetes.io/limit-ranger: LimitRanger plugin set: cpu, memory request for container c; ...`;
min/max/maxLimitRequestRatio refuse with 403 texts without a trailing period (`maximum cpu
usage per Container is 1, but limit is 2`), several joined as `[a, b]`; Pod limits apply to the
sum over containers; PersistentVolumeClaim limits bound the storage request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pykube_server.api import errors
from pykube_server.client.rest import PERSISTENTVOLUMECLAIMS, PODS, Client, Resource
from pykube_server.testing import local_cluster

LIMITRANGES = Resource("", "v1", "limitranges")
NS = "default"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    async with local_cluster(tmp_path, storage_url="memory://") as lc:
        async with Client.from_kubeconfig(lc.kubeconfig) as c:
            yield c


def pod(name: str, *containers: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": list(containers) or [container("c")]}}


def container(name: str, requests: dict | None = None, limits: dict | None = None) -> dict:
    resources = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    return {"name": name, "image": "busybox", "resources": resources}


async def limit_range(client: Client, *items: dict) -> None:
    await client.create(LIMITRANGES, {"metadata": {"name": "limits"}, "spec": {"limits": list(items)}}, namespace=NS)


async def refused(client: Client, body: dict, resource: Resource = PODS) -> str:
    with pytest.raises(errors.Forbidden) as exc:
        await client.create(resource, body, namespace=NS)
    return exc.value.message


async def test_container_defaults_are_applied_and_announced(client: Client) -> None:
    await limit_range(client, {"type": "Container", "default": {"cpu": "500m", "memory": "256Mi"},
                               "defaultRequest": {"cpu": "100m"}})
    created = await client.create(PODS, pod("p", container("a"), container("b", requests={"cpu": "200m"})), namespace=NS)
    a, b = created["spec"]["containers"]
    assert a["resources"] == {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "256Mi"}}
    assert b["resources"] == {"limits": {"cpu": "500m", "memory": "256Mi"}, "requests": {"cpu": "200m", "memory": "256Mi"}}
    assert created["metadata"]["annotations"]["kubernetes.io/limit-ranger"] == (
        "LimitRanger plugin set: cpu, memory request for container a; cpu, memory limit for container a; "
        "memory request for container b; cpu, memory limit for container b")


async def test_container_bounds_refuse_with_kubes_texts(client: Client) -> None:
    await limit_range(client, {"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "64Mi"},
                               "default": {"cpu": "500m", "memory": "128Mi"}, "maxLimitRequestRatio": {"cpu": "4"}})
    assert await refused(client, pod("big", container("c", limits={"cpu": "2"}))) == \
        'pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2'
    assert await refused(client, pod("small", container("c", requests={"memory": "32Mi", "cpu": "200m"}))) == \
        'pods "small" is forbidden: minimum memory usage per Container is 64Mi, but request is 32Mi'
    assert await refused(client, pod("ratio", container("c", requests={"cpu": "100m"}))) == \
        'pods "ratio" is forbidden: cpu max limit to request ratio per Container is 4, but provided ratio is 5.000000'
    message = await refused(client, pod("both", container("c", requests={"memory": "32Mi"}, limits={"cpu": "2"})))
    assert message.startswith('pods "both" is forbidden: [')
    assert "maximum cpu usage per Container is 1, but limit is 2" in message
    assert "minimum memory usage per Container is 64Mi, but request is 32Mi" in message
    await client.create(PODS, pod("fits", container("c", requests={"cpu": "250m"})), namespace=NS)


async def test_pod_limits_apply_to_the_sum(client: Client) -> None:
    await limit_range(client, {"type": "Pod", "max": {"cpu": "1500m"}})
    two = pod("two", container("a", limits={"cpu": "1"}), container("b", limits={"cpu": "1"}))
    assert await refused(client, two) == 'pods "two" is forbidden: maximum cpu usage per Pod is 1500m, but limit is 2'
    assert await refused(client, pod("none")) == \
        'pods "none" is forbidden: maximum cpu usage per Pod is 1500m.  No limit is specified'


async def test_claim_storage_bounds(client: Client) -> None:
    await limit_range(client, {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "2Gi"}})

    def claim(name: str, size: str) -> dict:
        return {"metadata": {"name": name}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                     "resources": {"requests": {"storage": size}}}}

    assert await refused(client, claim("tiny", "500Mi"), PERSISTENTVOLUMECLAIMS) == \
        'persistentvolumeclaims "tiny" is forbidden: minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi'
    assert await refused(client, claim("huge", "5Gi"), PERSISTENTVOLUMECLAIMS) == \
        'persistentvolumeclaims "huge" is forbidden: maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 5Gi'
    await client.create(PERSISTENTVOLUMECLAIMS, claim("ok", "1Gi"), namespace=NS)
