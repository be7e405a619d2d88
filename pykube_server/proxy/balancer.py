"""Which endpoint gets the next connection of one service port.

kube-proxy's userspace load balancer: round robin by default (or uniformly random), and with
`sessionAffinity: ClientIP` a client keeps the endpoint it got until it has been idle for the
affinity timeout. A caller that failed to reach an endpoint asks again excluding it, so a dead
pod costs a retry, not a failed connection. Pure and synchronous; time is injected.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Endpoint = tuple[str, int]
"""(ip, port)"""
ROUND_ROBIN = "round-robin"
RANDOM = "random"
MODES = (ROUND_ROBIN, RANDOM)


@dataclass(slots=True)
class _Affinity:
    endpoint: Endpoint
    last_used: float


class Balancer:
    def __init__(self, *, mode: str = ROUND_ROBIN, affinity_seconds: float | None = None,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown balancing mode {mode!r}; expected one of {', '.join(MODES)}")
        self.mode = mode
        self.affinity_seconds = affinity_seconds
        """None: no session affinity; otherwise ClientIP affinity with this idle timeout."""
        self.endpoints: list[Endpoint] = []
        self._clock = clock
        self._rng = rng or random.Random()
        self._next = 0
        self._affinity: dict[str, _Affinity] = {}

    def update(self, endpoints: Iterable[Endpoint], *, affinity_seconds: float | None = None) -> None:
        """Replace the endpoint list (kept in the given order); affinities to endpoints that
        are gone are forgotten, as are all of them when affinity is switched off or changed."""
        self.endpoints = list(dict.fromkeys(endpoints))
        if affinity_seconds != self.affinity_seconds:
            self._affinity.clear()
        self.affinity_seconds = affinity_seconds
        alive = set(self.endpoints)
        for client in [c for c, a in self._affinity.items() if a.endpoint not in alive]:
            del self._affinity[client]
        if self._next >= len(self.endpoints):
            self._next = 0

    def pick(self, client_ip: str, exclude: set[Endpoint] | frozenset[Endpoint] = frozenset()) -> Endpoint | None:
        """The endpoint for a new connection from `client_ip`, None when none is left."""
        now = self._clock()
        if self.affinity_seconds is not None:
            sticky = self._affinity.get(client_ip)
            if sticky is not None and sticky.endpoint not in exclude and \
                    now - sticky.last_used <= self.affinity_seconds and sticky.endpoint in self.endpoints:
                sticky.last_used = now
                return sticky.endpoint
        candidates = [e for e in self.endpoints if e not in exclude]
        if not candidates:
            return None
        if self.mode == RANDOM:
            chosen = self._rng.choice(candidates)
        else:
            chosen = self._round_robin(exclude)
        if self.affinity_seconds is not None:
            self._affinity[client_ip] = _Affinity(chosen, now)
        return chosen

    def _round_robin(self, exclude: set[Endpoint] | frozenset[Endpoint]) -> Endpoint:
        for _ in range(len(self.endpoints)):
            endpoint = self.endpoints[self._next % len(self.endpoints)]
            self._next = (self._next + 1) % len(self.endpoints)
            if endpoint not in exclude:
                return endpoint
        raise LookupError("no endpoint left")  # unreachable: pick checked candidates

    def failed(self, client_ip: str, endpoint: Endpoint) -> None:
        """A connection to `endpoint` failed: do not keep sending this client there."""
        sticky = self._affinity.get(client_ip)
        if sticky is not None and sticky.endpoint == endpoint:
            del self._affinity[client_ip]
