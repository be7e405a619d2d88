"""The Node object a kubelet registers and the status it reports: machine facts and conditions.

Capacity comes from this machine for the process runtime (CPU count, MemTotal, the data dir's
filesystem size; 110 pods) and from flags for the simulated one (32 CPUs, 256Gi, 110 pods by
default). Allocatable subtracts what the kubelet's default hard eviction thresholds reserve
(`memory.available<100Mi`, `nodefs.available<10%`), as a kubelet without reservations shows.
Conditions carry the kubelet's reasons and messages; a condition keeps its
lastTransitionTime until its status changes.
"""

from __future__ import annotations

import os
import platform
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from pykube_server.api.types import Obj

KUBELET_VERSION = "v1.33.0"
MAX_PODS = 110
_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "armv7l": "arm",
         "ppc64le": "ppc64le", "s390x": "s390x"}

CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)
STATUS_EVENTS = ("NodeHasSufficientMemory", "NodeHasNoDiskPressure", "NodeHasSufficientPID")


@dataclass(frozen=True)
class Resources:
    cpu: str
    memory_bytes: int
    ephemeral_storage_bytes: int
    pods: int = MAX_PODS


def arch() -> str:
    return _ARCH.get(platform.machine().lower(), platform.machine().lower())


def machine_resources(data_dir: Path) -> Resources:
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    disk = shutil.disk_usage(data_dir).total if data_dir.exists() else 0
    return Resources(str(os.cpu_count() or 1), mem_kib * 1024, disk)


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return "Linux"


def capacity(res: Resources) -> tuple[Obj, Obj]:
    cap = {"cpu": res.cpu, "ephemeral-storage": f"{res.ephemeral_storage_bytes // 1024}Ki",
           "hugepages-1Gi": "0", "hugepages-2Mi": "0", "memory": f"{res.memory_bytes // 1024}Ki",
           "pods": str(res.pods)}
    alloc = {**cap, "ephemeral-storage": str(res.ephemeral_storage_bytes * 9 // 10),
             "memory": f"{max(res.memory_bytes - 100 * 2**20, 0) // 1024}Ki"}
    return cap, alloc


def node_info(name: str, runtime_version: str) -> Obj:
    return {
        "machineID": _read("/etc/machine-id") or uuid.uuid5(uuid.NAMESPACE_DNS, name).hex,
        "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_DNS, f"pykube-node/{name}")),
        "bootID": _read("/proc/sys/kernel/random/boot_id"),
        "kernelVersion": platform.release(), "osImage": os_image(),
        "containerRuntimeVersion": runtime_version, "kubeletVersion": KUBELET_VERSION,
        "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": arch(),
    }


def labels(name: str, *, simulated: bool) -> dict[str, str]:
    out = {"beta.kubernetes.io/arch": arch(), "beta.kubernetes.io/os": "linux", "kubernetes.io/arch": arch(),
           "kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    if simulated:
        out["node.kubernetes.io/instance-type"] = "pykube-simulated"
    return out


def conditions(old: list[Obj], now: str) -> list[Obj]:
    before = {c.get("type"): c for c in old}
    out = []
    for kind, status, reason, message in CONDITIONS:
        prev = before.get(kind)
        transition = prev.get("lastTransitionTime", now) if prev and prev.get("status") == status else now
        out.append({"type": kind, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": transition,
                    "reason": reason, "message": message})
    return out


def node_object(name: str, *, pod_cidr: str, simulated: bool) -> Obj:
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": labels(name, simulated=simulated),
                         "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                         "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
            "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]}}


def is_extended(resource: str) -> bool:
    """v1helper.IsExtendedResourceName: a domain-prefixed name outside kubernetes.io (and not a
    quota's `requests.` form), e.g. `example.com/dongle`."""
    return "/" in resource and "kubernetes.io/" not in resource and not resource.startswith("requests.")


def extended_resources(old: Obj) -> Obj:
    """The kubelet's MachineInfo setter keeps extended resources others advertised in the node's
    capacity and copies capacity into allocatable, dropping extended ones gone from capacity
    (null here: the status is sent as a merge patch, where only null removes a key)."""
    cap = {k: v for k, v in (old.get("capacity") or {}).items() if is_extended(k)}
    gone = {k: None for k in old.get("allocatable") or {} if is_extended(k) and k not in cap}
    return {"capacity": cap, "allocatable": {**cap, **gone}}


def node_status(name: str, *, old: Obj, res: Resources, runtime_version: str, port: int, now: str) -> Obj:
    cap, alloc = capacity(res)
    extended = extended_resources(old)
    cap, alloc = {**cap, **extended["capacity"]}, {**alloc, **extended["allocatable"]}
    return {"capacity": cap, "allocatable": alloc, "conditions": conditions(old.get("conditions") or [], now),
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            "nodeInfo": node_info(name, runtime_version), "images": []}


def without_heartbeats(status: Obj) -> Obj:
    """The status with heartbeat times blanked: what 'changed' is judged on."""
    conds = [{k: v for k, v in c.items() if k != "lastHeartbeatTime"} for c in status.get("conditions") or []]
    return {**status, "conditions": conds}
