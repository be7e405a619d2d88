"""Runs N kubelets (virtual nodes) in one process: the `pykube-server kubelet` component.

Node `i` (from 1) is `<prefix><i>` with podCIDR `127.244.<i>.0/24` (from `pod_cidr_base`). The
REST client, the Services informer (for service-link variables) and the log server are shared;
each node has its own runtime under `<data_dir>/kubelet/<node>/` and its own event recorder
(`source.host` is the node).

A clean stop (cancellation, e.g. SIGTERM) stops the containers of a process runtime, so
nothing outlives `pykube-server up`; a crash leaves them running, and the restarted kubelet
finds them again (see runtimes/process.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from pykube_server.client.events import EventRecorder
from pykube_server.client.informer import Informer
from pykube_server.client.rest import SERVICES, Client
from pykube_server.kubelet import node as nodeinfo
from pykube_server.kubelet.kubelet import Kubelet, NodeConfig
from pykube_server.kubelet.network import NETWORK_PLUGINS
from pykube_server.kubelet.runtimes import RUNTIMES, RuntimeOptions
from pykube_server.kubelet.server import LogServer

log = logging.getLogger(__name__)

HEARTBEAT_QPS = 1e6
HEARTBEAT_BURST = 1_000_000
"""The heartbeat client is not rate limited (the real kubelet gives it QPS -1): Leases and node
status of every node of this process go through it, apart from the pod traffic."""
HEARTBEAT_TIMEOUT_SECONDS = 10.0
REGISTER_CONCURRENCY = 32
"""Nodes of this process registering at once (Node, its status, its CSINode)."""
"""Its request timeout, the node status update frequency (as the real kubelet's)."""


@dataclass(frozen=True)
class KubeletSettings:
    kubeconfig: str
    data_dir: str
    """Runtime state, container logs and the serving certificate live under `<data_dir>/kubelet/`."""
    nodes: int = 1
    node_name_prefix: str = "pykube-node-"
    runtime: str = "process"
    """`process` (real local processes) or `simulated`."""
    pod_cidr_base: str = "127.244.0.0/16"
    """Node i gets the i-th /24 of this range."""
    simulated_cpu: str = "32"
    simulated_memory: str = "256Gi"
    simulated_pods: int = nodeinfo.MAX_PODS
    simulated_start_delay_seconds: float = 0.0
    port: int = 0
    """The kubelet HTTPS port (0: any free port on loopback)."""
    qps: float = 50.0
    burst: int = 100
    cluster_dns: tuple[str, ...] = ("127.96.0.10",)
    """ClusterFirst pods' nameservers (`--cluster-dns`; kubeadm's is the 10th Service IP)."""
    cluster_domain: str = "cluster.local"
    network_plugin: str = "loopback"
    """The pod network plugin (`network.NETWORK_PLUGINS`): `loopback` hands out loopback pod IPs."""
    node_kubeconfig_dir: str = ""
    """Where `<node name>.yaml` kubeconfigs give virtual nodes their own identities
    (`system:node:<name>`), so the Node authorizer and NodeRestriction confine each to itself;
    a node without one uses `kubeconfig`."""


def pod_cidr(base: str, index: int) -> str:
    a, b = base.split("/")[0].split(".")[:2]
    return f"{a}.{b}.{index}.0/24"


def resources(settings: KubeletSettings, data_dir: Path) -> nodeinfo.Resources:
    if settings.runtime != "simulated":
        return nodeinfo.machine_resources(data_dir)
    from pykube_server.api.quantity import parse_quantity

    memory = parse_quantity(settings.simulated_memory).int_value()
    return nodeinfo.Resources(settings.simulated_cpu, memory, 1024 * 2**30, settings.simulated_pods)


async def run(settings: KubeletSettings) -> None:
    if settings.runtime not in RUNTIMES:
        raise SystemExit(f"unknown runtime {settings.runtime!r}; choose one of {sorted(RUNTIMES)}")
    if settings.network_plugin not in NETWORK_PLUGINS:
        raise SystemExit(f"unknown network plugin {settings.network_plugin!r}; choose one of {sorted(NETWORK_PLUGINS)}")
    root = Path(settings.data_dir).resolve() / "kubelet"
    root.mkdir(parents=True, exist_ok=True)
    res = resources(settings, root)
    async with Client.from_kubeconfig(settings.kubeconfig, qps=settings.qps, burst=settings.burst,
                                      user_agent="kubelet/v1.33.0 (linux/amd64) pykube") as client, \
            Client(client.config.with_options(qps=HEARTBEAT_QPS, burst=HEARTBEAT_BURST,
                                              timeout_seconds=HEARTBEAT_TIMEOUT_SECONDS)) as heartbeat:
        services = Informer(client, SERVICES)
        kubelets: list[Kubelet] = []
        server = LogServer(kubelets, cert_dir=root / "pki")
        port = await server.start(settings.port)
        runtimes = []
        own_clients: list[Client] = []
        gate = asyncio.Semaphore(REGISTER_CONCURRENCY)
        try:
            for i in range(1, settings.nodes + 1):
                name = f"{settings.node_name_prefix}{i}"
                node_client, node_heartbeat = client, heartbeat
                own = Path(settings.node_kubeconfig_dir) / f"{name}.yaml" if settings.node_kubeconfig_dir else None
                if own is not None and own.exists():
                    node_client = Client.from_kubeconfig(own, qps=settings.qps, burst=settings.burst,
                                                         user_agent="kubelet/v1.33.0 (linux/amd64) pykube")
                    own_clients.append(node_client)
                    node_heartbeat = node_client  # a node of its own identity shares its client with no one
                runtime = RUNTIMES[settings.runtime](RuntimeOptions(
                    root / name / "runtime", simulated_start_delay_seconds=settings.simulated_start_delay_seconds))
                runtimes.append(runtime)
                recorder = EventRecorder(node_client, component="kubelet", host=name)
                config = NodeConfig(name, pod_cidr(settings.pod_cidr_base, i), res,
                                    simulated=settings.runtime == "simulated", kubelet_port=port,
                                    root_dir=str(root / name), cluster_dns=settings.cluster_dns,
                                    cluster_domain=settings.cluster_domain, network_plugin=settings.network_plugin)
                kubelets.append(Kubelet(config, client=node_client, runtime=runtime, recorder=recorder, services=services,
                                        heartbeat_client=node_heartbeat, startup_gate=gate))
            log.info("kubelet: %d node(s), runtime %s, serving on 127.0.0.1:%d", len(kubelets), settings.runtime, port)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(services.run())
                for kubelet in kubelets:
                    tg.create_task(kubelet.recorder.run())
                    tg.create_task(kubelet.run(), name=f"kubelet-{kubelet.name}")
        except asyncio.CancelledError:
            for runtime in runtimes:  # a clean stop: nothing outlives us (a crash leaves containers running)
                with contextlib.suppress(Exception):
                    await _close(runtime)
            raise
        finally:
            await server.aclose()
            for own_client in own_clients:
                await own_client.aclose()


async def _close(runtime: object) -> None:
    close = getattr(runtime, "aclose")
    try:
        await close(stop=True)
    except TypeError:
        await close()
