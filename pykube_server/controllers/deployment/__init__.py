"""The deployment controller: rolls a Deployment's pod template out through ReplicaSets.

Each version of the template gets its own ReplicaSet, named `<deployment>-<pod-template-hash>`
with the hash label added to its selector and template; `deployment.kubernetes.io/revision`
numbers them, and desired-replicas/max-replicas record the sizes they were scaled for (which
proportional scaling reads back). RollingUpdate scales the new ReplicaSet up within maxSurge
and the old ones down within maxUnavailable; Recreate scales the old ones to zero and waits for
their pods to be gone first. Progress is reported with upstream's Progressing reasons and
deadline, and availability with the Available condition.

Modules: `hashing` (template hash and template equality), `rollout` (pure arithmetic and
status), `controller` (the reconcile loop and its writes), `handlers` (event mapping, wiring).
"""

from __future__ import annotations

from pykube_server.controllers.deployment.handlers import deployment_controller

__all__ = ["deployment_controller"]
