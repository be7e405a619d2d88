"""Resource amounts as the scheduler counts them (kube's `framework.Resource` and
`resourcehelper.PodRequests`).

A `Resource` maps a resource name to an integer: millicores for `cpu`, plain units (bytes,
pods, devices) for everything else. A pod's request is what Kubernetes counts: the sum of its
containers and sidecars (init containers with `restartPolicy: Always`), or the largest
ordinary init container plus the sidecars started before it, whichever is larger, plus
`spec.overhead`. Scoring uses the "non-zero" variant, where a container that asks for no cpu
or memory counts as 100m / 200Mi, so that best-effort pods still spread.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pykube_server.api.quantity import QuantityError, parse_quantity

CPU, MEMORY, EPHEMERAL_STORAGE, PODS = "cpu", "memory", "ephemeral-storage", "pods"
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
NON_ZERO_DEFAULTS: Mapping[str, int] = {CPU: DEFAULT_MILLI_CPU_REQUEST, MEMORY: DEFAULT_MEMORY_REQUEST}


def amount(name: str, value: Any) -> int:
    """One quantity as the scheduler's integer (millicores for cpu); bad text counts as 0."""
    if isinstance(value, str):
        return _amount_of_text(name, value)
    return _parse_amount(name, value)


@functools.lru_cache(maxsize=4096)
def _amount_of_text(name: str, value: str) -> int:
    """Requests repeat the same few strings ("100m", "128Mi") across thousands of pods, and
    every pod is parsed when queued and again when its binding is seen: parse each once."""
    return _parse_amount(name, value)


def _parse_amount(name: str, value: Any) -> int:
    try:
        q = parse_quantity(value)
    except QuantityError:
        return 0
    return q.milli_value() if name == CPU else q.int_value()


@dataclass(frozen=True, slots=True)
class Resource:
    values: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_list(cls, resources: Mapping[str, Any]) -> Resource:
        return cls({name: amount(name, value) for name, value in resources.items()})

    def get(self, name: str) -> int:
        return self.values.get(name, 0)

    def __add__(self, other: Resource) -> Resource:
        out = dict(self.values)
        for name, value in other.values.items():
            out[name] = out.get(name, 0) + value
        return Resource(out)

    def __sub__(self, other: Resource) -> Resource:
        out = dict(self.values)
        for name, value in other.values.items():
            out[name] = out.get(name, 0) - value
        return Resource(out)


def _add(total: dict[str, int], more: Mapping[str, int]) -> None:
    for name, value in more.items():
        total[name] = total.get(name, 0) + value


def _max(total: dict[str, int], other: Mapping[str, int]) -> None:
    for name, value in other.items():
        total[name] = max(total.get(name, 0), value)


def _container_requests(container: Mapping[str, Any], defaults: Mapping[str, int]) -> dict[str, int]:
    requests = (container.get("resources") or {}).get("requests") or {}
    out = {name: amount(name, value) for name, value in requests.items()}
    for name, value in defaults.items():
        if name not in requests:
            out[name] = value
    return out


def pod_requests(pod: Mapping[str, Any], *, defaults: Mapping[str, int] | None = None) -> Resource:
    """resourcehelper.PodRequests: containers + sidecars vs. init containers, plus overhead."""
    spec = pod.get("spec") or {}
    defaults = defaults or {}
    total: dict[str, int] = {}
    for c in spec.get("containers") or []:
        _add(total, _container_requests(c, defaults))
    sidecars: dict[str, int] = {}
    init_max: dict[str, int] = {}
    for c in spec.get("initContainers") or []:
        requests = _container_requests(c, defaults)
        if c.get("restartPolicy") == "Always":
            _add(total, requests)
            _add(sidecars, requests)
            _max(init_max, sidecars)
        else:
            step = dict(requests)
            _add(step, sidecars)
            _max(init_max, step)
    _max(total, init_max)
    _add(total, {name: amount(name, v) for name, v in (spec.get("overhead") or {}).items()})
    return Resource(total)


def non_zero_requests(pod: Mapping[str, Any]) -> Resource:
    """The requests scoring uses: cpu and memory defaulted per container when missing."""
    requested = pod_requests(pod, defaults=NON_ZERO_DEFAULTS)
    return Resource({name: requested.get(name) for name in (CPU, MEMORY)})
