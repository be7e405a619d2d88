"""API aggregation (kube-aggregator): APIServices, the proxy, availability and discovery.

Facts checked here, from kube-aggregator and kube-apiserver 1.33: every served built-in
group-version has a local APIService (`v1.`, `v1.apps`, ... with the priorities of kube's table,
label `kube-aggregator.kubernetes.io/automanaged: onstart`, `Available=True` reason `Local`),
the aggregator's own group has none; CRD group-versions get one with priorities 1000/100 and
label value `true`; a remote APIService is checked (ServiceNotFound, FailedDiscoveryCheck with
`failing or missing response from <url>: ...`, Passed / `all checks passed`) and requests under
its group-version are proxied with the front-proxy client certificate and X-Remote-* headers,
or answered 503 `service unavailable` when it is not available.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.apiserver.extension_server import VERSION, ExtensionServer
from tests.apiserver.webhook_support import WebhookCA
from tests.conftest import ServerProcess

APIREG = ("apiregistration.k8s.io", "v1", "apiservices")


def _custom(server: ServerProcess) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(server.api_client())


def _get_apiservice(server: ServerProcess, name: str) -> dict[str, Any]:
    return _custom(server).get_cluster_custom_object(*APIREG, name)


def _wait(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except ApiException as exc:
            if exc.status != 404:
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _available(apiservice: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in (apiservice.get("status") or {}).get("conditions") or [] if c["type"] == "Available"), None)


def _raw(server: ServerProcess, path: str, *, accept: str = "application/json", stream: bool = False) -> Any:
    """A GET with the admin's credentials; the urllib3 response, unread when `stream`."""
    api = server.api_client()
    return api.rest_client.pool_manager.request("GET", api.configuration.host + path, headers={"Accept": accept},
                                                preload_content=not stream, timeout=30)


# -- local APIServices ----------------------------------------------------------------------------------


def test_every_builtin_group_version_has_a_local_apiservice(cluster: ServerProcess) -> None:
    _wait(lambda: _available(_get_apiservice(cluster, "v1.apps")), what="v1.apps to be checked")
    out = cluster.kubectl("get", "apiservices").stdout
    rows = {line.split()[0]: line.split()[1:3] for line in out.splitlines()[1:]}
    assert out.splitlines()[0].split() == ["NAME", "SERVICE", "AVAILABLE", "AGE"]
    for name in ("v1.", "v1.apps", "v2.autoscaling", "v1.autoscaling", "v1.rbac.authorization.k8s.io",
                 "v1.apiextensions.k8s.io", "v1beta1.metrics.k8s.io"):
        assert rows.get(name) == ["Local", "True"], (name, out)
    assert "v1.apiregistration.k8s.io" not in rows  # the aggregator's own group has no APIService
    apps = _get_apiservice(cluster, "v1.apps")
    assert apps["spec"] == {"group": "apps", "version": "v1", "groupPriorityMinimum": 17800, "versionPriority": 15}
    assert apps["metadata"]["labels"] == {"kube-aggregator.kubernetes.io/automanaged": "onstart"}
    condition = _available(apps)
    assert condition is not None and (condition["status"], condition["reason"], condition["message"]) == (
        "True", "Local", "Local APIServices are always available")
    core = _get_apiservice(cluster, "v1.")
    assert core["spec"] == {"version": "v1", "groupPriorityMinimum": 18000, "versionPriority": 1}
    typed = client.ApiregistrationV1Api(cluster.api_client()).read_api_service("v1.apps")  # the typed client decodes it
    assert typed.spec.service is None and typed.status.conditions[0].reason == "Local"


def test_crd_group_versions_get_apiservices_while_the_crd_lives(cluster: ServerProcess) -> None:
    group = f"g{uuid.uuid4().hex[:6]}.example.com"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"widgets.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                    "versions": [{"name": "v1", "served": True, "storage": True,
                                  "schema": {"openAPIV3Schema": {"type": "object"}}},
                                 {"name": "v1beta1", "served": False, "storage": False,
                                  "schema": {"openAPIV3Schema": {"type": "object"}}}]}}
    ext = client.ApiextensionsV1Api(cluster.api_client())
    ext.create_custom_resource_definition(crd)
    try:
        apiservice = _wait(lambda: _get_apiservice(cluster, f"v1.{group}"), what="the CRD's APIService")
        assert apiservice["spec"] == {"group": group, "version": "v1", "groupPriorityMinimum": 1000,
                                      "versionPriority": 100}
        assert apiservice["metadata"]["labels"] == {"kube-aggregator.kubernetes.io/automanaged": "true"}
        with pytest.raises(ApiException) as missing:
            _get_apiservice(cluster, f"v1beta1.{group}")  # not served: not registered
        assert missing.value.status == 404
    finally:
        ext.delete_custom_resource_definition(f"widgets.{group}")

    def gone() -> bool:
        try:
            _get_apiservice(cluster, f"v1.{group}")
            return False
        except ApiException as exc:
            return exc.status == 404
    _wait(gone, what="the CRD's APIService to go")


def test_extension_apiserver_authentication_configmap(cluster: ServerProcess) -> None:
    cm = client.CoreV1Api(cluster.api_client()).read_namespaced_config_map(
        "extension-apiserver-authentication", "kube-system")
    data = cm.data
    assert json.loads(data["requestheader-allowed-names"]) == ["front-proxy-client"]
    assert json.loads(data["requestheader-username-headers"]) == ["X-Remote-User"]
    assert json.loads(data["requestheader-group-headers"]) == ["X-Remote-Group"]
    assert json.loads(data["requestheader-extra-headers-prefix"]) == ["X-Remote-Extra-"]
    assert data["requestheader-client-ca-file"].startswith("-----BEGIN CERTIFICATE-----")
    ca = (cluster.data_dir / "pki" / "ca.crt").read_text()
    assert data["client-ca-file"] == ca
    assert data["requestheader-client-ca-file"] != ca  # the front proxy has a CA of its own


def test_apiservice_validation_messages(cluster: ServerProcess) -> None:
    body = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1.wrong.example.com"},
            "spec": {"group": "right.example.com", "version": "v1", "groupPriorityMinimum": 0, "versionPriority": 10,
                     "service": {"namespace": "default", "name": "api"}, "insecureSkipTLSVerify": True,
                     "caBundle": base64.b64encode(b"x").decode()}}
    with pytest.raises(ApiException) as refused:
        _custom(cluster).create_cluster_custom_object(*APIREG, body)
    assert refused.value.status == 422
    message = json.loads(refused.value.body)["message"]
    assert message.startswith('APIService.apiregistration.k8s.io "v1.wrong.example.com" is invalid: ')
    assert 'metadata.name: Invalid value: "v1.wrong.example.com": must be `spec.version+"."+spec.group`: ' \
           '"v1.right.example.com"' in message
    assert "spec.groupPriorityMinimum: Invalid value: 0: must be positive and less than 20000" in message
    assert "spec.insecureSkipTLSVerify: Invalid value: true: may not be true if caBundle is present" in message


def test_apiservice_for_a_missing_service_is_unavailable(cluster: ServerProcess, namespace: str) -> None:
    name = f"v1.missing-{uuid.uuid4().hex[:6]}.example.com"
    group = name[3:]
    _custom(cluster).create_cluster_custom_object(*APIREG, {
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": name},
        "spec": {"group": group, "version": "v1", "groupPriorityMinimum": 1000, "versionPriority": 15,
                 "insecureSkipTLSVerify": True, "service": {"namespace": namespace, "name": "nothing"}}})
    try:
        created = _get_apiservice(cluster, name)
        assert created["spec"]["service"]["port"] == 443  # defaulted
        condition = _wait(lambda: _available(_get_apiservice(cluster, name)), what="a condition")
        assert (condition["status"], condition["reason"], condition["message"]) == (
            "False", "ServiceNotFound", f'service/nothing in "{namespace}" is not present')
        row = cluster.kubectl("get", "apiservice", name, "--no-headers").stdout.split()
        assert row[1:4] == [f"{namespace}/nothing", "False", "(ServiceNotFound)"]
        response = _raw(cluster, f"/apis/{group}/v1/namespaces/default/things")
        assert response.status == 503
        assert response.data == b"service unavailable\n"
    finally:
        _custom(cluster).delete_cluster_custom_object(*APIREG, name)


# -- a real extension API server --------------------------------------------------------------------------


@pytest.fixture
def wardle(cluster: ServerProcess, namespace: str) -> Iterator[ExtensionServer]:
    """An extension server registered for `<group>/v1alpha1` through a selector-less Service and
    a hand-made EndpointSlice pointing at 127.0.0.1:<port>."""
    group = f"wardle-{uuid.uuid4().hex[:6]}.example.com"
    core = client.CoreV1Api(cluster.api_client())
    cm = core.read_namespaced_config_map("extension-apiserver-authentication", "kube-system")
    ca = WebhookCA()
    server = ExtensionServer(ca, cm.data["requestheader-client-ca-file"], group, f"api.{namespace}.svc").start()
    server.add_flunder(namespace, "alpha")
    server.add_flunder(namespace, "beta")
    core.create_namespaced_service(namespace, {"metadata": {"name": "api"},
                                               "spec": {"ports": [{"name": "https", "port": 443, "targetPort": server.port}]}})
    client.DiscoveryV1Api(cluster.api_client()).create_namespaced_endpoint_slice(namespace, {
        "metadata": {"name": "api-1", "labels": {"kubernetes.io/service-name": "api"}},
        "addressType": "IPv4", "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": server.port, "protocol": "TCP"}]})
    name = f"{VERSION}.{group}"
    _custom(cluster).create_cluster_custom_object(*APIREG, {
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": name},
        "spec": {"group": group, "version": VERSION, "groupPriorityMinimum": 1000, "versionPriority": 15,
                 "caBundle": ca.bundle, "service": {"namespace": namespace, "name": "api", "port": 443}}})
    server.apiservice = name  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        _custom(cluster).delete_cluster_custom_object(*APIREG, name)
        server.stop()


def _wait_available(cluster: ServerProcess, name: str, status: str = "True") -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        condition = _available(_get_apiservice(cluster, name))
        return condition if condition and condition["status"] == status else None
    return _wait(check, what=f"{name} Available={status}")


def test_requests_are_proxied_to_the_extension_server(cluster: ServerProcess, namespace: str,
                                                      wardle: ExtensionServer) -> None:
    name = wardle.apiservice  # type: ignore[attr-defined]
    condition = _wait_available(cluster, name)
    assert (condition["reason"], condition["message"]) == ("Passed", "all checks passed")
    row = cluster.kubectl("get", "apiservice", name, "--no-headers").stdout.split()
    assert row[1:3] == [f"{namespace}/api", "True"]
    probes = [r for r in wardle.requests if r["path"] == f"/apis/{wardle.group}/{VERSION}"]
    assert probes and probes[0]["identity"]["user"] == "system:kube-aggregator"

    got = cluster.kubectl("get", f"flunders.{wardle.group}", "-n", namespace, "-o", "name").stdout.split()
    assert got == [f"flunder.{wardle.group}/alpha", f"flunder.{wardle.group}/beta"]
    one = json.loads(cluster.kubectl("get", f"flunders.{wardle.group}", "alpha", "-n", namespace, "-o", "json").stdout)
    assert one["kind"] == "Flunder" and one["spec"] == {"reference": "sample"}
    missing = cluster.kubectl("get", f"flunders.{wardle.group}", "nope", "-n", namespace, check=False)
    assert missing.returncode == 1
    assert f'Error from server (NotFound): flunders.{wardle.group} "nope" not found' in missing.stderr

    listed = [r for r in wardle.requests if r["path"].endswith("/flunders")]
    assert listed[-1]["identity"]["user"] == "kubernetes-admin"
    assert set(listed[-1]["identity"]["groups"]) >= {"system:masters", "system:authenticated"}
    assert all(r["authorization"] is None for r in wardle.requests)  # the client's credentials stay here

    resources = cluster.kubectl("api-resources", "--api-group", wardle.group).stdout
    assert "flunders" in resources and "Flunder" in resources and f"{wardle.group}/{VERSION}" in resources


def test_writes_carry_their_body_and_identity(cluster: ServerProcess, namespace: str, wardle: ExtensionServer) -> None:
    _wait_available(cluster, wardle.apiservice)  # type: ignore[attr-defined]
    api = cluster.api_client()
    body = {"apiVersion": f"{wardle.group}/{VERSION}", "kind": "Flunder", "metadata": {"name": "gamma"},
            "spec": {"reference": "posted"}}
    url = f"{api.configuration.host}/apis/{wardle.group}/{VERSION}/namespaces/{namespace}/flunders?fieldManager=t"

    def post(group: str) -> Any:
        return api.rest_client.pool_manager.request(
            "POST", url, body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Impersonate-User": "jane", "Impersonate-Group": group})

    # the aggregator authorizes resource requests itself, as kube-apiserver's handler chain does
    refused = post("devs")
    assert refused.status == 403
    assert json.loads(refused.data)["message"] == (
        f'flunders.{wardle.group} is forbidden: User "jane" cannot create resource "flunders" in API group '
        f'"{wardle.group}" in the namespace "{namespace}"')
    seen = len(wardle.requests)
    response = post("system:masters")
    assert response.status == 201, response.data
    assert json.loads(response.data)["spec"] == {"reference": "posted"}
    assert len(wardle.requests) == seen + 1
    posted = wardle.requests[-1]
    assert posted["body"] == body and posted["query"] == {"fieldManager": "t"}
    # the impersonated identity is what the extension server is told, not the impersonation headers
    assert posted["identity"]["user"] == "jane"
    assert posted["identity"]["groups"] == ["system:masters", "system:authenticated"]
    assert posted["authorization"] is None


def test_websocket_upgrades_are_relayed(cluster: ServerProcess, namespace: str, wardle: ExtensionServer) -> None:
    import asyncio
    import ssl

    import aiohttp

    _wait_available(cluster, wardle.apiservice)  # type: ignore[attr-defined]
    config = cluster.api_client().configuration
    ctx = ssl.create_default_context(cafile=config.ssl_ca_cert)
    ctx.load_cert_chain(config.cert_file, config.key_file)
    url = f"{config.host}/apis/{wardle.group}/{VERSION}/namespaces/{namespace}/flunders/alpha/echo"

    async def talk() -> tuple[str | None, str, bytes]:
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url, ssl=ctx, protocols=("v5.channel.k8s.io", "v4.channel.k8s.io")) as ws:
                greeting = await ws.receive_str(timeout=10)
                await ws.send_bytes(b"ping")
                echoed = await ws.receive_bytes(timeout=10)
                return ws.protocol, greeting, echoed

    protocol, greeting, echoed = asyncio.run(talk())
    assert (protocol, greeting, echoed) == ("v5.channel.k8s.io", "hello kubernetes-admin", b"PING")


def test_discovery_includes_the_aggregated_group(cluster: ServerProcess, wardle: ExtensionServer) -> None:
    _wait_available(cluster, wardle.apiservice)  # type: ignore[attr-defined]
    groups = json.loads(_raw(cluster, "/apis").data)["groups"]
    names = [g["name"] for g in groups]
    assert wardle.group in names
    assert names.index(wardle.group) > names.index("flowcontrol.apiserver.k8s.io")  # priority 1000 sorts low
    assert names[0] == "apiregistration.k8s.io"

    def aggregated_entry() -> dict[str, Any] | None:
        doc = json.loads(_raw(cluster, "/apis", accept="application/json;g=apidiscovery.k8s.io;v=v2;"
                                                        "as=APIGroupDiscoveryList").data)
        item = next((i for i in doc["items"] if i["metadata"]["name"] == wardle.group), None)
        return item if item and item["versions"][0]["resources"] else None
    item = _wait(aggregated_entry, what="aggregated discovery of the group")
    version = item["versions"][0]
    assert version["version"] == VERSION and version["freshness"] == "Current"
    assert version["resources"] == [{"resource": "flunders", "responseKind": {"group": wardle.group, "version": VERSION,
                                                                              "kind": "Flunder"},
                                     "scope": "Namespaced", "singularResource": "flunder",
                                     "verbs": ["get", "list", "watch"], "shortNames": ["fl"]}]
    legacy = json.loads(_raw(cluster, f"/apis/{wardle.group}/{VERSION}").data)  # proxied to the server
    assert legacy["groupVersion"] == f"{wardle.group}/{VERSION}"


def test_openapi_of_the_aggregated_group(cluster: ServerProcess, wardle: ExtensionServer) -> None:
    _wait_available(cluster, wardle.apiservice)  # type: ignore[attr-defined]
    index = json.loads(_raw(cluster, "/openapi/v3").data)["paths"]
    assert index[f"apis/{wardle.group}/{VERSION}"] == {
        "serverRelativeURL": f"/openapi/v3/apis/{wardle.group}/{VERSION}?hash=F1A2"}  # the server's own
    assert "apis/apps/v1" in index
    explained = cluster.kubectl("explain", "flunders.spec", f"--api-version={wardle.group}/{VERSION}").stdout
    assert "KIND:       Flunder" in explained and "reference" in explained


def test_watch_is_streamed_through(cluster: ServerProcess, namespace: str, wardle: ExtensionServer) -> None:
    _wait_available(cluster, wardle.apiservice)  # type: ignore[attr-defined]
    response = _raw(cluster, f"/apis/{wardle.group}/{VERSION}/namespaces/{namespace}/flunders?watch=true", stream=True)
    arrivals = []
    for line in iter(response.readline, b""):
        arrivals.append((time.monotonic(), json.loads(line)["object"]["metadata"]["name"]))
    assert [n for _, n in arrivals] == ["alpha", "beta"]
    assert arrivals[1][0] - arrivals[0][0] > 0.2  # the first event came before the server wrote the second


def test_backend_down_makes_the_apiservice_unavailable(cluster: ServerProcess, namespace: str,
                                                       wardle: ExtensionServer) -> None:
    name = wardle.apiservice  # type: ignore[attr-defined]
    _wait_available(cluster, name)
    port = wardle.port
    wardle.stop()
    wardle.stop = lambda: None  # type: ignore[method-assign]
    # a change to the Service re-checks its APIServices at once (otherwise: the 30 s resync)
    client.CoreV1Api(cluster.api_client()).patch_namespaced_service(
        "api", namespace, {"metadata": {"annotations": {"poke": "1"}}})
    condition = _wait_available(cluster, name, status="False")
    url = f"https://127.0.0.1:{port}/apis/{wardle.group}/{VERSION}"
    assert condition["reason"] == "FailedDiscoveryCheck"
    assert condition["message"] == (f'failing or missing response from {url}: Get "{url}": '
                                    f"dial tcp 127.0.0.1:{port}: connect: connection refused")
    response = _raw(cluster, f"/apis/{wardle.group}/{VERSION}/namespaces/{namespace}/flunders")
    assert (response.status, response.data) == (503, b"service unavailable\n")
    failed = cluster.kubectl("get", f"flunders.{wardle.group}", "-n", namespace, check=False)
    assert failed.returncode == 1
    # aggregated discovery now marks the group-version Stale, so kubectl no longer resolves it
    assert 'the server doesn\'t have a resource type "flunders"' in failed.stderr
    doc = json.loads(_raw(cluster, "/apis", accept="application/json;g=apidiscovery.k8s.io;v=v2;"
                                                   "as=APIGroupDiscoveryList").data)
    item = next(i for i in doc["items"] if i["metadata"]["name"] == wardle.group)
    assert item["versions"][0]["freshness"] == "Stale"


def test_metrics_group_has_openapi(cluster: ServerProcess) -> None:
    index = json.loads(_raw(cluster, "/openapi/v3").data)["paths"]
    assert "apis/metrics.k8s.io/v1beta1" in index
    doc = json.loads(_raw(cluster, index["apis/metrics.k8s.io/v1beta1"]["serverRelativeURL"]).data)
    schemas = doc["components"]["schemas"]
    pod_metrics = schemas["io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics"]
    assert pod_metrics["required"] == ["timestamp", "window", "containers"]
    assert pod_metrics["x-kubernetes-group-version-kind"] == [{"group": "metrics.k8s.io", "kind": "PodMetrics",
                                                              "version": "v1beta1"}]
    assert "/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods/{name}" in doc["paths"]
    explained = cluster.kubectl("explain", "pods.containers", "--api-version=metrics.k8s.io/v1beta1").stdout
    assert "KIND:       PodMetrics" in explained and "usage" in explained
