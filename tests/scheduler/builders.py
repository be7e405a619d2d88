"""Small builders for Node and Pod dicts, as a kubelet and a user would write them."""

from __future__ import annotations

from typing import Any

from pykube_server.api.types import Obj
from pykube_server.scheduler.framework import NodeInfo, PodInfo


def node(name: str, *, cpu: str = "4", memory: str = "8Gi", pods: str = "110", labels: dict[str, str] | None = None,
         taints: list[Obj] | None = None, unschedulable: bool = False, extra: dict[str, str] | None = None) -> Obj:
    allocatable = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "100Gi", **(extra or {})}
    spec: Obj = {}
    if taints:
        spec["taints"] = taints
    if unschedulable:
        spec["unschedulable"] = True
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": spec,
            "status": {"capacity": dict(allocatable), "allocatable": allocatable,
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}


def pod(name: str = "p", *, namespace: str = "default", cpu: str | None = None, memory: str | None = None,
        labels: dict[str, str] | None = None, **spec: Any) -> Obj:
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v is not None}
    container: Obj = {"name": "c", "image": "busybox"}
    if requests:
        container["resources"] = {"requests": requests}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}", "labels": labels or {}},
            "spec": {"containers": [container], "schedulerName": "default-scheduler", **spec}}


def node_info(n: Obj, *pods: Obj) -> NodeInfo:
    info = NodeInfo.of(n)
    for p in pods:
        p = {**p, "spec": {**p["spec"], "nodeName": info.name}}
        info.add_pod(PodInfo.of(p))
    return info
