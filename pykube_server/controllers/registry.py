"""CONTROLLERS: every controller by its kube-controller-manager name, and `--controllers` parsing.

A literal table, checked at import: adding a controller is one module plus one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from pykube_server.controllers.framework import Context, Controller

ControllerFactory = Callable[[Context], Controller]

CONTROLLERS: dict[str, ControllerFactory] = {}
"""Filled below; names are kube-controller-manager's (`namespace-controller`, ...)."""

DISABLED_BY_DEFAULT: frozenset[str] = frozenset()


def select(spec: str) -> list[str]:
    """kube's `--controllers`: `*` = every controller on by default, `name` enables one,
    `-name` disables one; the rest of the list is applied in order."""
    chosen: set[str] = set()
    for item in (part.strip() for part in spec.split(",") if part.strip()):
        if item == "*":
            chosen |= set(CONTROLLERS) - DISABLED_BY_DEFAULT
        elif item.startswith("-"):
            chosen.discard(item[1:])
        elif item in CONTROLLERS:
            chosen.add(item)
        else:
            raise ValueError(f'"{item}" is not in the list of known controllers')
    return sorted(chosen)


def _register() -> None:
    """The table. Each import is the controller's module; nothing registers itself."""
    from pykube_server.controllers import garbagecollector, namespace, rootcacert, serviceaccount
    from pykube_server.controllers import serviceaccounttoken
    from pykube_server.controllers import cronjob, daemonset, job, statefulset, ttlafterfinished
    from pykube_server.controllers import deployment, replicaset
    from pykube_server.controllers import endpoints, endpointslice, endpointslicemirroring, servicelb
    from pykube_server.controllers import bootstrapsigner, clusterroleaggregation, csrapproving, csrsigning
    from pykube_server.controllers import disruption, nodelifecycle, podautoscaler, podgc, resourcequota
    from pykube_server.controllers.persistentvolume import binder, protection, provisioner
    from pykube_server.controllers import admissionpolicystatus

    entries: dict[str, ControllerFactory] = {
        "garbage-collector-controller": garbagecollector.create,
        "namespace-controller": namespace.create,
        "root-ca-certificate-publisher-controller": rootcacert.create,
        "serviceaccount-controller": serviceaccount.create,
        "serviceaccount-token-controller": serviceaccounttoken.create,
        "job-controller": job.JobReconciler.create,
        "cronjob-controller": cronjob.CronJobReconciler.create,
        "ttl-after-finished-controller": ttlafterfinished.TTLAfterFinishedReconciler.create,
        "statefulset-controller": statefulset.StatefulSetReconciler.create,
        "daemonset-controller": daemonset.DaemonSetReconciler.create,
        "replicaset-controller": replicaset.replicaset_controller,
        "replicationcontroller-controller": replicaset.replicationcontroller_controller,
        "deployment-controller": deployment.deployment_controller,
        "endpoints-controller": endpoints.create,
        "endpointslice-controller": endpointslice.create,
        "endpointslice-mirroring-controller": endpointslicemirroring.create,
        "service-lb-controller": servicelb.create,
        "clusterrole-aggregation-controller": clusterroleaggregation.create,
        "certificatesigningrequest-signing-controller": csrsigning.create,
        "certificatesigningrequest-approving-controller": csrapproving.create,
        "bootstrap-signer-controller": bootstrapsigner.create_signer,
        "token-cleaner-controller": bootstrapsigner.create_cleaner,
        "resourcequota-controller": resourcequota.create,
        "disruption-controller": disruption.create,
        "horizontal-pod-autoscaler-controller": podautoscaler.create,
        "pod-garbage-collector-controller": podgc.create,
        "node-lifecycle-controller": nodelifecycle.lifecycle_controller,
        "taint-eviction-controller": nodelifecycle.taint_eviction_controller,
        "persistentvolume-binder-controller": binder.create,
        "persistentvolume-protection-controller": protection.create_pv_protection,
        "persistentvolumeclaim-protection-controller": protection.create_pvc_protection,
        "local-path-provisioner": provisioner.create,
        "validatingadmissionpolicy-status-controller": admissionpolicystatus.create,
    }
    for name, factory in entries.items():
        if name in CONTROLLERS:
            raise ValueError(f"controller {name} registered twice")
        CONTROLLERS[name] = factory


_register()
