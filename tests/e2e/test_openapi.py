"""OpenAPI v3/v2 as kubectl uses them: create -f with strict validation, apply (client- and
server-side), explain, diff; the index hash changes with the content and 304s on a match."""

from __future__ import annotations

import ssl
import urllib.request
from pathlib import Path

import orjson
import yaml

from tests.conftest import ServerProcess, requires_kubectl

pytestmark = requires_kubectl

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
"""


def _fetch(cluster: ServerProcess, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    import base64
    import tempfile

    tmp = Path(tempfile.mkdtemp())
    user = config["users"][0]["user"]
    (tmp / "ca").write_bytes(base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]))
    (tmp / "crt").write_bytes(base64.b64decode(user["client-certificate-data"]))
    (tmp / "key").write_bytes(base64.b64decode(user["client-key-data"]))
    ctx = ssl.create_default_context(cafile=str(tmp / "ca"))
    ctx.load_cert_chain(str(tmp / "crt"), str(tmp / "key"))
    req = urllib.request.Request(cluster.url + path, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=ctx) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def test_v3_index_and_documents_carry_paths_and_hashes(cluster: ServerProcess) -> None:
    status, body, _ = _fetch(cluster, "/openapi/v3")
    assert status == 200
    index = orjson.loads(body)["paths"]
    url = index["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")
    status, doc_body, headers = _fetch(cluster, url)
    doc = orjson.loads(doc_body)
    post = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"]
    assert post["x-kubernetes-group-version-kind"] == {"group": "apps", "version": "v1", "kind": "Deployment"}
    assert any(p["name"] == "fieldValidation" for p in post["parameters"])
    assert "io.k8s.api.apps.v1.Deployment" in doc["components"]["schemas"]
    assert headers["Cache-Control"] == "public, immutable"
    status, _, _ = _fetch(cluster, url, {"If-None-Match": headers["ETag"]})
    assert status == 304
    assert index["api/v1"]["serverRelativeURL"] != url


def test_v2_is_protobuf_when_asked_and_json_otherwise(cluster: ServerProcess) -> None:
    status, body, headers = _fetch(cluster, "/openapi/v2",
                                   {"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert status == 200
    assert headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert body[:5] == b"\x0a\x032.0"  # field 1 (swagger), "2.0": never JSON to a protobuf request
    status, body, _ = _fetch(cluster, "/openapi/v2", {"Accept": "application/json"})
    assert status == 200 and orjson.loads(body)["swagger"] == "2.0"


def test_kubectl_validates_create_only_kinds_through_v2(cluster: ServerProcess, tmp_path: Path) -> None:
    """A TokenReview has no PATCH operation for kubectl to find `fieldValidation` on, so kubectl
    validates it on the client with the v2 document (as protobuf): it must load, accept a valid
    review and name an unknown field as kubectl does."""
    good = tmp_path / "tr.yaml"
    good.write_text("apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n  token: not-a-token\n")
    out = cluster.kubectl("create", "-f", str(good), "-o", "jsonpath={.status.authenticated}", check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout in ("", "false")
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n  tokn: x\n")
    refused = cluster.kubectl("create", "-f", str(bad), check=False)
    assert refused.returncode != 0
    assert 'unknown field "tokn"' in refused.stderr


def test_kubectl_apply_create_explain_diff(cluster: ServerProcess, namespace: str, tmp_path: Path) -> None:
    manifest = tmp_path / "d.yaml"
    manifest.write_text(DEPLOYMENT)
    ns = ["-n", namespace]
    assert cluster.kubectl("apply", "-f", str(manifest), *ns).stdout.strip() == "deployment.apps/web created"
    assert cluster.kubectl("apply", "-f", str(manifest), *ns).stdout.strip() == "deployment.apps/web unchanged"
    manifest.write_text(DEPLOYMENT.replace("1.25", "1.26"))
    diff = cluster.kubectl("diff", "-f", str(manifest), *ns, check=False)
    assert diff.returncode == 1 and "nginx:1.26" in diff.stdout
    assert cluster.kubectl("apply", "-f", str(manifest), *ns).stdout.strip() == "deployment.apps/web configured"
    image = cluster.kubectl("get", "deploy", "web", *ns, "-o", "jsonpath={.spec.template.spec.containers[0].image}")
    assert image.stdout == "nginx:1.26"
    assert cluster.kubectl("diff", "-f", str(manifest), *ns).returncode == 0
    explained = cluster.kubectl("explain", "deployment.spec.replicas").stdout
    assert "FIELD: replicas <integer>" in explained
    bogus = tmp_path / "bogus.yaml"
    bogus.write_text(DEPLOYMENT.replace("name: web\nspec:", "name: bogus\nspec:\n  bogusField: 1", 1))
    failed = cluster.kubectl("create", "-f", str(bogus), *ns, check=False)
    assert failed.returncode == 1
    assert 'strict decoding error: unknown field "spec.bogusField"' in failed.stderr
    ssa = cluster.kubectl("apply", "--server-side", "-f", str(manifest), *ns)
    assert ssa.stdout.strip() == "deployment.apps/web serverside-applied"
