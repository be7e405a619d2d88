"""The scheduler framework's vocabulary: status codes, per-cycle state, NodeInfo, plugin protocols.

Shaped after kube-scheduler's `framework` package (interface.go, types.go) so that plugins
read like their upstream counterparts: a filter answers with a `Status` (None means success),
a score is an int in 0..MAX_NODE_SCORE, and optional capabilities (pre-filter, pre-score,
normalisation) are separate protocols a plugin may implement. Everything here is pure: the
scheduling cycle is synchronous between popping a pod and assuming it, so plugins never await
and never see a NodeInfo change under them.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, TypeAlias, runtime_checkable

from pykube_server.api.types import Obj
from pykube_server.scheduler.resource import (
    CPU,
    EPHEMERAL_STORAGE,
    MEMORY,
    PODS,
    Resource,
    non_zero_requests,
    pod_requests,
)
from pykube_server.scheduler.podindex import PodIndex
from pykube_server.scheduler.terms import AffinityTerm, preferred_terms, required_terms

MAX_NODE_SCORE = 100
NO_NODE_AVAILABLE = "0/{} nodes are available"
NO_NODES = "no nodes available to schedule pods"


class Code(enum.Enum):
    SUCCESS = "Success"
    ERROR = "Error"
    UNSCHEDULABLE = "Unschedulable"
    UNSCHEDULABLE_AND_UNRESOLVABLE = "UnschedulableAndUnresolvable"
    SKIP = "Skip"


@dataclass(frozen=True, slots=True)
class Status:
    code: Code
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    def is_rejection(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)


def unschedulable(*reasons: str, unresolvable: bool = False) -> Status:
    return Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE if unresolvable else Code.UNSCHEDULABLE, reasons)


SKIP = Status(Code.SKIP)


class CycleState(dict[str, Any]):
    """Data plugins share within one scheduling cycle (keyed by plugin name)."""


def key_of(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def _host_ports(pod: Obj) -> list[tuple[str, str, int]]:
    """(protocol, hostIP, hostPort) of every container port with a hostPort (sidecars included)."""
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or [])
    containers += [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    out = []
    for c in containers:
        for p in c.get("ports") or []:
            if int(p.get("hostPort") or 0) > 0:
                out.append((p.get("protocol") or "TCP", p.get("hostIP") or "0.0.0.0", int(p["hostPort"])))
    return out


@dataclass(slots=True)
class PodInfo:
    """A pod with what the scheduler computes from it once (requests, host ports, parsed pod
    affinity terms), so no scheduling cycle parses the spec of the pod or of pods on nodes."""

    pod: Obj
    requests: Resource
    non_zero: Resource
    host_ports: list[tuple[str, str, int]]
    required_affinity: list[AffinityTerm] = field(default_factory=list)
    required_anti_affinity: list[AffinityTerm] = field(default_factory=list)
    preferred_affinity: list[AffinityTerm] = field(default_factory=list)
    preferred_anti_affinity: list[AffinityTerm] = field(default_factory=list)
    key: str = ""

    def __post_init__(self) -> None:
        if not self.key:
            self.key = key_of(self.pod)

    @classmethod
    def of(cls, pod: Obj) -> PodInfo:
        affinity = (pod.get("spec") or {}).get("affinity") or {}
        if affinity.get("podAffinity") or affinity.get("podAntiAffinity"):
            terms = (required_terms(pod, "podAffinity"), required_terms(pod, "podAntiAffinity"),
                     preferred_terms(pod, "podAffinity"), preferred_terms(pod, "podAntiAffinity"))
        else:
            terms = ([], [], [], [])
        return cls(pod, pod_requests(pod), non_zero_requests(pod), _host_ports(pod), *terms)

    def with_pod(self, pod: Obj) -> PodInfo:
        """The same computed facts over another copy of the pod (an assumed pod)."""
        return PodInfo(pod, self.requests, self.non_zero, self.host_ports, self.required_affinity,
                       self.required_anti_affinity, self.preferred_affinity, self.preferred_anti_affinity, self.key)

    @property
    def has_affinity(self) -> bool:
        """Any pod affinity or anti-affinity term (kube's NodeInfo.PodsWithAffinity)."""
        return bool(self.required_affinity or self.required_anti_affinity or self.preferred_affinity
                    or self.preferred_anti_affinity)


@dataclass(slots=True)
class NodeInfo:
    """A node and the pods the scheduler counts on it (bound or assumed).

    The amounts plugins read for every node of every cycle (cpu, memory, ephemeral storage and
    pod count: allocatable, requested, non-zero requested) are kept as plain ints beside the
    `Resource` totals, and labels, taints and `spec.unschedulable` are read out of the node
    object once per node update: the filter and score loops run over hundreds of nodes per pod.
    """

    node: Obj
    pods: dict[str, PodInfo] = field(default_factory=dict)
    requested: Resource = field(default_factory=Resource)
    non_zero_requested: Resource = field(default_factory=Resource)
    allocatable: Resource = field(default_factory=Resource)
    used_ports: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    generation: int = 0
    name: str = ""
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: list[Obj] = field(default_factory=list)
    unschedulable: bool = False
    pods_with_affinity: dict[str, PodInfo] = field(default_factory=dict)
    pods_with_required_anti_affinity: dict[str, PodInfo] = field(default_factory=dict)
    alloc_cpu: int = 0
    alloc_memory: int = 0
    alloc_storage: int = 0
    alloc_pods: int = 0
    req_cpu: int = 0
    req_memory: int = 0
    req_storage: int = 0
    nz_cpu: int = 0
    nz_memory: int = 0
    memo: dict[Any, Any] = field(default_factory=dict)
    """What plugins derive from this node's pods, cleared whenever they change."""

    def __post_init__(self) -> None:
        self._read_node()

    @classmethod
    def of(cls, node: Obj) -> NodeInfo:
        info = cls(node)
        info.set_node(node)
        return info

    def _read_node(self) -> None:
        meta = self.node.get("metadata") or {}
        self.name = str(meta.get("name", "")) or self.name
        self.labels = meta.get("labels") or {}
        spec = self.node.get("spec") or {}
        self.taints = spec.get("taints") or []
        self.unschedulable = bool(spec.get("unschedulable"))

    def set_node(self, node: Obj) -> None:
        self.node = node
        self._read_node()
        self.memo.clear()
        self.allocatable = alloc = Resource.from_list((node.get("status") or {}).get("allocatable") or {})
        self.alloc_cpu, self.alloc_memory = alloc.get(CPU), alloc.get(MEMORY)
        self.alloc_storage, self.alloc_pods = alloc.get(EPHEMERAL_STORAGE), alloc.get(PODS)
        self.generation += 1

    def _totals_changed(self) -> None:
        req, nz = self.requested, self.non_zero_requested
        self.req_cpu, self.req_memory, self.req_storage = req.get(CPU), req.get(MEMORY), req.get(EPHEMERAL_STORAGE)
        self.nz_cpu, self.nz_memory = nz.get(CPU), nz.get(MEMORY)
        self.memo.clear()
        self.generation += 1

    def add_pod(self, info: PodInfo) -> None:
        self.pods[info.key] = info
        self.requested = self.requested + info.requests
        self.non_zero_requested = self.non_zero_requested + info.non_zero
        for protocol, ip, port in info.host_ports:
            self.used_ports.setdefault((protocol, port), set()).add(ip)
        if info.has_affinity:
            self.pods_with_affinity[info.key] = info
        if info.required_anti_affinity:
            self.pods_with_required_anti_affinity[info.key] = info
        self._totals_changed()

    def remove_pod(self, key: str) -> PodInfo | None:
        info = self.pods.pop(key, None)
        if info is None:
            return None
        self.requested = self.requested - info.requests
        self.non_zero_requested = self.non_zero_requested - info.non_zero
        if info.host_ports:
            self.used_ports = {}
            for other in self.pods.values():
                for protocol, ip, port in other.host_ports:
                    self.used_ports.setdefault((protocol, port), set()).add(ip)
        self.pods_with_affinity.pop(key, None)
        self.pods_with_required_anti_affinity.pop(key, None)
        self._totals_changed()
        return info


class Plugin(Protocol):
    name: ClassVar[str]


@runtime_checkable
class PreFilterPlugin(Protocol):
    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        """Compute cycle state; a rejection here rejects the pod on every node."""


@runtime_checkable
class FilterPlugin(Protocol):
    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        """Can `pod` run on `node`? Pure: no I/O, no mutation of `node`."""


@runtime_checkable
class PreScorePlugin(Protocol):
    def pre_score(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        """Prepare scoring over the feasible `nodes`; SKIP leaves this plugin's score out."""


@runtime_checkable
class ScorePlugin(Protocol):
    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        """0..MAX_NODE_SCORE (before normalisation), higher is better. Pure."""


@runtime_checkable
class BatchScorePlugin(Protocol):
    def score_all(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> list[int]:
        """`score` of every node in `nodes`, in order: the same numbers, computed in one loop
        (an optimisation; the framework uses it when a plugin has it)."""


@runtime_checkable
class ScoreNormalizer(Protocol):
    def normalize(self, state: CycleState, pod: PodInfo, scores: dict[str, int]) -> None:
        """Rescale `scores` (node name -> raw score) in place to 0..MAX_NODE_SCORE."""


@runtime_checkable
class ReservePlugin(Protocol):
    def reserve(self, state: CycleState, pod: PodInfo, node_name: str) -> Status | None:
        """Claim what the pod will use on the chosen node before binding starts (kube's Reserve)."""

    def unreserve(self, state: CycleState, pod: PodInfo, node_name: str) -> None:
        """Undo `reserve` when a later step fails."""


@runtime_checkable
class PreBindPlugin(Protocol):
    async def pre_bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status | None:
        """The asynchronous work that must be done before the pod is bound (e.g. binding its
        volumes); runs in the binding task, off the scheduling cycle, so it may await."""


def default_normalize(scores: dict[str, int], *, reverse: bool = False) -> None:
    """helper.DefaultNormalizeScore: scale so the highest becomes 100 (reversed: lowest)."""
    top = max(scores.values(), default=0)
    for name, value in scores.items():
        if top == 0:
            scores[name] = MAX_NODE_SCORE if reverse else value
            continue
        scaled = MAX_NODE_SCORE * value // top
        scores[name] = MAX_NODE_SCORE - scaled if reverse else scaled


@dataclass(frozen=True)
class Handle:
    """What plugin factories may use: read-only views of the scheduler's cache."""

    all_nodes: Callable[[], list[NodeInfo]] = list
    namespace_labels: Callable[[str], Mapping[str, str]] = lambda ns: {}
    volumes: Any = None
    """PVCs, PVs and StorageClasses for the volume plugins (`scheduler.volumes.VolumeStore`)."""
    pod_index: Any = None
    """The cache's `PodIndex` over the pods on `all_nodes()` (None: plugins scan the nodes)."""

    def index_for(self, nodes: list[NodeInfo]) -> PodIndex:
        """The pod index describing `nodes`: the cache's when `nodes` is the cache's node list
        (a scheduling cycle), else one built over `nodes` (preemption's what-if lists, tests)."""
        if self.pod_index is not None and nodes is self.all_nodes():
            return self.pod_index
        return PodIndex.of_nodes(nodes)


PluginFactory: TypeAlias = Callable[[Mapping[str, Any], Handle], Any]


@dataclass
class Diagnosis:
    """Why a pod fits nowhere: per-node statuses, a pre-filter message, a post-filter message."""

    node_statuses: dict[str, Status] = field(default_factory=dict)
    pre_filter_msg: str = ""
    post_filter_msg: str = ""
    rejecting_plugins: set[str] = field(default_factory=set)


def fit_error_message(num_nodes: int, diagnosis: Diagnosis) -> str:
    """FitError.Error(): `0/N nodes are available: <histogram>. <post-filter message>.`"""
    msg = NO_NODE_AVAILABLE.format(num_nodes) + ":"
    if diagnosis.pre_filter_msg:
        msg += f" {diagnosis.pre_filter_msg}."
    else:
        counts: dict[str, int] = {}
        for status in diagnosis.node_statuses.values():
            for reason in status.reasons:
                counts[reason] = counts.get(reason, 0) + 1
        histogram = sorted(f"{n} {reason}" for reason, n in counts.items())
        if histogram:
            msg += " " + ", ".join(histogram) + "."
    if diagnosis.post_filter_msg:
        msg += f" {diagnosis.post_filter_msg}."
    return msg
