"""delete (name, -f, -l, --all, --cascade, --grace-period, --wait) and wait (condition, delete, jsonpath)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from .conftest import Kube


def _cms(kube: Kube, ns: str, *names: str, label: str = "") -> None:
    for n in names:
        kube("-n", ns, "create", "configmap", n)
        if label:
            kube("-n", ns, "label", "configmap", n, label)


def test_delete_by_name(kube: Kube, ns: str) -> None:
    # Source: kubernetes/kubernetes test/cmd/core.sh ('configmap "test-configmap" deleted') and
    # kubernetes/kubectl@v0.33.1 pkg/cmd/delete/delete.go; deleting again is NotFound (exit 1) unless
    # --ignore-not-found (silent, exit 0).
    _cms(kube, ns, "one")
    r = kube("-n", ns, "delete", "configmap", "one")
    assert (r.out, r.err) == ('configmap "one" deleted\n', "")
    r = kube("-n", ns, "delete", "configmap", "one", rc=1)
    assert (r.out, r.err) == ("", 'Error from server (NotFound): configmaps "one" not found\n')
    r = kube("-n", ns, "delete", "configmap", "one", "--ignore-not-found")
    assert (r.out, r.err) == ("", "")


def test_delete_by_label_and_all(kube: Kube, ns: str) -> None:
    # Source: kubernetes/kubernetes test/cmd/delete.sh (delete -l) and test/cmd/core.sh (delete --all);
    # one line per object in name order; "No resources found" when nothing matches.
    _cms(kube, ns, "a1", "a2", label="grp=a")
    _cms(kube, ns, "b1")
    r = kube("-n", ns, "delete", "configmap", "-l", "grp=a")
    assert r.out == 'configmap "a1" deleted\nconfigmap "a2" deleted\n'
    # kubernetes/kubectl@v0.33.1 pkg/cmd/delete/delete.go writes "No resources found" to stdout.
    r = kube("-n", ns, "delete", "configmap", "-l", "grp=a")
    assert (r.out, r.err) == ("No resources found\n", "")
    r = kube("-n", ns, "delete", "configmap", "--all")
    # kube-root-ca.crt is published into every namespace by the root-ca-cert-publisher controller
    assert r.out == 'configmap "b1" deleted\nconfigmap "kube-root-ca.crt" deleted\n'


def test_delete_from_file(kube: Kube, ns: str, tmp_path: Path) -> None:
    # Source: kubernetes.io/docs/tasks/manage-kubernetes-objects/imperative-config/ (`kubectl delete -f`),
    # messages per document in file order.
    f = tmp_path / "two.yaml"
    f.write_text(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: f1\n  namespace: {ns}\n---\n"
                 f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: f2\n  namespace: {ns}\n")
    kube("apply", "-f", str(f))
    r = kube("delete", "-f", str(f))
    assert r.out == 'configmap "f1" deleted\nsecret "f2" deleted\n'
    r = kube("delete", "-f", str(f), rc=1)
    assert r.err == ('Error from server (NotFound): error when deleting "%s": configmaps "f1" not found\n'
                     'Error from server (NotFound): error when deleting "%s": secrets "f2" not found\n' % (f, f))


def test_delete_cascade_orphan(kube: Kube, ns: str) -> None:
    # Source: kubernetes.io/docs/tasks/administer-cluster/use-cascading-deletion/#set-orphan-deletion-policy
    # (`kubectl delete deployment nginx-deployment --cascade=orphan`; the ReplicaSet and Pods remain,
    # without ownerReferences).
    kube("-n", ns, "create", "deployment", "orph", "--image=nginx")
    kube("-n", ns, "wait", "--for=condition=Available", "deployment/orph", "--timeout=60s")
    r = kube("-n", ns, "delete", "deployment", "orph", "--cascade=orphan")
    assert r.out == 'deployment.apps "orph" deleted\n'
    time.sleep(1.5)
    rs = kube("-n", ns, "get", "rs", "-l", "app=orph", "-o", "jsonpath={.items[*].metadata.ownerReferences}").out
    assert kube("-n", ns, "get", "rs", "-l", "app=orph", "-o", "name").out.startswith("replicaset.apps/orph-")
    assert rs == ""


def test_delete_cascade_foreground_wait(kube: Kube, ns: str) -> None:
    # Source: same page, --cascade=foreground: the owner stays (with the foregroundDeletion finalizer)
    # until its dependents are gone; kubectl's default --wait=true returns after it is gone.
    kube("-n", ns, "create", "deployment", "fg", "--image=nginx", "--replicas=2")
    kube("-n", ns, "wait", "--for=condition=Available", "deployment/fg", "--timeout=60s")
    r = kube("-n", ns, "delete", "deployment", "fg", "--cascade=foreground", "--wait", timeout=90)
    assert r.out == 'deployment.apps "fg" deleted\n'
    r = kube("-n", ns, "get", "deployment,replicaset,pods", "-l", "app=fg")
    assert (r.out, r.err) == ("", f"No resources found in {ns} namespace.\n")


def test_delete_grace_period_force(kube: Kube, ns: str) -> None:
    # Source: kubernetes/kubectl@v0.33.1 pkg/cmd/delete/delete.go and delete_test.go: --grace-period=0
    # --force prints the "Immediate deletion does not wait..." warning on stderr and
    # 'pod "x" force deleted' on stdout.
    kube("-n", ns, "run", "victim", "--image=nginx")
    r = kube("-n", ns, "delete", "pod", "victim", "--grace-period=0", "--force")
    assert r.out == 'pod "victim" force deleted\n'
    assert r.err == ("Warning: Immediate deletion does not wait for confirmation that the running resource has "
                     "been terminated. The resource may continue to run on the cluster indefinitely.\n")
    r = kube("-n", ns, "get", "pod", "victim", rc=1)
    assert r.err == 'Error from server (NotFound): pods "victim" not found\n'


def test_delete_grace_period_terminating(kube: Kube, ns: str) -> None:
    # Source: kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination: a pod deleted
    # with a grace period shows STATUS Terminating (printers.go: deletionTimestamp set) until it is gone.
    kube("-n", ns, "run", "slow", "--image=busybox", "--", "sh", "-c", "trap '' TERM; sleep 3600")
    kube("-n", ns, "wait", "--for=condition=Ready", "pod/slow", "--timeout=60s")
    r = kube("-n", ns, "delete", "pod", "slow", "--grace-period=30", "--wait=false")
    assert r.out == 'pod "slow" deleted\n'
    rows = kube("-n", ns, "get", "pod", "slow", "--no-headers").out.split()
    assert rows[0] == "slow" and rows[2] == "Terminating", rows
    r = kube("-n", ns, "get", "pod", "slow", "-o", "jsonpath={.metadata.deletionGracePeriodSeconds}")
    assert r.out == "30"
    kube("-n", ns, "delete", "pod", "slow", "--grace-period=0", "--force")


def test_delete_namespace_no_wait(kube: Kube) -> None:
    # Source: kubernetes.io/docs/tasks/administer-cluster/namespaces/ ('namespace "development" deleted');
    # right after, the namespace reports Terminating.
    kube("create", "namespace", "kc-doomed")
    kube("-n", "kc-doomed", "create", "configmap", "c")
    r = kube("delete", "namespace", "kc-doomed", "--wait=false")
    assert r.out == 'namespace "kc-doomed" deleted\n'
    r = kube("wait", "--for=delete", "namespace/kc-doomed", "--timeout=60s", rc=None)
    assert r.rc == 0 and r.out in ("", "namespace/kc-doomed condition met\n"), r


def test_wait_condition(kube: Kube, ns: str) -> None:
    # Source: kubernetes/kubernetes test/cmd/wait.sh ("deployment.apps/test-3 condition met") and
    # kubernetes.io/docs/reference/kubectl/generated/kubectl_wait/.
    kube("-n", ns, "create", "job", "done", "--image=busybox", "--", "true")
    r = kube("-n", ns, "wait", "--for=condition=Complete", "job/done", "--timeout=60s")
    assert (r.out, r.err) == ("job.batch/done condition met\n", "")
    # kubernetes.io/docs/concepts/workloads/controllers/job/#terminal-job-conditions: since 1.31 a
    # succeeded Job gets SuccessCriteriaMet=True before Complete=True.
    r = kube("-n", ns, "wait", "--for=condition=SuccessCriteriaMet=True", "job/done", "--timeout=5s")
    assert r.out == "job.batch/done condition met\n"
    r = kube("-n", ns, "get", "job", "done", "-o", "jsonpath={range .status.conditions[*]}{.type}={.status} {end}")
    assert r.out == "SuccessCriteriaMet=True Complete=True "


def test_wait_condition_timeout(kube: Kube, ns: str) -> None:
    # Source: kubernetes/kubernetes test/cmd/wait.sh ("timed out waiting for the condition "), exit 1;
    # kubernetes/kubectl@v0.33.1 pkg/cmd/wait/condition.go: "timed out waiting for the condition on jobs/x".
    kube("-n", ns, "create", "job", "slowjob", "--image=busybox", "--", "true")
    r = kube("-n", ns, "wait", "--for=condition=Bogus", "job/slowjob", "--timeout=1s", rc=1)
    assert (r.out, r.err) == ("", "error: timed out waiting for the condition on jobs/slowjob\n")


def test_wait_jsonpath(kube: Kube, ns: str) -> None:
    # Source: kubernetes/kubernetes test/cmd/wait.sh (--for=jsonpath with and without a value).
    kube("-n", ns, "create", "deployment", "jp", "--image=nginx", "--replicas=2")
    r = kube("-n", ns, "wait", "--for=jsonpath={.status.readyReplicas}=2", "deployment/jp", "--timeout=60s")
    assert r.out == "deployment.apps/jp condition met\n"
    r = kube("-n", ns, "wait", "--for=jsonpath={.status.replicas}", "deployment/jp", "--timeout=10s")
    assert r.out == "deployment.apps/jp condition met\n"


def test_wait_delete(kube: Kube, ns: str) -> None:
    # Source: kubernetes/kubernetes test/cmd/wait.sh ("wait deployment --for=delete --all" prints
    # "<name> condition met" per object once the deletion completes).
    _cms(kube, ns, "w1", "w2", label="w=1")
    env = {"KUBECONFIG": str(kube.kubeconfig), "HOME": str(kube.home), "PATH": "/usr/bin:/bin"}
    bg = subprocess.Popen(["sh", "-c", f"sleep 1; /usr/bin/kubectl -n {ns} delete configmap -l w=1"],
                          env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        r = kube("-n", ns, "wait", "--for=delete", "configmap", "-l", "w=1", "--timeout=30s")
    finally:
        bg.wait(timeout=30)
    assert sorted(r.out.splitlines()) == ["configmap/w1 condition met", "configmap/w2 condition met"]
