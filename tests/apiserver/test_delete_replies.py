"""DELETE replies with the deleted object for the kinds whose upstream store sets ReturnDeletedObject:
the generated clients type those replies as the kind, so a Status body fails to deserialize."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pykube_server.testing import local_cluster


def _delete_round_trip(kubeconfig: Path) -> tuple[str, str, str, str]:
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(kubeconfig))
    core, storage = client.CoreV1Api(api), client.StorageV1Api(api)
    core.create_namespaced_pod_template("default", {"metadata": {"name": "t"}, "template": {
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}})
    template = core.delete_namespaced_pod_template("t", "default")
    storage.create_csi_driver({"metadata": {"name": "d.example.com"}, "spec": {}})
    driver = storage.delete_csi_driver("d.example.com")
    core.create_persistent_volume({"metadata": {"name": "pv1"}, "spec": {
        "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "csi": {"driver": "d", "volumeHandle": "h"}}})
    pv = core.delete_persistent_volume("pv1")
    cm = core.create_namespaced_config_map("default", {"metadata": {"name": "c"}})
    status = core.delete_namespaced_config_map(cm.metadata.name, "default")
    return template.kind, driver.kind, pv.kind, status["kind"]


async def test_delete_returns_the_object_for_return_deleted_object_kinds(tmp_path: Path) -> None:
    async with local_cluster(tmp_path) as lc:
        kinds = await asyncio.to_thread(_delete_round_trip, lc.kubeconfig)
    assert kinds == ("PodTemplate", "CSIDriver", "PersistentVolume", "Status")
