"""Bytes kube-apiserver writes that clients compare verbatim.

Every API object (an object, a list, a Status, discovery) is written by Go's json.Encoder, which
ends it with a newline; the official Python client's own e2e suite compares the text of a
`FailToCreateError` (the Status body) with that newline in it. `/version` is not an API object:
kube writes it with WriteRawJSON, indented by two spaces and without the newline."""

from __future__ import annotations

import json

import pytest
from kubernetes import client, utils

from tests.conftest import ServerProcess

APISERVICE = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
              "metadata": {"name": "v1alpha1.wirebytes.example.com"},
              "spec": {"group": "wirebytes.example.com", "version": "v1alpha1", "groupPriorityMinimum": 100,
                       "versionPriority": 100, "insecureSkipTLSVerify": True,
                       "service": {"name": "api", "namespace": "default"}}}


def test_api_objects_end_with_a_newline_and_version_is_indented(api_cluster: ServerProcess) -> None:
    api = api_cluster.api_client()
    for path in ("/api/v1/namespaces/default", "/api/v1/namespaces", "/api", "/apis", "/api/v1",
                 "/api/v1/namespaces/default/configmaps/nope"):
        resp = api.rest_client.pool_manager.request("GET", api.configuration.host + path)
        assert resp.data.endswith(b"}\n") and not resp.data.endswith(b"\n\n"), path
    resp = api.rest_client.pool_manager.request("GET", api.configuration.host + "/version")
    text = resp.data.decode()
    assert not text.endswith("\n")
    assert text == json.dumps(json.loads(text), indent=2)
    assert text.startswith('{\n  "major": "1",\n  "minor": "33",')


def test_create_from_yaml_conflict_text_is_kubes(api_cluster: ServerProcess) -> None:
    """The official client's e2e test `test_create_apiservice_from_yaml_with_conflict`, byte for byte."""
    api = api_cluster.api_client()
    reg = client.ApiregistrationV1Api(api)
    utils.create_from_dict(api, APISERVICE)
    try:
        with pytest.raises(utils.FailToCreateError) as raised:
            utils.create_from_dict(api, APISERVICE)
        assert str(raised.value) == (
            'Error from server (Conflict): {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
            '"message":"apiservices.apiregistration.k8s.io \\"v1alpha1.wirebytes.example.com\\" already exists",'
            '"reason":"AlreadyExists","details":{"name":"v1alpha1.wirebytes.example.com",'
            '"group":"apiregistration.k8s.io","kind":"apiservices"},"code":409}\n')
    finally:
        reg.delete_api_service("v1alpha1.wirebytes.example.com")
