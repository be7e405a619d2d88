"""kubectl explain (OpenAPI v3 driven)."""

from __future__ import annotations

from .conftest import Kube


def _norm(text: str) -> str:
    # Quoted outputs lose trailing blanks, including the indented empty line kubectl ends a leaf
    # field's description with.
    return "\n".join(ln.rstrip() for ln in text.splitlines()).strip("\n")


# Source: kubernetes/website pull request #51295 (June 2025) quotes `k explain deployment.spec.strategy`
# from a current cluster: the field's own description, then the type's, and the `type` field with
# "enum: Recreate, RollingUpdate" and its "Possible enum values" (from the +enum marker in apps/v1).
# The list's remarks are the Go comments of apps/v1's constants as kube-openapi renders them; the
# published 1.33 OpenAPI text of DeploymentStrategy.type (e.g. as the generated clients quote it)
# reads 'Default is RollingUpdate.\n\nPossible enum values:\n - `"Recreate"` Kill all existing pods
# before creating new ones.\n - `"RollingUpdate"` Replace the old ReplicaSets by new one ...'.
STRATEGY = """\
GROUP:      apps
KIND:       Deployment
VERSION:    v1

FIELD: strategy <DeploymentStrategy>


DESCRIPTION:
    The deployment strategy to use to replace existing pods with new ones.
    DeploymentStrategy describes how to replace existing pods with new ones.

FIELDS:
  rollingUpdate\t<RollingUpdateDeployment>
    Rolling update config params. Present only if DeploymentStrategyType =
    RollingUpdate.

  type\t<string>
  enum: Recreate, RollingUpdate
    Type of deployment. Can be "Recreate" or "RollingUpdate". Default is
    RollingUpdate.

    Possible enum values:
     - `"Recreate"` Kill all existing pods before creating new ones.
     - `"RollingUpdate"` Replace the old ReplicaSets by new one using rolling
    update i.e gradually scale down the old ReplicaSets and scale up the new
    one.
"""


def test_explain_deployment_strategy(kube: Kube) -> None:
    r = kube("explain", "deployment.spec.strategy")
    assert _norm(r.out) == _norm(STRATEGY)


# Source: `kubectl explain pod.spec.restartPolicy` as printed by current clusters and quoted in
# several public write-ups (e.g. KCNA and CKAD study notes): the ENUM block, the description, and a
# "Possible enum values" list whose entries have no remark (core/v1's RestartPolicy constants carry
# no doc comments).
RESTART_POLICY = """\
KIND:       Pod
VERSION:    v1

FIELD: restartPolicy <string>
ENUM:
    Always
    Never
    OnFailure

DESCRIPTION:
    Restart policy for all containers within the pod. One of Always, OnFailure,
    Never. In some contexts, only a subset of those values may be permitted.
    Default to Always. More info:
    https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#restart-policy

    Possible enum values:
     - `"Always"`
     - `"Never"`
     - `"OnFailure"`
"""


def test_explain_pod_restart_policy(kube: Kube) -> None:
    r = kube("explain", "pod.spec.restartPolicy")
    assert _norm(r.out) == _norm(RESTART_POLICY)


# Source: `kubectl explain services.spec.type` from a current cluster, quoted in a public kubectl
# notes file: each remark is the ServiceType constant's comment with its leading constant name
# ("ServiceTypeClusterIP means ...") cut, wrapped by kubectl like the rest of the description.
SERVICE_TYPE = """\
KIND:       Service
VERSION:    v1

FIELD: type <string>
ENUM:
    ClusterIP
    ExternalName
    LoadBalancer
    NodePort

DESCRIPTION:
    type determines how the Service is exposed. Defaults to ClusterIP. Valid
    options are ExternalName, ClusterIP, NodePort, and LoadBalancer. "ClusterIP"
    allocates a cluster-internal IP address for load-balancing to endpoints.
    Endpoints are determined by the selector or if that is not specified, by
    manual construction of an Endpoints object or EndpointSlice objects. If
    clusterIP is "None", no virtual IP is allocated and the endpoints are
    published as a set of endpoints rather than a virtual IP. "NodePort" builds
    on ClusterIP and allocates a port on every node which routes to the same
    endpoints as the clusterIP. "LoadBalancer" builds on NodePort and creates an
    external load-balancer (if supported in the current cloud) which routes to
    the same endpoints as the clusterIP. "ExternalName" aliases this service to
    the specified externalName. Several other fields do not apply to
    ExternalName services. More info:
    https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types

    Possible enum values:
     - `"ClusterIP"` means a service will only be accessible inside the cluster,
    via the cluster IP.
     - `"ExternalName"` means a service consists of only a reference to an
    external name that kubedns or equivalent will return as a CNAME record, with
    no exposing or proxying of any pods involved.
     - `"LoadBalancer"` means a service will be exposed via an external load
    balancer (if the cloud provider supports it), in addition to 'NodePort'
    type.
     - `"NodePort"` means a service will be exposed on one port of every node,
    in addition to 'ClusterIP' type.
"""


def test_explain_service_type(kube: Kube) -> None:
    r = kube("explain", "services.spec.type")
    assert _norm(r.out) == _norm(SERVICE_TYPE)


def test_explain_deployment_strategy_shape(kube: Kube) -> None:
    # Same source as above: the header block and both fields are present in this order.
    out = kube("explain", "deployment.spec.strategy").out
    assert out.startswith("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n\n"
                          "FIELD: strategy <DeploymentStrategy>\n\n\nDESCRIPTION:\n")
    assert "DeploymentStrategy describes how to replace existing pods with new ones." in out
    assert out.index("  rollingUpdate\t<RollingUpdateDeployment>") < out.index("  type\t<string>")


def test_explain_pods(kube: Kube) -> None:
    # Source: kubernetes.io/docs/reference/kubectl/generated/kubectl_explain/ and any 1.33 cluster: core
    # kinds print no GROUP line; the Pod description and the five top-level fields.
    out = kube("explain", "pods").out
    assert out.startswith("KIND:       Pod\nVERSION:    v1\n\nDESCRIPTION:\n    Pod is a collection of containers "
                          "that can run on a host. This resource is\n    created by clients and scheduled onto "
                          "hosts.\n")
    fields = [ln.split("\t")[0].strip() for ln in out.splitlines() if ln.startswith("  ") and "\t<" in ln]
    assert fields == ["apiVersion", "kind", "metadata", "spec", "status"]
    assert "  metadata\t<ObjectMeta>\n" in out and "  spec\t<PodSpec>\n" in out


def test_explain_field_required_marker(kube: Kube) -> None:
    # Source: kubectl explain plaintext template (kubernetes/kubectl@v0.33.1 pkg/explain/v2/templates/
    # plaintext.tmpl) marks required fields "-required-": containers in PodSpec.
    out = kube("explain", "pod.spec").out
    assert "  containers\t<[]Container> -required-\n" in out


def test_explain_recursive(kube: Kube) -> None:
    # Source: `kubectl explain pods --recursive` on real clusters (e.g. kubernetes.io/docs/reference/
    # kubectl/generated/kubectl_explain/ example): FIELDS starts "apiVersion\t<string>", "kind\t<string>",
    # "metadata\t<ObjectMeta>", then nested fields indented two more spaces, without enum lines.
    out = kube("explain", "pods", "--recursive").out
    body = out.split("FIELDS:\n", 1)[1].splitlines()
    assert body[:4] == ["  apiVersion\t<string>", "  kind\t<string>", "  metadata\t<ObjectMeta>",
                        "    annotations\t<map[string]string>"]


def test_explain_recursive_nesting(kube: Kube) -> None:
    # Same source: nested fields of metadata and spec appear, indented by depth.
    out = kube("explain", "deployment.spec", "--recursive").out
    assert "  replicas\t<integer>\n" in out
    assert "  template\t<PodTemplateSpec> -required-\n" in out
    assert "      containers\t<[]Container> -required-\n" in out


def test_explain_unknown_resource(kube: Kube) -> None:
    # Source: kubernetes/kubectl@v0.33.1 pkg/cmd/explain/explain_test.go
    # (`the server doesn't have a resource type "foo"`): the mapper's NoKindMatch error, which
    # cmdutil.StandardErrorMessage prints without the "error: " prefix; exit code 1.
    r = kube("explain", "foo", rc=1)
    assert (r.out, r.err) == ("", 'the server doesn\'t have a resource type "foo"\n')


def test_explain_unknown_field(kube: Kube) -> None:
    # Source: kubernetes/kubectl@v0.33.1 pkg/explain/v2/templates/plaintext.tmpl (throws
    # 'field "%v" does not exist' after the KIND/VERSION header), exit code 1.
    r = kube("explain", "pods.spec.bogus", rc=1)
    assert r.err == 'error: field "bogus" does not exist\n'
