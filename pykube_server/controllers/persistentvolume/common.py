"""What the PV controllers share: the resources they use and small helpers over the API."""

from __future__ import annotations

from pykube_server.api.types import Obj
from pykube_server.client.clock import Clock
from pykube_server.client.rest import Resource
from pykube_server.controllers.workload_common import now_text

STORAGECLASSES = Resource("storage.k8s.io", "v1", "storageclasses", namespaced=False)


def claim_ref(claim: Obj) -> Obj:
    """The ObjectReference a PV's claimRef holds (GetReference of the claim)."""
    meta = claim.get("metadata") or {}
    return {"kind": "PersistentVolumeClaim", "namespace": meta.get("namespace", ""), "name": meta.get("name", ""),
            "uid": meta.get("uid", ""), "apiVersion": "v1", "resourceVersion": meta.get("resourceVersion", "")}


def with_phase(volume: Obj, phase: str, clock: Clock, *, reason: str = "", message: str = "") -> Obj:
    """`volume` with status.phase set; lastPhaseTransitionTime moves only when the phase does."""
    status = dict(volume.get("status") or {})
    if status.get("phase") != phase:
        status["lastPhaseTransitionTime"] = now_text(clock)
    status["phase"] = phase
    for key, value in (("reason", reason), ("message", message)):
        if value:
            status[key] = value
        else:
            status.pop(key, None)
    return {**volume, "status": status}
