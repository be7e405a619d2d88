"""Pure PersistentVolume/claim vocabulary: classes, annotations, and which PV fits which claim.

Why here, in `api/`: the PV binder (controller manager) and the VolumeBinding plugin
(scheduler) must agree exactly on what "fits" means, as kube's controller and scheduler share
`pkg/controller/volume/persistentvolume/util`; both may import only `api/` and `client/`, so
the rules live here once, without I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pykube_server.api.quantity import QuantityError, parse_quantity
from pykube_server.api.selectors import SelectorError, selector_from_object
from pykube_server.api.types import Obj

ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_PROVISIONED_BY = "pv.kubernetes.io/provisioned-by"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
ANN_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
ANN_BETA_DEFAULT_CLASS = "storageclass.beta.kubernetes.io/is-default-class"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"


def _meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def _spec(obj: Obj) -> Obj:
    return obj.get("spec") or {}


def annotations(obj: Obj) -> Mapping[str, str]:
    return _meta(obj).get("annotations") or {}


def claim_class(claim: Obj) -> str:
    """GetPersistentVolumeClaimClass: the beta annotation wins, then spec.storageClassName."""
    if ANN_BETA_STORAGE_CLASS in annotations(claim):
        return annotations(claim)[ANN_BETA_STORAGE_CLASS]
    return _spec(claim).get("storageClassName") or ""


def volume_class(volume: Obj) -> str:
    if ANN_BETA_STORAGE_CLASS in annotations(volume):
        return annotations(volume)[ANN_BETA_STORAGE_CLASS]
    return _spec(volume).get("storageClassName") or ""


def is_default_class(sc: Obj) -> bool:
    ann = annotations(sc)
    return ann.get(ANN_DEFAULT_CLASS) == "true" or ann.get(ANN_BETA_DEFAULT_CLASS) == "true"


def default_class(classes: Iterable[Obj]) -> Obj | None:
    """The default StorageClass; with several, the newest (then by name), as kube 1.26+ picks."""
    defaults = [sc for sc in classes if is_default_class(sc)]
    if not defaults:
        return None
    return max(defaults, key=lambda sc: (_meta(sc).get("creationTimestamp") or "", _meta(sc).get("name", "")))


def is_delayed_binding(claim: Obj, classes: Mapping[str, Obj]) -> bool:
    """True when the claim's class says WaitForFirstConsumer (no class: Immediate)."""
    name = claim_class(claim)
    sc = classes.get(name) if name else None
    return bool(sc) and sc.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER  # type: ignore[union-attr]


def requested_storage(claim: Obj) -> Any:
    text = ((_spec(claim).get("resources") or {}).get("requests") or {}).get("storage", "0")
    try:
        return parse_quantity(text)
    except QuantityError:
        return parse_quantity("0")


def volume_capacity(volume: Obj) -> Any:
    text = (_spec(volume).get("capacity") or {}).get("storage", "0")
    try:
        return parse_quantity(text)
    except QuantityError:
        return parse_quantity("0")


def access_modes_satisfied(claim: Obj, volume: Obj) -> bool:
    """Every mode the claim asks for is one the volume offers."""
    have = set(_spec(volume).get("accessModes") or ())
    return all(mode in have for mode in _spec(claim).get("accessModes") or ())


def volume_mode_mismatch(claim: Obj, volume: Obj) -> bool:
    return (_spec(claim).get("volumeMode") or "Filesystem") != (_spec(volume).get("volumeMode") or "Filesystem")


def is_bound_to_claim(volume: Obj, claim: Obj) -> bool:
    """IsVolumeBoundToClaim: the claimRef names this claim (and its uid, when the ref has one)."""
    ref = _spec(volume).get("claimRef")
    if not ref:
        return False
    meta = _meta(claim)
    if ref.get("name") != meta.get("name") or ref.get("namespace") != meta.get("namespace"):
        return False
    return not ref.get("uid") or ref.get("uid") == meta.get("uid")


def _requirement_matches(expr: Obj, labels: Mapping[str, str]) -> bool:
    key, op, values = expr.get("key", ""), expr.get("operator", ""), expr.get("values") or []
    present = key in labels
    if op == "In":
        return present and labels[key] in values
    if op == "NotIn":
        return not present or labels[key] not in values
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and len(values) == 1:
        try:
            have, bound = int(labels[key]), int(values[0])
        except ValueError:
            return False
        return have > bound if op == "Gt" else have < bound
    return False


def node_affinity_matches(volume: Obj, node: Obj) -> bool:
    """CheckNodeAffinity: a PV without required node affinity fits every node; otherwise one of
    its nodeSelectorTerms must match the node's labels (and metadata.name fields)."""
    required = ((_spec(volume).get("nodeAffinity") or {}).get("required")) or None
    if required is None:
        return True
    labels = _meta(node).get("labels") or {}
    fields = {"metadata.name": _meta(node).get("name", "")}
    for term in required.get("nodeSelectorTerms") or ():
        exprs, field_exprs = term.get("matchExpressions") or [], term.get("matchFields") or []
        if not exprs and not field_exprs:
            continue
        if all(_requirement_matches(e, labels) for e in exprs) and \
                all(_requirement_matches(f, fields) for f in field_exprs):
            return True
    return False


def satisfy_mismatch(claim: Obj, volume: Obj) -> str:
    """checkVolumeSatisfyClaim: "" when `volume` can serve `claim`, else kube's reason text."""
    if volume_capacity(volume).cmp(requested_storage(claim)) < 0:
        return "requested PV is too small"
    if volume_class(volume) != claim_class(claim):
        return "storageClassName does not match"
    if volume_mode_mismatch(claim, volume):
        return "incompatible volumeMode"
    if not access_modes_satisfied(claim, volume):
        return "incompatible accessMode"
    return ""


def find_best_match(claim: Obj, volumes: Iterable[Obj], *, delayed_binding: bool = False,
                    node: Obj | None = None) -> Obj | None:
    """findMatchingVolume: a volume pre-bound to the claim (claimRef) that is large enough wins;
    otherwise the smallest Available, unclaimed volume of the claim's class whose labels match
    the claim's selector, whose access modes cover the claim's and (in the scheduler, `node`
    given) whose node affinity admits the node. The controller (`node` None) leaves unbound
    delayed-binding claims to the scheduler, except for pre-bound volumes."""
    requested = requested_storage(claim)
    try:
        selector = selector_from_object(_spec(claim).get("selector")) if _spec(claim).get("selector") is not None else None
    except SelectorError:
        return None
    wanted_class = claim_class(claim)
    smallest: Obj | None = None
    for volume in volumes:
        if volume_mode_mismatch(claim, volume):
            continue
        capacity = volume_capacity(volume)
        if is_bound_to_claim(volume, claim):
            if node is not None and not node_affinity_matches(volume, node):
                continue
            if capacity.cmp(requested) < 0:
                continue
            return volume
        if node is None and delayed_binding:
            continue
        if _spec(volume).get("claimRef"):
            continue
        if (volume.get("status") or {}).get("phase") != "Available":
            continue
        if selector is not None and not selector.matches(_meta(volume).get("labels") or {}):
            continue
        if volume_class(volume) != wanted_class:
            continue
        if not access_modes_satisfied(claim, volume):
            continue
        if node is not None and not node_affinity_matches(volume, node):
            continue
        if capacity.cmp(requested) >= 0 and (smallest is None or volume_capacity(smallest).cmp(capacity) > 0):
            smallest = volume
    return smallest
