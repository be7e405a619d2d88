"""Printers of the core (`""`) group other than pods: the columns `kubectl get` shows for them.

Cells follow `pkg/printers/internalversion/printers.go` of Kubernetes 1.33. Where upstream reads
a field that API defaulting always fills (a ReplicationController's replicas), a stored object
missing it prints the defaulted value, so the row matches what a real cluster shows.
"""

from __future__ import annotations

from pykube_server.registry.printers.common import (
    AGE, DEFAULT_COLUMNS, NAME, NONE, UNKNOWN, UNSET, Cell, Column, Obj, col, containers_and_images, count,
    doc, field, format_labels, get, template_columns, wide,
)
from pykube_server.registry.printers.events import EVENT_COLUMNS

_CORE = "api.core.v1."


def _core_doc(kind: str, name: str) -> str:
    return doc(_CORE + kind, name)


# -- workloads ------------------------------------------------------------------------------

def _rc_selector(o: Obj, now: float) -> str:
    return format_labels(get(o, "spec", "selector"))


def _pod_template_cell(index: int) -> Cell:
    return lambda o, now: containers_and_images(get(o, "template", "spec", "containers"))[index]


POD_TEMPLATE_COLUMNS = (
    NAME,
    col("Containers", _pod_template_cell(0), "Names of each container in the template."),
    col("Images", _pod_template_cell(1), "Images referenced by each container in the template."),
    col("Pod Labels", lambda o, now: format_labels(get(o, "template", "metadata", "labels")),
        "The labels for the pod template."),
)

REPLICATION_CONTROLLER_COLUMNS = (
    NAME,
    col("Desired", lambda o, now: int(get(o, "spec", "replicas", default=1)),
        _core_doc("ReplicationControllerSpec", "replicas"), type="integer"),
    col("Current", lambda o, now: int(get(o, "status", "replicas", default=0)),
        _core_doc("ReplicationControllerStatus", "replicas"), type="integer"),
    col("Ready", lambda o, now: int(get(o, "status", "readyReplicas", default=0)),
        _core_doc("ReplicationControllerStatus", "readyReplicas"), type="integer"),
    AGE,
    *template_columns("spec", "template"),
    wide("Selector", _rc_selector, _core_doc("ReplicationControllerSpec", "selector")),
)

# -- services and endpoints -----------------------------------------------------------------


def _load_balancer_ips(o: Obj) -> list[str]:
    found = {i.get("ip") or i.get("hostname") for i in get(o, "status", "loadBalancer", "ingress", default=[])}
    return sorted(x for x in found if x)


def service_external_ip(o: Obj, now: float = 0.0) -> str:
    """`getServiceExternalIP` with wide output (the server always renders wide)."""
    spec = o.get("spec") or {}
    kind, external = spec.get("type", "ClusterIP"), spec.get("externalIPs") or []
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else NONE
    if kind == "LoadBalancer":
        ips = _load_balancer_ips(o)
        if external:
            return ",".join(ips + external)
        return ",".join(ips) if ips else "<pending>"
    if kind == "ExternalName":
        return str(spec.get("externalName", ""))
    return UNKNOWN


def service_ports(o: Obj, now: float = 0.0) -> str:
    """`makePortString`: `80/TCP`, or `80:30080/TCP` with a node port."""
    pieces = []
    for p in get(o, "spec", "ports", default=[]):
        proto = p.get("protocol", "TCP")
        node_port = p.get("nodePort") or 0
        pieces.append(f"{p.get('port', 0)}:{node_port}/{proto}" if node_port > 0 else f"{p.get('port', 0)}/{proto}")
    return ",".join(pieces) or NONE


SERVICE_COLUMNS = (
    NAME,
    col("Type", field("spec", "type"), _core_doc("ServiceSpec", "type")),
    col("Cluster-IP", lambda o, now: get(o, "spec", "clusterIPs", 0, default="") or NONE,
        _core_doc("ServiceSpec", "clusterIP")),
    col("External-IP", service_external_ip, _core_doc("ServiceSpec", "externalIPs")),
    col("Port(s)", service_ports, _core_doc("ServiceSpec", "ports")),
    AGE,
    wide("Selector", lambda o, now: format_labels(get(o, "spec", "selector")), _core_doc("ServiceSpec", "selector")),
)


def format_endpoints(o: Obj, now: float = 0.0) -> str:
    """`formatEndpoints`: up to three `ip:port` entries, then `+ N more...`."""
    subsets = o.get("subsets") or []
    if not subsets:
        return NONE
    shown: list[str] = []
    total = 0
    for subset in subsets:
        addresses = [a.get("ip", "") for a in subset.get("addresses") or []]
        ports = subset.get("ports") or [None]
        for port in ports:
            total += len(addresses)
            for ip in addresses:
                if len(shown) < 3:
                    shown.append(ip if port is None else _join_host_port(ip, port.get("port", 0)))
    text = ",".join(shown)
    return f"{text} + {total - 3} more..." if total > 3 else text


def _join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


ENDPOINTS_COLUMNS = (NAME, col("Endpoints", format_endpoints, _core_doc("Endpoints", "subsets")), AGE)

# -- nodes and namespaces -------------------------------------------------------------------

ROLE_PREFIX = "node-role.kubernetes.io/"


def node_status(o: Obj, now: float = 0.0) -> str:
    ready = next((c for c in get(o, "status", "conditions", default=[]) if c.get("type") == "Ready"), None)
    parts = ["Unknown" if ready is None else ("Ready" if ready.get("status") == "True" else "NotReady")]
    if get(o, "spec", "unschedulable", default=False):
        parts.append("SchedulingDisabled")
    return ",".join(parts)


def node_roles(o: Obj, now: float = 0.0) -> str:
    roles = set()
    for key, value in (get(o, "metadata", "labels", default={}) or {}).items():
        if key.startswith(ROLE_PREFIX) and key[len(ROLE_PREFIX):]:
            roles.add(key[len(ROLE_PREFIX):])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(roles)) or NONE


def _node_address(kind: str) -> Cell:
    def cell(o: Obj, now: float) -> str:
        for address in get(o, "status", "addresses", default=[]):
            if address.get("type") == kind:
                return str(address.get("address", ""))
        return NONE

    return cell


def _node_info(name: str) -> Cell:
    return lambda o, now: get(o, "status", "nodeInfo", name, default="") or UNKNOWN


NODE_COLUMNS = (
    NAME,
    col("Status", node_status, "The status of the node"),
    col("Roles", node_roles, "The roles of the node"),
    AGE,
    col("Version", field("status", "nodeInfo", "kubeletVersion"), _core_doc("NodeSystemInfo", "kubeletVersion")),
    wide("Internal-IP", _node_address("InternalIP"), _core_doc("NodeStatus", "addresses")),
    wide("External-IP", _node_address("ExternalIP"), _core_doc("NodeStatus", "addresses")),
    wide("OS-Image", _node_info("osImage"), _core_doc("NodeSystemInfo", "osImage")),
    wide("Kernel-Version", _node_info("kernelVersion"), _core_doc("NodeSystemInfo", "kernelVersion")),
    wide("Container-Runtime", _node_info("containerRuntimeVersion"),
         _core_doc("NodeSystemInfo", "containerRuntimeVersion")),
)

NAMESPACE_COLUMNS = (NAME, col("Status", field("status", "phase"), "The status of the namespace"), AGE)

# -- configuration ---------------------------------------------------------------------------

CONFIG_MAP_COLUMNS = (
    NAME,
    col("Data", lambda o, now: len(o.get("data") or {}) + len(o.get("binaryData") or {}), _core_doc("ConfigMap", "data")),
    AGE,
)
SECRET_COLUMNS = (
    NAME,
    col("Type", field("type"), _core_doc("Secret", "type")),
    col("Data", count("data"), _core_doc("Secret", "data")),
    AGE,
)
SERVICE_ACCOUNT_COLUMNS = (NAME, col("Secrets", count("secrets"), _core_doc("ServiceAccount", "secrets")), AGE)

# -- storage ---------------------------------------------------------------------------------

_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP"))
CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"


def access_modes(modes: list[str] | None) -> str:
    """`GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order."""
    present = set(modes or [])
    return ",".join(short for mode, short in _MODES if mode in present)


def storage_class(o: Obj) -> str:
    annotation = get(o, "metadata", "annotations", CLASS_ANNOTATION)
    if annotation is not None:
        return str(annotation)
    return str(get(o, "spec", "storageClassName", default=""))


def _terminating_phase(o: Obj, now: float) -> str:
    if get(o, "metadata", "deletionTimestamp"):
        return "Terminating"
    return str(get(o, "status", "phase", default=""))


def _claim(o: Obj, now: float) -> str:
    ref = get(o, "spec", "claimRef")
    return f"{ref.get('namespace', '')}/{ref.get('name', '')}" if isinstance(ref, dict) else ""


def _pvc_bound(o: Obj, what: str) -> str:
    if not get(o, "spec", "volumeName"):
        return ""
    if what == "capacity":
        return str(get(o, "status", "capacity", "storage", default="0"))
    return access_modes(get(o, "status", "accessModes"))


PERSISTENT_VOLUME_COLUMNS = (
    NAME,
    col("Capacity", lambda o, now: str(get(o, "spec", "capacity", "storage", default="0")),
        _core_doc("PersistentVolumeSpec", "capacity")),
    col("Access Modes", lambda o, now: access_modes(get(o, "spec", "accessModes")),
        _core_doc("PersistentVolumeSpec", "accessModes")),
    col("Reclaim Policy", field("spec", "persistentVolumeReclaimPolicy"),
        _core_doc("PersistentVolumeSpec", "persistentVolumeReclaimPolicy")),
    col("Status", _terminating_phase, _core_doc("PersistentVolumeStatus", "phase")),
    col("Claim", _claim, _core_doc("PersistentVolumeSpec", "claimRef")),
    col("StorageClass", lambda o, now: storage_class(o), "StorageClass of the pv"),
    col("VolumeAttributesClass", field("spec", "volumeAttributesClassName", default=UNSET),
        "VolumeAttributesClass of the pv"),
    col("Reason", field("status", "reason"), _core_doc("PersistentVolumeStatus", "reason")),
    AGE,
    wide("VolumeMode", field("spec", "volumeMode", default=UNSET), _core_doc("PersistentVolumeSpec", "volumeMode")),
)

PERSISTENT_VOLUME_CLAIM_COLUMNS = (
    NAME,
    col("Status", _terminating_phase, _core_doc("PersistentVolumeClaimStatus", "phase")),
    col("Volume", field("spec", "volumeName"), _core_doc("PersistentVolumeClaimSpec", "volumeName")),
    col("Capacity", lambda o, now: _pvc_bound(o, "capacity"), _core_doc("PersistentVolumeClaimStatus", "capacity")),
    col("Access Modes", lambda o, now: _pvc_bound(o, "modes"), _core_doc("PersistentVolumeClaimStatus", "accessModes")),
    col("StorageClass", lambda o, now: storage_class(o), "StorageClass of the pvc"),
    col("VolumeAttributesClass", field("spec", "volumeAttributesClassName", default=UNSET),
        "VolumeAttributesClass of the pvc"),
    AGE,
    wide("VolumeMode", field("spec", "volumeMode", default=UNSET), _core_doc("PersistentVolumeClaimSpec", "volumeMode")),
)

# -- cluster health and policy ----------------------------------------------------------------


def _component_condition(o: Obj) -> tuple[str, str, str]:
    for c in o.get("conditions") or []:
        if c.get("type") == "Healthy":
            status = "Healthy" if c.get("status") == "True" else "Unhealthy"
            return status, str(c.get("message", "")), str(c.get("error", ""))
    return "Unknown", "", ""


COMPONENT_STATUS_COLUMNS = (
    NAME,
    col("Status", lambda o, now: _component_condition(o)[0], "Status of the component conditions"),
    col("Message", lambda o, now: _component_condition(o)[1], "Message of the component conditions"),
    col("Error", lambda o, now: _component_condition(o)[2], "Error of the component conditions"),
)


def quota_usage(o: Obj, limits: bool) -> str:
    """`printResourceQuota`: `name: used/hard` for each hard resource, sorted by name."""
    hard = get(o, "status", "hard", default={}) or {}
    used = get(o, "status", "used", default={}) or {}
    parts = [f"{name}: {used.get(name, '0')}/{hard[name]}" for name in sorted(hard)
             if (name.split(".", 1)[0] == "limits" and "." in name) == limits]
    return ", ".join(parts)


RESOURCE_QUOTA_COLUMNS = (
    NAME,
    col("Request", lambda o, now: quota_usage(o, False),
        "Request represents a minimum amount of cpu/memory that a container may consume."),
    col("Limit", lambda o, now: quota_usage(o, True),
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
    AGE,
)

COLUMNS: dict[str, tuple[Column, ...]] = {
    "bindings": DEFAULT_COLUMNS,
    "componentstatuses": COMPONENT_STATUS_COLUMNS,
    "configmaps": CONFIG_MAP_COLUMNS,
    "endpoints": ENDPOINTS_COLUMNS,
    "events": EVENT_COLUMNS,
    "limitranges": DEFAULT_COLUMNS,
    "namespaces": NAMESPACE_COLUMNS,
    "nodes": NODE_COLUMNS,
    "persistentvolumeclaims": PERSISTENT_VOLUME_CLAIM_COLUMNS,
    "persistentvolumes": PERSISTENT_VOLUME_COLUMNS,
    "podtemplates": POD_TEMPLATE_COLUMNS,
    "replicationcontrollers": REPLICATION_CONTROLLER_COLUMNS,
    "resourcequotas": RESOURCE_QUOTA_COLUMNS,
    "secrets": SECRET_COLUMNS,
    "serviceaccounts": SERVICE_ACCOUNT_COLUMNS,
    "services": SERVICE_COLUMNS,
}
"""Core kinds by plural (pods are added by the package, from `pods.py`)."""

__all__ = ["COLUMNS"]
