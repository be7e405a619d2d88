"""The pure parts of aggregation: discovery conversion and ordering, the ConfigMap's CA merge,
APIService validation, identity headers."""

from __future__ import annotations

import orjson

from pykube_server.apiserver.aggregation import authconfig, priorities
from pykube_server.apiserver.aggregation.backend import identity_headers
from pykube_server.apiserver.authn import UserInfo
from pykube_server.apiserver.discovery import Discovery, RemoteVersion
from pykube_server.registry.apiservice import validate_apiservice
from pykube_server.registry.resources import RESOURCES, preferred_versions

CERT_A = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
CERT_B = "-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n"


def test_remote_group_versions_in_both_discovery_forms() -> None:
    resources = ({"name": "flunders", "singularName": "", "namespaced": True, "kind": "Flunder",
                  "verbs": ["get", "list"], "categories": ["all"]},
                 {"name": "flunders/status", "singularName": "", "namespaced": True, "kind": "Flunder",
                  "verbs": ["get", "patch"]})
    preferred = {**preferred_versions(), "wardle.example.com": ("v1beta1", "v1alpha1")}
    remote = {("wardle.example.com", "v1beta1"): RemoteVersion(resources, True),
              ("wardle.example.com", "v1alpha1"): RemoteVersion((), False)}
    discovery = Discovery(RESOURCES, preferred, "127.0.0.1:6443", remote=remote)
    groups = orjson.loads(discovery.group_list)["groups"]
    wardle = next(g for g in groups if g["name"] == "wardle.example.com")
    assert wardle["preferredVersion"] == {"groupVersion": "wardle.example.com/v1beta1", "version": "v1beta1"}
    items = orjson.loads(discovery.aggregated_apis["v2"])["items"]
    item = next(i for i in items if i["metadata"]["name"] == "wardle.example.com")
    current, stale = item["versions"]
    assert (current["freshness"], stale["freshness"]) == ("Current", "Stale")
    assert current["resources"] == [{
        "resource": "flunders", "responseKind": {"group": "wardle.example.com", "version": "v1beta1", "kind": "Flunder"},
        "scope": "Namespaced", "singularResource": "flunder", "verbs": ["get", "list"], "categories": ["all"],
        "subresources": [{"subresource": "status", "verbs": ["get", "patch"],
                          "responseKind": {"group": "wardle.example.com", "version": "v1beta1", "kind": "Flunder"}}]}]


def test_builtin_priorities_order_groups_like_kube() -> None:
    order = [g for g in preferred_versions() if g]
    ranks = [priorities.group_priority(g, set(), {}) for g in order]
    assert order[0] == "apiregistration.k8s.io"
    assert ranks == sorted(ranks, reverse=True)  # the served order already follows kube's table
    assert priorities.group_priority("wardle.example.com", {"wardle.example.com"}, {}) == 1000


def test_configmap_keeps_other_servers_ca_bundles() -> None:
    ours = authconfig.config_map_data(CERT_A, CERT_A)
    merged = authconfig.merged({"requestheader-client-ca-file": CERT_B}, ours)
    assert merged["requestheader-client-ca-file"] == CERT_A + CERT_B
    assert authconfig.merged({"requestheader-client-ca-file": CERT_A}, ours)["requestheader-client-ca-file"] == CERT_A
    assert authconfig.config_map_data("", CERT_A).get("client-ca-file") is None


def test_local_apiservice_rules() -> None:
    local = priorities.local_apiservice("", "v1", (18000, 1), priorities.ON_START)
    assert local["metadata"]["name"] == "v1." and validate_apiservice(local) == []
    bad = {"metadata": {"name": "v2."}, "spec": {"version": "v2", "groupPriorityMinimum": 1, "versionPriority": 1001,
                                                  "caBundle": "eA=="}}
    messages = [str(e) for e in validate_apiservice(bad)]
    assert messages == [
        "spec.group: Required value: only v1 may have an empty group and it better be legacy kube",
        "spec.versionPriority: Invalid value: 1001: must be positive and less than 1000",
        'spec.caBundle: Invalid value: "eA==": local APIServices may not have a caBundle',
    ]


def test_identity_headers() -> None:
    user = UserInfo(username="jane", groups=("devs", "system:authenticated"),
                    extra={"scopes.example.com/a b": ("x", "y")})
    assert identity_headers(user) == [
        ("X-Remote-User", "jane"), ("X-Remote-Group", "devs"), ("X-Remote-Group", "system:authenticated"),
        ("X-Remote-Extra-scopes.example.com%2Fa%20b", "x"), ("X-Remote-Extra-scopes.example.com%2Fa%20b", "y")]
