"""CRD validation rules and conversion webhooks as an operator meets them, with the real kubectl
and the official client against `pykube-server up --components=`:

- a CRD with `x-kubernetes-validations` rules; `kubectl apply` of a violating object prints
  kube's message; an immutable field (`self == oldSelf`) refuses an update; a rule that does not
  compile refuses the CRD;
- a two-version CRD whose conversion webhook (an aiohttp HTTPS server on loopback, its CA in
  `caBundle`) turns v1 `spec.size: big` into v2 `spec.replicas: 10`: get, list and watch in v2
  see converted objects; with the webhook gone kubectl shows kube's 500.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest
import yaml

from tests.apiserver.conversion_webhook import ConversionServer, widget_crd
from tests.apiserver.webhook_support import WebhookCA
from tests.conftest import ServerProcess, requires_kubectl

pytestmark = requires_kubectl

RULES_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: gadgets, singular: gadget, kind: Gadget, listKind: GadgetList}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - rule: self.replicas <= self.maxReplicas
              message: replicas must be <= maxReplicas
            properties:
              replicas: {{type: integer}}
              maxReplicas: {{type: integer}}
              owner:
                type: string
                x-kubernetes-validations:
                - rule: self == oldSelf
                  message: owner is immutable
"""


def gadget(group: str, replicas: int, owner: str = "team-a") -> str:
    return f"""
apiVersion: {group}/v1
kind: Gadget
metadata: {{name: g}}
spec: {{replicas: {replicas}, maxReplicas: 3, owner: {owner}}}
"""


def establish(server: ServerProcess, manifest: str, name: str) -> None:
    server.kubectl("apply", "-f", "-", input=manifest)
    server.kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=30s")


@pytest.fixture
def group(api_cluster: ServerProcess) -> Iterator[str]:
    """A fresh API group; its CRDs are deleted afterwards (objects first, stored as v1, so even a
    CRD whose webhook is gone goes)."""
    name = f"r{uuid.uuid4().hex[:8]}.example.com"
    yield name
    for plural in ("gadgets", "widgets"):
        api_cluster.kubectl("delete", "crd", f"{plural}.{name}", "--ignore-not-found", "--wait=false", check=False)


def test_validation_rules_with_kubectl(api_cluster: ServerProcess, api_namespace: str, group: str) -> None:
    establish(api_cluster, RULES_CRD.format(group=group), f"gadgets.{group}")
    refused = api_cluster.kubectl("apply", "-n", api_namespace, "-f", "-", input=gadget(group, 5), check=False)
    assert refused.returncode != 0
    assert refused.stderr.strip() == (
        f'The Gadget "g" is invalid: spec: Invalid value: "object": replicas must be <= maxReplicas')
    api_cluster.kubectl("apply", "-n", api_namespace, "-f", "-", input=gadget(group, 2))
    changed = api_cluster.kubectl("apply", "-n", api_namespace, "-f", "-", input=gadget(group, 2, "team-b"), check=False)
    assert changed.returncode != 0
    assert changed.stderr.strip() == 'The Gadget "g" is invalid: spec.owner: Invalid value: "string": owner is immutable'
    api_cluster.kubectl("apply", "-n", api_namespace, "-f", "-", input=gadget(group, 3))  # other fields may change


def test_uncompilable_rule_refuses_the_crd(api_cluster: ServerProcess, group: str) -> None:
    manifest = RULES_CRD.format(group=group).replace("self.replicas <= self.maxReplicas", "self.replicas <= maximum")
    refused = api_cluster.kubectl("apply", "-f", "-", input=manifest, check=False)
    assert refused.returncode != 0
    assert (f'The CustomResourceDefinition "gadgets.{group}" is invalid: '
            "spec.validation.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: "
            "\"self.replicas <= maximum\": compilation failed: ERROR: <input>:1:18: undeclared reference to "
            "'maximum' (in container '')") in refused.stderr


@pytest.fixture(scope="module")
def ca() -> WebhookCA:
    return WebhookCA()


@pytest.fixture(scope="module")
def converter(ca: WebhookCA) -> Iterator[ConversionServer]:
    server = ConversionServer(ca).start()
    yield server
    server.stop()


def widget_yaml(group: str, name: str, size: str) -> str:
    return f"""
apiVersion: {group}/v1
kind: Widget
metadata: {{name: {name}}}
spec: {{size: {size}, color: blue}}
"""


def test_conversion_webhook_with_kubectl_and_the_client(api_cluster: ServerProcess, api_namespace: str, group: str,
                                                        converter: ConversionServer, ca: WebhookCA) -> None:
    from kubernetes import client, watch

    establish(api_cluster, yaml.safe_dump(widget_crd(group, ca.bundle, converter.url("/convert"))), f"widgets.{group}")
    api_cluster.kubectl("apply", "-n", api_namespace, "-f", "-", input=widget_yaml(group, "a", "big"))
    api_cluster.kubectl("apply", "-n", api_namespace, "-f", "-", input=widget_yaml(group, "b", "small"))
    shown = yaml.safe_load(api_cluster.kubectl("get", f"widgets.v2.{group}", "a", "-n", api_namespace, "-o", "yaml").stdout)
    assert shown["apiVersion"] == f"{group}/v2" and shown["spec"] == {"replicas": 10, "color": "blue"}
    listed = json.loads(api_cluster.kubectl("get", f"widgets.v2.{group}", "-n", api_namespace, "-o", "json").stdout)
    assert [(i["metadata"]["name"], i["spec"]["replicas"]) for i in listed["items"]] == [("a", 10), ("b", 1)]
    # v1 is the storage version: reading it needs no webhook and shows what was written
    stored = yaml.safe_load(api_cluster.kubectl("get", f"widgets.v1.{group}", "b", "-n", api_namespace, "-o", "yaml").stdout)
    assert stored["spec"] == {"size": "small", "color": "blue"}
    custom = client.CustomObjectsApi(api_cluster.api_client())
    events = [(e["type"], e["object"]["spec"]) for e in watch.Watch().stream(
        custom.list_namespaced_custom_object, group, "v2", api_namespace, "widgets", timeout_seconds=2)]
    assert sorted(events, key=lambda e: e[1]["replicas"]) == [("ADDED", {"replicas": 1, "color": "blue"}),
                                                              ("ADDED", {"replicas": 10, "color": "blue"})]
    # written in v2, stored as v1
    custom.patch_namespaced_custom_object(group, "v2", api_namespace, "widgets", "b", {"spec": {"replicas": 10}})
    assert custom.get_namespaced_custom_object(group, "v1", api_namespace, "widgets", "b")["spec"]["size"] == "big"


def test_conversion_webhook_down_shows_kubes_error(api_cluster: ServerProcess, api_namespace: str, group: str,
                                                   ca: WebhookCA) -> None:
    establish(api_cluster, yaml.safe_dump(widget_crd(group, ca.bundle, "https://127.0.0.1:1/convert")), f"widgets.{group}")
    api_cluster.kubectl("apply", "-n", api_namespace, "-f", "-", input=widget_yaml(group, "a", "big"))
    failed = api_cluster.kubectl("get", f"widgets.v2.{group}", "a", "-n", api_namespace, check=False)
    assert failed.returncode != 0
    assert failed.stderr.strip() == (
        f'Error from server: conversion webhook for {group}/v1, Kind=Widget failed: '
        'Post "https://127.0.0.1:1/convert?timeout=30s": dial tcp 127.0.0.1:1: connect: connection refused')
