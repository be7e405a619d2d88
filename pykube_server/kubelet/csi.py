"""The storage seam, shaped like CSI's Node service, and the built-in `local-path` driver.

Why: the real kubelet mounts PersistentVolumes of out-of-tree storage through a CSI driver's
node plugin, in two steps per volume: NodeStageVolume once per node into a global staging
path (`plugins/kubernetes.io/csi/<driver>/<sha256(volume handle)>/globalmount`), then
NodePublishVolume once per pod into the pod's target path
(`pods/<uid>/volumes/kubernetes.io~csi/<pv>/mount`), undone by NodeUnpublishVolume when the pod
goes and NodeUnstageVolume when the last pod using it on the node went. A driver registers with
the kubelet, which then lists it in the node's CSINode object (`spec.drivers[]`: name, nodeID
from NodeGetInfo, topologyKeys) so the scheduler and provisioners know where it runs.

`LocalPathDriver` (`local-path.pykube.io`, the name the controller manager's local-path
provisioner provisions under) keeps each volume a directory on this machine: staging makes sure
the directory exists (as hostPath `DirectoryOrCreate` would) and links the staging path to it;
publishing links the pod's target path to the staged directory. The links stand in for the
bind mounts a real driver makes on the host, so nothing is mounted outside containers; the
process runtime's shim binds the target (following the link) into the container.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

LOCAL_PATH_DRIVER = "local-path.pykube.io"
HOSTNAME_TOPOLOGY_KEY = "kubernetes.io/hostname"


class CSIError(Exception):
    """A node operation failed; the message ends up in the pod's FailedMount event."""


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """NodeGetInfo's answer."""

    node_id: str
    topology: Mapping[str, str] = field(default_factory=dict)
    max_volumes: int = 0
    """0: no limit (CSINode's `allocatable.count` is then left out)."""


@runtime_checkable
class CSINodePlugin(Protocol):
    """CSI's Node service, trimmed to what the kubelet calls. Every call is idempotent."""

    name: str

    async def node_get_info(self) -> NodeInfo: ...

    async def node_stage_volume(self, volume_id: str, staging_path: Path, attributes: Mapping[str, str]) -> None:
        """Make the volume available on this node at `staging_path`."""

    async def node_unstage_volume(self, volume_id: str, staging_path: Path) -> None: ...

    async def node_publish_volume(self, volume_id: str, staging_path: Path, target_path: Path, *,
                                  read_only: bool, attributes: Mapping[str, str]) -> None:
        """Make the staged volume appear at the pod's `target_path`."""

    async def node_unpublish_volume(self, volume_id: str, target_path: Path) -> None: ...


def staging_path(root: Path, driver: str, volume_id: str) -> Path:
    """Where the kubelet asks a driver to stage a volume (the real kubelet's layout)."""
    digest = hashlib.sha256(volume_id.encode()).hexdigest()
    return root / "plugins" / "kubernetes.io" / "csi" / driver / digest / "globalmount"


def target_path(root: Path, pod_uid: str, pv_name: str) -> Path:
    return root / "pods" / pod_uid / "volumes" / "kubernetes.io~csi" / pv_name / "mount"


def _link(link: Path, to: Path) -> None:
    """`link` -> `to`, replaced atomically when it pointed elsewhere."""
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and os.readlink(link) == str(to):
        return
    tmp = link.with_name(link.name + ".tmp")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(to)
    os.replace(tmp, link)


def _unlink(link: Path) -> None:
    if link.is_symlink() or link.is_file():
        link.unlink()
    for parent in (link.parent, link.parent.parent):  # the per-volume directories the kubelet made
        try:
            parent.rmdir()
        except OSError:
            break


class LocalPathDriver:
    """Volumes as directories on this machine (`volumeAttributes.path`, or the volume id)."""

    name = LOCAL_PATH_DRIVER

    def __init__(self, node_name: str) -> None:
        self.node_name = node_name

    async def node_get_info(self) -> NodeInfo:
        return NodeInfo(self.node_name, {HOSTNAME_TOPOLOGY_KEY: self.node_name})

    @staticmethod
    def _source(volume_id: str, attributes: Mapping[str, str]) -> Path:
        path = attributes.get("path") or volume_id
        if not os.path.isabs(path):
            raise CSIError(f"rpc error: code = InvalidArgument desc = volume {volume_id}: path {path!r} is not absolute")
        return Path(path)

    async def node_stage_volume(self, volume_id: str, staging_path: Path, attributes: Mapping[str, str]) -> None:
        source = self._source(volume_id, attributes)

        def stage() -> None:
            if not source.is_dir():
                if source.exists():
                    raise CSIError(f"rpc error: code = FailedPrecondition desc = {source} is not a directory")
                source.mkdir(mode=0o777, parents=True, exist_ok=True)
                os.chmod(source, 0o777)
            _link(staging_path, source)
        await asyncio.to_thread(stage)

    async def node_unstage_volume(self, volume_id: str, staging_path: Path) -> None:
        await asyncio.to_thread(_unlink, staging_path)

    async def node_publish_volume(self, volume_id: str, staging_path: Path, target_path: Path, *,
                                  read_only: bool, attributes: Mapping[str, str]) -> None:
        if not staging_path.is_symlink():
            raise CSIError(f"rpc error: code = FailedPrecondition desc = volume {volume_id} is not staged "
                           f"at {staging_path}")
        await asyncio.to_thread(_link, target_path, Path(os.readlink(staging_path)))

    async def node_unpublish_volume(self, volume_id: str, target_path: Path) -> None:
        await asyncio.to_thread(_unlink, target_path)


def node_driver_entry(plugin_name: str, info: NodeInfo) -> dict[str, object]:
    """One `CSINode.spec.drivers[]` item, as the kubelet's plugin registration writes it."""
    entry: dict[str, object] = {"name": plugin_name, "nodeID": info.node_id}
    if info.topology:
        entry["topologyKeys"] = sorted(info.topology)
    if info.max_volumes:
        entry["allocatable"] = {"count": info.max_volumes}
    return entry
