"""Scheme defaults of the core/v1 kinds other than pods and controllers (pkg/apis/core/v1).

Service defaults include what the Service REST storage fills in besides IP allocation
(`ipFamilyPolicy`, `ipFamilies` on this single-stack IPv4 cluster); the ClusterIP and NodePort
allocators come later and are not applied here.
"""

from __future__ import annotations

from typing import Any

from pykube_server.registry.defaults.pods import default_pvc_spec

Obj = dict[str, Any]
CLIENT_IP_TIMEOUT_SECONDS = 10800


def _spec(obj: Obj) -> Obj:
    spec = obj.setdefault("spec", {})
    return spec if isinstance(spec, dict) else {}


def _externally_accessible(spec: Obj) -> bool:
    kind = spec.get("type")
    return kind in ("LoadBalancer", "NodePort") or (kind == "ClusterIP" and bool(spec.get("externalIPs")))


def _default_session_affinity(spec: Obj) -> None:
    affinity = spec.setdefault("sessionAffinity", "None")
    if affinity == "None":
        spec.pop("sessionAffinityConfig", None)
    elif affinity == "ClientIP":
        config = spec.get("sessionAffinityConfig") or {}
        client_ip = config.get("clientIP") or {}
        if client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": CLIENT_IP_TIMEOUT_SECONDS}}


def _default_service_ports(spec: Obj) -> None:
    for port in spec.get("ports") or []:
        if not isinstance(port, dict):
            continue
        port.setdefault("protocol", "TCP")
        if port.get("targetPort") in (None, 0, "") and "port" in port:
            port["targetPort"] = port["port"]


def _default_ip_families(spec: Obj) -> None:
    if spec.get("type") == "ExternalName":
        return
    headless_selectorless = spec.get("clusterIP") == "None" and not spec.get("selector")
    spec.setdefault("ipFamilyPolicy", "RequireDualStack" if headless_selectorless else "SingleStack")
    if not spec.get("ipFamilies"):
        spec["ipFamilies"] = ["IPv4"]


def default_service_status(obj: Obj) -> None:
    """`status.loadBalancer` is a value struct, so kube always shows it (`{}` when empty), and
    SetDefaults_Service gives every ingress entry with an `ip` the `ipMode: VIP`
    (LoadBalancerIPMode, GA in 1.32)."""
    status = obj.get("status")
    if not isinstance(status, dict):
        status = obj["status"] = {}
    load_balancer = status.get("loadBalancer")
    if not isinstance(load_balancer, dict):
        load_balancer = status["loadBalancer"] = {}
    for ingress in load_balancer.get("ingress") or []:
        if isinstance(ingress, dict) and ingress.get("ip") and not ingress.get("ipMode"):
            ingress["ipMode"] = "VIP"


def default_service(obj: Obj) -> None:
    default_service_status(obj)
    spec = _spec(obj)
    _default_session_affinity(spec)
    spec.setdefault("type", "ClusterIP")
    _default_service_ports(spec)
    if _externally_accessible(spec):
        spec.setdefault("externalTrafficPolicy", "Cluster")
    if spec["type"] in ("NodePort", "LoadBalancer", "ClusterIP"):
        spec.setdefault("internalTrafficPolicy", "Cluster")
    if spec["type"] == "LoadBalancer":
        spec.setdefault("allocateLoadBalancerNodePorts", True)
    _default_ip_families(spec)


def default_secret(obj: Obj) -> None:
    if not obj.get("type"):
        obj["type"] = "Opaque"


def default_namespace(obj: Obj) -> None:
    """SetDefaults_Namespace (the name label) and SetDefaults_NamespaceStatus (Active)."""
    meta = obj.setdefault("metadata", {})
    if meta.get("name"):
        labels = meta.get("labels")
        if not isinstance(labels, dict):
            labels = meta["labels"] = {}
        labels["kubernetes.io/metadata.name"] = meta["name"]
    status = obj.setdefault("status", {})
    if isinstance(status, dict) and not status.get("phase"):
        status["phase"] = "Active"


def default_persistent_volume(obj: Obj) -> None:
    spec = _spec(obj)
    spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
    spec.setdefault("volumeMode", "Filesystem")
    if isinstance(spec.get("hostPath"), dict):
        spec["hostPath"].setdefault("type", "")
    status = obj.setdefault("status", {})
    if isinstance(status, dict):
        status.setdefault("phase", "Pending")


def default_pvc(obj: Obj) -> None:
    default_pvc_spec(_spec(obj))
    status = obj.setdefault("status", {})
    if isinstance(status, dict):
        status.setdefault("phase", "Pending")


def _default_limit_range_item(item: Obj) -> None:
    if item.get("type") != "Container":
        return
    default = dict(item.get("default") or {})
    request = dict(item.get("defaultRequest") or {})
    for key, value in (item.get("max") or {}).items():
        default.setdefault(key, value)
    for key, value in default.items():
        request.setdefault(key, value)
    for key, value in (item.get("min") or {}).items():
        request.setdefault(key, value)
    if default:
        item["default"] = default
    if request:
        item["defaultRequest"] = request


def default_limit_range(obj: Obj) -> None:
    for item in _spec(obj).get("limits") or []:
        if isinstance(item, dict):
            _default_limit_range_item(item)


def default_endpoints(obj: Obj) -> None:
    for subset in obj.get("subsets") or []:
        for port in (subset or {}).get("ports") or []:
            if isinstance(port, dict) and not port.get("protocol"):
                port["protocol"] = "TCP"


def default_node(obj: Obj) -> None:
    status = obj.get("status")
    if isinstance(status, dict) and status.get("capacity") and not status.get("allocatable"):
        status["allocatable"] = dict(status["capacity"])
