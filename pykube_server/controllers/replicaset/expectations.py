"""Expectations: what a controller's own writes will look like once its informer sees them.

The informer lags our writes. After creating 3 pods, a sync that runs before the watch
delivered them would count 0 pods and create 3 more. So each sync records how many creations
(and which deletions, by pod key) it expects; pod events lower the counts, and pods are only
created or deleted again once everything expected was observed, or after 5 minutes in case an
event was lost. This is upstream's UIDTrackingControllerExpectations.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pykube_server.client.clock import Clock

EXPECTATIONS_TIMEOUT_SECONDS = 300.0


@dataclass
class _Expectation:
    add: int
    deletes: set[str]
    timestamp: float


@dataclass
class Expectations:
    """Upstream's UIDTrackingControllerExpectations: pending creations by count, deletions by pod key."""

    clock: Clock
    _items: dict[str, _Expectation] = field(default_factory=dict)

    def satisfied(self, key: str) -> bool:
        exp = self._items.get(key)
        if exp is None:
            return True
        fulfilled = exp.add <= 0 and not exp.deletes
        return fulfilled or self.clock.now() - exp.timestamp > EXPECTATIONS_TIMEOUT_SECONDS

    def expect_creations(self, key: str, count: int) -> None:
        self._items[key] = _Expectation(count, set(), self.clock.now())

    def expect_deletions(self, key: str, pod_keys: Iterable[str]) -> None:
        self._items[key] = _Expectation(0, set(pod_keys), self.clock.now())

    def creation_observed(self, key: str) -> None:
        exp = self._items.get(key)
        if exp is not None:
            exp.add -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        exp = self._items.get(key)
        if exp is not None:
            exp.deletes.discard(pod_key)

    def delete(self, key: str) -> None:
        self._items.pop(key, None)
