"""ResourceSpec: the facts about one served group/version/resource, as data.

Verbs, subresources and discovery entries are derived from these specs; routes resolve
through them. Strategies (what a kind means) are attached separately in `registry/kinds.py`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SubresourceSpec:
    name: str
    """e.g. "status", "scale", "log", "exec", "binding", "eviction"."""
    kind: str
    """The kind a request/response of this subresource carries (Scale, Eviction, PodExecOptions...)."""
    verbs: tuple[str, ...]
    group: str | None = None
    """The response kind's group when it differs from the parent's (Scale is autoscaling)."""
    version: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    verbs: tuple[str, ...]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[SubresourceSpec, ...] = ()
    definition: str = ""
    """The OpenAPI definition name, e.g. io.k8s.api.core.v1.Pod ("" if none)."""
    storage_resource: str = ""
    """The resource whose storage this one shares ("" = its own plural); e.g. events.k8s.io
    events share core events' keys, as in kube-apiserver."""
    storage_group: str = ""
    """The group of `storage_resource` ("" = core)."""

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def api_version(self) -> str:
        return self.group_version

    def subresource(self, name: str) -> SubresourceSpec | None:
        for sub in self.subresources:
            if sub.name == name:
                return sub
        return None

    @property
    def has_status(self) -> bool:
        return self.subresource("status") is not None

    @property
    def persisted(self) -> bool:
        """Kinds with no `get` (reviews, bindings, token requests) are never stored."""
        return "get" in self.verbs or "list" in self.verbs

    @property
    def key_root(self) -> str:
        """`/registry/<resource>` as kube-apiserver lays its keys out (a few resources keep
        historical prefixes, e.g. services live under `/registry/services/specs`)."""
        resource = self.storage_resource or self.plural
        group = self.storage_group if self.storage_resource else self.group
        return _KEY_ROOT_OVERRIDES.get((group, resource), f"/registry/{resource}")


# kube-apiserver's historical key prefixes that differ from the plain resource name.
_KEY_ROOT_OVERRIDES: dict[tuple[str, str], str] = {
    ("", "services"): "/registry/services/specs",
    ("", "endpoints"): "/registry/services/endpoints",
    ("", "nodes"): "/registry/minions",
    ("", "replicationcontrollers"): "/registry/controllers",
    ("apps", "deployments"): "/registry/deployments",
    ("", "persistentvolumes"): "/registry/persistentvolumes",
    ("apiextensions.k8s.io", "customresourcedefinitions"): "/registry/apiextensions.k8s.io/customresourcedefinitions",
    ("discovery.k8s.io", "endpointslices"): "/registry/endpointslices",
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"): "/registry/mutatingwebhookconfigurations",
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"): "/registry/validatingwebhookconfigurations",
    ("storage.k8s.io", "storageclasses"): "/registry/storageclasses",
    ("scheduling.k8s.io", "priorityclasses"): "/registry/priorityclasses",
    ("networking.k8s.io", "ingresses"): "/registry/ingress",
    ("coordination.k8s.io", "leases"): "/registry/leases",
    ("flowcontrol.apiserver.k8s.io", "flowschemas"): "/registry/flowschemas",
    ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations"): "/registry/prioritylevelconfigurations",
}
