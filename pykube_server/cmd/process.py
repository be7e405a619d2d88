"""How a pykube process runs: its event loop and its garbage collector.

The API server keeps every stored object in its watch cache and answers thousands of small
requests a second, each allocating a few hundred short-lived dicts. CPython's default cyclic
collector (a young-generation pass every 700 net allocations, a full pass whenever the old
generation grew by a quarter) then spends a fifth of the server's time walking long-lived
objects that can never be garbage: measured with 12,000 pods created in-process, 1.5 s of 7.7 s
were collections, nine full passes of ~120 ms each, which also stall every request in flight.
So a server process raises the young threshold (one pass per 50,000 allocations instead of
700) and, once started, moves everything built at start-up (schemas, OpenAPI documents,
bootstrap policy) into the permanent generation with `gc.freeze()` so no pass walks it again.

The API server's loop is uvloop where it is installed (libuv's socket and TLS handling costs
about a tenth less CPU per request than asyncio's pure-Python SSL protocol), and so is
kube-proxy's, whose relay is nothing but socket reads and writes (through a ClusterIP it went
from 44 % to 65 % of direct keep-alive throughput, bench/proxy.py); the other components keep
asyncio's loop, which their subprocess and pseudo-terminal handling is tested on.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)

SERVER_GC_THRESHOLDS = (50_000, 20, 100)
"""gen0 allocations, gen0 passes per gen1 pass, gen1 passes per gen2 pass (default 700, 10, 10)."""


def tune_server_gc() -> None:
    gc.set_threshold(*SERVER_GC_THRESHOLDS)


def freeze_startup_objects() -> None:
    """Everything alive now lives as long as the process: keep the collector off it."""
    gc.collect()
    gc.freeze()


def run(main: Coroutine[Any, Any, None], *, fast_loop: bool) -> None:
    if fast_loop:
        try:
            import uvloop
        except ImportError:  # an optional speed-up; asyncio's loop serves the same
            log.debug("uvloop not installed; using asyncio's event loop")
        else:
            uvloop.run(main)
            return
    asyncio.run(main)
