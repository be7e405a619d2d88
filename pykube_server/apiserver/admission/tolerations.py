"""The `DefaultTolerationSeconds` admission plugin.

Every new pod tolerates the node-lifecycle taints `node.kubernetes.io/not-ready` and
`node.kubernetes.io/unreachable` (NoExecute) for 300 s unless it says otherwise, so a node that
stops reporting evicts its pods after five minutes rather than at once. kube adds the two
tolerations on create only, each unless the pod already tolerates that taint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pykube_server.apiserver.admission import CREATE, Attributes

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

DEFAULT_SECONDS = 300
TAINTS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


def tolerates(toleration: dict[str, Any], key: str) -> bool:
    """True when `toleration` already covers the NoExecute taint `key` (kube's ToleratesTaint
    with an empty value)."""
    if toleration.get("effect") not in (None, "", "NoExecute"):
        return False
    if toleration.get("key") not in (None, "", key):
        return False
    if not toleration.get("key") and toleration.get("operator") != "Exists":
        return False
    return toleration.get("operator") == "Exists" or not toleration.get("value")


class DefaultTolerationSeconds:
    name = "DefaultTolerationSeconds"

    def __init__(self, server: APIServer) -> None:
        pass

    async def admit(self, attributes: Attributes) -> None:
        if not attributes.is_("", "pods") or attributes.operation != CREATE or attributes.obj is None:
            return
        spec = attributes.obj.setdefault("spec", {})
        tolerations = spec.get("tolerations") or []
        for key in TAINTS:
            if not any(tolerates(t, key) for t in tolerations):
                tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute",
                                    "tolerationSeconds": DEFAULT_SECONDS})
        spec["tolerations"] = tolerations
