"""The scheduler's Scheduled event, written through events.k8s.io/v1 as kube-scheduler does, is
what `kubectl describe pod` and `kubectl get events` (core/v1) show on a real cluster:
`Normal  Scheduled  <age>  default-scheduler  Successfully assigned <ns>/<pod> to <node>`, and
through events.k8s.io it carries reportingController default-scheduler, reportingInstance
default-scheduler-<hostname>, action Binding."""

from __future__ import annotations

import json
import re
import socket

from tests.conftest import ServerProcess, requires_kubectl
from tests.e2e.test_kubectl_scheduler import wait_until

pytestmark = requires_kubectl


def test_scheduled_event_reads_through_both_apis(cluster: ServerProcess, namespace: str) -> None:
    cluster.kubectl("run", "p", "--image=busybox", "-n", namespace, "--restart=Never", "--", "sleep", "3600")

    def described() -> str:
        out = cluster.kubectl("describe", "pod", "p", "-n", namespace).stdout
        return out if "Scheduled " in out else ""

    text = wait_until(described, 30)
    assert re.search(rf"Normal\s+Scheduled\s+\d+s\s+default-scheduler\s+Successfully assigned {namespace}/p to \S+",
                     text), text
    core = json.loads(cluster.kubectl("get", "events", "-n", namespace, "--field-selector",
                                      "reason=Scheduled", "-o", "json").stdout)["items"]
    assert [e["message"] for e in core] == [f"Successfully assigned {namespace}/p to {core[0]['message'].split()[-1]}"]
    assert core[0]["reportingComponent"] == "default-scheduler" and core[0]["source"] == {}
    assert core[0]["firstTimestamp"] is None and core[0]["eventTime"]
    table = cluster.kubectl("get", "events", "-n", namespace, "--field-selector", "reason=Scheduled").stdout
    assert re.search(r"\d+s\s+Normal\s+Scheduled\s+pod/p\s+Successfully assigned", table), table
    v1 = json.loads(cluster.kubectl("get", "events.events.k8s.io", "-n", namespace, "--field-selector",
                                    "regarding.name=p,reportingController=default-scheduler", "-o", "json").stdout)
    [ev] = [e for e in v1["items"] if e["reason"] == "Scheduled"]
    assert ev["reportingInstance"] == f"default-scheduler-{socket.gethostname()}"
    assert ev["action"] == "Binding" and ev["note"] == core[0]["message"] and ev["regarding"]["kind"] == "Pod"
