"""Server-side printing: each kind's header row and cells as kube-apiserver 1.33 renders them.

Facts recorded here come from Kubernetes' `pkg/printers/internalversion/printers.go` and its
tests (pod STATUS golden cases), the aggregator's APIService table, and the default table
convertor (NAME, CREATED AT) for kinds without a printer.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any

import pytest

from pykube_server.registry.kinds import strategy_for
from pykube_server.registry.printers import COLUMNS, columns_for, pod_summary
from pykube_server.registry.printers.common import human_duration
from pykube_server.registry.resources import RESOURCES
from pykube_server.registry.strategy import AGE, NAME
from pykube_server.registry.table import table

NOW = 1_700_000_000.0


def ago(seconds: float) -> str:
    return datetime.fromtimestamp(NOW - seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def header(group: str, plural: str, *, wide: bool = False) -> str:
    """The header line kubectl prints when no cell is wider than its column name."""
    return "   ".join(c.name.upper() for c in columns_for(group, plural) if wide or c.priority == 0)


def cells(group: str, plural: str, obj: dict[str, Any], now: float = NOW) -> dict[str, object]:
    return {c.name: c.value(obj, now) for c in columns_for(group, plural)}


# -- headers -----------------------------------------------------------------------------------

HEADERS: dict[tuple[str, str], tuple[str, str]] = {
    ("", "pods"): ("NAME   READY   STATUS   RESTARTS   AGE",
                   "NAME   READY   STATUS   RESTARTS   AGE   IP   NODE   NOMINATED NODE   READINESS GATES"),
    ("apps", "deployments"): ("NAME   READY   UP-TO-DATE   AVAILABLE   AGE",
                              "NAME   READY   UP-TO-DATE   AVAILABLE   AGE   CONTAINERS   IMAGES   SELECTOR"),
    ("apps", "replicasets"): ("NAME   DESIRED   CURRENT   READY   AGE",
                              "NAME   DESIRED   CURRENT   READY   AGE   CONTAINERS   IMAGES   SELECTOR"),
    ("apps", "statefulsets"): ("NAME   READY   AGE", "NAME   READY   AGE   CONTAINERS   IMAGES"),
    ("apps", "daemonsets"): (
        "NAME   DESIRED   CURRENT   READY   UP-TO-DATE   AVAILABLE   NODE SELECTOR   AGE",
        "NAME   DESIRED   CURRENT   READY   UP-TO-DATE   AVAILABLE   NODE SELECTOR   AGE   CONTAINERS   IMAGES   SELECTOR"),
    ("apps", "controllerrevisions"): ("NAME   CONTROLLER   REVISION   AGE",) * 2,
    ("", "replicationcontrollers"): ("NAME   DESIRED   CURRENT   READY   AGE",
                                     "NAME   DESIRED   CURRENT   READY   AGE   CONTAINERS   IMAGES   SELECTOR"),
    ("batch", "jobs"): ("NAME   STATUS   COMPLETIONS   DURATION   AGE",
                        "NAME   STATUS   COMPLETIONS   DURATION   AGE   CONTAINERS   IMAGES   SELECTOR"),
    ("batch", "cronjobs"): (
        "NAME   SCHEDULE   TIMEZONE   SUSPEND   ACTIVE   LAST SCHEDULE   AGE",
        "NAME   SCHEDULE   TIMEZONE   SUSPEND   ACTIVE   LAST SCHEDULE   AGE   CONTAINERS   IMAGES   SELECTOR"),
    ("", "services"): ("NAME   TYPE   CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE",
                       "NAME   TYPE   CLUSTER-IP   EXTERNAL-IP   PORT(S)   AGE   SELECTOR"),
    ("", "endpoints"): ("NAME   ENDPOINTS   AGE",) * 2,
    ("discovery.k8s.io", "endpointslices"): ("NAME   ADDRESSTYPE   PORTS   ENDPOINTS   AGE",) * 2,
    ("", "nodes"): ("NAME   STATUS   ROLES   AGE   VERSION",
                    "NAME   STATUS   ROLES   AGE   VERSION   INTERNAL-IP   EXTERNAL-IP   OS-IMAGE   KERNEL-VERSION   CONTAINER-RUNTIME"),
    ("", "namespaces"): ("NAME   STATUS   AGE",) * 2,
    ("", "configmaps"): ("NAME   DATA   AGE",) * 2,
    ("", "secrets"): ("NAME   TYPE   DATA   AGE",) * 2,
    ("", "serviceaccounts"): ("NAME   SECRETS   AGE",) * 2,
    ("", "events"): ("LAST SEEN   TYPE   REASON   OBJECT   MESSAGE",
                     "LAST SEEN   TYPE   REASON   OBJECT   SUBOBJECT   SOURCE   MESSAGE   FIRST SEEN   COUNT   NAME"),
    ("events.k8s.io", "events"): ("LAST SEEN   TYPE   REASON   OBJECT   MESSAGE",
                                  "LAST SEEN   TYPE   REASON   OBJECT   SUBOBJECT   SOURCE   MESSAGE   FIRST SEEN   COUNT   NAME"),
    ("", "persistentvolumes"): (
        "NAME   CAPACITY   ACCESS MODES   RECLAIM POLICY   STATUS   CLAIM   STORAGECLASS   VOLUMEATTRIBUTESCLASS   REASON   AGE",
        "NAME   CAPACITY   ACCESS MODES   RECLAIM POLICY   STATUS   CLAIM   STORAGECLASS   VOLUMEATTRIBUTESCLASS   REASON   AGE   VOLUMEMODE"),
    ("", "persistentvolumeclaims"): (
        "NAME   STATUS   VOLUME   CAPACITY   ACCESS MODES   STORAGECLASS   VOLUMEATTRIBUTESCLASS   AGE",
        "NAME   STATUS   VOLUME   CAPACITY   ACCESS MODES   STORAGECLASS   VOLUMEATTRIBUTESCLASS   AGE   VOLUMEMODE"),
    ("storage.k8s.io", "storageclasses"): (
        "NAME   PROVISIONER   RECLAIMPOLICY   VOLUMEBINDINGMODE   ALLOWVOLUMEEXPANSION   AGE",) * 2,
    ("rbac.authorization.k8s.io", "roles"): ("NAME   CREATED AT",) * 2,
    ("rbac.authorization.k8s.io", "clusterroles"): ("NAME   CREATED AT",) * 2,
    ("rbac.authorization.k8s.io", "rolebindings"): ("NAME   ROLE   AGE", "NAME   ROLE   AGE   USERS   GROUPS   SERVICEACCOUNTS"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"): (
        "NAME   ROLE   AGE", "NAME   ROLE   AGE   USERS   GROUPS   SERVICEACCOUNTS"),
    ("coordination.k8s.io", "leases"): ("NAME   HOLDER   AGE",) * 2,
    ("networking.k8s.io", "ingresses"): ("NAME   CLASS   HOSTS   ADDRESS   PORTS   AGE",) * 2,
    ("networking.k8s.io", "ingressclasses"): ("NAME   CONTROLLER   PARAMETERS   AGE",) * 2,
    ("networking.k8s.io", "networkpolicies"): ("NAME   POD-SELECTOR   AGE",) * 2,
    ("networking.k8s.io", "servicecidrs"): ("NAME   CIDRS   AGE",) * 2,
    ("networking.k8s.io", "ipaddresses"): ("NAME   PARENTREF",) * 2,
    ("policy", "poddisruptionbudgets"): ("NAME   MIN AVAILABLE   MAX UNAVAILABLE   ALLOWED DISRUPTIONS   AGE",) * 2,
    ("autoscaling", "horizontalpodautoscalers"): ("NAME   REFERENCE   TARGETS   MINPODS   MAXPODS   REPLICAS   AGE",) * 2,
    ("scheduling.k8s.io", "priorityclasses"): ("NAME   VALUE   GLOBAL-DEFAULT   AGE   PREEMPTIONPOLICY",) * 2,
    ("", "resourcequotas"): ("NAME   REQUEST   LIMIT   AGE",) * 2,
    ("", "limitranges"): ("NAME   CREATED AT",) * 2,
    ("", "podtemplates"): ("NAME   CONTAINERS   IMAGES   POD LABELS",) * 2,
    ("", "componentstatuses"): ("NAME   STATUS   MESSAGE   ERROR",) * 2,
    ("certificates.k8s.io", "certificatesigningrequests"): (
        "NAME   AGE   SIGNERNAME   REQUESTOR   REQUESTEDDURATION   CONDITION",) * 2,
    ("node.k8s.io", "runtimeclasses"): ("NAME   HANDLER   AGE",) * 2,
    ("storage.k8s.io", "csidrivers"): (
        "NAME   ATTACHREQUIRED   PODINFOONMOUNT   STORAGECAPACITY   TOKENREQUESTS   REQUIRESREPUBLISH   MODES   AGE",) * 2,
    ("storage.k8s.io", "csinodes"): ("NAME   DRIVERS   AGE",) * 2,
    ("storage.k8s.io", "csistoragecapacities"): ("NAME   STORAGECLASSNAME   CAPACITY",) * 2,
    ("storage.k8s.io", "volumeattachments"): ("NAME   ATTACHER   PV   NODE   ATTACHED   AGE",) * 2,
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"): ("NAME   WEBHOOKS   AGE",) * 2,
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"): ("NAME   WEBHOOKS   AGE",) * 2,
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"): ("NAME   VALIDATIONS   PARAMKIND   AGE",) * 2,
    ("admissionregistration.k8s.io", "validatingadmissionpolicybindings"): ("NAME   POLICYNAME   PARAMREF   AGE",) * 2,
    ("apiextensions.k8s.io", "customresourcedefinitions"): ("NAME   CREATED AT",) * 2,
    ("apiregistration.k8s.io", "apiservices"): ("NAME   SERVICE   AVAILABLE   AGE",) * 2,
    ("flowcontrol.apiserver.k8s.io", "flowschemas"): (
        "NAME   PRIORITYLEVEL   MATCHINGPRECEDENCE   DISTINGUISHERMETHOD   AGE   MISSINGPL",) * 2,
    ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations"): (
        "NAME   TYPE   NOMINALCONCURRENCYSHARES   QUEUES   HANDSIZE   QUEUELENGTHLIMIT   AGE",) * 2,
}


@pytest.mark.parametrize("key", sorted(HEADERS), ids=lambda k: f"{k[0] or 'core'}/{k[1]}")
def test_header_rows_match_kubectl(key: tuple[str, str]) -> None:
    default, wide = HEADERS[key]
    assert header(*key) == default
    assert header(*key, wide=True) == wide


def test_every_listable_builtin_resource_has_columns() -> None:
    listable = {(r.group, r.plural) for r in RESOURCES if "list" in r.verbs}
    assert listable - set(COLUMNS) == set()
    assert {(r.group, r.plural) for r in RESOURCES} - set(COLUMNS) == set()


def test_columns_are_well_formed() -> None:
    for key, columns in COLUMNS.items():
        names = [c.name for c in columns]
        assert len(names) == len(set(names)), key
        assert columns[0].format == "name" or key[1] == "events", key
        assert all(c.priority in (0, 1) and c.type in ("string", "integer", "number", "boolean", "date") for c in columns)


def test_unknown_kinds_fall_back_to_name_and_age() -> None:
    assert columns_for("example.com", "widgets") == (NAME, AGE)


def test_strategy_for_uses_the_kind_printer() -> None:
    spec = next(r for r in RESOURCES if (r.group, r.plural) == ("apps", "deployments"))
    assert strategy_for(spec).columns == COLUMNS[("apps", "deployments")]


def test_every_printer_renders_an_empty_object() -> None:
    for key, columns in COLUMNS.items():
        obj = {"metadata": {"name": "x", "creationTimestamp": ago(30)}}
        row = [c.value(obj, NOW) for c in columns]
        assert len(row) == len(columns), key


def test_created_at_is_rfc3339_and_typed_date() -> None:
    columns = columns_for("rbac.authorization.k8s.io", "roles")
    assert columns[1].type == "date"
    assert columns[1].value({"metadata": {"creationTimestamp": "2024-05-01T10:20:30Z"}}, NOW) == "2024-05-01T10:20:30Z"


def test_human_duration_edges() -> None:
    assert human_duration(-5) == "<invalid>"
    assert human_duration(-0.5) == "0s"
    assert human_duration(119) == "119s"
    assert human_duration(5 * 86400) == "5d"


# -- pods: STATUS, READY, RESTARTS -------------------------------------------------------------

def pod(phase: str = "Pending", *, containers: int = 1, init: int = 0, statuses: list | None = None,
        init_statuses: list | None = None, conditions: list | None = None, **extra: Any) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, **extra.pop("status", {})}
    if statuses is not None:
        status["containerStatuses"] = statuses
    if init_statuses is not None:
        status["initContainerStatuses"] = init_statuses
    if conditions is not None:
        status["conditions"] = conditions
    spec: dict[str, Any] = {"containers": [{"name": f"c{i}", "image": "busybox"} for i in range(containers)]}
    if init:
        spec["initContainers"] = extra.pop("init_specs", None) or [{"name": f"i{i}", "image": "busybox"} for i in range(init)]
    return {"metadata": {"name": "p", **extra.pop("meta", {})}, "spec": spec, "status": status}


RUNNING = {"running": {}}
WAITING = {"waiting": {}}


def restarted(seconds: float) -> dict[str, Any]:
    return {"terminated": {"exitCode": 1, "finishedAt": ago(seconds)}}


POD_CASES: list[tuple[str, dict[str, Any], tuple[str, str, str]]] = [
    ("fresh pod", pod(), ("0/1", "Pending", "0")),
    ("container creating", pod(statuses=[{"state": {"waiting": {"reason": "ContainerCreating"}}}]),
     ("0/1", "ContainerCreating", "0")),
    ("running and ready", pod("Running", statuses=[{"ready": True, "state": RUNNING}]), ("1/1", "Running", "0")),
    ("crash loop", pod("Running", statuses=[{"restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                                              "lastState": restarted(300)}]), ("0/1", "CrashLoopBackOff", "4 (5m ago)")),
    # upstream test6: one container completed, one running, no Ready condition
    ("completed + running, not ready", pod("Running", containers=2, statuses=[
        {"ready": True, "restartCount": 3, "state": {"terminated": {"reason": "Completed", "exitCode": 0}}},
        {"ready": True, "restartCount": 3, "state": RUNNING}]), ("1/2", "NotReady", "6")),
    ("completed + running, ready", pod("Running", containers=2, conditions=[{"type": "Ready", "status": "True"}], statuses=[
        {"ready": True, "restartCount": 3, "state": {"terminated": {"reason": "Completed", "exitCode": 0}}},
        {"ready": True, "restartCount": 3, "state": RUNNING}]), ("1/2", "Running", "6")),
    # upstream test7/test8/test9
    ("init running", pod("Pending", init=1, init_statuses=[{"restartCount": 3, "state": RUNNING, "lastState": restarted(10)}],
                         statuses=[{"state": WAITING}]), ("0/1", "Init:0/1", "3 (10s ago)")),
    ("init 0/2", pod("Pending", init=2, init_statuses=[{"restartCount": 3, "state": RUNNING, "lastState": restarted(10)},
                                                      {"state": WAITING}], statuses=[{"state": WAITING}]),
     ("0/1", "Init:0/2", "3 (10s ago)")),
    ("init 1/2", pod("Pending", init=2, init_statuses=[{"state": {"terminated": {}}},
                                                      {"restartCount": 3, "state": RUNNING, "lastState": restarted(10)}],
                     statuses=[{"state": WAITING}]), ("0/1", "Init:1/2", "3 (10s ago)")),
    # upstream test11: init done, container restarting: only the container's restarts count
    ("init done", pod("Running", init=1, init_statuses=[{"restartCount": 2, "state": {"terminated": {}},
                                                         "lastState": restarted(120)}],
                      statuses=[{"restartCount": 4, "state": RUNNING, "lastState": restarted(20)}]),
     ("0/1", "Running", "4 (20s ago)")),
    ("init error", pod("Pending", init=1, init_statuses=[{"state": {"terminated": {"reason": "Error", "exitCode": 1}}}]),
     ("0/1", "Init:Error", "0")),
    ("init exit code", pod("Pending", init=1, init_statuses=[{"state": {"terminated": {"exitCode": 2}}}]),
     ("0/1", "Init:ExitCode:2", "0")),
    ("init signal", pod("Pending", init=1, init_statuses=[{"state": {"terminated": {"exitCode": 137, "signal": 9}}}]),
     ("0/1", "Init:Signal:9", "0")),
    ("init crash loop", pod("Pending", init=1, init_statuses=[{"restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                                                               "lastState": restarted(60)}]),
     ("0/1", "Init:CrashLoopBackOff", "2 (60s ago)")),
    ("pod initializing", pod("Pending", init=1, init_statuses=[{"state": {"terminated": {"reason": "Completed", "exitCode": 0}}}],
                             statuses=[{"state": {"waiting": {"reason": "PodInitializing"}}}]),
     ("0/1", "PodInitializing", "0")),
    ("completed", pod("Succeeded", statuses=[{"state": {"terminated": {"reason": "Completed", "exitCode": 0}}}]),
     ("0/1", "Completed", "0")),
    ("error", pod("Failed", statuses=[{"state": {"terminated": {"reason": "Error", "exitCode": 1}}}]), ("0/1", "Error", "0")),
    ("exit code", pod("Failed", statuses=[{"state": {"terminated": {"exitCode": 3}}}]), ("0/1", "ExitCode:3", "0")),
    ("signal", pod("Failed", statuses=[{"state": {"terminated": {"exitCode": 0, "signal": 15}}}]), ("0/1", "Signal:15", "0")),
    ("evicted", pod("Failed", status={"reason": "Evicted"}), ("0/1", "Evicted", "0")),
    ("scheduling gated", pod("Pending", containers=2, conditions=[
        {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]), ("0/2", "SchedulingGated", "0")),
    ("terminating running", pod("Running", statuses=[{"state": RUNNING}], meta={"deletionTimestamp": ago(1)}),
     ("0/1", "Terminating", "0")),
    ("terminating pending", pod("Pending", meta={"deletionTimestamp": ago(1)}), ("0/1", "Terminating", "0")),
    ("deleted but completed", pod("Succeeded", statuses=[{"state": {"terminated": {"reason": "Completed", "exitCode": 0}}}],
                                  meta={"deletionTimestamp": ago(1)}), ("0/1", "Completed", "0")),
    ("node lost", pod("Running", status={"reason": "NodeLost"}, meta={"deletionTimestamp": ago(1)}), ("0/1", "Unknown", "0")),
    ("restart 5d ago", pod("Running", statuses=[{"ready": True, "restartCount": 3, "state": RUNNING,
                                                  "lastState": restarted(5 * 86400)}]), ("1/1", "Running", "3 (5d ago)")),
    # upstream TestPrintPodWithRestartableInitContainer: sidecars count as containers
    ("sidecar starting", pod("Pending", init=2, init_specs=[
        {"name": "s1", "image": "b", "restartPolicy": "Always"}, {"name": "s2", "image": "b", "restartPolicy": "Always"}],
        init_statuses=[{"name": "s1", "restartCount": 3, "state": RUNNING, "started": False, "lastState": restarted(10)},
                       {"name": "s2", "state": WAITING, "started": False}],
        statuses=[{"state": WAITING}], conditions=[{"type": "Initialized", "status": "False"}]),
     ("0/3", "Init:0/2", "3 (10s ago)")),
    ("sidecars running", pod("Running", init=1, init_specs=[{"name": "s1", "image": "b", "restartPolicy": "Always"}],
                             init_statuses=[{"name": "s1", "restartCount": 2, "ready": True, "started": True, "state": RUNNING,
                                             "lastState": restarted(30)}],
                             statuses=[{"ready": True, "state": RUNNING}],
                             conditions=[{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}]),
     ("2/2", "Running", "2 (30s ago)")),
]


@pytest.mark.parametrize(("case", "obj", "expected"), POD_CASES, ids=[c[0] for c in POD_CASES])
def test_pod_ready_status_restarts(case: str, obj: dict[str, Any], expected: tuple[str, str, str]) -> None:
    got = cells("", "pods", obj)
    assert (got["Ready"], got["Status"], got["Restarts"]) == expected


def test_pod_wide_cells() -> None:
    obj = pod("Running", status={"podIPs": [{"ip": "10.0.0.7"}], "nominatedNodeName": "n2"},
              conditions=[{"type": "gate/a", "status": "True"}])
    obj["spec"].update(nodeName="n1", readinessGates=[{"conditionType": "gate/a"}, {"conditionType": "gate/b"}])
    got = cells("", "pods", obj)
    assert (got["IP"], got["Node"], got["Nominated Node"], got["Readiness Gates"]) == ("10.0.0.7", "n1", "n2", "1/2")
    assert list(cells("", "pods", pod()).values())[5:] == ["<none>"] * 4


def test_pod_summary_counts() -> None:
    assert pod_summary(pod("Running", statuses=[{"ready": True, "state": RUNNING}]))[:4] == (1, 1, "Running", 0)


# -- other kinds -----------------------------------------------------------------------------

def test_deployment_cells() -> None:
    obj = {"metadata": {"name": "web", "creationTimestamp": ago(90)},
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "busybox"}]}}},
           "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert list(cells("apps", "deployments", obj).values()) == ["web", "2/3", 3, 2, "90s", "a,b", "nginx,busybox", "app=web"]
    assert cells("apps", "deployments", {"metadata": {}, "spec": {}})["Selector"] == ""
    assert cells("apps", "replicasets", {"metadata": {}, "spec": {}})["Selector"] == "<none>"


def test_service_cells() -> None:
    svc = {"metadata": {"name": "s"}, "spec": {"type": "NodePort", "clusterIPs": ["10.96.0.9"], "selector": {"b": "2", "a": "1"},
                                                "ports": [{"port": 80, "nodePort": 30001, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}}
    got = cells("", "services", svc)
    assert (got["Type"], got["Cluster-IP"], got["External-IP"], got["Port(s)"], got["Selector"]) == (
        "NodePort", "10.96.0.9", "<none>", "80:30001/TCP,53/UDP", "a=1,b=2")
    lb = {"metadata": {}, "spec": {"type": "LoadBalancer", "ports": []}}
    assert cells("", "services", lb)["External-IP"] == "<pending>"
    assert cells("", "services", lb)["Port(s)"] == "<none>"
    lb["status"] = {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}, {"hostname": "lb.example.com"}]}}
    assert cells("", "services", lb)["External-IP"] == "1.2.3.4,lb.example.com"
    ext = {"metadata": {}, "spec": {"type": "ExternalName", "externalName": "db.example.com"}}
    assert cells("", "services", ext)["External-IP"] == "db.example.com"


def test_endpoints_cells() -> None:
    subsets = [{"addresses": [{"ip": f"10.0.0.{i}"} for i in range(1, 5)], "ports": [{"port": 80}]}]
    assert cells("", "endpoints", {"metadata": {}, "subsets": subsets})["Endpoints"] == (
        "10.0.0.1:80,10.0.0.2:80,10.0.0.3:80 + 1 more...")
    assert cells("", "endpoints", {"metadata": {}})["Endpoints"] == "<none>"
    slice_ = {"metadata": {}, "addressType": "IPv4", "ports": [{"port": 80}, {"name": "dns"}], "endpoints": []}
    got = cells("discovery.k8s.io", "endpointslices", slice_)
    assert (got["Ports"], got["Endpoints"]) == ("80,dns", "<unset>")


def test_node_cells() -> None:
    node = {"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "edge"}},
            "spec": {"unschedulable": True},
            "status": {"conditions": [{"type": "Ready", "status": "False"}], "nodeInfo": {"kubeletVersion": "v1.33.1"},
                       "addresses": [{"type": "InternalIP", "address": "192.168.0.2"}]}}
    got = cells("", "nodes", node)
    assert (got["Status"], got["Roles"], got["Version"], got["Internal-IP"], got["External-IP"], got["OS-Image"]) == (
        "NotReady,SchedulingDisabled", "control-plane,edge", "v1.33.1", "192.168.0.2", "<none>", "<unknown>")
    assert cells("", "nodes", {"metadata": {}})["Status"] == "Unknown"


def test_job_and_cronjob_cells() -> None:
    job = {"metadata": {}, "spec": {"completions": 3, "template": {"spec": {"containers": []}}},
           "status": {"succeeded": 1, "startTime": ago(200), "completionTime": ago(20),
                      "conditions": [{"type": "Complete", "status": "True"}]}}
    got = cells("batch", "jobs", job)
    assert (got["Status"], got["Completions"], got["Duration"]) == ("Complete", "1/3", "3m")
    running = {"metadata": {}, "spec": {"parallelism": 2}, "status": {}}
    assert (cells("batch", "jobs", running)["Completions"], cells("batch", "jobs", running)["Duration"]) == ("0/1 of 2", "")
    assert cells("batch", "jobs", {"metadata": {}, "status": {"conditions": [{"type": "Suspended", "status": "True"}]}})["Status"] == "Suspended"
    cj = {"metadata": {}, "spec": {"schedule": "*/5 * * * *"}, "status": {"active": [{}]}}
    got = cells("batch", "cronjobs", cj)
    assert (got["Schedule"], got["Timezone"], got["Suspend"], got["Active"], got["Last Schedule"]) == (
        "*/5 * * * *", "<none>", "False", 1, "<none>")


def test_events_both_apis() -> None:
    core = {"metadata": {"name": "e1"}, "type": "Warning", "reason": "BackOff", "message": " restarting \n",
            "involvedObject": {"kind": "Pod", "name": "p", "fieldPath": "spec.containers{c}"},
            "source": {"component": "kubelet", "host": "n1"}, "firstTimestamp": ago(600), "lastTimestamp": ago(30), "count": 7}
    got = cells("", "events", core)
    assert list(got.values()) == ["30s", "Warning", "BackOff", "pod/p", "spec.containers{c}", "kubelet, n1", "restarting",
                                  "10m", 7, "e1"]
    v1 = {"metadata": {"name": "e2"}, "type": "Normal", "reason": "Scheduled", "note": "assigned",
          "regarding": {"kind": "Pod", "name": "q"}, "eventTime": "2023-11-14T22:13:20.000000Z",
          "reportingController": "default-scheduler", "reportingInstance": "sched-1"}
    got = cells("events.k8s.io", "events", v1)
    assert (got["Last Seen"], got["Object"], got["Source"], got["Message"], got["Count"]) == (
        "0s", "pod/q", "default-scheduler, sched-1", "assigned", 1)


def test_rbac_and_lease_cells() -> None:
    rb = {"metadata": {}, "roleRef": {"kind": "ClusterRole", "name": "view"},
          "subjects": [{"kind": "User", "name": "a"}, {"kind": "User", "name": "b"}, {"kind": "Group", "name": "g"},
                       {"kind": "ServiceAccount", "namespace": "ns", "name": "sa"}]}
    got = cells("rbac.authorization.k8s.io", "rolebindings", rb)
    assert (got["Role"], got["Users"], got["Groups"], got["ServiceAccounts"]) == ("ClusterRole/view", "a, b", "g", "ns/sa")
    assert cells("coordination.k8s.io", "leases", {"metadata": {}, "spec": {"holderIdentity": "me"}})["Holder"] == "me"


def test_storage_cells() -> None:
    pv = {"metadata": {}, "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                                   "persistentVolumeReclaimPolicy": "Retain", "claimRef": {"namespace": "d", "name": "c"},
                                   "storageClassName": "fast"}, "status": {"phase": "Bound"}}
    got = cells("", "persistentvolumes", pv)
    assert (got["Capacity"], got["Access Modes"], got["Claim"], got["StorageClass"], got["VolumeAttributesClass"]) == (
        "5Gi", "RWO,RWX", "d/c", "fast", "<unset>")
    pvc = {"metadata": {}, "spec": {}, "status": {"phase": "Pending"}}
    assert (cells("", "persistentvolumeclaims", pvc)["Capacity"], cells("", "persistentvolumeclaims", pvc)["Status"]) == ("", "Pending")
    sc = {"metadata": {"name": "std", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}, "provisioner": "x"}
    got = cells("storage.k8s.io", "storageclasses", sc)
    assert list(got.values())[:5] == ["std (default)", "x", "Delete", "Immediate", False]


def test_misc_cells() -> None:
    quota = {"metadata": {}, "status": {"hard": {"pods": "10", "limits.cpu": "2", "requests.cpu": "1"},
                                         "used": {"pods": "3"}}}
    got = cells("", "resourcequotas", quota)
    assert (got["Request"], got["Limit"]) == ("pods: 3/10, requests.cpu: 0/1", "limits.cpu: 0/2")
    hpa = {"metadata": {}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 5},
           "status": {"currentReplicas": 2}}
    got = cells("autoscaling", "horizontalpodautoscalers", hpa)
    assert (got["Reference"], got["Targets"], got["MinPods"], got["MaxPods"]) == ("Deployment/web", "cpu: <unknown>/80%", "1", 5)
    v1 = {"apiVersion": "autoscaling/v1", "metadata": {}, "spec": {"targetCPUUtilizationPercentage": 50},
          "status": {"currentCPUUtilizationPercentage": 12}}
    assert cells("autoscaling", "horizontalpodautoscalers", v1)["Targets"] == "cpu: 12%/50%"
    csr = {"metadata": {}, "spec": {"signerName": "kubernetes.io/kube-apiserver-client", "username": "alice",
                                    "expirationSeconds": 3600},
           "status": {"conditions": [{"type": "Approved"}], "certificate": "Zm9v"}}
    got = cells("certificates.k8s.io", "certificatesigningrequests", csr)
    assert (got["Requestor"], got["RequestedDuration"], got["Condition"]) == ("alice", "60m", "Approved,Issued")
    pdb = {"metadata": {}, "spec": {"minAvailable": "50%"}, "status": {"disruptionsAllowed": 1}}
    got = cells("policy", "poddisruptionbudgets", pdb)
    assert (got["Min Available"], got["Max Unavailable"], got["Allowed Disruptions"]) == ("50%", "N/A", 1)
    ing = {"metadata": {}, "spec": {"rules": [{"host": "a"}, {}, {"host": "b"}, {"host": "c"}, {"host": "d"}], "tls": [{}]}}
    got = cells("networking.k8s.io", "ingresses", ing)
    assert (got["Class"], got["Hosts"], got["Ports"]) == ("<none>", "a,b,c + 2 more...", "80, 443")
    cr = {"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web", "controller": True}]},
          "revision": 2}
    assert cells("apps", "controllerrevisions", cr)["Controller"] == "statefulset.apps/web"
    api = {"metadata": {}, "spec": {"service": {"namespace": "kube-system", "name": "metrics"}},
           "status": {"conditions": [{"type": "Available", "status": "False", "reason": "MissingEndpoints"}]}}
    got = cells("apiregistration.k8s.io", "apiservices", api)
    assert (got["Service"], got["Available"]) == ("kube-system/metrics", "False (MissingEndpoints)")
    assert cells("apiregistration.k8s.io", "apiservices", {"metadata": {}, "spec": {}})["Service"] == "Local"


def test_table_carries_every_cell_for_kubectl_to_filter() -> None:
    spec = next(r for r in RESOURCES if (r.group, r.plural) == ("", "pods"))
    rendered = table(strategy_for(spec), [pod()])
    assert [c["name"] for c in rendered["columnDefinitions"]][-2:] == ["Nominated Node", "Readiness Gates"]
    assert len(rendered["rows"][0]["cells"]) == len(rendered["columnDefinitions"]) == 9
    assert time.time() > NOW
