"""kubectl describe: pod, deployment, service, node, namespace (headers, related objects, Events)."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import Kube, section

DATE = r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}"


@pytest.fixture(scope="module")
def app(kube: Kube, mod_ns: str) -> str:
    kube("-n", mod_ns, "create", "deployment", "web", "--image=nginx:1.25", "--replicas=2", "--port=80")
    kube("-n", mod_ns, "expose", "deployment", "web", "--port=80", "--target-port=80")
    kube("-n", mod_ns, "run", "solo", "--image=nginx:1.25", "--labels=run=solo")
    kube("-n", mod_ns, "rollout", "status", "deployment/web", "--timeout=60s")
    kube("-n", mod_ns, "wait", "--for=condition=Ready", "pod/solo", "--timeout=60s")
    return mod_ns


def test_describe_pod(kube: Kube, app: str) -> None:
    # Source: kubernetes.io/docs/tasks/debug/debug-application/debug-running-pod/ (`kubectl describe pod`
    # transcript: Name, Namespace, Priority, Node, Start Time, Labels, Annotations, Status, IP, IPs,
    # Containers, Conditions, Volumes, QoS Class, Node-Selectors, Tolerations, Events with
    # "Successfully assigned default/nginx-... to kubernetes-node-..." from default-scheduler).
    r = kube("-n", app, "describe", "pod", "solo")
    out = r.out
    node = json.loads(kube("get", "nodes", "-o", "json").out)["items"][0]["metadata"]["name"]
    # With the ServiceAccount admission every pod has one, so describe aligns on "Service Account:".
    assert out.startswith(f"Name:             solo\nNamespace:        {app}\nPriority:         0\n"
                          "Service Account:  default\n")
    assert re.search(rf"^Node:             {re.escape(node)}/\d+\.\d+\.\d+\.\d+$", out, re.M)
    assert re.search(rf"^Start Time:       {DATE}$", out, re.M)
    assert re.search(r"^Labels:           run=solo\nAnnotations:      <none>\nStatus:           Running\n", out, re.M)
    containers = section(out, "Containers:")
    assert re.search(r"^  solo:\n    Container ID:   \S+\n    Image:          nginx:1\.25\n", containers, re.M)
    assert re.search(r"^    State:          Running\n      Started:      " + DATE + r"\n    Ready:          True\n"
                     r"    Restart Count:  0\n", containers, re.M)
    cond = section(out, "Conditions:")
    assert [ln.split() for ln in cond.splitlines()[1:]] == [
        ["Type", "Status"], ["PodReadyToStartContainers", "True"], ["Initialized", "True"], ["Ready", "True"],
        ["ContainersReady", "True"], ["PodScheduled", "True"]]
    assert re.search(r"^QoS Class:\s+BestEffort$", out, re.M)
    assert re.search(r"^Tolerations:\s+node\.kubernetes\.io/not-ready:NoExecute op=Exists for 300s\n\s+"
                     r"node\.kubernetes\.io/unreachable:NoExecute op=Exists for 300s$", out, re.M)
    events = section(out, "Events:")
    lines = events.splitlines()
    assert lines[1].split() == ["Type", "Reason", "Age", "From", "Message"]
    assert lines[2].split() == ["----", "------", "----", "----", "-------"]
    assert any(re.fullmatch(rf"\s+Normal\s+Scheduled\s+\S+\s+default-scheduler\s+Successfully assigned "
                            rf"{app}/solo to {re.escape(node)}", ln) for ln in lines), events
    assert any(re.fullmatch(r"\s+Normal\s+Started\s+\S+\s+kubelet\s+Started container solo", ln)
               for ln in lines), events


def test_describe_pod_service_account(kube: Kube, app: str) -> None:
    # Source: kubernetes.io/docs/tasks/debug/debug-application/debug-running-pod/ transcript
    # ("Service Account:  default", "Mounts: /var/run/secrets/kubernetes.io/serviceaccount from
    # kube-api-access-xxxxx (ro)", Volumes "kube-api-access-xxxxx: Type: Projected ...").
    out = kube("-n", app, "describe", "pod", "solo").out
    assert re.search(r"^Service Account:  default$", out, re.M)
    assert re.search(r"Mounts:\s+/var/run/secrets/kubernetes\.io/serviceaccount from kube-api-access-[a-z0-9]{5} "
                     r"\(ro\)", out)
    assert re.search(r"^  kube-api-access-[a-z0-9]{5}:\n    Type:\s+Projected", out, re.M)


def test_scheduled_event_shape(kube: Kube, app: str) -> None:
    # Source: kubernetes.io/docs/reference/kubernetes-api/cluster-resources/event-v1/ and the scheduler
    # (k8s.io/client-go tools/events recorder): the core/v1 view of its events has eventTime set,
    # firstTimestamp/lastTimestamp null, reportingComponent "default-scheduler", action "Binding".
    r = kube("-n", app, "get", "events", "--field-selector", "reason=Scheduled,involvedObject.name=solo",
             "-o", "json")
    ev = json.loads(r.out)["items"][0]
    assert ev["eventTime"] and ev["firstTimestamp"] is None and ev["lastTimestamp"] is None
    assert (ev["reportingComponent"], ev["action"]) == ("default-scheduler", "Binding")


def test_describe_deployment(kube: Kube, app: str) -> None:
    # Source: kubernetes.io/docs/concepts/workloads/controllers/deployment/ (`kubectl describe deployments`
    # transcript: Selector, Replicas "3 desired | 3 updated | 3 total | 3 available | 0 unavailable",
    # StrategyType, RollingUpdateStrategy "25% max unavailable, 25% max surge", Conditions,
    # OldReplicaSets, NewReplicaSet "... (3/3 replicas created)", Events ScalingReplicaSet).
    out = kube("-n", app, "describe", "deployment", "web").out
    assert out.startswith(f"Name:                   web\nNamespace:              {app}\n")
    for pat in (r"^CreationTimestamp:      " + DATE + "$",
                r"^Labels:                 app=web$",
                r"^Annotations:            deployment\.kubernetes\.io/revision: 1$",
                r"^Selector:               app=web$",
                r"^Replicas:               2 desired \| 2 updated \| 2 total \| 2 available \| 0 unavailable$",
                r"^StrategyType:           RollingUpdate$",
                r"^MinReadySeconds:        0$",
                r"^RollingUpdateStrategy:  25% max unavailable, 25% max surge$",
                r"^OldReplicaSets:  <none>$",
                r"^NewReplicaSet:   web-[0-9a-f]+ \(2/2 replicas created\)$"):
        assert re.search(pat, out, re.M), (pat, out)
    cond = section(out, "Conditions:").splitlines()
    assert [c.split() for c in cond[1:]] == [["Type", "Status", "Reason"], ["----", "------", "------"],
                                             ["Available", "True", "MinimumReplicasAvailable"],
                                             ["Progressing", "True", "NewReplicaSetAvailable"]]
    events = section(out, "Events:")
    assert re.search(r"Normal\s+ScalingReplicaSet\s+\S+\s+deployment-controller\s+Scaled up replica set "
                     r"web-[0-9a-f]+ from 0 to 2", events), events


def test_describe_service(kube: Kube, app: str) -> None:
    # Source: kubernetes.io/docs/tutorials/services/connect-applications-service/ (`kubectl describe svc`:
    # Name, Namespace, Labels, Annotations, Selector, Type, IP Family Policy, IP Families, IP, IPs, Port,
    # TargetPort, Endpoints "10.244.2.5:80,10.244.3.4:80", Session Affinity, Events).
    out = kube("-n", app, "describe", "service", "web").out
    ip = kube("-n", app, "get", "service", "web", "-o", "jsonpath={.spec.clusterIP}").out
    pod_ips = sorted(kube("-n", app, "get", "pods", "-l", "app=web", "-o",
                          "jsonpath={.items[*].status.podIP}").out.split())
    expected = [f"Name:                     web", f"Namespace:                {app}", "Labels:                   app=web",
                "Annotations:              <none>", "Selector:                 app=web",
                "Type:                     ClusterIP", "IP Family Policy:         SingleStack",
                "IP Families:              IPv4", f"IP:                       {ip}", f"IPs:                      {ip}",
                "Port:                     <unset>  80/TCP", "TargetPort:               80/TCP"]
    lines = out.splitlines()
    assert lines[:len(expected)] == expected, out
    endpoints = lines[len(expected)]
    assert endpoints.startswith("Endpoints:                ")
    assert sorted(e.rsplit(":", 1)[0] for e in endpoints.split()[1].split(",")) == pod_ips
    assert lines[len(expected) + 1:] == ["Session Affinity:         None", "Internal Traffic Policy:  Cluster",
                                         "Events:                   <none>"]


def test_describe_node(kube: Kube, app: str) -> None:
    # Source: kubernetes.io/docs/reference/node/node-status/ and kubernetes.io/docs/tasks/debug/
    # debug-cluster/ (`kubectl describe node` transcript: Name, Roles, Labels, Annotations,
    # CreationTimestamp, Taints, Unschedulable, Lease, Conditions, Addresses, Capacity, Allocatable,
    # System Info, PodCIDR(s), Non-terminated Pods, Allocated resources, Events).
    node = json.loads(kube("get", "nodes", "-o", "json").out)["items"][0]["metadata"]["name"]
    out = kube("describe", "node", node).out
    tops = [ln.split(":")[0] for ln in out.splitlines() if ln and not ln.startswith(" ") and ":" in ln]
    order = ["Name", "Roles", "Labels", "Annotations", "CreationTimestamp", "Taints", "Unschedulable", "Lease",
             "Conditions", "Addresses", "Capacity", "Allocatable", "System Info", "PodCIDR", "PodCIDRs",
             "Non-terminated Pods", "Allocated resources", "Events"]
    assert [t for t in tops if t in order] == order, tops
    assert re.search(rf"^Labels:\s+beta\.kubernetes\.io/arch=amd64$", out, re.M)
    assert re.search(rf"^\s+kubernetes\.io/hostname={re.escape(node)}$", out, re.M)
    cond = section(out, "Conditions:").splitlines()
    assert cond[1].split() == ["Type", "Status", "LastHeartbeatTime", "LastTransitionTime", "Reason", "Message"]
    assert [c.split()[0] for c in cond[3:]] == ["MemoryPressure", "DiskPressure", "PIDPressure", "Ready"]
    assert re.search(r"Ready\s+True\s+.*KubeletReady\s+kubelet is posting ready status", out)
    pods = section(out, "Non-terminated Pods:")
    assert re.match(r"Non-terminated Pods:\s+\(\d+ in total\)\n  Namespace\s+Name\s+CPU Requests\s+CPU Limits\s+"
                    r"Memory Requests\s+Memory Limits\s+Age\n", pods), pods
    assert re.search(rf"^  {app}\s+solo\s+0 \(0%\)\s+0 \(0%\)\s+0 \(0%\)\s+0 \(0%\)\s+\S+$", pods, re.M), pods
    alloc = section(out, "Allocated resources:")
    assert "  (Total limits may be over 100 percent, i.e., overcommitted.)" in alloc
    events = section(out, "Events:")
    assert re.search(r"Normal\s+NodeReady\s+\S+\s+kubelet\s+Node \S+ status is now: NodeReady", events), events


def test_describe_namespace(kube: Kube, ns: str) -> None:
    # Source: kubernetes.io/docs/tasks/administer-cluster/namespaces/ (`kubectl describe namespaces`
    # transcript ending "No resource quota.\n\nNo LimitRange resource.").
    out = kube("describe", "namespace", ns).out
    assert out == (f"Name:         {ns}\nLabels:       kubernetes.io/metadata.name={ns}\nAnnotations:  <none>\n"
                   "Status:       Active\n\nNo resource quota.\n\nNo LimitRange resource.\n")


def test_describe_not_found(kube: Kube, ns: str) -> None:
    # Source: kubernetes/kubernetes test/cmd/core.sh (describe of a missing object:
    # 'Error from server (NotFound): pods "x" not found', exit 1).
    r = kube("-n", ns, "describe", "pod", "ghost", rc=1)
    assert (r.out, r.err) == ("", 'Error from server (NotFound): pods "ghost" not found\n')
