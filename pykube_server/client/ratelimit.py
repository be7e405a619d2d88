"""Rate limiters: how long an item (or a request) must wait, client-go's `workqueue` and
`flowcontrol` semantics.

`RateLimiter` answers "how long until `item` may be retried?" and composes by decoration
(`MaxOfRateLimiter` over an exponential per-item backoff and an overall token bucket, exactly
client-go's `DefaultControllerRateLimiter`). `TokenBucket` is the `golang.org/x/time/rate`
reservation model: a reservation always succeeds and returns the delay until its token exists,
so bursts queue up in order instead of failing. The REST client's QPS/burst throttle is the same
bucket, awaited before every request. All time comes from the injected `Clock`.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from pykube_server.client.clock import REAL_CLOCK, Clock

T = TypeVar("T", bound=Hashable)
T_contra = TypeVar("T_contra", bound=Hashable, contravariant=True)

DEFAULT_BASE_DELAY_SECONDS = 0.005
DEFAULT_MAX_DELAY_SECONDS = 1000.0
DEFAULT_QPS = 10.0
DEFAULT_BURST = 100


class RateLimiter(Protocol[T_contra]):
    """Decides retry delays per item. Not thread-safe; used from one event loop."""

    def when(self, item: T_contra) -> float:
        """Seconds to wait before `item` is retried; records one more failure of `item`."""

    def forget(self, item: T_contra) -> None:
        """`item` succeeded: reset its failure history. Idempotent."""

    def num_requeues(self, item: T_contra) -> int:
        """Failures recorded for `item` since it was last forgotten."""


class TokenBucket:
    """`qps` tokens per second, at most `burst` saved; reservations may run into debt."""

    def __init__(self, qps: float, burst: int, *, clock: Clock = REAL_CLOCK) -> None:
        if qps <= 0 or burst <= 0:
            raise ValueError("qps and burst must be positive")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock.now()

    def _refill(self) -> None:
        now = self._clock.now()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now

    def reserve(self) -> float:
        """Take one token now; return the seconds until it is actually available."""
        self._refill()
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps

    def allow(self) -> bool:
        """Take a token only if one is available right now."""
        self._refill()
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    async def wait(self) -> None:
        """Block (on the clock) until a token is ours. A cancelled wait keeps its debt, as
        `rate.Limiter.Wait` would not, but the next caller merely waits a little longer."""
        delay = self.reserve()
        if delay > 0:
            await self._clock.sleep(delay)


class ItemExponentialFailureRateLimiter(Generic[T]):
    """base * 2^failures per item, capped at `max_delay` (5 ms doubling to 1000 s by default)."""

    def __init__(self, base_delay: float = DEFAULT_BASE_DELAY_SECONDS,
                 max_delay: float = DEFAULT_MAX_DELAY_SECONDS) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._failures: dict[T, int] = {}

    def when(self, item: T) -> float:
        exp = self._failures.get(item, 0)
        self._failures[item] = exp + 1
        if exp > 1023:  # 2**exp would overflow a float long before this matters
            return self.max_delay
        return min(self.base_delay * 2.0 ** exp, self.max_delay)

    def forget(self, item: T) -> None:
        self._failures.pop(item, None)

    def num_requeues(self, item: T) -> int:
        return self._failures.get(item, 0)


class BucketRateLimiter(Generic[T]):
    """One token bucket shared by all items: bounds the overall retry rate."""

    def __init__(self, qps: float = DEFAULT_QPS, burst: int = DEFAULT_BURST, *, clock: Clock = REAL_CLOCK) -> None:
        self.bucket = TokenBucket(qps, burst, clock=clock)

    def when(self, item: T) -> float:
        return self.bucket.reserve()

    def forget(self, item: T) -> None:
        pass

    def num_requeues(self, item: T) -> int:
        return 0


class MaxOfRateLimiter(Generic[T]):
    """The longest delay any of the wrapped limiters asks for."""

    def __init__(self, *limiters: RateLimiter[T]) -> None:
        if not limiters:
            raise ValueError("MaxOfRateLimiter needs at least one limiter")
        self.limiters = limiters

    def when(self, item: T) -> float:
        return max(limiter.when(item) for limiter in self.limiters)

    def forget(self, item: T) -> None:
        for limiter in self.limiters:
            limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        return max(limiter.num_requeues(item) for limiter in self.limiters)


def default_controller_rate_limiter(*, clock: Clock = REAL_CLOCK) -> MaxOfRateLimiter[Hashable]:
    """client-go's default: per-item 5 ms..1000 s exponential, max-of an overall 10 qps / 100 burst."""
    return MaxOfRateLimiter(ItemExponentialFailureRateLimiter(),
                            BucketRateLimiter(DEFAULT_QPS, DEFAULT_BURST, clock=clock))
