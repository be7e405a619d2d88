"""version, cluster-info, api-versions, api-resources, get --raw."""

from __future__ import annotations

import json
import re

import pytest

from .conftest import Kube, assert_header, match_lines, row


def test_version(kube: Kube) -> None:
    # Source: kubernetes/kubectl@v0.33.1 pkg/cmd/version/version.go prints "Client Version: %s",
    # "Kustomize Version: %s", "Server Version: %s"; kubectl 1.33.1 ships kustomize v5.6.0.
    r = kube("version")
    match_lines(r.out, [r"Client Version: v1\.33\.1", r"Kustomize Version: v5\.6\.0",
                        r"Server Version: v1\.33\.\d+(\+[0-9A-Za-z.-]+)?"])
    assert r.err == ""


def test_version_json(kube: Kube) -> None:
    # Source: the /version object of a real 1.33 apiserver (k8s.io/apimachinery pkg/version Info):
    # major "1", minor "33", plus gitVersion, gitCommit, gitTreeState, buildDate, goVersion,
    # compiler, platform (1.33 adds emulationMajor/Minor and minCompatibilityMajor/Minor).
    r = kube("version", "-o", "json")
    doc = json.loads(r.out)
    server = doc["serverVersion"]
    assert (server["major"], server["minor"]) == ("1", "33")
    for key in ("gitVersion", "gitCommit", "gitTreeState", "buildDate", "goVersion", "compiler", "platform",
                "emulationMajor", "emulationMinor", "minCompatibilityMajor", "minCompatibilityMinor"):
        assert key in server, key
    assert re.fullmatch(r"v1\.33\.\d+.*", server["gitVersion"])
    assert server["platform"] == "linux/amd64"


def test_cluster_info(kube: Kube) -> None:
    # Source: kubernetes/kubectl@v0.33.1 pkg/cmd/clusterinfo/clusterinfo.go, and the transcript on
    # kubernetes.io/docs/tasks/access-application-cluster/access-cluster/ ("Kubernetes control plane
    # is running at https://..."), followed by the blank line and the `cluster-info dump` hint.
    # A kubeadm cluster adds one line per kube-system Service labelled kubernetes.io/cluster-service:
    # its CoreDNS (`kube-dns`, named by its kubernetes.io/name label, first port `dns`).
    dns = kube("get", "svc", "kube-dns", "-n", "kube-system", "--ignore-not-found", "-o", "name").out.strip()
    coredns = (f"CoreDNS is running at {kube.server_url}/api/v1/namespaces/kube-system/services/kube-dns:dns/proxy\n"
               if dns else "")
    r = kube("cluster-info")
    # kubectl colours the words when stdout is a terminal only; here it is a pipe.
    assert r.out == (f"Kubernetes control plane is running at {kube.server_url}\n{coredns}\n"
                     "To further debug and diagnose cluster problems, use 'kubectl cluster-info dump'.\n")


def test_api_versions(kube: Kube) -> None:
    # Source: `kubectl api-versions` on a 1.33 cluster (kind v1.33): sorted group/versions, one a
    # line; the built-in GA set includes these.
    r = kube("api-versions")
    lines = r.out.split()
    assert lines == sorted(lines)
    for gv in ("admissionregistration.k8s.io/v1", "apiextensions.k8s.io/v1", "apiregistration.k8s.io/v1",
               "apps/v1", "authentication.k8s.io/v1", "authorization.k8s.io/v1", "autoscaling/v1",
               "autoscaling/v2", "batch/v1", "certificates.k8s.io/v1", "coordination.k8s.io/v1",
               "discovery.k8s.io/v1", "events.k8s.io/v1", "flowcontrol.apiserver.k8s.io/v1",
               "networking.k8s.io/v1", "node.k8s.io/v1", "policy/v1", "rbac.authorization.k8s.io/v1",
               "scheduling.k8s.io/v1", "storage.k8s.io/v1", "v1"):
        assert gv in lines, gv


def test_api_resources(kube: Kube) -> None:
    # Source: the api-resources table of real clusters (kubernetes.io/docs/reference/kubectl/
    # quick-reference and any 1.33 cluster): NAME SHORTNAMES APIVERSION NAMESPACED KIND.
    r = kube("api-resources")
    rows = assert_header(r.out, "NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND")
    expect = {
        ("pods", "v1"): ("po", "true", "Pod"),
        ("namespaces", "v1"): ("ns", "false", "Namespace"),
        ("services", "v1"): ("svc", "true", "Service"),
        ("configmaps", "v1"): ("cm", "true", "ConfigMap"),
        ("deployments", "apps/v1"): ("deploy", "true", "Deployment"),
        ("cronjobs", "batch/v1"): ("cj", "true", "CronJob"),
        ("ingresses", "networking.k8s.io/v1"): ("ing", "true", "Ingress"),
        ("poddisruptionbudgets", "policy/v1"): ("pdb", "true", "PodDisruptionBudget"),
        ("priorityclasses", "scheduling.k8s.io/v1"): ("pc", "false", "PriorityClass"),
        ("customresourcedefinitions", "apiextensions.k8s.io/v1"): ("crd,crds", "false", "CustomResourceDefinition"),
        ("bindings", "v1"): ("", "true", "Binding"),
    }
    got = {(x["NAME"], x["APIVERSION"]): (x["SHORTNAMES"], x["NAMESPACED"], x["KIND"]) for x in rows}
    for key, want in expect.items():
        assert got.get(key) == want, (key, got.get(key))


def test_api_resources_group(kube: Kube) -> None:
    # Source: `kubectl api-resources --api-group=apps` on real clusters prints exactly these five
    # rows (controllerrevisions, daemonsets ds, deployments deploy, replicasets rs, statefulsets sts).
    r = kube("api-resources", "--api-group=apps")
    rows = assert_header(r.out, "NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND")
    assert [(x["NAME"], x["SHORTNAMES"], x["KIND"]) for x in rows] == [
        ("controllerrevisions", "", "ControllerRevision"), ("daemonsets", "ds", "DaemonSet"),
        ("deployments", "deploy", "Deployment"), ("replicasets", "rs", "ReplicaSet"),
        ("statefulsets", "sts", "StatefulSet")]


def test_api_resources_wide(kube: Kube) -> None:
    # Source: `kubectl api-resources -o wide` adds VERBS and CATEGORIES; for pods a 1.33 cluster prints
    # create,delete,deletecollection,get,list,patch,update,watch and category all.
    r = kube("api-resources", "-o", "wide")
    rows = assert_header(r.out, "NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND", "VERBS", "CATEGORIES")
    pods = row(rows, "pods")
    assert pods["VERBS"] == "create,delete,deletecollection,get,list,patch,update,watch"
    assert pods["CATEGORIES"] == "all"
    assert row(rows, "deployments")["CATEGORIES"] == "all"


def test_api_resources_cluster_scoped_names(kube: Kube) -> None:
    # Source: `kubectl api-resources --namespaced=false -o name` lists resource[.group] names.
    r = kube("api-resources", "--namespaced=false", "-o", "name")
    names = r.out.split()
    for n in ("namespaces", "nodes", "persistentvolumes", "clusterroles.rbac.authorization.k8s.io",
              "priorityclasses.scheduling.k8s.io", "storageclasses.storage.k8s.io"):
        assert n in names, n
    assert "pods" not in names


def test_get_raw_healthz(kube: Kube) -> None:
    # Source: kubernetes.io/docs/reference/using-api/health-checks/: `/healthz` answers "ok".
    assert kube("get", "--raw", "/healthz").out == "ok"


def test_get_raw_readyz_verbose(kube: Kube) -> None:
    # Source: kubernetes.io/docs/reference/using-api/health-checks/ transcript of
    # `kubectl get --raw='/readyz?verbose'`: "[+]ping ok" ... and last line "readyz check passed".
    r = kube("get", "--raw", "/readyz?verbose")
    lines = r.out.strip().splitlines()
    assert lines[0] == "[+]ping ok"
    assert lines[-1] == "readyz check passed"
    assert all(re.fullmatch(r"\[\+\]\S+ ok", ln) for ln in lines[:-1]), r.out


def test_get_raw_api(kube: Kube) -> None:
    # Source: GET /api of a real apiserver: {"kind":"APIVersions","versions":["v1"],
    # "serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":"<ip>:<port>"}]}.
    doc = json.loads(kube("get", "--raw", "/api").out)
    assert doc["kind"] == "APIVersions" and doc["versions"] == ["v1"]
    assert doc["serverAddressByClientCIDRs"][0]["clientCIDR"] == "0.0.0.0/0"


def test_get_raw_api_server_address(kube: Kube) -> None:
    # Source: a real apiserver advertises its address and secure port (e.g. "172.18.0.2:6443").
    doc = json.loads(kube("get", "--raw", "/api").out)
    address = doc["serverAddressByClientCIDRs"][0]["serverAddress"]
    assert not address.endswith(":0"), address


def test_get_raw_group_version(kube: Kube) -> None:
    # Source: GET /apis/apps/v1 returns an APIResourceList whose groupVersion is apps/v1 and whose
    # resources include deployments/scale (kubernetes.io/docs/reference/using-api/api-concepts/).
    doc = json.loads(kube("get", "--raw", "/apis/apps/v1").out)
    assert doc["kind"] == "APIResourceList" and doc["groupVersion"] == "apps/v1"
    names = {res["name"] for res in doc["resources"]}
    assert {"deployments", "deployments/scale", "deployments/status", "replicasets", "statefulsets"} <= names


def test_get_raw_not_found(kube: Kube) -> None:
    # Source: kubernetes/kubectl@v0.33.1 pkg/cmd/apply/apply_test.go ("Error from server (NotFound): the
    # server could not find the requested resource"); `get --raw` of an unknown path exits 1.
    r = kube("get", "--raw", "/nonexistent", rc=1)
    assert r.out == ""
    assert r.err == "Error from server (NotFound): the server could not find the requested resource\n"
