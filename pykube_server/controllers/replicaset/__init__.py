"""The ReplicaSet and ReplicationController controllers: keep `spec.replicas` pods alive.

One module serves both kinds, as upstream's `pkg/controller/replicaset` does (the replication
manager is the same loop with a different `Kind`). A sync, level-triggered:

1. claim pods: adopt orphans the selector matches (strategic-merge patch adding our
   controllerRef) and release owned pods that stopped matching (patch deleting it);
2. if the *expectations* for this key are satisfied, create or delete the difference. Creates
   go out in slow-start batches (1, 2, 4, ...; at most 500 per sync) with generateName
   `<owner>-`; deletes pick the pods upstream's `ActivePodsWithRanks` ranks lowest;
3. write `status` (replicas, fullyLabeledReplicas, readyReplicas, availableReplicas,
   observedGeneration, and a ReplicaFailure condition when creating or deleting failed).

Why expectations: the informer lags our own writes. After creating 3 pods, a sync running
before the watch delivered them would see 0 and create 3 more. So each sync records how many
creations (and which deletions) it expects; pod events lower the count, and `manage` runs only
once they are all observed (or after 5 minutes, in case an event was lost).

Events carry upstream's reasons and messages (SuccessfulCreate "Created pod: x", SuccessfulDelete
"Deleted pod: x", FailedCreate, FailedDelete) from `replicaset-controller` /
`replication-controller`. The claim helpers here are shared with the deployment controller.
"""

from __future__ import annotations

from pykube_server.controllers.replicaset.controller import (
    REPLICASET, REPLICATIONCONTROLLER, REPLICATIONCONTROLLERS, Kind, RecordingController, ReplicaSetReconciler,
    replicaset_controller, replicationcontroller_controller)

__all__ = ["REPLICASET", "REPLICATIONCONTROLLER", "REPLICATIONCONTROLLERS", "Kind", "RecordingController",
           "ReplicaSetReconciler", "replicaset_controller", "replicationcontroller_controller"]
