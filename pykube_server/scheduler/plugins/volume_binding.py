"""VolumeBinding: a pod goes only where its PersistentVolumeClaims can be (or are) satisfied,
and its unbound WaitForFirstConsumer claims are bound for the chosen node before the pod is.

kube-scheduler's volumebinding plugin, without the storage-capacity score (alpha in 1.33):

* PreFilter sorts the pod's claims (`persistentVolumeClaim` volumes and generic ephemeral
  volumes, `<pod>-<volume>`): a missing claim rejects the pod (`persistentvolumeclaim "x" not
  found`), so does one being deleted, and so does an unbound claim of an Immediate class
  (`pod has unbound immediate PersistentVolumeClaims`: the PV binder must bind it first);
  a pod without claims skips the plugin.
* Filter: a bound claim's PV must exist and its node affinity admit the node (`node(s) had
  volume node affinity conflict`); each unbound delayed claim needs an Available PV that fits
  on the node (the smallest, `api/persistentvolume.find_best_match`), or a class whose
  provisioner can make one there (not `kubernetes.io/no-provisioner`, no claim selector,
  `allowedTopologies` admitting the node), else `node(s) didn't find available persistent
  volumes to bind`.
* Reserve remembers the chosen node's decisions; PreBind writes them (a static PV gets the
  claimRef and `pv.kubernetes.io/bound-by-controller`, a claim to provision gets
  `volume.kubernetes.io/selected-node`), then waits, at most `bindTimeoutSeconds` (600 s, kube's
  default), until the PV binder and the provisioner have every claim Bound.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pykube_server.api import persistentvolume as pvs
from pykube_server.api.types import Obj
from pykube_server.scheduler.framework import (
    SKIP,
    Code,
    CycleState,
    Handle,
    NodeInfo,
    PodInfo,
    Status,
    unschedulable,
)

NAME = "VolumeBinding"
UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
NODE_CONFLICT = "node(s) had volume node affinity conflict"
BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
PV_NOT_EXIST = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"
DEFAULT_BIND_TIMEOUT_SECONDS = 600.0
POLL_SECONDS = 0.1


@dataclass
class NodeDecision:
    """What binding the pod's unbound claims on one node takes."""

    static: list[tuple[Obj, Obj]] = field(default_factory=list)
    """(volume, claim) pairs: existing PVs to bind."""
    provision: list[Obj] = field(default_factory=list)
    """Claims to have provisioned on the node."""


@dataclass
class PodVolumes:
    bound: list[Obj] = field(default_factory=list)
    to_bind: list[Obj] = field(default_factory=list)
    decisions: dict[str, NodeDecision] = field(default_factory=dict)
    reserved: NodeDecision | None = None


def claim_names(pod: Obj) -> list[str]:
    names = []
    for volume in (pod.get("spec") or {}).get("volumes") or ():
        if volume.get("persistentVolumeClaim"):
            names.append(str(volume["persistentVolumeClaim"].get("claimName", "")))
        elif volume.get("ephemeral"):
            names.append(f"{(pod.get('metadata') or {}).get('name', '')}-{volume.get('name', '')}")
    return names


def _topology_allows(sc: Obj, node: NodeInfo) -> bool:
    """The class's allowedTopologies (ORed terms of ANDed label requirements) admit the node."""
    terms = sc.get("allowedTopologies") or []
    if not terms:
        return True
    for term in terms:
        if all(node.labels.get(e.get("key", "")) in (e.get("values") or []) for e in term.get("matchLabelExpressions") or []):
            return True
    return False


class VolumeBinding:
    name: ClassVar[str] = NAME

    def __init__(self, store: Any, *, bind_timeout: float = DEFAULT_BIND_TIMEOUT_SECONDS) -> None:
        self.store = store
        self.bind_timeout = bind_timeout

    def _classes(self, claims: list[Obj]) -> dict[str, Obj]:
        out = {}
        for claim in claims:
            name = pvs.claim_class(claim)
            sc = self.store.storage_class(name) if name else None
            if sc is not None:
                out[name] = sc
        return out

    # -- PreFilter ------------------------------------------------------------------------
    def pre_filter(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo]) -> Status | None:
        names = claim_names(pod.pod)
        if not names or self.store is None:
            state[NAME] = None
            return SKIP
        namespace = (pod.pod.get("metadata") or {}).get("namespace", "")
        volumes = PodVolumes()
        for name in names:
            claim = self.store.claim(namespace, name)
            if claim is None:
                return unschedulable(f'persistentvolumeclaim "{name}" not found', unresolvable=True)
            if (claim.get("metadata") or {}).get("deletionTimestamp"):
                return unschedulable(f'persistentvolumeclaim "{name}" is being deleted', unresolvable=True)
            if (claim.get("spec") or {}).get("volumeName"):
                volumes.bound.append(claim)
                continue
            class_name = pvs.claim_class(claim)
            if class_name and self.store.storage_class(class_name) is None:
                return unschedulable(f'storageclass.storage.k8s.io "{class_name}" not found', unresolvable=True)
            if not pvs.is_delayed_binding(claim, self._classes([claim])):
                return unschedulable(UNBOUND_IMMEDIATE, unresolvable=True)
            volumes.to_bind.append(claim)
        state[NAME] = volumes
        return None

    # -- Filter ---------------------------------------------------------------------------
    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        volumes: PodVolumes | None = state.get(NAME)
        if volumes is None:
            return None
        for claim in volumes.bound:
            pv = self.store.volume((claim.get("spec") or {}).get("volumeName", ""))
            if pv is None:
                return unschedulable(PV_NOT_EXIST, unresolvable=True)
            if not pvs.node_affinity_matches(pv, node.node):
                return unschedulable(NODE_CONFLICT, unresolvable=True)
        if not volumes.to_bind:
            return None
        decision = NodeDecision()
        chosen: set[str] = set()
        candidates = self.store.volumes()
        for claim in volumes.to_bind:
            free = [v for v in candidates if (v.get("metadata") or {}).get("name") not in chosen]
            match = pvs.find_best_match(claim, free, delayed_binding=True, node=node.node)
            if match is not None:
                chosen.add(match["metadata"]["name"])
                decision.static.append((match, claim))
                continue
            sc = self.store.storage_class(pvs.claim_class(claim))
            if sc is None or sc.get("provisioner") in (None, "", pvs.NO_PROVISIONER) \
                    or (claim.get("spec") or {}).get("selector") is not None or not _topology_allows(sc, node):
                return unschedulable(BIND_CONFLICT)
            decision.provision.append(claim)
        volumes.decisions[node.name] = decision
        return None

    # -- Reserve / PreBind ----------------------------------------------------------------
    def reserve(self, state: CycleState, pod: PodInfo, node_name: str) -> Status | None:
        volumes: PodVolumes | None = state.get(NAME)
        if volumes is not None and volumes.to_bind:
            volumes.reserved = volumes.decisions.get(node_name, NodeDecision())
        return None

    def unreserve(self, state: CycleState, pod: PodInfo, node_name: str) -> None:
        volumes: PodVolumes | None = state.get(NAME)
        if volumes is not None:
            volumes.reserved = None

    async def pre_bind(self, state: CycleState, pod: PodInfo, node_name: str) -> Status | None:
        volumes: PodVolumes | None = state.get(NAME)
        if volumes is None or volumes.reserved is None:
            return None
        decision = volumes.reserved
        try:
            for volume, claim in decision.static:
                meta = dict(volume.get("metadata") or {})
                meta["annotations"] = {**(meta.get("annotations") or {}), pvs.ANN_BOUND_BY_CONTROLLER: "yes"}
                cmeta = claim.get("metadata") or {}
                ref = {"kind": "PersistentVolumeClaim", "namespace": cmeta.get("namespace", ""),
                       "name": cmeta.get("name", ""), "uid": cmeta.get("uid", ""), "apiVersion": "v1",
                       "resourceVersion": cmeta.get("resourceVersion", "")}
                await self.store.update_volume({**volume, "metadata": meta, "spec": {**volume.get("spec", {}), "claimRef": ref}})
            for claim in decision.provision:
                cmeta = claim.get("metadata") or {}
                await self.store.annotate_claim(cmeta.get("namespace", ""), cmeta.get("name", ""),
                                                {pvs.ANN_SELECTED_NODE: node_name})
        except Exception as exc:  # an API refusal: back to the queue, as kube does
            return Status(Code.ERROR, (f"binding volumes: {getattr(exc, 'message', None) or exc}",), NAME)
        return await self._wait_bound(volumes.to_bind, decision)

    async def _wait_bound(self, claims: list[Obj], decision: NodeDecision) -> Status | None:
        deadline = time.monotonic() + self.bind_timeout
        provisioned = {(c.get("metadata") or {}).get("uid") for c in decision.provision}
        while True:
            pending = False
            for original in claims:
                meta = original.get("metadata") or {}
                claim = self.store.claim(meta.get("namespace", ""), meta.get("name", ""))
                if claim is None or (claim.get("metadata") or {}).get("uid") != meta.get("uid"):
                    return Status(Code.ERROR, (f'binding volumes: persistentvolumeclaim "{meta.get("name", "")}" not found',), NAME)
                if meta.get("uid") in provisioned and not pvs.annotations(claim).get(pvs.ANN_SELECTED_NODE) \
                        and not (claim.get("spec") or {}).get("volumeName"):
                    return Status(Code.ERROR, (f"binding volumes: selectedNode annotation reset for PVC "
                                               f'"{meta.get("name", "")}"',), NAME)
                if (claim.get("status") or {}).get("phase") != "Bound":
                    pending = True
            if not pending:
                return None
            if time.monotonic() >= deadline:
                return Status(Code.ERROR, ("binding volumes: context deadline exceeded",), NAME)
            await asyncio.sleep(POLL_SECONDS)


def new(args: Mapping[str, Any], handle: Handle) -> VolumeBinding:
    timeout = args.get("bindTimeoutSeconds")
    return VolumeBinding(handle.volumes, bind_timeout=float(timeout) if timeout is not None else DEFAULT_BIND_TIMEOUT_SECONDS)
