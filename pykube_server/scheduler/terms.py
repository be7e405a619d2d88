"""Pod affinity terms as InterPodAffinity and PodTopologySpread read them: a label selector,
the namespaces it looks in, and a topology key. Parsed once per pod (`PodInfo` keeps them, as
kube's PodInfo keeps RequiredAffinityTerms), never per scheduling cycle."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pykube_server.api.selectors import LabelSelector, SelectorError, selector_from_object
from pykube_server.api.types import Obj

NamespaceLabels = Callable[[str], Mapping[str, str]]


@dataclass(frozen=True)
class AffinityTerm:
    selector: LabelSelector
    namespaces: frozenset[str]
    namespace_selector: LabelSelector | None
    topology_key: str
    weight: int = 0

    def anchor(self) -> tuple[str, str] | None:
        """A (key, value) label every pod this term matches must carry, if the selector pins
        one; lets an index skip terms that cannot match a pod without looking at them."""
        for r in self.selector.requirements:
            if r.operator in ("=", "==", "in") and len(r.values) == 1:
                return (r.key, r.values[0])
        return None

    def matches(self, pod: Obj, namespace_labels: NamespaceLabels) -> bool:
        meta = pod.get("metadata") or {}
        ns = meta.get("namespace", "")
        in_ns = ns in self.namespaces or (self.namespace_selector is not None
                                          and self.namespace_selector.matches(namespace_labels(ns)))
        return in_ns and self.selector.matches(meta.get("labels") or {})


def labels_of(pod: Obj) -> Mapping[str, str]:
    return (pod.get("metadata") or {}).get("labels") or {}


def _selector(term: Obj, pod: Obj) -> LabelSelector:
    raw = term.get("labelSelector")
    if raw is None:
        return selector_from_object(None)
    raw = dict(raw)
    extra = []
    labels = labels_of(pod)
    for key in term.get("matchLabelKeys") or ():
        if key in labels:
            extra.append({"key": key, "operator": "In", "values": [labels[key]]})
    for key in term.get("mismatchLabelKeys") or ():
        if key in labels:
            extra.append({"key": key, "operator": "NotIn", "values": [labels[key]]})
    if extra:
        raw["matchExpressions"] = list(raw.get("matchExpressions") or []) + extra
    try:
        return selector_from_object(raw)
    except SelectorError:
        return selector_from_object(None)


def new_term(term: Obj, pod: Obj, weight: int = 0) -> AffinityTerm:
    """Empty `namespaces` and no `namespaceSelector` mean the pod's own namespace; an empty
    `namespaceSelector` ({}) means every namespace."""
    ns_selector_raw = term.get("namespaceSelector")
    namespaces = frozenset(term.get("namespaces") or ())
    if not namespaces and ns_selector_raw is None:
        namespaces = frozenset({(pod.get("metadata") or {}).get("namespace", "")})
    ns_selector = None if ns_selector_raw is None else selector_from_object(ns_selector_raw)
    return AffinityTerm(_selector(term, pod), namespaces, ns_selector, term.get("topologyKey", ""), weight)


def _affinity(pod: Obj, kind: str) -> Obj:
    return ((pod.get("spec") or {}).get("affinity") or {}).get(kind) or {}


def required_terms(pod: Obj, kind: str) -> list[AffinityTerm]:
    """kind: "podAffinity" or "podAntiAffinity"."""
    return [new_term(t, pod) for t in _affinity(pod, kind).get("requiredDuringSchedulingIgnoredDuringExecution") or []]


def preferred_terms(pod: Obj, kind: str) -> list[AffinityTerm]:
    return [new_term(t.get("podAffinityTerm") or {}, pod, int(t.get("weight") or 0))
            for t in _affinity(pod, kind).get("preferredDuringSchedulingIgnoredDuringExecution") or []]
