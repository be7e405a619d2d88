"""Answer forms kube-apiserver refuses: a Table from a resource without a Table conversion.

Fact (e2e "Servers with support for Table transformation should return a 406 for a backend which
does not implement metadata"): POST selfsubjectaccessreviews with only
`Accept: application/json;as=Table;v=v1;g=meta.k8s.io` is 406 NotAcceptable, worded by kube's
negotiation: "only the following media types are accepted: application/json, application/yaml,
application/vnd.kubernetes.protobuf". The access reviews' REST storage has no TableConvertor, so
the Table media type is never offered for them; with a JSON fallback in Accept the review is
answered as usual.
"""

from __future__ import annotations

import pytest

from pykube_server.api import errors
from pykube_server.apiserver.negotiation import output_without_table
from tests.apiserver.test_rest_support import Raw
from tests.conftest import ServerProcess

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
SSAR = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"nonResourceAttributes": {"path": "/", "verb": "get"}}}


def test_output_without_table_refuses_only_table_accepts() -> None:
    with pytest.raises(errors.NotAcceptable):
        output_without_table(TABLE)
    with pytest.raises(errors.NotAcceptable):
        output_without_table(TABLE.replace("v=v1", "v=v1beta1") + ", " + TABLE)
    assert output_without_table(TABLE + ", application/json").format == "json"
    assert output_without_table("").format == "json"
    assert output_without_table("application/yaml").format == "yaml"


@pytest.fixture(scope="module")
def raw(api_cluster: ServerProcess) -> Raw:
    return Raw(api_cluster.kubeconfig)


def test_table_only_accept_on_a_review_is_406(raw: Raw) -> None:
    path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
    resp = raw.post(path, SSAR, headers={"Accept": TABLE})
    assert resp.status == 406, resp
    body = resp.json()
    assert body["reason"] == "NotAcceptable" and body["code"] == 406
    assert body["message"] == ("only the following media types are accepted: application/json, application/yaml, "
                               "application/vnd.kubernetes.protobuf")
    resp = raw.post(path, SSAR, headers={"Accept": TABLE + ", application/json"})
    assert resp.status == 201, resp
    assert resp.json()["status"]["allowed"] is True
