"""Periodic compaction: keep a fixed span of *time* of history, as kube-apiserver does.

Kubernetes compacts etcd every `--etcd-compaction-interval` (5 minutes) to the revision it saw
one interval earlier. Here the retention and the interval are separate knobs: every interval we
sample (time, current revision) and compact to the newest sampled revision that is at least
`retention_seconds` old. Samples live in memory only; after a restart nothing is compacted
until `retention_seconds` have passed again, which errs on the side of keeping history.

Clock and sleep are injected so tests drive time instead of waiting for it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

from pykube_server.storage.backend import Backend

log = logging.getLogger(__name__)


async def run_compactor(
    backend: Backend,
    *,
    retention_seconds: float = 300,
    interval_seconds: float = 60,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> None:
    """Compact `backend` every `interval_seconds` to the revision current `retention_seconds`
    ago. Runs until cancelled. A failed compaction is logged and not retried: the next
    interval compacts to a newer revision anyway."""
    samples: deque[tuple[float, int]] = deque()
    while True:
        now = clock()
        samples.append((now, await backend.current_revision()))
        target = _expired_revision(samples, now - retention_seconds)
        if target:
            try:
                await backend.compact(target)
                log.debug("compacted storage to revision %d", target)
            except Exception:
                log.exception("compaction to revision %d failed", target)
        await sleep(interval_seconds)


def _expired_revision(samples: deque[tuple[float, int]], cutoff: float) -> int:
    """Drop samples taken at or before `cutoff`; return the newest one's revision (0: none)."""
    revision = 0
    while samples and samples[0][0] <= cutoff:
        revision = samples.popleft()[1]
    return revision
