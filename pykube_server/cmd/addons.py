"""`up`'s addon phase, as kubeadm's: the cluster DNS (CoreDNS's objects, served by `pykube-server dns`).

Why here and through the API: kubeadm creates its addons as an ordinary client once the API
server answers, so they are objects a user can inspect, scale and delete like any other. The
objects are kubeadm's: ServiceAccount `coredns`, ClusterRole and ClusterRoleBinding
`system:coredns`, the `coredns` ConfigMap (kubeadm's Corefile, mounted at /etc/coredns and
reloaded on edits), the `kube-dns` Service on the 10th address of the service range (ports
53/UDP `dns`, 53/TCP `dns-tcp`, 9153/TCP `metrics`) and the `coredns` Deployment (labels
`k8s-app: kube-dns`, two replicas, system-cluster-critical, `dnsPolicy: Default`, the health
and ready probes). Its container runs this machine's Python with `-m pykube_server dns`,
listening on the pod's IP (`$(POD_IP)` from the downward API: every pod shares this machine's
network, so `:53` alone would collide); kube-proxy makes the Service IP reach the pods.
The pods authenticate with their service account token, but reach the API server at its own
URL (CoreDNS's `endpoint` option) rather than through 127.96.0.1: on a machine running several
clusters, that shared loopback Service address may belong to another cluster's kube-proxy.

Applying is idempotent, create-if-missing: objects a user changed are left as they are on the
next start, except the Deployment's container args, which follow the API server's URL when it
moved (kubeadm updates its addon Deployments the same way).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from ipaddress import ip_network

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.rest import (
    CONFIGMAPS, DEPLOYMENTS, SERVICEACCOUNTS, SERVICES, Client, PatchType, Resource, TransportError,
)
from pykube_server.dns.corefile import kubeadm_corefile

log = logging.getLogger("pykube.addons")

CLUSTER_ROLES = Resource("rbac.authorization.k8s.io", "v1", "clusterroles", namespaced=False)
CLUSTER_ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", namespaced=False)
NAMESPACE = "kube-system"
IMAGE = "registry.k8s.io/coredns/coredns:v1.12.0"
"""What kubeadm deploys with Kubernetes 1.33 (the image name is a label here: the process runtime
runs the command)."""
REPLICAS = 2
RETRY_SECONDS = 1.0
APP_LABELS = {"k8s-app": "kube-dns"}
BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}


def dns_service_ip(service_cidr: str) -> str:
    """The 10th address of the service range, the one kubeadm gives `kube-dns`."""
    return str(ip_network(service_cidr, strict=False).network_address + 10)


def addon_enabled(components: str, name: str) -> bool:
    """`--components` read as `up` reads it ('*', a comma list, '-name' to leave one out)."""
    wanted = [w.strip() for w in components.split(",") if w.strip()]
    return ("*" in wanted or name in wanted) and f"-{name}" not in wanted


def coredns_args(*, api_endpoint: str) -> list[str]:
    """kubeadm's `-conf /etc/coredns/Corefile`, plus the pod IP to listen on (the Corefile's
    `.:53`, `health`, `ready`, `prometheus` ports take it) and the API server's URL."""
    args = ["-conf", "/etc/coredns/Corefile", "--listen", "$(POD_IP)"]
    return args + (["--endpoint", api_endpoint] if api_endpoint else [])


def coredns_objects(*, service_ip: str, cluster_domain: str = "cluster.local", replicas: int = REPLICAS,
                    api_endpoint: str = "", python: str = sys.executable) -> list[tuple[Resource, Obj]]:
    """The objects in creation order (the ServiceAccount before the pods that use it)."""
    rules = [{"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"],
              "verbs": ["list", "watch"]},
             {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": "system:coredns", "labels": dict(BOOTSTRAP_LABELS)}, "rules": rules}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "system:coredns", "labels": dict(BOOTSTRAP_LABELS),
                            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
               "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": NAMESPACE}]}
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "coredns", "namespace": NAMESPACE}}
    service = {"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "kube-dns", "namespace": NAMESPACE,
                            "labels": {**APP_LABELS, "kubernetes.io/cluster-service": "true",
                                       "kubernetes.io/name": "CoreDNS"},
                            "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}},
               "spec": {"clusterIP": service_ip, "selector": dict(APP_LABELS),
                        "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                                  {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                                  {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153}]}}
    container = {
        "name": "coredns", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
        "command": [python, "-m", "pykube_server", "dns"],
        "args": coredns_args(api_endpoint=api_endpoint),
        "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": True}],
        "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}],
        "resources": {"limits": {"memory": "170Mi"}, "requests": {"cpu": "100m", "memory": "70Mi"}},
        "ports": [{"containerPort": 53, "name": "dns", "protocol": "UDP"},
                  {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                  {"containerPort": 9153, "name": "metrics", "protocol": "TCP"}],
        "livenessProbe": {"httpGet": {"path": "/health", "port": 8080, "scheme": "HTTP"}, "initialDelaySeconds": 60,
                          "timeoutSeconds": 5, "successThreshold": 1, "failureThreshold": 5},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181, "scheme": "HTTP"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}},
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": NAMESPACE, "labels": dict(APP_LABELS)},
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "selector": {"matchLabels": dict(APP_LABELS)},
            "template": {
                "metadata": {"labels": dict(APP_LABELS)},
                "spec": {
                    "priorityClassName": "system-cluster-critical",
                    "serviceAccountName": "coredns",
                    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
                        "weight": 100, "podAffinityTerm": {
                            "labelSelector": {"matchExpressions": [
                                {"key": "k8s-app", "operator": "In", "values": ["kube-dns"]}]},
                            "topologyKey": "kubernetes.io/hostname"}}]}},
                    "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"},
                                    {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "containers": [container],
                    "dnsPolicy": "Default",
                    "volumes": [{"name": "config-volume", "configMap": {
                        "name": "coredns", "items": [{"key": "Corefile", "path": "Corefile"}]}}],
                },
            },
        },
    }
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "coredns", "namespace": NAMESPACE},
              "data": {"Corefile": kubeadm_corefile(cluster_domain)}}
    return [(CLUSTER_ROLES, role), (CLUSTER_ROLE_BINDINGS, binding), (SERVICEACCOUNTS, account),
            (CONFIGMAPS, config), (SERVICES, service), (DEPLOYMENTS, deployment)]


async def ensure(client: Client, objects: list[tuple[Resource, Obj]]) -> list[str]:
    """Create each object that does not exist yet; returns the names created."""
    created = []
    for resource, obj in objects:
        meta = obj["metadata"]
        try:
            await client.create(resource, obj, namespace=meta.get("namespace", ""))
        except errors.AlreadyExists:
            continue
        created.append(f"{resource.plural}/{meta['name']}")
    return created


async def follow_endpoint(client: Client, args: list[str]) -> bool:
    """Point an existing coredns Deployment's container at the current API server; True if patched."""
    deployment = await client.get(DEPLOYMENTS, "coredns", namespace=NAMESPACE)
    containers = deployment["spec"]["template"]["spec"].get("containers") or []
    index = next((i for i, c in enumerate(containers) if c.get("name") == "coredns"), None)
    if index is None or containers[index].get("args") == args:
        return False
    await client.patch(DEPLOYMENTS, "coredns", [{"op": "replace", "path": f"/spec/template/spec/containers/{index}/args",
                                                 "value": args}], namespace=NAMESPACE, patch_type=PatchType.JSON)
    return True


async def apply_dns(client: Client, *, service_ip: str, cluster_domain: str, api_endpoint: str = "",
                    replicas: int = REPLICAS) -> None:
    """The CoreDNS addon, retried until the API server takes it (it may still be starting)."""
    objects = coredns_objects(service_ip=service_ip, cluster_domain=cluster_domain, replicas=replicas,
                              api_endpoint=api_endpoint)
    while True:
        try:
            created = await ensure(client, objects)
            if "deployments/coredns" not in created and await follow_endpoint(
                    client, coredns_args(api_endpoint=api_endpoint)):
                log.info("dns addon: coredns now reaches the API server at %s", api_endpoint)
            break
        except (TransportError, errors.StatusError) as exc:
            log.warning("dns addon: %s; retrying", exc)
            await asyncio.sleep(RETRY_SECONDS)
    if created:
        log.info("dns addon: created %s (kube-dns at %s)", ", ".join(created), service_ip)
