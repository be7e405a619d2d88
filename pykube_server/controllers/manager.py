"""The controller manager: runs the selected controllers over one set of shared informers,
while this replica holds the `kube-system/kube-controller-manager` Lease."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

from pykube_server.client.events import EventRecorder
from pykube_server.client.informer import InformerFactory
from pykube_server.client.leaderelection import LeaderElectionConfig, LeaderElector
from pykube_server.client.rest import Client
from pykube_server.controllers.framework import Context
from pykube_server.controllers.registry import CONTROLLERS, select

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ManagerSettings:
    kubeconfig: str
    controllers: str = "*"
    """kube's --controllers syntax: `*` (all on by default), `foo` (enable), `-foo` (disable)."""
    leader_elect: bool = True
    qps: float = 50.0
    burst: int = 100
    options: dict[str, Any] = field(default_factory=dict)
    """Per-controller settings from flags (e.g. `service_account_private_key_file`), as `Context.options`."""


async def run_controllers(ctx: Context, names: list[str]) -> None:
    async with asyncio.TaskGroup() as tg:
        controllers = [CONTROLLERS[name](ctx) for name in names]
        tg.create_task(ctx.informers.run())
        tg.create_task(ctx.recorder.run())
        for name, controller in zip(names, controllers):
            log.info("starting controller %s", name)
            tg.create_task(controller.run(), name=f"controller-{name}")


async def run(settings: ManagerSettings) -> None:
    names = select(settings.controllers)
    async with Client.from_kubeconfig(settings.kubeconfig, qps=settings.qps, burst=settings.burst,
                                      user_agent="kube-controller-manager/v1.33.0 (linux/amd64) pykube") as client:
        ctx = Context(client, InformerFactory(client), EventRecorder(client, component="kube-controller-manager"),
                      options=dict(settings.options))
        if not settings.leader_elect:
            await run_controllers(ctx, names)
            return
        identity = f"{socket.gethostname()}_{uuid.uuid4()}"
        elector = LeaderElector(client, LeaderElectionConfig(namespace="kube-system", name="kube-controller-manager",
                                                              identity=identity),
                                on_started_leading=lambda: run_controllers(ctx, names))
        await elector.run()
        # Like kube-controller-manager: a replica that lost its lease exits, and is restarted.
        raise SystemExit("leader election lost")
