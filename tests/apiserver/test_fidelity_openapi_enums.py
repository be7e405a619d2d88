"""OpenAPI v3 `enum` arrays on enum-typed string fields, as kube 1.33 publishes them.

Facts: kube's OpenAPI generator marks every field whose Go type carries `+enum` with the sorted
values of that type's constants, and appends "Possible enum values:" to its description;
`kubectl explain` prints them (`ENUM:` and one value per line) from the v3 document. E.g.
Container.imagePullPolicy: Always, IfNotPresent, Never; PodSpec.restartPolicy: Always, Never,
OnFailure; ServiceSpec.type: ClusterIP, ExternalName, LoadBalancer, NodePort. Lists of an enum
type (ServiceSpec.ipFamilies) get none.
"""

from __future__ import annotations

import orjson
import pytest

from pykube_server.apiserver.openapi import OpenAPI
from pykube_server.registry import enums
from pykube_server.registry.resources import RESOURCES
from tests.apiserver.test_rest_support import Raw
from tests.conftest import ServerProcess, requires_kubectl


def test_table_holds_kube_enums() -> None:
    table = enums.table()
    assert table["io.k8s.api.core.v1.Container"]["imagePullPolicy"] == ["Always", "IfNotPresent", "Never"]
    assert table["io.k8s.api.core.v1.PodSpec"]["restartPolicy"] == ["Always", "Never", "OnFailure"]
    assert table["io.k8s.api.core.v1.ServiceSpec"]["type"] == ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
    assert table["io.k8s.api.core.v1.EphemeralContainer"]["imagePullPolicy"] == ["Always", "IfNotPresent", "Never"]
    assert "ipFamilies" not in table["io.k8s.api.core.v1.ServiceSpec"]


def test_v3_document_carries_enums_and_its_hash_reflects_them() -> None:
    api = OpenAPI(RESOURCES, "1.33")
    body, digest = api.v3("api/v1")  # type: ignore[misc]
    schemas = orjson.loads(body)["components"]["schemas"]
    policy = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["restartPolicy"]
    assert policy["enum"] == ["Always", "Never", "OnFailure"]
    assert policy["description"].endswith('\n\nPossible enum values:\n - `"Always"`\n - `"Never"`\n - `"OnFailure"`')
    assert schemas["io.k8s.api.core.v1.ServiceSpec"]["properties"]["type"]["enum"][0] == "ClusterIP"
    assert "enum" not in schemas["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ipFamilies"]
    import hashlib

    assert digest == hashlib.sha512(body).hexdigest()[:128].upper()


@pytest.fixture(scope="module")
def raw(api_cluster: ServerProcess) -> Raw:
    return Raw(api_cluster.kubeconfig)


@requires_kubectl
def test_kubectl_explain_prints_the_enum(api_cluster: ServerProcess) -> None:
    out = api_cluster.kubectl("explain", "pod.spec.restartPolicy").stdout
    assert "FIELD: restartPolicy <string>\nENUM:\n    Always\n    Never\n    OnFailure\n" in out, out
    out = api_cluster.kubectl("explain", "service.spec.type").stdout
    assert "ENUM:\n    ClusterIP\n    ExternalName\n    LoadBalancer\n    NodePort\n" in out, out
