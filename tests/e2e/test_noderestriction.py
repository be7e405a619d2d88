"""NodeRestriction with per-node identities: `up --nodes 2` gives each virtual node its own
`system:node:<name>` certificate, and a node's credentials may change only its own Node (not
its taints, not restricted labels), as kube-apiserver's NodeRestriction admission enforces."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from tests.apiserver.test_rest_support import Raw
from tests.conftest import ServerProcess, start_server


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    server = start_server(tmp_path_factory.mktemp("noderestriction"), "--nodes", "2", "--runtime", "simulated",
                          "--components=kubelet", "--service-cluster-ip-range", "127.99.0.0/16",
                          "--pod-cidr", "127.247.0.0/16")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        names = server.kubectl("get", "nodes", "-o", "name", check=False).stdout.split()
        if len(names) == 2:
            break
        time.sleep(0.3)
    yield server
    server.stop()


def node_raw(server: ServerProcess, name: str) -> Raw:
    return Raw(Path(server.data_dir) / "kubeconfigs" / "nodes" / f"{name}.yaml")


def test_each_node_has_its_own_identity(two_nodes: ServerProcess) -> None:
    review = node_raw(two_nodes, "pykube-node-2").post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                                                       {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    info = review.json()["status"]["userInfo"]
    assert info["username"] == "system:node:pykube-node-2" and "system:nodes" in info["groups"]


def test_a_node_may_not_modify_another(two_nodes: ServerProcess) -> None:
    resp = node_raw(two_nodes, "pykube-node-1").patch("/api/v1/nodes/pykube-node-2",
                                                      {"metadata": {"labels": {"example.com/x": "y"}}})
    assert resp.status == 403
    assert 'node "pykube-node-1" is not allowed to modify node "pykube-node-2"' in resp.json()["message"]


def test_a_node_may_label_itself_but_not_with_restricted_labels_or_taints(two_nodes: ServerProcess) -> None:
    raw = node_raw(two_nodes, "pykube-node-1")
    ok = raw.patch("/api/v1/nodes/pykube-node-1", {"metadata": {"labels": {"example.com/rack": "r1"}}})
    assert ok.status == 200, ok
    bad = raw.patch("/api/v1/nodes/pykube-node-1",
                    {"metadata": {"labels": {"node-restriction.kubernetes.io/trusted": "yes"}}})
    assert bad.status == 403
    assert bad.json()["message"].endswith("is not allowed to modify labels: node-restriction.kubernetes.io/trusted")
    taint = raw.patch("/api/v1/nodes/pykube-node-1",
                      {"spec": {"taints": [{"key": "k", "value": "v", "effect": "NoSchedule"}]}})
    assert taint.status == 403
    assert taint.json()["message"] == 'nodes "pykube-node-1" is forbidden: node "pykube-node-1" is not allowed to modify taints'


def test_a_node_may_not_create_ordinary_pods(two_nodes: ServerProcess) -> None:
    two_nodes.kubectl("create", "serviceaccount", "default", "-n", "default", check=False)  # no controller manager here
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sneaky"},
           "spec": {"nodeName": "pykube-node-1", "containers": [{"name": "c", "image": "busybox"}]}}
    resp = node_raw(two_nodes, "pykube-node-1").post("/api/v1/namespaces/default/pods", pod)
    assert resp.status == 403
    assert orjson.loads(resp.body)["message"] == ('pods "sneaky" is forbidden: pod does not have '
                                                  '"kubernetes.io/config.mirror" annotation, node "pykube-node-1" '
                                                  'can only create mirror pods')


def test_a_node_may_delete_only_its_own_pods(two_nodes: ServerProcess) -> None:
    two_nodes.kubectl("create", "serviceaccount", "default", "-n", "default", check=False)
    for name, node in (("on-one", "pykube-node-1"), ("on-two", "pykube-node-2")):
        two_nodes.kubectl("run", name, "--image=busybox", "--restart=Never",
                          f'--overrides={{"spec": {{"nodeName": "{node}"}}}}')
    raw = node_raw(two_nodes, "pykube-node-1")
    refused = raw.delete("/api/v1/namespaces/default/pods/on-two")
    assert refused.status == 403
    assert refused.json()["message"].endswith('node "pykube-node-1" can only delete pods with spec.nodeName set to itself')
    assert raw.delete("/api/v1/namespaces/default/pods/on-one").status == 200
