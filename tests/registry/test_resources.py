"""The resource table against real Kubernetes 1.33 facts.

Facts recorded here (sources: upstream kubernetes/kubernetes `api/discovery/*.json`, the
`kubectl api-resources` of a kind v1.34.2 cluster in gmeghnag/omc#227 minus what went GA only in
1.34, and kube-apiserver's `DefaultAPIResourceConfigSource`):
- `kubectl api-resources` shows, per group, the preferred version's resources plus resources found
  only in other versions, sorted by group then name; columns are tab-aligned with 3 spaces of
  padding (min width 6), short names comma-joined.
- resource.k8s.io (beta in 1.33) and VolumeAttributesClass (storage.k8s.io/v1beta1 in 1.33) are
  off by default; IPAddress and ServiceCIDR are GA in networking.k8s.io/v1 since 1.33.
- namespaces have no deletecollection; componentstatuses are get/list only; reviews and bindings
  are create-only; pods/resize (1.33) is get/patch/update of a Pod.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pykube_server.registry import schemas
from pykube_server.registry.resources import (
    RESOURCES,
    by_kind,
    by_plural,
    check_table,
    preferred_versions,
)
from pykube_server.registry.spec import ResourceSpec

GOLDEN = Path(__file__).parent / "golden" / "kubectl-api-resources-1.33.txt"


def _preferred_resources() -> list[ResourceSpec]:
    """What discovery's ServerPreferredResources yields: per group, the first version's resources,
    then resources that only later versions have."""
    chosen: dict[tuple[str, str], ResourceSpec] = {}
    for group, versions in preferred_versions().items():
        for version in versions:
            for r in RESOURCES:
                if r.group == group and r.version == version:
                    chosen.setdefault((group, r.plural), r)
    return sorted(chosen.values(), key=lambda r: (r.group, r.plural))


def _tabwrite(rows: list[list[str]]) -> str:
    widths = [max(6, max(len(row[i]) for row in rows) + 3) for i in range(len(rows[0]) - 1)]
    lines = ["".join(cell.ljust(w) for cell, w in zip(row, widths)) + row[-1] for row in rows]
    return "\n".join(lines) + "\n"


def render_api_resources() -> str:
    rows = [["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]]
    for r in _preferred_resources():
        rows.append([r.plural, ",".join(r.short_names), r.api_version, str(r.namespaced).lower(), r.kind])
    return _tabwrite(rows)


def test_kubectl_api_resources_matches_real_1_33() -> None:
    assert render_api_resources() == GOLDEN.read_text()


def test_core_group_comes_first_then_discovery_priority() -> None:
    groups = list(preferred_versions())
    assert groups[:4] == ["", "apiregistration.k8s.io", "apps", "events.k8s.io"]
    assert groups[-1] == "flowcontrol.apiserver.k8s.io"


def test_autoscaling_prefers_v2() -> None:
    assert preferred_versions()["autoscaling"] == ("v2", "v1")


@pytest.mark.parametrize("group", ["resource.k8s.io", "storagemigration.k8s.io", "internal.apiserver.k8s.io"])
def test_off_by_default_groups_absent(group: str) -> None:
    assert group not in preferred_versions()


@pytest.mark.parametrize(
    ("group", "version", "plural"),
    [
        ("storage.k8s.io", "v1beta1", "volumeattributesclasses"),
        ("storage.k8s.io", "v1", "volumeattributesclasses"),
        ("authentication.k8s.io", "v1beta1", "selfsubjectreviews"),
        ("networking.k8s.io", "v1beta1", "ipaddresses"),
        ("certificates.k8s.io", "v1beta1", "clustertrustbundles"),
        ("coordination.k8s.io", "v1beta1", "leasecandidates"),
        ("flowcontrol.apiserver.k8s.io", "v1beta3", "flowschemas"),
    ],
)
def test_beta_and_alpha_resources_absent(group: str, version: str, plural: str) -> None:
    assert by_plural(group, version, plural) is None


def test_resources_alphabetical_within_group_version() -> None:
    by_gv: dict[str, list[str]] = {}
    for r in RESOURCES:
        by_gv.setdefault(r.group_version, []).append(r.plural)
    for gv, plurals in by_gv.items():
        assert plurals == sorted(plurals), gv


def test_pod_subresources() -> None:
    pods = by_plural("", "v1", "pods")
    assert pods is not None
    assert [s.name for s in pods.subresources] == [
        "attach", "binding", "ephemeralcontainers", "eviction", "exec", "log", "portforward", "proxy",
        "resize", "status",
    ]
    eviction = pods.subresource("eviction")
    assert eviction is not None
    assert (eviction.group, eviction.version, eviction.kind, eviction.verbs) == ("policy", "v1", "Eviction", ("create",))
    exec_ = pods.subresource("exec")
    assert exec_ is not None and (exec_.kind, exec_.verbs) == ("PodExecOptions", ("create", "get"))
    resize = pods.subresource("resize")
    assert resize is not None and (resize.kind, resize.verbs) == ("Pod", ("get", "patch", "update"))
    assert pods.categories == ("all",) and pods.short_names == ("po",)


@pytest.mark.parametrize(
    ("group", "plural"),
    [("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets"), ("", "replicationcontrollers")],
)
def test_scale_subresource_is_autoscaling_v1(group: str, plural: str) -> None:
    spec = by_plural(group, "v1", plural)
    assert spec is not None
    scale = spec.subresource("scale")
    assert scale is not None
    assert (scale.group, scale.version, scale.kind, scale.verbs) == ("autoscaling", "v1", "Scale", ("get", "patch", "update"))
    assert spec.has_status


def test_serviceaccount_token_is_token_request() -> None:
    sa = by_plural("", "v1", "serviceaccounts")
    assert sa is not None
    token = sa.subresource("token")
    assert token is not None
    assert (token.group, token.version, token.kind, token.verbs) == ("authentication.k8s.io", "v1", "TokenRequest", ("create",))


@pytest.mark.parametrize(
    ("group", "plural", "sub", "kind", "verbs"),
    [
        ("", "nodes", "proxy", "NodeProxyOptions", ("create", "delete", "get", "patch", "update")),
        ("", "services", "proxy", "ServiceProxyOptions", ("create", "delete", "get", "patch", "update")),
        ("", "namespaces", "finalize", "Namespace", ("update",)),
        ("certificates.k8s.io", "certificatesigningrequests", "approval", "CertificateSigningRequest",
         ("get", "patch", "update")),
    ],
)
def test_other_subresources(group: str, plural: str, sub: str, kind: str, verbs: tuple[str, ...]) -> None:
    spec = by_plural(group, "v1", plural)
    assert spec is not None
    found = spec.subresource(sub)
    assert found is not None and (found.kind, found.verbs) == (kind, verbs)


@pytest.mark.parametrize(
    ("group", "plural", "verbs"),
    [
        ("", "namespaces", ("create", "delete", "get", "list", "patch", "update", "watch")),
        ("", "componentstatuses", ("get", "list")),
        ("", "bindings", ("create",)),
        ("authorization.k8s.io", "selfsubjectaccessreviews", ("create",)),
        ("authentication.k8s.io", "tokenreviews", ("create",)),
    ],
)
def test_special_verbs(group: str, plural: str, verbs: tuple[str, ...]) -> None:
    spec = by_plural(group, "v1", plural)
    assert spec is not None and spec.verbs == verbs


def test_shared_storage() -> None:
    ev = by_plural("events.k8s.io", "v1", "events")
    hpa1 = by_plural("autoscaling", "v1", "horizontalpodautoscalers")
    assert ev is not None and hpa1 is not None
    assert ev.key_root == "/registry/events"
    assert (hpa1.storage_resource, hpa1.storage_group) == ("horizontalpodautoscalers", "autoscaling")
    assert hpa1.key_root == "/registry/horizontalpodautoscalers"


def test_api_extensions_category() -> None:
    tagged = {r.plural for r in RESOURCES if "api-extensions" in r.categories}
    assert tagged == {
        "apiservices", "customresourcedefinitions", "mutatingwebhookconfigurations",
        "validatingadmissionpolicies", "validatingadmissionpolicybindings", "validatingwebhookconfigurations",
    }


def test_all_category() -> None:
    tagged = {(r.group, r.version, r.plural) for r in RESOURCES if "all" in r.categories}
    assert tagged == {
        ("", "v1", "pods"), ("", "v1", "services"), ("", "v1", "replicationcontrollers"),
        ("apps", "v1", "daemonsets"), ("apps", "v1", "deployments"), ("apps", "v1", "replicasets"),
        ("apps", "v1", "statefulsets"), ("autoscaling", "v2", "horizontalpodautoscalers"),
        ("autoscaling", "v1", "horizontalpodautoscalers"), ("batch", "v1", "cronjobs"), ("batch", "v1", "jobs"),
    }


def test_singular_names() -> None:
    assert by_plural("", "v1", "endpoints").singular == "endpoints"  # type: ignore[union-attr]
    assert by_plural("networking.k8s.io", "v1", "ingresses").singular == "ingress"  # type: ignore[union-attr]
    assert by_plural("storage.k8s.io", "v1", "csistoragecapacities").singular == "csistoragecapacity"  # type: ignore[union-attr]


def test_lookup_helpers() -> None:
    assert by_kind("apps", "v1", "Deployment") is by_plural("apps", "v1", "deployments")
    assert by_kind("", "v1", "Pod") is by_plural("", "v1", "pods")
    assert by_kind("apps", "v1", "Pod") is None


def test_check_table_rejects_duplicate_short_name() -> None:
    pods = by_plural("", "v1", "pods")
    svc = by_plural("", "v1", "services")
    assert pods is not None and svc is not None
    from dataclasses import replace

    with pytest.raises(ValueError, match="duplicate short name 'po' in v1"):
        check_table((pods, replace(svc, short_names=("po",))))


def test_check_table_rejects_duplicate_plural() -> None:
    pods = by_plural("", "v1", "pods")
    assert pods is not None
    with pytest.raises(ValueError, match="duplicate resource 'pods'"):
        check_table((pods, pods))


def test_check_table_accepts_same_plural_in_other_version() -> None:
    check_table(tuple(r for r in RESOURCES if r.plural == "horizontalpodautoscalers"))


@pytest.mark.parametrize("spec", RESOURCES, ids=lambda r: f"{r.group_version}/{r.plural}")
def test_definition_exists_with_matching_gvk(spec: ResourceSpec) -> None:
    gvks = schemas.group_version_kinds(spec.definition)
    assert {"group": spec.group, "version": spec.version, "kind": spec.kind} in gvks


@pytest.mark.parametrize("spec", RESOURCES, ids=lambda r: f"{r.group_version}/{r.plural}")
def test_subresource_kinds_are_real_definitions(spec: ResourceSpec) -> None:
    defs = schemas.all_definitions()
    for sub in spec.subresources:
        group = spec.group if sub.group is None else sub.group
        version = sub.version or spec.version
        package = {"": "core", "policy": "policy", "autoscaling": "autoscaling",
                   "authentication.k8s.io": "authentication"}.get(group, "")
        if sub.kind == spec.kind or not package:
            continue
        name = f"io.k8s.api.{package}.{version}.{sub.kind}"
        if sub.kind.endswith("Options"):
            continue  # connect options are query parameters, not schema definitions
        assert name in defs, name


def test_definition_lookup_errors_name_the_definition() -> None:
    with pytest.raises(KeyError, match="io.k8s.api.core.v1.Nope"):
        schemas.definition("io.k8s.api.core.v1.Nope")


def test_definitions_loaded_once() -> None:
    assert schemas.all_definitions() is schemas.all_definitions()
    assert schemas.definitions_path().name == "_definitions.json"
    assert "v1.33.0-local" in str(schemas.definitions_path())


def test_every_ga_kind_of_1_33_is_served() -> None:
    """Completeness: each GA top-level kind in the 1.33 OpenAPI definitions is in the table, except
    meta.k8s.io types, lists, and kinds only seen as subresource bodies (Scale, Eviction...)."""
    served = {(r.group, r.version, r.kind) for r in RESOURCES}
    sub_kinds = {s.kind for r in RESOURCES for s in r.subresources}
    missing = set()
    for name, body in schemas.all_definitions().items():
        if ".meta.v1." in name:
            continue
        for gvk in body.get("x-kubernetes-group-version-kind", []):
            key = (gvk["group"], gvk["version"], gvk["kind"])
            if "alpha" in key[1] or "beta" in key[1] or key[2].endswith("List") or key[2] in sub_kinds:
                continue
            if key not in served:
                missing.add(key)
    assert missing == set()
