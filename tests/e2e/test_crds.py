"""CustomResourceDefinitions with the real kubectl and the official client, as an operator uses
them: apply a CRD, use its resource at once (plural, short name, `get all`), printer columns,
`explain`, validation and pruning, `scale`, watch, and deletion taking the objects with it.

Each test uses its own API group so tests never share a CRD.
"""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest

from tests.conftest import ServerProcess, requires_kubectl

pytestmark = requires_kubectl


def crd_manifest(group: str) -> str:
    return f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.{group}
spec:
  group: {group}
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
    categories: [all]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {{}}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
    additionalPrinterColumns:
    - name: Spec
      type: string
      description: The cron spec defining the interval a CronJob is run
      jsonPath: .spec.cronSpec
    - name: Replicas
      type: integer
      jsonPath: .spec.replicas
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            description: The desired state of the CronTab.
            properties:
              cronSpec:
                type: string
                description: When the job runs, in cron syntax.
                pattern: '^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){{4}}$'
              image:
                type: string
              replicas:
                type: integer
                minimum: 1
                maximum: 10
                default: 1
              mode:
                type: string
                enum: [Fast, Slow]
                default: Slow
          status:
            type: object
            properties:
              replicas:
                type: integer
"""


def crontab(group: str, name: str, extra: str = "", spec: str = "cronSpec: '* * * * */5'\n  image: my-image") -> str:
    return f"""
apiVersion: {group}/v1
kind: CronTab
metadata:
  name: {name}
spec:
  {spec}{extra}
"""


@pytest.fixture
def group(cluster: ServerProcess) -> str:
    name = f"g{uuid.uuid4().hex[:8]}.example.com"
    started = time.monotonic()
    cluster.kubectl("apply", "-f", "-", input=crd_manifest(name))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/crontabs.{name}", "--timeout=30s")
    assert time.monotonic() - started < 15
    yield name
    cluster.kubectl("delete", "crd", f"crontabs.{name}", "--ignore-not-found", "--timeout=60s", check=False)


def test_crd_is_served_at_once_with_names_and_conditions(cluster: ServerProcess, group: str, namespace: str) -> None:
    crd = json.loads(cluster.kubectl("get", "crd", f"crontabs.{group}", "-o", "json").stdout)
    conditions = {c["type"]: c for c in crd["status"]["conditions"]}
    assert conditions["Established"]["status"] == "True"
    assert conditions["Established"]["reason"] == "InitialNamesAccepted"
    assert conditions["NamesAccepted"]["reason"] == "NoConflicts"
    assert crd["status"]["acceptedNames"]["shortNames"] == ["ct"]
    assert crd["status"]["storedVersions"] == ["v1"]
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=crontab(group, "my-cron"))
    out = cluster.kubectl("get", "ct", "-n", namespace).stdout.splitlines()
    assert out[0].split() == ["NAME", "SPEC", "REPLICAS", "AGE"]
    assert out[1].split()[:6] == ["my-cron", "*", "*", "*", "*", "*/5"]
    assert out[1].split()[6] == "1"  # defaulted
    resources = cluster.kubectl("api-resources", f"--api-group={group}").stdout
    assert "crontabs" in resources and "ct" in resources and "CronTab" in resources
    everything = cluster.kubectl("get", "all", "-n", namespace).stdout
    assert f"crontab.{group}/my-cron" in everything


def test_defaults_enum_and_real_422_messages(cluster: ServerProcess, group: str, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=crontab(group, "ok"))
    obj = json.loads(cluster.kubectl("get", f"crontabs.{group}", "ok", "-n", namespace, "-o", "json").stdout)
    assert obj["spec"]["replicas"] == 1 and obj["spec"]["mode"] == "Slow"
    bad = crontab(group, "bad", spec="cronSpec: 'nope'\n  replicas: 20\n  mode: Medium")
    result = cluster.kubectl("create", "-n", namespace, "-f", "-", input=bad, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f'The CronTab "bad" is invalid: \n'
        "* spec.cronSpec: Invalid value: \"nope\": spec.cronSpec in body should match "
        "'^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'\n"
        '* spec.mode: Unsupported value: "Medium": supported values: "Fast", "Slow"\n'
        "* spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10")
    wrong_type = crontab(group, "typed", spec="cronSpec: '* * * * *'\n  replicas: many")
    result = cluster.kubectl("create", "-n", namespace, "-f", "-", input=wrong_type, check=False)
    assert result.stderr.strip() == (
        'The CronTab "typed" is invalid: spec.replicas: Invalid value: "string": '
        'spec.replicas in body must be of type integer: "string"')


def test_unknown_fields_are_pruned_or_rejected(cluster: ServerProcess, group: str, namespace: str) -> None:
    manifest = crontab(group, "pruned", extra="\n  bogus: 1")
    strict = cluster.kubectl("create", "-n", namespace, "-f", "-", input=manifest, check=False)
    assert strict.returncode == 1
    assert 'CronTab in version "v1" cannot be handled as a CronTab: strict decoding error: unknown field "spec.bogus"' \
        in strict.stderr
    warned = cluster.kubectl("create", "--validate=warn", "-n", namespace, "-f", "-", input=manifest)
    assert 'Warning: unknown field "spec.bogus"' in warned.stderr
    obj = json.loads(cluster.kubectl("get", f"crontabs.{group}", "pruned", "-n", namespace, "-o", "json").stdout)
    assert "bogus" not in obj["spec"]


def test_explain_uses_the_crd_schema(cluster: ServerProcess, group: str) -> None:
    out = cluster.kubectl("explain", "crontabs.spec", f"--api-version={group}/v1").stdout
    assert "KIND:       CronTab" in out
    assert "The desired state of the CronTab." in out
    assert "cronSpec\t<string>" in out and "When the job runs, in cron syntax." in out
    assert 'enum: Fast, Slow' in out


def test_scale_and_status_subresources(cluster: ServerProcess, group: str, namespace: str) -> None:
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=crontab(group, "scaled"))
    out = cluster.kubectl("scale", f"crontabs.{group}/scaled", "--replicas=3", "-n", namespace).stdout
    assert out.strip() == f"crontab.{group}/scaled scaled"
    obj = json.loads(cluster.kubectl("get", f"crontabs.{group}", "scaled", "-n", namespace, "-o", "json").stdout)
    assert obj["spec"]["replicas"] == 3 and obj["metadata"]["generation"] == 2
    cluster.kubectl("patch", f"crontabs.{group}", "scaled", "-n", namespace, "--subresource=status", "--type=merge",
                    "-p", '{"status": {"replicas": 3}}')
    scale = json.loads(cluster.kubectl("get", "--raw",
                                       f"/apis/{group}/v1/namespaces/{namespace}/crontabs/scaled/scale").stdout)
    assert scale["kind"] == "Scale" and scale["spec"] == {"replicas": 3} and scale["status"]["replicas"] == 3
    # status is ignored on the main resource
    cluster.kubectl("patch", f"crontabs.{group}", "scaled", "-n", namespace, "--type=merge", "-p", '{"status": {"replicas": 9}}')
    obj = json.loads(cluster.kubectl("get", f"crontabs.{group}", "scaled", "-n", namespace, "-o", "json").stdout)
    assert obj["status"]["replicas"] == 3


def test_official_client_custom_objects_and_watch(cluster: ServerProcess, group: str, namespace: str) -> None:
    from kubernetes import client, watch

    api = client.CustomObjectsApi(cluster.api_client())
    seen: list[tuple[str, str]] = []
    ready = threading.Event()

    def follow() -> None:
        w = watch.Watch()
        ready.set()
        for event in w.stream(api.list_namespaced_custom_object, group, "v1", namespace, "crontabs", timeout_seconds=20):
            seen.append((event["type"], event["object"]["metadata"]["name"]))
            if event["type"] == "DELETED":
                w.stop()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    ready.wait(10)
    time.sleep(0.5)
    body = {"apiVersion": f"{group}/v1", "kind": "CronTab", "metadata": {"name": "py"},
            "spec": {"cronSpec": "*/1 * * * *", "image": "a"}}
    created = api.create_namespaced_custom_object(group, "v1", namespace, "crontabs", body)
    assert created["spec"]["replicas"] == 1
    listed = api.list_namespaced_custom_object(group, "v1", namespace, "crontabs")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["py"]
    patched = api.patch_namespaced_custom_object(group, "v1", namespace, "crontabs", "py", {"spec": {"image": "b"}})
    assert patched["spec"]["image"] == "b"
    api.delete_namespaced_custom_object(group, "v1", namespace, "crontabs", "py")
    thread.join(30)
    assert seen == [("ADDED", "py"), ("MODIFIED", "py"), ("DELETED", "py")]


def test_deleting_the_crd_removes_its_objects(cluster: ServerProcess, namespace: str) -> None:
    group = f"d{uuid.uuid4().hex[:8]}.example.com"
    cluster.kubectl("apply", "-f", "-", input=crd_manifest(group))
    cluster.kubectl("wait", "--for=condition=Established", f"crd/crontabs.{group}", "--timeout=30s")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=crontab(group, "one") + "---" + crontab(group, "two"))
    out = cluster.kubectl("delete", "crd", f"crontabs.{group}", "--timeout=60s").stdout
    assert out.strip() == f'customresourcedefinition.apiextensions.k8s.io "crontabs.{group}" deleted'
    result = cluster.kubectl("get", f"crontabs.{group}", "-n", namespace, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == 'error: the server doesn\'t have a resource type "crontabs"'


def test_invalid_crd_gets_the_real_message(cluster: ServerProcess) -> None:
    manifest = crd_manifest("bad.example.com").replace("name: crontabs.bad.example.com", "name: wrong.bad.example.com")
    manifest = manifest.replace("            type: object\n            description: The desired", "            description: The desired")
    result = cluster.kubectl("create", "-f", "-", input=manifest, check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        'The CustomResourceDefinition "wrong.bad.example.com" is invalid: \n'
        '* metadata.name: Invalid value: "wrong.bad.example.com": must be spec.names.plural+"."+spec.group\n'
        "* spec.validation.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields")
