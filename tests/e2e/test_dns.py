"""Cluster DNS end to end: `up` deploys CoreDNS as kubeadm does, and pods find Services by name
through their resolv.conf (nameserver = the kube-dns ClusterIP, namespace search path).

The cluster here is the default `up` except for its address ranges: DNS is machine-wide on
loopback (kube-dns is the 10th Service address, the DNS pods take the node's first pod IPs),
so another cluster running on this machine with the default ranges would own 127.96.0.10:53.
Ranges of our own keep this module independent of whatever else runs."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import ServerProcess, _new_namespace, requires_kubectl, start_server

pytestmark = [requires_kubectl, pytest.mark.kubectl]

_OCTET = random.Random().randrange(100, 200)
SERVICE_RANGE = f"127.{_OCTET}.0.0/16"
POD_CIDR = f"127.{_OCTET + 50}.0.0/16"
DNS_IP = f"127.{_OCTET}.0.10"
WAIT_SECONDS = 90.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("dns"), "--service-cluster-ip-range", SERVICE_RANGE,
                          "--pod-cidr", POD_CIDR)
    yield server
    server.stop()


def eventually(check: Callable[[], object], what: str, timeout: float = WAIT_SECONDS) -> object:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def dns_ready(cluster: ServerProcess) -> None:
    """The coredns pods Running and Ready (their first start waits for the controllers)."""
    def ready() -> bool:
        out = cluster.kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns", "-o", "json",
                              check=False).stdout
        pods = json.loads(out or '{"items": []}')["items"]
        return bool(pods) and all(any(c["type"] == "Ready" and c["status"] == "True"
                                      for c in (p.get("status") or {}).get("conditions") or []) for p in pods)
    eventually(ready, "coredns pods to be Ready")


@pytest.fixture(scope="module")
def ns(cluster: ServerProcess, dns_ready: None) -> str:
    name = _new_namespace(cluster)
    cluster.kubectl("apply", "-n", name, "-f", "-", input="""
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers: [{name: web, image: busybox, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: web-headless}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: pg, port: 5432}]
---
apiVersion: v1
kind: Pod
metadata: {name: db-0, labels: {app: db}}
spec:
  hostname: db-0
  subdomain: db
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: busybox, command: [sleep, "3600"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers: [{name: main, image: busybox, command: [sleep, "3600"]}]
""")
    cluster.kubectl("wait", "-n", name, "--for=condition=Ready", "pod", "--all", "--timeout=60s", timeout=70)
    return name


def in_pod(cluster: ServerProcess, ns: str, *command: str) -> str:
    result = cluster.kubectl("exec", "-n", ns, "client", "--", *command, check=False)
    return result.stdout if result.returncode == 0 else ""


def test_up_deploys_coredns_like_kubeadm(cluster: ServerProcess, dns_ready: None) -> None:
    pods = cluster.kubectl("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns").stdout.splitlines()
    assert pods[0].split()[:3] == ["NAME", "READY", "STATUS"]
    assert len(pods) == 3 and all(p.startswith("coredns-") and p.split()[1:3] == ["1/1", "Running"] for p in pods[1:])
    svc = json.loads(cluster.kubectl("get", "svc", "kube-dns", "-n", "kube-system", "-o", "json").stdout)
    assert svc["spec"]["clusterIP"] == DNS_IP
    assert [(p["name"], p["port"], p["protocol"]) for p in svc["spec"]["ports"]] == [
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]
    deploy = json.loads(cluster.kubectl("get", "deploy", "coredns", "-n", "kube-system", "-o", "json").stdout)
    assert deploy["spec"]["template"]["spec"]["serviceAccountName"] == "coredns"
    assert deploy["spec"]["template"]["spec"]["dnsPolicy"] == "Default"
    assert deploy["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == "coredns"
    corefile = cluster.kubectl("get", "cm", "coredns", "-n", "kube-system", "-o", "jsonpath={.data.Corefile}").stdout
    assert "kubernetes cluster.local in-addr.arpa ip6.arpa {" in corefile and "forward . /etc/resolv.conf" in corefile
    logs = cluster.kubectl("logs", "-n", "kube-system", "deploy/coredns").stdout.splitlines()
    assert logs[:2] == [".:53", "CoreDNS-1.12.0"]
    info = cluster.kubectl("cluster-info").stdout
    assert "CoreDNS is running at" in info and "/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy" in info


def test_pod_resolv_conf_points_at_the_cluster_dns(cluster: ServerProcess, ns: str) -> None:
    assert in_pod(cluster, ns, "cat", "/etc/resolv.conf").splitlines() == [
        f"search {ns}.svc.cluster.local svc.cluster.local cluster.local", f"nameserver {DNS_IP}", "options ndots:5"]
    ip = cluster.kubectl("get", "pod", "client", "-n", ns, "-o", "jsonpath={.status.podIP}").stdout
    assert f"{ip}\tclient" in in_pod(cluster, ns, "cat", "/etc/hosts").splitlines()


def test_service_resolves_by_full_and_short_name(cluster: ServerProcess, ns: str) -> None:
    cluster_ip = cluster.kubectl("get", "svc", "web", "-n", ns, "-o", "jsonpath={.spec.clusterIP}").stdout
    full = eventually(lambda: in_pod(cluster, ns, "getent", "hosts", f"web.{ns}.svc.cluster.local"), "web's A record")
    assert str(full).split()[:2] == [cluster_ip, f"web.{ns}.svc.cluster.local"]
    short = in_pod(cluster, ns, "python3", "-c", "import socket; print(socket.gethostbyname('web'))")
    assert short.strip() == cluster_ip
    other_ns = in_pod(cluster, ns, "python3", "-c", "import socket; print(socket.gethostbyname('kube-dns.kube-system'))")
    assert other_ns.strip() == DNS_IP


def test_headless_service_returns_the_pod_ips(cluster: ServerProcess, ns: str) -> None:
    pod_ips = sorted(cluster.kubectl("get", "pods", "-n", ns, "-l", "app=web", "-o",
                                     "jsonpath={.items[*].status.podIP}").stdout.split())
    script = "import socket; print(' '.join(sorted(socket.gethostbyname_ex('web-headless')[2])))"
    got = eventually(lambda: in_pod(cluster, ns, "python3", "-c", script).split() == pod_ips or None,
                     "the headless Service's endpoints")
    assert got


def test_pod_hostname_under_its_subdomain_resolves_and_is_in_its_hosts_file(cluster: ServerProcess, ns: str) -> None:
    ip = cluster.kubectl("get", "pod", "db-0", "-n", ns, "-o", "jsonpath={.status.podIP}").stdout
    fqdn = f"db-0.db.{ns}.svc.cluster.local"
    found = eventually(lambda: in_pod(cluster, ns, "getent", "hosts", fqdn), "the StatefulSet-style pod name")
    assert str(found).split()[:2] == [ip, fqdn]
    hosts = cluster.kubectl("exec", "-n", ns, "db-0", "--", "cat", "/etc/hosts").stdout.splitlines()
    assert hosts[-1] == f"{ip}\t{fqdn}\tdb-0"
    assert cluster.kubectl("exec", "-n", ns, "db-0", "--", "hostname").stdout.strip() == "db-0"


def test_unknown_service_is_not_found(cluster: ServerProcess, ns: str) -> None:
    result = cluster.kubectl("exec", "-n", ns, "client", "--", "getent", "hosts", f"nope.{ns}.svc.cluster.local",
                             check=False)
    assert result.returncode == 2 and result.stdout == ""  # getent: key not found
