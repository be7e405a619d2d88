"""What a Pod contributes behind a Service: shared by the Endpoints and EndpointSlice controllers.

Kubernetes' `podutil.IsPodReady`, `endpointutil.ShouldPodBeInEndpoints` and `podutil.FindPort`,
plus the mapping from a changed Pod to the Services that select it (old and new labels both
count, so a pod leaving a Service also re-syncs it).
"""

from __future__ import annotations

from collections.abc import Iterable

from pykube_server.api.selectors import parse_label_selector
from pykube_server.api.types import Obj
from pykube_server.client.cache import Lister
from pykube_server.client.clock import Clock
from pykube_server.controllers.framework import Request

SERVICE_NAME_LABEL = "kubernetes.io/service-name"
HEADLESS_LABEL = "service.kubernetes.io/headless"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"


def rfc3339(clock: Clock) -> str:
    return clock.wall().strftime("%Y-%m-%dT%H:%M:%SZ")


def is_pod_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_ip(pod: Obj) -> str:
    status = pod.get("status") or {}
    if status.get("podIP"):
        return str(status["podIP"])
    ips = status.get("podIPs") or []
    return str(ips[0].get("ip", "")) if ips else ""


def is_terminating(pod: Obj) -> bool:
    return bool((pod.get("metadata") or {}).get("deletionTimestamp"))


def should_be_in_endpoints(pod: Obj, *, include_terminating: bool) -> bool:
    """Not terminal (Succeeded/Failed), has an IP, and not terminating unless asked for."""
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    if not pod_ip(pod):
        return False
    return include_terminating or not is_terminating(pod)


def find_port(pod: Obj, service_port: Obj) -> int | None:
    """The container port a service port's targetPort means in this pod (None: not found).
    A name is looked up among the containers (and restartable init containers) with the
    service port's protocol; a number is used as is."""
    target = service_port.get("targetPort")
    if target is None or target == "" or target == 0:
        target = service_port.get("port")
    if isinstance(target, int):
        return target
    protocol = service_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or [])
    containers += [c for c in spec.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
    for container in containers:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port.get("containerPort", 0)) or None
    return None


def target_ref(pod: Obj) -> Obj:
    meta = pod.get("metadata") or {}
    return {"kind": "Pod", "namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
            "uid": meta.get("uid", "")}


def pod_hostname(pod: Obj, service: Obj) -> str:
    """The pod's hostname when it is published under this Service (spec.subdomain)."""
    spec = pod.get("spec") or {}
    meta, svc_meta = pod.get("metadata") or {}, service.get("metadata") or {}
    if spec.get("hostname") and spec.get("subdomain") == svc_meta.get("name") and \
            meta.get("namespace") == svc_meta.get("namespace"):
        return str(spec["hostname"])
    return ""


def selected_pods(service: Obj, pods: Lister) -> list[Obj]:
    selector = (service.get("spec") or {}).get("selector") or {}
    text = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    return pods.list(parse_label_selector(text), namespace=(service.get("metadata") or {}).get("namespace", ""))


def has_selector(service: Obj) -> bool:
    return (service.get("spec") or {}).get("selector") is not None


def is_headless(service: Obj) -> bool:
    return (service.get("spec") or {}).get("clusterIP") == "None"


def services_for_pod(services: Lister, pod: Obj) -> Iterable[Request]:
    """Every Service in the pod's namespace whose selector matches its labels."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    namespace = meta.get("namespace", "")
    for service in services.list(namespace=namespace):
        selector = (service.get("spec") or {}).get("selector")
        if selector is None:
            continue
        if all(labels.get(k) == v for k, v in selector.items()):
            yield Request(namespace, service["metadata"]["name"])


def pod_mapper(services: Lister):  # type: ignore[no-untyped-def]
    def mapper(pod: Obj) -> Iterable[Request]:
        return list(services_for_pod(services, pod))

    return mapper
