"""Containers' environments: test/e2e/common/node/configmap.go, secrets.go, downwardapi.go, the service
environment variables of pods.go and the token mount of test/e2e/auth/service_accounts.go. Each
pod runs `sh -c env` (or `sleep`) as a real local process, and the assertions read its log."""

from __future__ import annotations

import base64
import uuid

from kubernetes import client

from conformance.harness import conformance, wait_for
from conformance.tests._common import BUSYBOX, wait_default_service_account
from conformance.tests._pod_output import expect_output, wait_running

IPV4 = r"(?:\d+)\.(?:\d+)\.(?:\d+)\.(?:\d+)"
IPV6 = r"(?:[A-Fa-f0-9]{1,4}:){1,7}[A-Fa-f0-9:]*"
DATA = {"data-1": "value-1", "data-2": "value-2", "data-3": "value-3"}


def env_pod(name: str, container: str, env: list | None = None, env_from: list | None = None,
            resources: dict | None = None) -> dict:
    """A busybox pod printing its environment once (restartPolicy Never)."""
    c: dict = {"name": container, "image": BUSYBOX, "command": ["sh", "-c", "env"]}
    if env:
        c["env"] = env
    if env_from:
        c["envFrom"] = env_from
    if resources:
        c["resources"] = resources
    return {"metadata": {"name": name, "labels": {"name": name}},
            "spec": {"containers": [c], "restartPolicy": "Never"}}


def field_env(name: str, path: str) -> dict:
    return {"name": name, "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": path}}}


def resource_env(name: str, resource: str) -> dict:
    return {"name": name, "valueFrom": {"resourceFieldRef": {"resource": resource}}}


# --- ConfigMap --------------------------------------------------------------------------------------

def make_configmap(api, ns: str) -> str:  # type: ignore[no-untyped-def]
    name = f"configmap-test-{uuid.uuid4()}"
    client.CoreV1Api(api).create_namespaced_config_map(ns, {"metadata": {"name": name}, "data": DATA})
    return name


@conformance("[sig-node] ConfigMap should be consumable via environment variable [Conformance] [NodeConformance]")
def test_configmap_env_var(api, ns) -> None:  # type: ignore[no-untyped-def]
    cm = make_configmap(api, ns)
    pod = env_pod(f"pod-configmaps-{uuid.uuid4()}", "env-test", env=[
        {"name": "CONFIG_DATA_1", "valueFrom": {"configMapKeyRef": {"name": cm, "key": "data-1"}}}])
    expect_output(api, ns, pod, ["CONFIG_DATA_1=value-1"])


@conformance("[sig-node] ConfigMap should be consumable via the environment [Conformance] [NodeConformance]")
def test_configmap_env_from(api, ns) -> None:  # type: ignore[no-untyped-def]
    cm = make_configmap(api, ns)
    pod = env_pod(f"pod-configmaps-{uuid.uuid4()}", "env-test", env_from=[
        {"configMapRef": {"name": cm}}, {"prefix": "p-", "configMapRef": {"name": cm}}])
    expect_output(api, ns, pod, [f"{p}{k}={v}" for p in ("", "p-") for k, v in DATA.items()])


# Prefixes of printable ASCII characters other than '=' (RelaxedEnvironmentVariableValidation, on by
# default since 1.32): digits first, punctuation, letters.
PREFIXES = ["1-2-3-", "p_123.", "@#%&*!+:", "abc~"]


@conformance("[sig-node] ConfigMap should be consumable as environment variable names with various prefixes "
             "[Conformance]")
def test_configmap_env_prefixes(api, ns) -> None:  # type: ignore[no-untyped-def]
    cm = make_configmap(api, ns)
    pod = env_pod(f"pod-configmaps-{uuid.uuid4()}", "env-test", env_from=[
        {"prefix": p, "configMapRef": {"name": cm}} for p in PREFIXES])
    expect_output(api, ns, pod, [f"{p}{k}={v}" for p in PREFIXES for k, v in DATA.items()])


# --- Secret -----------------------------------------------------------------------------------------

def make_secret(api, ns: str) -> str:  # type: ignore[no-untyped-def]
    name = f"secret-test-{uuid.uuid4()}"
    client.CoreV1Api(api).create_namespaced_secret(ns, {"metadata": {"name": name}, "data": {
        k: base64.b64encode(v.encode()).decode() for k, v in DATA.items()}})
    return name


@conformance("[sig-node] Secrets should be consumable from pods in env vars [Conformance] [NodeConformance]")
def test_secret_env_var(api, ns) -> None:  # type: ignore[no-untyped-def]
    secret = make_secret(api, ns)
    pod = env_pod(f"pod-secrets-{uuid.uuid4()}", "secret-env-test", env=[
        {"name": "SECRET_DATA", "valueFrom": {"secretKeyRef": {"name": secret, "key": "data-1"}}}])
    expect_output(api, ns, pod, ["SECRET_DATA=value-1"])


@conformance("[sig-node] Secrets should be consumable via the environment [Conformance] [NodeConformance]")
def test_secret_env_from(api, ns) -> None:  # type: ignore[no-untyped-def]
    secret = make_secret(api, ns)
    pod = env_pod(f"pod-configmaps-{uuid.uuid4()}", "env-test", env_from=[
        {"secretRef": {"name": secret}}, {"prefix": "p-", "secretRef": {"name": secret}}])
    expect_output(api, ns, pod, [f"{p}{k}={v}" for p in ("", "p-") for k, v in DATA.items()])


@conformance("[sig-node] Secrets should be consumable as environment variable names variable names with "
             "various prefixes [Conformance]")
def test_secret_env_prefixes(api, ns) -> None:  # type: ignore[no-untyped-def]
    secret = make_secret(api, ns)
    pod = env_pod(f"pod-secrets-{uuid.uuid4()}", "env-test", env_from=[
        {"prefix": p, "secretRef": {"name": secret}} for p in PREFIXES])
    expect_output(api, ns, pod, [f"{p}{k}={v}" for p in PREFIXES for k, v in DATA.items()])


# --- Downward API -----------------------------------------------------------------------------------

LIMITED = {"requests": {"cpu": "250m", "memory": "32Mi"}, "limits": {"cpu": "1250m", "memory": "64Mi"}}


def dapi_pod(env: list, resources: dict | None = LIMITED) -> dict:
    return env_pod(f"downward-api-{uuid.uuid4()}", "dapi-container", env=env, resources=resources)


@conformance("[sig-node] Downward API should provide pod name, namespace and IP address as env vars "
             "[Conformance] [NodeConformance]")
def test_downward_api_name_namespace_ip(api, ns) -> None:  # type: ignore[no-untyped-def]
    pod = dapi_pod([field_env("POD_NAME", "metadata.name"), field_env("POD_NAMESPACE", "metadata.namespace"),
                    field_env("POD_IP", "status.podIP")])
    expect_output(api, ns, pod, [f"POD_NAME={pod['metadata']['name']}", f"POD_NAMESPACE={ns}",
                                 f"POD_IP={IPV4}|{IPV6}"], regexp=True)


@conformance("[sig-node] Downward API should provide host IP as an env var [Conformance] [NodeConformance]")
def test_downward_api_host_ip(api, ns) -> None:  # type: ignore[no-untyped-def]
    expect_output(api, ns, dapi_pod([field_env("HOST_IP", "status.hostIP")]),
                  [f"HOST_IP={IPV4}|{IPV6}"], regexp=True)


@conformance("[sig-node] Downward API should provide hostIPs as an env var [Conformance] [NodeConformance]")
def test_downward_api_host_ips(api, ns) -> None:  # type: ignore[no-untyped-def]
    expect_output(api, ns, dapi_pod([field_env("HOST_IPS", "status.hostIPs")]),
                  [f"HOST_IPS={IPV4}|{IPV6}"], regexp=True)


@conformance("[sig-node] Downward API should provide container's limits.cpu/memory and requests.cpu/memory "
             "as env vars [Conformance] [NodeConformance]")
def test_downward_api_resources(api, ns) -> None:  # type: ignore[no-untyped-def]
    pod = dapi_pod([resource_env("CPU_LIMIT", "limits.cpu"), resource_env("MEMORY_LIMIT", "limits.memory"),
                    resource_env("CPU_REQUEST", "requests.cpu"), resource_env("MEMORY_REQUEST", "requests.memory")])
    # cpu is rounded up to whole cores (divisor 1); memory is in bytes
    log = expect_output(api, ns, pod, ["CPU_LIMIT=2", "MEMORY_LIMIT=67108864", "CPU_REQUEST=1",
                                       "MEMORY_REQUEST=33554432"])
    assert "CPU_LIMIT=2\n" in log and "CPU_REQUEST=1\n" in log, log


@conformance("[sig-node] Downward API should provide default limits.cpu/memory from node allocatable "
             "[Conformance] [NodeConformance]")
def test_downward_api_default_limits(api, ns) -> None:  # type: ignore[no-untyped-def]
    pod = dapi_pod([resource_env("CPU_LIMIT", "limits.cpu"), resource_env("MEMORY_LIMIT", "limits.memory")],
                   resources=None)
    expect_output(api, ns, pod, ["CPU_LIMIT=[1-9]", "MEMORY_LIMIT=[1-9]"], regexp=True)


@conformance("[sig-node] Downward API should provide pod UID as env vars [Conformance] [NodeConformance]")
def test_downward_api_pod_uid(api, ns) -> None:  # type: ignore[no-untyped-def]
    expect_output(api, ns, dapi_pod([field_env("POD_UID", "metadata.uid")]),
                  ["POD_UID=[a-z0-9]{8}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{12}"], regexp=True)


# --- Service environment variables ----------------------------------------------------------------

@conformance("[sig-node] Pods should contain environment variables for services [Conformance] [NodeConformance]")
def test_pod_service_env_vars(api, ns) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    server = f"server-envvars-{uuid.uuid4()}"
    # upstream's server serves on 8080; only its being selected matters for the variables
    core.create_namespaced_pod(ns, {"metadata": {"name": server, "labels": {"name": server}},
                                    "spec": {"containers": [{"name": "srv", "image": BUSYBOX,
                                                             "command": ["sleep", "3600"],
                                                             "ports": [{"containerPort": 8080}]}]}})
    wait_running(core, ns, server)
    core.create_namespaced_service(ns, {"metadata": {"name": "fooservice", "labels": {"name": "fooservice"}},
                                        "spec": {"ports": [{"port": 8765, "targetPort": 8080}],
                                                 "selector": {"name": server}}})
    pod = env_pod(f"client-envvars-{uuid.uuid4()}", "env3cont")
    expect_output(api, ns, pod, ["FOOSERVICE_SERVICE_HOST=", "FOOSERVICE_SERVICE_PORT=", "FOOSERVICE_PORT=",
                                 "FOOSERVICE_PORT_8765_TCP_PORT=", "FOOSERVICE_PORT_8765_TCP_PROTO=",
                                 "FOOSERVICE_PORT_8765_TCP=", "FOOSERVICE_PORT_8765_TCP_ADDR="])


# --- ServiceAccount token mount -------------------------------------------------------------------

@conformance("[sig-auth] ServiceAccounts should mount an API token into pods [Conformance]")
def test_service_account_token_mount(api, ns, cluster) -> None:  # type: ignore[no-untyped-def]
    core = client.CoreV1Api(api)
    wait_default_service_account(api, ns)
    sa = core.create_namespaced_service_account(ns, {"metadata": {"name": "mount-test"}})
    name = f"pod-service-account-{uuid.uuid4()}"
    pod = core.create_namespaced_pod(ns, {"metadata": {"name": name}, "spec": {
        "serviceAccountName": sa.metadata.name, "terminationGracePeriodSeconds": 0, "restartPolicy": "Never",
        "containers": [{"name": "test", "image": BUSYBOX, "command": ["sleep", "100000"]}]}})
    wait_running(core, ns, name)

    base = "/var/run/secrets/kubernetes.io/serviceaccount"

    def read(file: str) -> str:
        return cluster.kubectl("exec", name, "-n", ns, "-c", "test", "--", "cat", f"{base}/{file}").stdout
    token, ca, namespace = read("token"), read("ca.crt"), read("namespace")

    root_ca = wait_for(lambda: core.read_namespaced_config_map("kube-root-ca.crt", ns), timeout=30,
                       what="kube-root-ca.crt")
    assert ca == root_ca.data["ca.crt"]
    assert namespace == ns
    review = client.AuthenticationV1Api(api).create_token_review({"spec": {"token": token}})
    assert review.status.authenticated, review.status
    assert not review.status.error
    assert review.status.user.username == f"system:serviceaccount:{ns}:{sa.metadata.name}"
    uid = (review.status.user.extra or {}).get("authentication.kubernetes.io/pod-uid")
    assert uid == [pod.metadata.uid], review.status.user.extra
