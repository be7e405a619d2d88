"""Group and version priorities of the built-in APIs, and the local APIServices made from them.

kube-apiserver keeps a fixed table of (groupPriorityMinimum, versionPriority) per built-in
group-version; on start its autoregister controller creates one local APIService (no
`spec.service`) for every served group-version found in that table and nothing else, labelled
`kube-aggregator.kubernetes.io/automanaged: onstart`. CRD group-versions get an APIService from
the CRD registration controller with the low fixed priorities 1000/100 and the label value
`true`. The same numbers order groups in `/apis` (highest group priority first, then name).
Values are those of the emulated release (1.33).
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

AUTOMANAGED_LABEL = "kube-aggregator.kubernetes.io/automanaged"
ON_START = "onstart"
"""Built-in APIServices: synced when the server starts."""
CONTINUOUS = "true"
"""CRD APIServices: synced while the CRD exists, deleted after it."""

BUILTIN: dict[tuple[str, str], tuple[int, int]] = {
    ("", "v1"): (18000, 1),
    ("apps", "v1"): (17800, 15),
    ("events.k8s.io", "v1"): (17750, 15),
    ("events.k8s.io", "v1beta1"): (17750, 5),
    ("authentication.k8s.io", "v1"): (17700, 15),
    ("authentication.k8s.io", "v1beta1"): (17700, 9),
    ("authentication.k8s.io", "v1alpha1"): (17700, 1),
    ("authorization.k8s.io", "v1"): (17600, 15),
    ("autoscaling", "v1"): (17500, 15),
    ("autoscaling", "v2"): (17500, 30),
    ("autoscaling", "v2beta1"): (17500, 9),
    ("autoscaling", "v2beta2"): (17500, 1),
    ("batch", "v1"): (17400, 15),
    ("batch", "v1beta1"): (17400, 9),
    ("certificates.k8s.io", "v1"): (17300, 15),
    ("certificates.k8s.io", "v1beta1"): (17300, 9),
    ("certificates.k8s.io", "v1alpha1"): (17300, 1),
    ("networking.k8s.io", "v1"): (17200, 15),
    ("networking.k8s.io", "v1beta1"): (17200, 9),
    ("policy", "v1"): (17100, 15),
    ("policy", "v1beta1"): (17100, 9),
    ("rbac.authorization.k8s.io", "v1"): (17000, 15),
    ("storage.k8s.io", "v1"): (16800, 15),
    ("storage.k8s.io", "v1beta1"): (16800, 9),
    ("storage.k8s.io", "v1alpha1"): (16800, 1),
    ("apiextensions.k8s.io", "v1"): (16700, 15),
    ("admissionregistration.k8s.io", "v1"): (16700, 15),
    ("admissionregistration.k8s.io", "v1beta1"): (16700, 12),
    ("admissionregistration.k8s.io", "v1alpha1"): (16700, 9),
    ("scheduling.k8s.io", "v1"): (16600, 15),
    ("coordination.k8s.io", "v1"): (16500, 15),
    ("coordination.k8s.io", "v1beta1"): (16500, 13),
    ("coordination.k8s.io", "v1alpha2"): (16500, 12),
    ("node.k8s.io", "v1"): (16300, 15),
    ("node.k8s.io", "v1beta1"): (16300, 9),
    ("node.k8s.io", "v1alpha1"): (16300, 1),
    ("discovery.k8s.io", "v1"): (16200, 15),
    ("resource.k8s.io", "v1beta2"): (16200, 15),
    ("resource.k8s.io", "v1beta1"): (16200, 9),
    ("resource.k8s.io", "v1alpha3"): (16200, 1),
    ("flowcontrol.apiserver.k8s.io", "v1"): (16100, 21),
    ("flowcontrol.apiserver.k8s.io", "v1beta3"): (16100, 18),
    ("internal.apiserver.k8s.io", "v1alpha1"): (16000, 9),
    ("storagemigration.k8s.io", "v1alpha1"): (15800, 9),
}
CRD_PRIORITY = (1000, 100)
"""crdregistration: CRDs sort low, and by kube-like version within their group."""
METRICS_PRIORITY = (100, 100)
"""What metrics-server's own APIService manifest asks for (ours is served locally)."""
AGGREGATOR_GROUP = "apiregistration.k8s.io"
"""The aggregator's own group: listed first in /apis, and it has no APIService."""


def apiservice_name(group: str, version: str) -> str:
    return f"{version}.{group}"


def local_apiservice(group: str, version: str, priority: tuple[int, int], managed: str) -> Obj:
    """A local APIService as the autoregister controller writes it (status comes later)."""
    spec: Obj = {"group": group, "version": version} if group else {"version": version}
    spec["groupPriorityMinimum"], spec["versionPriority"] = priority
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": apiservice_name(group, version), "labels": {AUTOMANAGED_LABEL: managed}},
            "spec": spec}


def group_priority(group: str, crd_groups: set[str], remote: dict[str, int]) -> int:
    """The priority that places a group in /apis."""
    if group == AGGREGATOR_GROUP:
        return 1 << 30
    if group in remote:
        return remote[group]
    builtin = [p for (g, _), (p, _) in BUILTIN.items() if g == group]
    if builtin:
        return max(builtin)
    return CRD_PRIORITY[0] if group in crd_groups else METRICS_PRIORITY[0]
