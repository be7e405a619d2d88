"""Controller tests: an in-process API server with the controllers under test in the same loop.

`controllers_running()` starts the named controllers the way the controller manager does
(`manager.run_controllers`, shared informers, no leader election) against a `local_cluster`,
and `eventually()` polls a condition with a deadline instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

from pykube_server.client.events import EventRecorder
from pykube_server.client.informer import InformerFactory
from pykube_server.client.rest import Client
from pykube_server.controllers.framework import Context
from pykube_server.controllers.manager import run_controllers
from pykube_server.testing import LocalCluster

T = TypeVar("T")


@contextlib.asynccontextmanager
async def controllers_running(cluster: LocalCluster, names: list[str], **options: Any) -> AsyncIterator[Client]:
    """Run `names` against `cluster` until the block ends; yields a separate test client."""
    async with Client.from_kubeconfig(cluster.kubeconfig, user_agent="kube-controller-manager/v1.33.0") as manager, \
            Client.from_kubeconfig(cluster.kubeconfig, user_agent="pykube-test/v0.1.0") as client:
        ctx = Context(manager, InformerFactory(manager), EventRecorder(manager, component="kube-controller-manager"),
                      options=dict(options))
        task = asyncio.create_task(run_controllers(ctx, names))
        try:
            yield client
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def eventually(check: Callable[[], Awaitable[T]], *, timeout: float = 10.0, interval: float = 0.05) -> T:
    """Poll `check` until it returns a truthy value (returned) or raises nothing past the deadline."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            result = await check()
            if result:
                return result
            error: BaseException | None = None
        except AssertionError as exc:
            error = exc
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s") from error
        await asyncio.sleep(interval)


__all__ = ["controllers_running", "eventually"]
