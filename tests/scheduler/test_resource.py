"""Pod requests as kube counts them: init containers, sidecars, overhead, non-zero defaults."""

from __future__ import annotations

import pytest

from pykube_server.scheduler.resource import non_zero_requests, pod_requests


def c(name: str, cpu: str, memory: str = "0", **extra: str) -> dict:
    return {"name": name, "resources": {"requests": {"cpu": cpu, "memory": memory}}, **extra}


CASES = [
    ("sum of containers", {"containers": [c("a", "100m"), c("b", "200m")]}, 300),
    ("init container larger", {"containers": [c("a", "100m")], "initContainers": [c("i", "1")]}, 1000),
    ("init container smaller", {"containers": [c("a", "500m"), c("b", "500m")], "initContainers": [c("i", "700m")]}, 1000),
    ("sidecar adds up", {"containers": [c("a", "500m")], "initContainers": [c("s", "200m", restartPolicy="Always")]}, 700),
    ("init after sidecar", {"containers": [c("a", "100m")],
                            "initContainers": [c("s", "200m", restartPolicy="Always"), c("i", "1")]}, 1200),
    ("overhead", {"containers": [c("a", "100m")], "overhead": {"cpu": "250m"}}, 350),
]


@pytest.mark.parametrize("name,spec,milli", CASES, ids=[x[0] for x in CASES])
def test_cpu_requests(name: str, spec: dict, milli: int) -> None:
    assert pod_requests({"spec": spec}).get("cpu") == milli


def test_non_zero_defaults_fill_missing_requests() -> None:
    r = non_zero_requests({"spec": {"containers": [{"name": "a"}, c("b", "1", "1Gi")]}})
    assert r.get("cpu") == 1100 and r.get("memory") == 200 * 1024 * 1024 + 1024**3
