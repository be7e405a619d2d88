"""The real kubectl against the API core: every line asserted is what kubectl prints against
a real 1.33 cluster for the same command (builder paths send JSON, the typed `create`
generators and `auth` send protobuf, `--sort-by` asks for `includeObject=Object`, `apply`
sends nothing when the manifest is unchanged, a no-op patch prints "(no change)")."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import ServerProcess, requires_kubectl

pytestmark = requires_kubectl


@pytest.fixture
def cluster(api_cluster: ServerProcess) -> ServerProcess:
    """The API server alone: these tables and commands are about the API, and pods must keep
    the statuses the tests write (no scheduler or kubelet moves them along)."""
    return api_cluster


@pytest.fixture
def namespace(api_namespace: str) -> str:
    return api_namespace

CM = """apiVersion: v1
kind: ConfigMap
metadata:
  name: {name}
  labels:
    app: {app}
data:
  key: "{value}"
"""


def k(cluster: ServerProcess, ns: str, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(*args, "-n", ns, input=input, check=check)


def test_apply_twice_unchanged_then_configured(cluster: ServerProcess, namespace: str) -> None:
    manifest = CM.format(name="ap", app="a", value="1")
    assert k(cluster, namespace, "apply", "-f", "-", input=manifest).stdout.strip() == "configmap/ap created"
    assert k(cluster, namespace, "apply", "-f", "-", input=manifest).stdout.strip() == "configmap/ap unchanged"
    edited = CM.format(name="ap", app="a", value="2")
    assert k(cluster, namespace, "apply", "-f", "-", input=edited).stdout.strip() == "configmap/ap configured"
    assert k(cluster, namespace, "get", "cm", "ap", "-o", "jsonpath={.data.key}").stdout == "2"


def test_replace_and_patch_types_and_no_change(cluster: ServerProcess, namespace: str) -> None:
    k(cluster, namespace, "create", "-f", "-", input=CM.format(name="rp", app="a", value="1"))
    out = k(cluster, namespace, "replace", "-f", "-", input=CM.format(name="rp", app="a", value="9")).stdout
    assert out.strip() == "configmap/rp replaced"
    merge = k(cluster, namespace, "patch", "cm", "rp", "--type=merge", "-p", '{"data":{"m":"1"}}').stdout
    assert merge.strip() == "configmap/rp patched"
    same = k(cluster, namespace, "patch", "cm", "rp", "--type=merge", "-p", '{"data":{"m":"1"}}').stdout
    assert same.strip() == "configmap/rp patched (no change)"
    jsonp = k(cluster, namespace, "patch", "cm", "rp", "--type=json", "-p", '[{"op":"add","path":"/data/j","value":"2"}]')
    assert jsonp.stdout.strip() == "configmap/rp patched"
    smp = k(cluster, namespace, "patch", "cm", "rp", "-p", '{"metadata":{"labels":{"s":"3"}}}')
    assert smp.stdout.strip() == "configmap/rp patched"
    obj = json.loads(k(cluster, namespace, "get", "cm", "rp", "-o", "json").stdout)
    assert obj["data"] == {"key": "9", "m": "1", "j": "2"} and obj["metadata"]["labels"] == {"app": "a", "s": "3"}


def test_edit_with_an_editor_script(cluster: ServerProcess, namespace: str, tmp_path: Path) -> None:
    k(cluster, namespace, "create", "configmap", "ed", "--from-literal=a=1")
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/^  a: \"1\"$/  a: \"edited\"/' \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HOME": str(cluster.home), "EDITOR": str(editor)}
    result = subprocess.run(["/usr/bin/kubectl", "edit", "cm", "ed", "-n", namespace], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "configmap/ed edited"
    assert k(cluster, namespace, "get", "cm", "ed", "-o", "jsonpath={.data.a}").stdout == "edited"


def test_get_output_forms(cluster: ServerProcess, namespace: str) -> None:
    for name, app in (("zeta", "z"), ("alpha", "a"), ("mid", "m")):
        k(cluster, namespace, "create", "-f", "-", input=CM.format(name=name, app=app, value="v"))
    names = k(cluster, namespace, "get", "cm", "-o", "name").stdout.split()
    assert [n for n in names if n != "configmap/kube-root-ca.crt"] == ["configmap/alpha", "configmap/mid", "configmap/zeta"]
    wide = k(cluster, namespace, "get", "cm", "alpha", "-o", "wide").stdout.splitlines()
    # kube prints NAME DATA AGE for ConfigMaps; the DATA column belongs to the printers work
    assert wide[0].split()[0] == "NAME" and wide[0].split()[-1] == "AGE" and wide[1].split()[0] == "alpha"
    labels = k(cluster, namespace, "get", "cm", "mid", "--show-labels").stdout.splitlines()
    assert labels[0].split()[-1] == "LABELS" and labels[1].split()[-1] == "app=m"
    everywhere = cluster.kubectl("get", "cm", "-A").stdout.splitlines()
    assert everywhere[0].split()[:2] == ["NAMESPACE", "NAME"]
    assert any(line.split()[:2] == [namespace, "zeta"] for line in everywhere)
    sorted_rows = k(cluster, namespace, "get", "cm", "-l", "app", "--sort-by=.metadata.name").stdout.splitlines()
    assert [r.split()[0] for r in sorted_rows[1:]] == ["alpha", "mid", "zeta"]
    by_label = k(cluster, namespace, "get", "cm", "--sort-by=.metadata.labels.app", "-l", "app", "-o", "name").stdout.split()
    assert by_label == ["configmap/alpha", "configmap/mid", "configmap/zeta"]
    doc = json.loads(k(cluster, namespace, "get", "cm", "-l", "app=z", "-o", "json").stdout)
    assert doc["kind"] == "List" and [i["metadata"]["name"] for i in doc["items"]] == ["zeta"]
    assert k(cluster, namespace, "get", "cm", "-l", "app", "-o", "jsonpath={.items[*].metadata.labels.app}").stdout == "a m z"


def test_create_multi_document_yaml_then_delete_by_label(cluster: ServerProcess, namespace: str) -> None:
    docs = "---\n".join(CM.format(name=f"md{i}", app="multi", value=i) for i in range(3))
    created = k(cluster, namespace, "create", "-f", "-", input=docs).stdout.splitlines()
    assert created == ["configmap/md0 created", "configmap/md1 created", "configmap/md2 created"]
    again = k(cluster, namespace, "create", "-f", "-", input=docs, check=False)
    assert again.returncode == 1
    assert 'Error from server (AlreadyExists): error when creating "STDIN": configmaps "md0" already exists' in again.stderr
    deleted = k(cluster, namespace, "delete", "cm", "-l", "app=multi").stdout.splitlines()
    assert deleted == ['configmap "md0" deleted', 'configmap "md1" deleted', 'configmap "md2" deleted']
    empty = k(cluster, namespace, "get", "cm", "-l", "app=multi")
    assert empty.stderr.strip() == f"No resources found in {namespace} namespace."


def test_dry_run_server_stores_nothing(cluster: ServerProcess, namespace: str) -> None:
    out = k(cluster, namespace, "create", "configmap", "dr", "--from-literal=a=b", "--dry-run=server").stdout
    assert out.strip() == "configmap/dr created (server dry run)"
    applied = k(cluster, namespace, "apply", "--dry-run=server", "-f", "-", input=CM.format(name="dr2", app="a", value="1"))
    assert applied.stdout.strip() == "configmap/dr2 created (server dry run)"
    missing = k(cluster, namespace, "get", "cm", "dr", "dr2", check=False)
    assert 'configmaps "dr" not found' in missing.stderr and 'configmaps "dr2" not found' in missing.stderr


def test_create_with_a_bogus_field_prints_the_strict_decoding_error(cluster: ServerProcess, namespace: str) -> None:
    manifest = CM.format(name="bogus", app="a", value="1") + "bogusField: 1\n"
    result = k(cluster, namespace, "create", "-f", "-", input=manifest, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'Error from server (BadRequest): error when creating "STDIN": ConfigMap in version "v1" cannot be handled '
        'as a ConfigMap: strict decoding error: unknown field "bogusField"')
    relaxed = k(cluster, namespace, "create", "--validate=false", "-f", "-", input=manifest)
    assert relaxed.stdout.strip() == "configmap/bogus created"


def test_invalid_name_message(cluster: ServerProcess, namespace: str) -> None:
    detail = 'ConfigMap "Foo_bar" is invalid: metadata.name: Invalid value: "Foo_bar": a lowercase RFC 1123 subdomain must consist of'
    generator = k(cluster, namespace, "create", "configmap", "Foo_bar", check=False)
    assert generator.returncode == 1
    assert generator.stderr.startswith("error: failed to create configmap: " + detail)  # kubectl's own prefix
    builder = k(cluster, namespace, "create", "-f", "-", input=CM.format(name="Foo_bar", app="a", value="1"), check=False)
    assert builder.returncode == 1
    assert builder.stderr.startswith("The " + detail)  # built from details.causes


def test_scale_a_deployment(cluster: ServerProcess, namespace: str) -> None:
    k(cluster, namespace, "create", "deployment", "web", "--image=nginx:1.25", "--replicas=1")
    assert k(cluster, namespace, "scale", "deployment", "web", "--replicas=3").stdout.strip() == "deployment.apps/web scaled"
    assert k(cluster, namespace, "get", "deploy", "web", "-o", "jsonpath={.spec.replicas}").stdout == "3"


def test_protobuf_generators_and_auth(cluster: ServerProcess, namespace: str) -> None:
    commands = [
        (["create", "configmap", "pb", "--from-literal=a=1"], "configmap/pb created"),
        (["create", "secret", "generic", "pbs", "--from-literal=a=1"], "secret/pbs created"),
        (["create", "deployment", "pbd", "--image=nginx"], "deployment.apps/pbd created"),
        (["create", "service", "clusterip", "pbsvc", "--tcp=80:8080"], "service/pbsvc created"),
        (["create", "job", "pbj", "--image=busybox"], "job.batch/pbj created"),
        (["create", "serviceaccount", "pbsa"], "serviceaccount/pbsa created"),
        (["create", "role", "pbr", "--verb=get", "--resource=pods"], "role.rbac.authorization.k8s.io/pbr created"),
        (["create", "quota", "pbq", "--hard=pods=3"], "resourcequota/pbq created"),
    ]
    for args, expected in commands:
        assert k(cluster, namespace, *args).stdout.strip() == expected, args
    assert k(cluster, namespace, "get", "secret", "pbs", "-o", "jsonpath={.data.a}").stdout == "MQ=="
    ns = f"{namespace}-pb"
    assert cluster.kubectl("create", "namespace", ns).stdout.strip() == f"namespace/{ns} created"
    assert cluster.kubectl("auth", "can-i", "create", "pods").stdout.strip() == "yes"
    whoami = cluster.kubectl("auth", "whoami").stdout.splitlines()
    assert whoami[0].split() == ["ATTRIBUTE", "VALUE"]
    assert whoami[1].split() == ["Username", "kubernetes-admin"]
    groups = next(line for line in whoami if line.startswith("Groups"))
    assert groups.split(None, 1)[1] == "[system:masters system:authenticated]"


def test_wait_for_delete_and_delete_waiting_on_a_finalizer(cluster: ServerProcess, namespace: str) -> None:
    k(cluster, namespace, "create", "-f", "-", input=CM.format(name="fin", app="a", value="1").replace(
        "metadata:\n", "metadata:\n  finalizers: [example.com/hold]\n"))
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def run(key: str, *args: str) -> None:
        results[key] = k(cluster, namespace, *args, check=False)

    deleter = threading.Thread(target=run, args=("delete", "delete", "cm", "fin", "--timeout=30s"))
    deleter.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        ts = k(cluster, namespace, "get", "cm", "fin", "-o", "jsonpath={.metadata.deletionTimestamp}").stdout
        if ts:
            break
        time.sleep(0.2)
    else:
        pytest.fail("deletionTimestamp never set")
    waiter = threading.Thread(target=run, args=("wait", "wait", "--for=delete", "cm/fin", "--timeout=30s"))
    waiter.start()
    time.sleep(1.0)
    assert deleter.is_alive() and waiter.is_alive()  # both wait for the finalizer
    k(cluster, namespace, "patch", "cm", "fin", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    deleter.join(30)
    waiter.join(30)
    assert results["delete"].returncode == 0, results["delete"].stderr
    assert results["delete"].stdout.strip() == 'configmap "fin" deleted'
    assert results["wait"].returncode == 0, results["wait"].stderr
    assert results["wait"].stdout.strip() == "configmap/fin condition met"
