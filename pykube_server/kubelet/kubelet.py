"""The kubelet of one node: registration, the Lease heartbeat, node status, and its pods.

One process may run many nodes (`--nodes N`): each `Kubelet` has its own runtime, IP range,
pod informer (field selector `spec.nodeName=<node>`) and pod workers, while the REST client,
the event recorder, the Services informer and the log server are shared.

Timings are the kubelet's defaults: the Lease in `kube-node-lease` (duration 40 s) is renewed
every 10 s; node status is computed every 10 s and written when it changed or when a minute
passed since the last write (the heartbeat), so a healthy idle node costs one Lease update per
10 s and one status patch per minute.

Heartbeats (Lease and node status) go through `heartbeat_client` when given: as the real
kubelet's HeartbeatClient, a client of their own without a QPS limit, so a burst of pod
traffic (status patches, events) on the shared client never delays them. The renewal interval
is counted from the start of the previous renewal, so the API server's latency does not add
to the gap between two renewTimes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from pathlib import Path

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.cache import key_of
from pykube_server.client.clock import REAL_CLOCK, Clock
from pykube_server.client.events import NORMAL, WARNING, EventRecorder
from pykube_server.client.informer import FuncHandler, Informer
from pykube_server.client.leaderelection import format_microtime
from pykube_server.client.rest import CONFIGMAPS, LEASES, NODES, PODS, SECRETS, Client, Resource, TransportError
from pykube_server.kubelet import csinode
from pykube_server.kubelet import node as nodeinfo
from pykube_server.kubelet.csi import LOCAL_PATH_DRIVER, CSINodePlugin, LocalPathDriver
from pykube_server.kubelet.context import IPAllocator, NodeContext
from pykube_server.kubelet.dns import PodDNS
from pykube_server.kubelet.network import NETWORK_PLUGINS, LoopbackNetwork, NetworkPlugin
from pykube_server.kubelet.pod_workers import PodWorkers
from pykube_server.kubelet.runtime import EventedRuntime, Runtime
from pykube_server.kubelet.status import rfc3339
from pykube_server.kubelet.volumes import VolumeManager

log = logging.getLogger(__name__)

LEASE_DURATION_SECONDS = 40
LEASE_RENEW_SECONDS = 10.0
LEASE_JITTER = 0.04
STATUS_UPDATE_SECONDS = 10.0
STATUS_REPORT_SECONDS = 60.0
RETRY_SECONDS = 1.0
LEASE_NAMESPACE = "kube-node-lease"


@dataclass(frozen=True)
class NodeConfig:
    name: str
    pod_cidr: str
    resources: nodeinfo.Resources
    simulated: bool = False
    kubelet_port: int = 10250
    root_dir: str = ""
    """This node's directory (`pods/<uid>/volumes/...` live there); empty: no volumes."""
    cluster_dns: tuple[str, ...] = ()
    """`--cluster-dns`: the nameservers of ClusterFirst pods."""
    cluster_domain: str = ""
    """`--cluster-domain`; empty: pods' resolv.conf and hosts files are not managed."""
    network_plugin: str = "loopback"
    """`--network-plugin`: a name in `network.NETWORK_PLUGINS` (the CNI seam)."""


class Kubelet:
    """Runs one node until cancelled."""

    def __init__(self, config: NodeConfig, *, client: Client, runtime: Runtime, recorder: EventRecorder,
                 services: Informer | None = None, clock: Clock = REAL_CLOCK,
                 network: NetworkPlugin | None = None, heartbeat_client: Client | None = None,
                 startup_gate: asyncio.Semaphore | None = None) -> None:
        self.config = config
        self.client = client
        self.heartbeat = heartbeat_client or client
        self._startup_gate = startup_gate
        """Bounds how many nodes of this process register at once (each registration is a few
        requests; a thousand at once would mean a thousand new TLS connections)."""
        self.runtime = runtime
        self.recorder = recorder
        self.clock = clock
        self.node: Obj = {}
        self.node_status_writes = 0
        self.lease_renewals = 0
        self._lease: Obj | None = None
        """The Lease as last written: the next renewal updates it without reading it first."""
        self._services = services
        self._last_report = -1e9
        _, alloc = nodeinfo.capacity(config.resources)
        if network is None:
            network = NETWORK_PLUGINS[config.network_plugin](config.pod_cidr)
        ips = network.ips if isinstance(network, LoopbackNetwork) else IPAllocator(config.pod_cidr)
        self.ctx = NodeContext(node_name=config.name, host_ip="127.0.0.1", client=client, recorder=recorder,
                               runtime=runtime, ips=ips, getter=self._get_source, network=network,
                               services=self._service_list, allocatable=alloc, clock=clock)
        self.csi_drivers: dict[str, CSINodePlugin] = {LOCAL_PATH_DRIVER: LocalPathDriver(config.name)}
        """The CSI node plugins registered on this node (listed in its CSINode object)."""
        self.csinode: Obj | None = None
        if config.root_dir and not config.simulated:
            self.ctx.volumes = VolumeManager(Path(config.root_dir), client, clock=clock, allocatable=alloc,
                                             csi_drivers=self.csi_drivers)
        if config.root_dir and not config.simulated and config.cluster_domain:
            self.ctx.dns = PodDNS(Path(config.root_dir), cluster_dns=config.cluster_dns,
                                  cluster_domain=config.cluster_domain,
                                  warn=lambda pod, reason, message: recorder.event(pod, WARNING, reason, message))
        self.pods = PodWorkers(self.ctx)
        self.informer = Informer(client, PODS, field_selector=f"spec.nodeName={config.name}", clock=clock)
        self.informer.add_handler(FuncHandler(add=self.pods.update, update=lambda _o, n: self.pods.update(n),
                                              delete=self.pods.remove))
        self.registered = asyncio.Event()

    @property
    def name(self) -> str:
        return self.config.name

    async def run(self) -> None:
        async with self._startup_gate or contextlib.nullcontext():
            await self.register()
            csi_registered = await self._register_csi_once()
        async with asyncio.TaskGroup() as tg:
            if not csi_registered:
                tg.create_task(self._register_csi_drivers())
            tg.create_task(self._lease_loop())
            tg.create_task(self._status_loop())
            tg.create_task(self.pods.run())
            tg.create_task(self.informer.run())
            if isinstance(self.runtime, EventedRuntime):
                tg.create_task(self._runtime_events())
            await self.informer.wait_synced()
            await self.pods.remove_orphans({obj["metadata"]["uid"] for obj in self.informer.indexer.list()})

    # --- registration and status --------------------------------------------------------------
    def _node_ref(self) -> Obj:
        return {"kind": "Node", "apiVersion": "v1", "metadata": {"name": self.name, "uid": self.name}}

    async def register(self) -> None:
        """Create the Node (or adopt the existing one), retrying until the API answers."""
        self.recorder.event(self._node_ref(), NORMAL, "Starting", "Starting kubelet.")
        while True:
            try:
                await self._register_once()
                break
            except (TransportError, errors.StatusError) as exc:
                log.warning("node %s: registration failed: %s; retrying", self.name, exc)
                await self.clock.sleep(RETRY_SECONDS)
        self.recorder.event(self._node_ref(), NORMAL, "NodeAllocatableEnforced", "Updated Node Allocatable limit across pods")
        self.registered.set()

    async def _register_once(self) -> None:
        body = nodeinfo.node_object(self.name, pod_cidr=self.config.pod_cidr, simulated=self.config.simulated)
        csi_ids = csinode.node_id_annotation(await csinode.driver_infos(list(self.csi_drivers.values())))
        body["metadata"]["annotations"].update(csi_ids)
        try:
            self.node = await self.client.create(NODES, body)
            log.info("registered node %s", self.name)
        except errors.AlreadyExists:
            patch = {"metadata": {"labels": body["metadata"]["labels"], "annotations": csi_ids}, "spec": body["spec"]}
            self.node = await self.client.patch(NODES, self.name, patch)
        await self.update_node_status(force=True, client=self.client)  # not the heartbeat's short timeout

    def _status(self) -> Obj:
        return nodeinfo.node_status(self.name, old=self.node.get("status") or {}, res=self.config.resources,
                                    runtime_version=f"{self.runtime.name}://{self.runtime.version}",
                                    port=self.config.kubelet_port, now=rfc3339(self.clock.wall()))

    async def update_node_status(self, *, force: bool = False, client: Client | None = None) -> bool:
        """Patch nodes/<name>/status if it changed or the report interval passed; True if written.
        The node is read first, as tryUpdateNodeStatus does, so what others put into its status
        (extended resources in capacity) is seen within one update period."""
        try:
            self.node = await (client or self.heartbeat).get(NODES, self.name)
        except errors.NotFound:
            pass  # the patch below says so
        status = self._status()
        old = self.node.get("status") or {}
        due = self.clock.now() - self._last_report >= STATUS_REPORT_SECONDS
        if not force and not due and nodeinfo.without_heartbeats(status) == nodeinfo.without_heartbeats(old):
            return False
        before = {c.get("type"): c.get("status") for c in old.get("conditions") or []}
        self.node = await (client or self.heartbeat).patch(NODES, self.name, {"status": status}, subresource="status")
        self._last_report = self.clock.now()
        self.node_status_writes += 1
        for reason in nodeinfo.STATUS_EVENTS if not before else ():
            self.recorder.event(self._node_ref(), NORMAL, reason, f"Node {self.name} status is now: {reason}")
        if before.get("Ready") != "True":
            self.recorder.event(self._node_ref(), NORMAL, "NodeReady", f"Node {self.name} status is now: NodeReady")
        return True

    async def _status_loop(self) -> None:
        while True:
            await self.clock.sleep(STATUS_UPDATE_SECONDS)
            try:
                await self.update_node_status()
            except (TransportError, errors.StatusError) as exc:
                log.warning("node %s: status update failed: %s", self.name, exc)

    async def _register_csi_once(self) -> bool:
        """The plugin registration's API side: the node's CSINode lists its drivers."""
        infos = await csinode.driver_infos(list(self.csi_drivers.values()))
        try:
            self.csinode = await csinode.register(self.client, self.node, infos)
            return True
        except (TransportError, errors.StatusError) as exc:
            log.warning("node %s: registering CSI drivers failed: %s; retrying", self.name, exc)
            return False

    async def _register_csi_drivers(self) -> None:
        while not await self._register_csi_once():
            await self.clock.sleep(RETRY_SECONDS)

    # --- lease -------------------------------------------------------------------------------
    async def renew_lease(self) -> Obj:
        """Renew `kube-node-lease/<node>`: an update of the Lease written last time (one request,
        as client-go's lease controller does), falling back to GET or create when there is none
        or it changed underneath (a Conflict)."""
        now = format_microtime(self.clock.wall())
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_DURATION_SECONDS, "renewTime": now}
        if self._lease is not None:
            try:
                self._lease = await self.heartbeat.update(
                    LEASES, {**self._lease, "spec": {**(self._lease.get("spec") or {}), **spec}})
                self.lease_renewals += 1
                return self._lease
            except (errors.Conflict, errors.NotFound):
                self._lease = None
        owner = [{"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": self.node["metadata"]["uid"]}]
        try:
            lease = await self.heartbeat.get(LEASES, self.name, namespace=LEASE_NAMESPACE)
        except errors.NotFound:
            body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                    "metadata": {"name": self.name, "namespace": LEASE_NAMESPACE, "ownerReferences": owner},
                    "spec": spec}
            lease = await self.heartbeat.create(LEASES, body, namespace=LEASE_NAMESPACE)
        else:
            lease["spec"] = {**(lease.get("spec") or {}), **spec}
            lease = await self.heartbeat.update(LEASES, lease)
        self._lease = lease
        self.lease_renewals += 1
        return lease

    async def _lease_loop(self) -> None:
        while True:
            began = self.clock.now()
            try:
                await self.renew_lease()
                # client-go's JitterUntil(renewInterval, 0.04): a thousand nodes started together
                # drift apart instead of renewing in one burst every 10 s. Counted from the start
                # of this renewal: a slow answer must not push the next renewTime out.
                delay = LEASE_RENEW_SECONDS * (1 + LEASE_JITTER * random.random()) - (self.clock.now() - began)
            except (TransportError, errors.StatusError) as exc:
                log.warning("node %s: lease renewal failed: %s", self.name, exc)
                delay = RETRY_SECONDS  # client-go's lease controller retries fast, then backs off
            await self.clock.sleep(max(delay, 0.0))

    # --- pods --------------------------------------------------------------------------------
    async def _runtime_events(self) -> None:
        assert isinstance(self.runtime, EventedRuntime)
        async for status in self.runtime.container_events():
            self.pods.wake_sandbox(status.sandbox_id)

    def _service_list(self, namespace: str, links: bool) -> list[Obj]:
        if self._services is None:
            return []
        out = [s for s in self._services.indexer.list() if key_of(s) == "default/kubernetes"]
        if links:
            out += [s for s in self._services.indexer.list()
                    if s["metadata"].get("namespace") == namespace and key_of(s) != "default/kubernetes"]
        return out

    async def _get_source(self, kind: str, namespace: str, name: str) -> Obj | None:
        resource: Resource = CONFIGMAPS if kind == "ConfigMap" else SECRETS
        try:
            return await self.client.get(resource, name, namespace=namespace)
        except errors.NotFound:
            return None

    def find_pod(self, namespace: str, name: str) -> Obj | None:
        return self.informer.lister.get(name, namespace=namespace)
