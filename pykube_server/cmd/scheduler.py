"""`pykube-server scheduler`: flags (and a KubeSchedulerConfiguration file) to the scheduler's run(),
while this replica holds the `kube-system/kube-scheduler` Lease."""

from __future__ import annotations

import argparse
import asyncio
import socket
import uuid
from pathlib import Path

import yaml

from pykube_server.client.eventsv1 import EventsV1Recorder
from pykube_server.client.informer import InformerFactory
from pykube_server.client.leaderelection import LeaderElectionConfig, LeaderElector
from pykube_server.client.rest import Client
from pykube_server.scheduler.profile import DEFAULT_PROFILE, Profile, profiles_from_config
from pykube_server.scheduler.scheduler import Scheduler, SchedulerSettings

USER_AGENT = "kube-scheduler/v1.33.0 (linux/amd64) pykube"


def add_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kubeconfig", required=True, help="credentials and server to talk to")
    p.add_argument("--config", default="", help="a KubeSchedulerConfiguration file (kubescheduler.config.k8s.io/v1)")
    p.add_argument("--leader-elect", default="true", choices=("true", "false"),
                   help="hold the kube-system/kube-scheduler Lease while running (default true)")
    p.add_argument("--kube-api-qps", type=float, default=50.0)
    p.add_argument("--kube-api-burst", type=int, default=100)
    p.add_argument("--log-level", default="INFO")


def load_config(path: str) -> tuple[list[Profile], SchedulerSettings]:
    if not path:
        return [DEFAULT_PROFILE], SchedulerSettings()
    doc = yaml.safe_load(Path(path).read_text()) or {}
    settings = SchedulerSettings(percentage_of_nodes_to_score=int(doc.get("percentageOfNodesToScore") or 0),
                                 initial_backoff_seconds=float(doc.get("podInitialBackoffSeconds") or 1),
                                 max_backoff_seconds=float(doc.get("podMaxBackoffSeconds") or 10))
    return profiles_from_config(doc), settings


async def run_scheduler(client: Client, profiles: list[Profile], settings: SchedulerSettings,
                        event_client: Client | None = None) -> None:
    informers = InformerFactory(client)
    # kube-scheduler records events.k8s.io/v1 Events (client-go's tools/events), not core ones.
    recorder = EventsV1Recorder(event_client or client, controller=profiles[0].scheduler_name)
    scheduler = Scheduler(client, informers, recorder, profiles=profiles, settings=settings)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(informers.run())
        tg.create_task(recorder.run())
        tg.create_task(scheduler.run())


async def main(args: argparse.Namespace) -> None:
    profiles, settings = load_config(args.config)
    # Events get a client (and so a QPS budget) of their own, as kube-scheduler's eventClient
    # does: a burst of Scheduled events must not slow the bindings down.
    async with Client.from_kubeconfig(args.kubeconfig, qps=args.kube_api_qps, burst=args.kube_api_burst,
                                      user_agent=USER_AGENT) as client, \
            Client.from_kubeconfig(args.kubeconfig, qps=args.kube_api_qps, burst=args.kube_api_burst,
                                   user_agent=USER_AGENT) as event_client:
        if args.leader_elect != "true":
            await run_scheduler(client, profiles, settings, event_client)
            return
        identity = f"{socket.gethostname()}_{uuid.uuid4()}"
        elector = LeaderElector(client, LeaderElectionConfig(namespace="kube-system", name="kube-scheduler",
                                                              identity=identity),
                                on_started_leading=lambda: run_scheduler(client, profiles, settings, event_client))
        await elector.run()
        raise SystemExit("leader election lost")
