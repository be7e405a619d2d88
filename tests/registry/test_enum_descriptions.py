"""The "Possible enum values" paragraph kube appends to enum-typed fields' descriptions.

Facts (kube-openapi `pkg/generators/enum.go` + `openapi.go`, checked against published 1.33
OpenAPI text): the field's description, a blank line, "Possible enum values:", then one line per
value, ` - `"<value>"` <remark>`, the lines sorted as strings. A remark is the value's Go constant
doc comment, its lines joined by spaces, a leading constant name cut (plain prefix), whitespace
collapsed; without a comment the line is just the quoted value (no trailing blank). E.g. the
published DeploymentStrategy.type reads 'Default is RollingUpdate.\\n\\nPossible enum values:\\n -
`"Recreate"` Kill all existing pods before creating new ones.\\n - `"RollingUpdate"` Replace ...',
ServiceSpec.sessionAffinity's None line is ' - `"None"` - no session affinity.' and
PodDisruptionBudgetSpec's AlwaysAllow remark starts 'policy means that all running pods'.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType

import orjson
import pytest

from pykube_server.apiserver.openapi import OpenAPI
from pykube_server.registry import enums
from pykube_server.registry.resources import RESOURCES

ROOT = Path(__file__).resolve().parents[2]

DEPLOYMENT_TYPE = ('Type of deployment. Can be "Recreate" or "RollingUpdate". Default is RollingUpdate.\n\n'
                   'Possible enum values:\n'
                   ' - `"Recreate"` Kill all existing pods before creating new ones.\n'
                   ' - `"RollingUpdate"` Replace the old ReplicaSets by new one using rolling update i.e gradually '
                   'scale down the old ReplicaSets and scale up the new one.')


@pytest.fixture(scope="module")
def tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_openapi_enums", ROOT / "tools" / "gen_openapi_enums.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_describe_appends_a_paragraph_with_remarks() -> None:
    said = {"Recreate": "Kill all existing pods before creating new ones.", "RollingUpdate": "Replace the old."}
    out = enums.describe("Type of deployment.", ["RollingUpdate", "Recreate"], said)
    assert out == ('Type of deployment.\n\nPossible enum values:\n - `"Recreate"` Kill all existing pods before '
                   'creating new ones.\n - `"RollingUpdate"` Replace the old.')


def test_value_without_remark_has_no_trailing_blank() -> None:
    assert enums.value_line("Always", "") == ' - `"Always"`'
    assert enums.describe("Restart policy.", ["Always", "Never"], {}) == \
        'Restart policy.\n\nPossible enum values:\n - `"Always"`\n - `"Never"`'


def test_without_own_description_the_paragraph_stands_alone() -> None:
    assert enums.describe("", ["A"], {"A": "the a."}) == 'Possible enum values:\n - `"A"` the a.'


def test_values_are_go_quoted_and_lines_sorted_as_strings() -> None:
    # "*" sorts before letters; "" (HostPathType's unset value) quotes to `""`.
    out = enums.describe("d", ["Namespaced", "*", ""], {"": "For backwards compatible, leave it empty if unset"})
    assert out.splitlines()[3:] == [' - `""` For backwards compatible, leave it empty if unset',
                                    ' - `"*"`', ' - `"Namespaced"`']
    assert enums.value_line('a"b\\c', "") == ' - `"a\\"b\\\\c"`'


def test_annotate_gives_the_published_deployment_strategy_text() -> None:
    schema = {"properties": {"type": {"type": "string", "description": 'Type of deployment. Can be "Recreate" or '
                                      '"RollingUpdate". Default is RollingUpdate.'}, "rollingUpdate": {}}}
    out = enums.annotate("io.k8s.api.apps.v1.DeploymentStrategy", schema)
    assert out["properties"]["type"]["description"] == DEPLOYMENT_TYPE
    assert out["properties"]["type"]["enum"] == ["Recreate", "RollingUpdate"]
    assert out["properties"]["rollingUpdate"] == {} and "enum" not in schema["properties"]["type"]


def test_remarks_cover_every_enum_value() -> None:
    table, said = enums.table(), enums.remarks()
    assert set(said) == set(table)
    for definition, props in table.items():
        for prop, values in props.items():
            assert list(said[definition][prop]) == values, (definition, prop)


def test_remarks_hold_kube_published_texts() -> None:
    said = enums.remarks()
    assert said["io.k8s.api.core.v1.ServiceSpec"]["sessionAffinity"]["None"] == "- no session affinity."
    assert said["io.k8s.api.core.v1.ServiceSpec"]["type"]["NodePort"] == \
        "means a service will be exposed on one port of every node, in addition to 'ClusterIP' type."
    assert said["io.k8s.api.policy.v1.PodDisruptionBudgetSpec"]["unhealthyPodEvictionPolicy"]["AlwaysAllow"] \
        .startswith('policy means that all running pods (status.phase="Running"), but not yet healthy')
    assert said["io.k8s.api.core.v1.PodStatus"]["phase"]["Unknown"].endswith(
        "Deprecated: It isn't being set since 2015 (74da3b14b0c0f658b3bb8d2def5094686d0e9095)")
    assert said["io.k8s.api.core.v1.PodSpec"]["restartPolicy"] == {"Always": "", "Never": "", "OnFailure": ""}


def test_tool_remark_rule(tool: ModuleType) -> None:
    lines = ["const (",
             "\t// ServiceTypeClusterIP means a service will only be accessible inside the",
             "\t// cluster, via the cluster IP.",
             '\tServiceTypeClusterIP ServiceType = "ClusterIP"',
             "",
             '\tServiceTypeNone ServiceType = "None"',
             '\tA ServiceType = "a" // said after a',
             '\tB ServiceType = "b"',
             "\t//go:generate x",
             "\t// Foobar  baz",
             "\t//",
             "\t//   qux",
             '\tFoo ServiceType = "foo"']

    def said(i: int) -> str:
        name = lines[i].split()[0]
        return str(tool.remark(name, tool._doc_comment(lines, i)))

    assert said(3) == "means a service will only be accessible inside the cluster, via the cluster IP."
    assert said(5) == ""  # a blank line parts a comment from the constant
    assert said(6) == ""  # nothing above but code
    assert said(7) == "said after a"  # gengo reads the comment group ending on the line above
    assert said(12) == "bar baz qux"  # directive skipped, plain prefix cut, blanks collapsed


def test_tool_quotes_and_sorts_like_go(tool: ModuleType) -> None:
    assert tool.go_quote('a"b') == '"a\\"b"'
    assert sorted(["Namespaced", "*", "Cluster"], key=tool.go_quote) == ["*", "Cluster", "Namespaced"]
    with pytest.raises(ValueError):
        tool.go_quote("caf\u00e9")


def test_v3_hash_follows_the_remarks(monkeypatch: pytest.MonkeyPatch) -> None:
    body, digest = OpenAPI(RESOURCES, "1.33").v3("apis/apps/v1")  # type: ignore[misc]
    schemas = orjson.loads(body)["components"]["schemas"]
    assert schemas["io.k8s.api.apps.v1.DeploymentStrategy"]["properties"]["type"]["description"] == DEPLOYMENT_TYPE
    assert digest == hashlib.sha512(body).hexdigest()[:128].upper()
    monkeypatch.setattr(enums, "remarks", lambda: {})
    bare_body, bare_digest = OpenAPI(RESOURCES, "1.33").v3("apis/apps/v1")  # type: ignore[misc]
    assert bare_body != body and bare_digest != digest
