"""The runtime table: `--runtime` name -> factory, explicit and checked at start-up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pykube_server.client.clock import REAL_CLOCK, Clock
from pykube_server.kubelet.runtime import Runtime
from pykube_server.kubelet.runtimes.fake import FakeRuntime
from pykube_server.kubelet.runtimes.process import ProcessRuntime


@dataclass(frozen=True)
class RuntimeOptions:
    root: Path
    """This node's runtime directory (state, logs)."""
    clock: Clock = REAL_CLOCK
    simulated_start_delay_seconds: float = 0.0


RuntimeFactory = Callable[[RuntimeOptions], Runtime]

RUNTIMES: dict[str, RuntimeFactory] = {
    "process": lambda o: ProcessRuntime(o.root),
    "simulated": lambda o: FakeRuntime(clock=o.clock, start_delay_seconds=o.simulated_start_delay_seconds),
}
