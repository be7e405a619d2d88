"""A later DELETE shortens a pending grace period (kube's rest.BeforeDelete): the kubelet's final
`gracePeriodSeconds=0` on a pod still held by a finalizer must record grace 0, so that removing the
last finalizer removes the pod (the Job tracking finalizer and foreground deletion depend on it)."""

from __future__ import annotations

from tests.apiserver.test_rest_support import Raw
from tests.conftest import ServerProcess


def pod_path(ns: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/pods" + (f"/{name}" if name else "")


def test_zero_grace_delete_of_a_finalized_pod_records_zero_and_the_finalizer_removal_deletes_it(
        api_cluster: ServerProcess, api_namespace: str) -> None:
    raw = Raw(api_cluster.kubeconfig)
    ns = api_namespace
    pod = {"metadata": {"name": "held", "finalizers": ["example.com/hold"]},
           "spec": {"nodeName": "no-such-node", "terminationGracePeriodSeconds": 30,
                    "containers": [{"name": "c", "image": "busybox"}]}}
    assert raw.post(pod_path(ns), pod).status == 201
    first = raw.delete(pod_path(ns, "held")).json()
    assert first["metadata"]["deletionGracePeriodSeconds"] == 30
    # a delete without a grace period leaves the pending one alone
    again = raw.delete(pod_path(ns, "held")).json()
    assert again["metadata"]["deletionGracePeriodSeconds"] == 30
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    final = raw.delete(pod_path(ns, "held"), query={"gracePeriodSeconds": "0"})
    assert final.status == 200, final
    kept = raw.get(pod_path(ns, "held")).json()
    assert kept["metadata"]["deletionGracePeriodSeconds"] == 0
    assert kept["metadata"]["deletionTimestamp"] < first["metadata"]["deletionTimestamp"]
    done = raw.patch(pod_path(ns, "held"), {"metadata": {"finalizers": None}})
    assert done.status == 200, done
    assert raw.get(pod_path(ns, "held")).status == 404
