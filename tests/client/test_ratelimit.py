"""Rate limiters: exponential per-item backoff, token bucket reservations, max-of."""

from __future__ import annotations

import pytest

from pykube_server.client.clock import FakeClock
from pykube_server.client.ratelimit import (
    BucketRateLimiter,
    ItemExponentialFailureRateLimiter,
    MaxOfRateLimiter,
    TokenBucket,
    default_controller_rate_limiter,
)


def test_exponential_doubles_per_item_and_caps() -> None:
    limiter = ItemExponentialFailureRateLimiter[str](0.005, 1000.0)
    assert [limiter.when("a") for _ in range(4)] == [0.005, 0.01, 0.02, 0.04]
    assert limiter.when("b") == 0.005
    assert limiter.num_requeues("a") == 4
    for _ in range(30):
        limiter.when("a")
    assert limiter.when("a") == 1000.0
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0
    assert limiter.when("a") == 0.005


def test_exponential_survives_huge_failure_counts() -> None:
    limiter = ItemExponentialFailureRateLimiter[str](0.005, 7.0)
    for _ in range(1100):
        delay = limiter.when("x")
    assert delay == 7.0


def test_token_bucket_burst_then_paced() -> None:
    clock = FakeClock()
    bucket = TokenBucket(10, 3, clock=clock)
    assert [bucket.reserve() for _ in range(3)] == [0, 0, 0]
    assert bucket.reserve() == pytest.approx(0.1)
    assert bucket.reserve() == pytest.approx(0.2)   # reservations queue up behind each other
    clock.step(1.0)
    assert bucket.reserve() == 0                    # refilled (capped at burst)


def test_token_bucket_allow_does_not_go_into_debt() -> None:
    clock = FakeClock()
    bucket = TokenBucket(1, 2, clock=clock)
    assert bucket.allow() and bucket.allow()
    assert not bucket.allow()
    clock.step(1)
    assert bucket.allow()


async def test_token_bucket_wait_sleeps_on_clock() -> None:
    import asyncio

    clock = FakeClock()
    bucket = TokenBucket(2, 1, clock=clock)
    await bucket.wait()
    task = asyncio.create_task(bucket.wait())
    await clock.wait_for_waiters()
    assert clock.pending() == [pytest.approx(0.5)]
    clock.step(0.5)
    await asyncio.wait_for(task, 1)


def test_bucket_limiter_is_shared_by_all_items() -> None:
    clock = FakeClock()
    limiter = BucketRateLimiter[str](10, 2, clock=clock)
    assert limiter.when("a") == 0 and limiter.when("b") == 0
    assert limiter.when("c") == pytest.approx(0.1)
    assert limiter.num_requeues("c") == 0


def test_max_of_takes_longest_delay() -> None:
    clock = FakeClock()
    limiter = MaxOfRateLimiter[str](ItemExponentialFailureRateLimiter(1.0, 100.0), BucketRateLimiter(1, 1, clock=clock))
    assert limiter.when("a") == 1.0                 # exponential wins
    assert limiter.when("b") == pytest.approx(1.0)  # both 1.0
    assert limiter.when("a") == 2.0
    assert limiter.num_requeues("a") == 2
    limiter.forget("a")
    assert limiter.num_requeues("a") == 0


def test_default_controller_rate_limiter() -> None:
    clock = FakeClock()
    limiter = default_controller_rate_limiter(clock=clock)
    assert limiter.when("x") == 0.005
    assert limiter.when("x") == 0.01
    for i in range(98):
        limiter.when(f"other-{i}")                  # burst of 100 now spent
    assert limiter.when("y") == pytest.approx(0.1)  # 10 qps pacing beats 5 ms
