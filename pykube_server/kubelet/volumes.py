"""The kubelet's volume manager: each pod's volumes as directories on this machine.

Why: a container that reads `/etc/config/key` must find the ConfigMap's value there, as on a
real node. Before a pod's sandbox and containers start, `setup(pod)` materialises every volume
under `<root>/pods/<uid>/volumes/<plugin>/<name>` (the real kubelet's layout, e.g.
`kubernetes.io~configmap`), and `container_mounts` turns a container's `volumeMounts` into
`Mount(host_path, container_path, read_only)` for the runtime to bind (see runtimes/shim.py).

* emptyDir: a directory (mode 0777) that lives as long as the pod; `medium: Memory` stays a
  directory (no tmpfs).
* configMap, secret, downwardAPI, projected: files through the atomic writer
  (`volumes_atomic.py`), always mounted read-only, as the real kubelet mounts them. A missing
  non-optional source keeps the pod in ContainerCreating with the kubelet's FailedMount event.
  Contents are refreshed on the pod worker's syncs (at most every `REFRESH_SECONDS`), so an
  edited ConfigMap shows up in running containers (subPath mounts keep the old file, as on a
  real node).
* projected serviceAccountToken: a token from `POST .../serviceaccounts/<sa>/token` bound to
  the pod, renewed after 80% of its lifetime (or 24 h). When the API server lacks the
  TokenRequest API the file is left out and the pod worker records one Warning event.
* hostPath: the host path itself, with the `type` checks (DirectoryOrCreate, Directory,
  FileOrCreate, File, Socket, CharDevice, BlockDevice) and the kubelet's messages.
* persistentVolumeClaim: the claim must be Bound to a PV whose `hostPath` or `local.path` is
  used; anything else keeps the pod in ContainerCreating with the real "Unable to attach or
  mount volumes" event. A `csi` PV, and a PV the local-path provisioner made (annotation
  `pv.kubernetes.io/provisioned-by` naming a registered driver), go through that CSI driver's
  node plugin (`csi.py`): staged once per node, published into the pod's
  `volumes/kubernetes.io~csi/<pv>/mount`, unpublished by `unpublish(uid)` when the pod goes
  and unstaged when no pod of the node uses it any more.

`cleanup(uid)` removes the pod's directory (emptyDir data goes with the pod); hostPath and PV
paths are never touched.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pykube_server.api import errors
from pykube_server.api.types import Obj
from pykube_server.client.clock import REAL_CLOCK, Clock
from pykube_server.client.rest import (
    CONFIGMAPS, PERSISTENTVOLUMECLAIMS, PERSISTENTVOLUMES, SECRETS, SERVICEACCOUNTS, Client,
)
from pykube_server.kubelet import csi, volumes_atomic
from pykube_server.kubelet.env import expand
from pykube_server.kubelet.runtime import Mount
from pykube_server.kubelet.volumes_atomic import FileProjection, PayloadError
from pykube_server.kubelet.volumes_sources import (
    DEFAULT_MODE, VolumeError, aggregate, configmap_payload, downward_payload, secret_payload,
)

log = logging.getLogger(__name__)

REFRESH_SECONDS = 10.0
"""How often a running pod's configMap/secret/downwardAPI/projected contents are re-read."""
TOKEN_REFRESH_FRACTION = 0.8
TOKEN_MAX_AGE_SECONDS = 24 * 3600.0
TOKEN_API_RETRY_SECONDS = 60.0

PLUGIN_DIRS = {"emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
               "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
               "projected": "kubernetes.io~projected"}
READ_ONLY_PLUGINS = frozenset({"configMap", "secret", "downwardAPI", "projected"})
FILE_TYPES = ((stat.S_ISDIR, "Directory"), (stat.S_ISREG, "File"), (stat.S_ISSOCK, "Socket"),
              (stat.S_ISCHR, "CharDevice"), (stat.S_ISBLK, "BlockDevice"))
HOSTPATH_EXPECT = {"Directory": "directory", "File": "file", "Socket": "socket file",
                   "CharDevice": "character device", "BlockDevice": "block device"}


class ProcessError(Exception):
    """A volume the kubelet could not even add to its desired state (a PVC problem)."""


class MountError(Exception):
    """A container's volumeMounts cannot be prepared (reported as CreateContainerConfigError)."""


@dataclass(frozen=True, slots=True)
class MountedVolume:
    name: str
    kind: str
    path: str
    read_only: bool = False


@dataclass
class SetupResult:
    volumes: dict[str, MountedVolume] = field(default_factory=dict)
    mount_failures: list[tuple[str, str]] = field(default_factory=list)
    """(volume, message) for `MountVolume.SetUp failed for volume "<volume>" : <message>`."""
    process_failures: list[tuple[str, str]] = field(default_factory=list)
    """(volume, message) for volumes that could not be processed (PVC problems)."""
    blocking: bool = False
    """True when a failing volume was never set up: the pod's containers must wait."""
    token_unavailable: list[str] = field(default_factory=list)
    """Projected volumes whose token file was left out because the API lacks TokenRequest."""

    def attach_message(self, spec_order: Iterable[str]) -> str:
        """The kubelet's `Unable to attach or mount volumes: ...` text for processing failures."""
        failed = {n for n, _ in self.mount_failures} | {n for n, _ in self.process_failures}
        unmounted = [n for n in spec_order if n in failed]
        unprocessed = [n for n, _ in self.process_failures]
        return (f"Unable to attach or mount volumes: unmounted volumes=[{' '.join(unmounted)}], unattached "
                f"volumes=[], failed to process volumes=[{' '.join(unprocessed)}]: "
                + "; ".join(m for _, m in self.process_failures))


@dataclass
class _Token:
    token: bytes
    refresh_at: float


def _file_type(path: str) -> str:
    mode = os.stat(path).st_mode
    for test, name in FILE_TYPES:
        if test(mode):
            return name
    raise OSError("only recognise file, directory, socket, block device and character device")


def check_host_path(path: str, type_: str) -> None:
    """hostPath `type` semantics, creating what the *OrCreate types ask for; raises VolumeError."""
    if not type_:
        return
    if type_ == "DirectoryOrCreate" and not os.path.exists(path):
        os.makedirs(path, mode=0o755, exist_ok=True)
    elif type_ == "FileOrCreate" and not os.path.exists(path):
        try:
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))
        except OSError as exc:
            raise VolumeError(f"open {path}: {exc.strerror.lower() if exc.strerror else exc}") from None
    expected = {"DirectoryOrCreate": "Directory", "FileOrCreate": "File"}.get(type_, type_)
    if expected not in HOSTPATH_EXPECT:
        raise VolumeError(f"{type_} is an invalid volume type")
    if not os.path.exists(path):
        raise VolumeError(f"hostPath {path} doesn't exist")
    what = HOSTPATH_EXPECT[expected]
    try:
        actual = _file_type(path)
    except OSError as exc:
        raise VolumeError(f"hostPath type check failed, {path} is not a {what}, unable to determine its type: "
                          f"{exc}") from None
    if actual != expected:
        raise VolumeError(f"hostPath type check failed: {path} is not a {what}, it's a {actual}")


def volume_kind(volume: Obj) -> str:
    for key in volume:
        if key != "name":
            return key
    return "emptyDir"


class VolumeManager:
    """One node's volumes. `client` reads ConfigMaps, Secrets, PVCs and PVs and requests tokens."""

    def __init__(self, root: Path, client: Client, *, clock: Clock = REAL_CLOCK,
                 allocatable: Mapping[str, str] | None = None,
                 csi_drivers: Mapping[str, csi.CSINodePlugin] | None = None) -> None:
        self.root = Path(root)
        self.csi_drivers = dict(csi_drivers or {})
        self._published: dict[str, dict[str, tuple[str, str, Path, Path]]] = {}
        """Per pod uid, per PV: (driver, volume id, staging path, target path)."""
        self._staged: dict[tuple[str, str], set[str]] = {}
        """Per (driver, volume id) staged on this node: the pods it is published to."""
        self.client = client
        self.clock = clock
        self.allocatable = dict(allocatable or {})
        self._last: dict[str, tuple[float, SetupResult]] = {}
        self._ready: dict[str, set[str]] = {}
        """Per pod uid: volumes set up at least once (a later failure does not block them)."""
        self._tokens: dict[tuple[str, str, str, int], _Token] = {}
        self._token_api_missing_until = -1.0
        """While the API server lacks TokenRequest, ask again only after TOKEN_API_RETRY_SECONDS."""

    def pod_dir(self, uid: str) -> Path:
        return self.root / "pods" / uid

    def volume_dir(self, uid: str, kind: str, name: str) -> Path:
        return self.pod_dir(uid) / "volumes" / PLUGIN_DIRS[kind] / name

    # --- setup -------------------------------------------------------------------------------
    async def setup(self, pod: Obj, *, force: bool = False) -> SetupResult:
        """Make every volume of `pod` present and current; never raises for a volume's failure."""
        uid = pod["metadata"]["uid"]
        now = self.clock.now()
        last = self._last.get(uid)
        if last is not None and not force and not last[1].blocking and now - last[0] < REFRESH_SECONDS:
            return last[1]
        result = SetupResult()
        ready = self._ready.setdefault(uid, set())
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            name = volume.get("name", "")
            try:
                mounted = await self._setup_one(pod, volume, result)
            except ProcessError as exc:
                result.process_failures.append((name, str(exc)))
            except (VolumeError, PayloadError) as exc:
                result.mount_failures.append((name, str(exc)))
            except OSError as exc:
                result.mount_failures.append((name, f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")))
            else:
                result.volumes[name] = mounted
                ready.add(name)
                continue
            if name not in ready:
                result.blocking = True
            elif volume_kind(volume) in PLUGIN_DIRS:  # keep the last good contents mounted
                kind = volume_kind(volume)
                result.volumes[name] = MountedVolume(name, kind, str(self.volume_dir(uid, kind, name)),
                                                     kind in READ_ONLY_PLUGINS)
        self._last[uid] = (now, result)
        return result

    async def _setup_one(self, pod: Obj, volume: Obj, result: SetupResult) -> MountedVolume:
        uid, name, kind = pod["metadata"]["uid"], volume.get("name", ""), volume_kind(volume)
        source = volume.get(kind) or {}
        if kind == "hostPath":
            check_host_path(source.get("path", ""), source.get("type") or "")
            return MountedVolume(name, kind, source.get("path", ""))
        if kind == "persistentVolumeClaim":
            path = await self._claim_path(pod, source, read_only=bool(source.get("readOnly")))
            return MountedVolume(name, kind, path, bool(source.get("readOnly")))
        if kind not in PLUGIN_DIRS:
            raise VolumeError(f'volume type "{kind}" is not supported by the pykube kubelet')
        target = self.volume_dir(uid, kind, name)
        if kind == "emptyDir":
            if not target.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                target.chmod(0o777)
        else:
            payload = await self._payload(pod, kind, name, source, result)
            volumes_atomic.write(target, payload)
        return MountedVolume(name, kind, str(target), kind in READ_ONLY_PLUGINS)

    async def _get(self, resource: object, namespace: str, name: str) -> Obj | None:
        try:
            return await self.client.get(resource, name, namespace=namespace)  # type: ignore[arg-type]
        except errors.NotFound:
            return None

    async def _payload(self, pod: Obj, kind: str, name: str, source: Obj,
                       result: SetupResult) -> dict[str, FileProjection]:
        ns = pod["metadata"]["namespace"]
        if kind == "configMap":
            return configmap_payload(source, await self._get(CONFIGMAPS, ns, source.get("name", "")))
        if kind == "secret":
            return secret_payload(source, await self._get(SECRETS, ns, source.get("secretName", "")))
        if kind == "downwardAPI":
            return downward_payload(source, pod, allocatable=self.allocatable)
        return await self._projected(pod, name, source, result)

    async def _projected(self, pod: Obj, name: str, source: Obj, result: SetupResult) -> dict[str, FileProjection]:
        ns = pod["metadata"]["namespace"]
        mode = source.get("defaultMode", DEFAULT_MODE)
        payload: dict[str, FileProjection] = {}
        errs: list[str] = []
        for item in source.get("sources") or []:
            try:
                if item.get("configMap") is not None:
                    src = item["configMap"]
                    payload.update(configmap_payload(src, await self._get(CONFIGMAPS, ns, src.get("name", "")),
                                                     default_mode=mode))
                elif item.get("secret") is not None:
                    src = item["secret"]
                    payload.update(secret_payload(src, await self._get(SECRETS, ns, src.get("name", "")),
                                                  name_field="name", default_mode=mode))
                elif item.get("downwardAPI") is not None:
                    payload.update(downward_payload(item["downwardAPI"], pod, allocatable=self.allocatable,
                                                    default_mode=mode))
                elif item.get("serviceAccountToken") is not None:
                    src = item["serviceAccountToken"]
                    token = await self._token(pod, src)
                    if token is None:
                        result.token_unavailable.append(name)
                    else:
                        payload[src.get("path", "token")] = FileProjection(token, int(mode) & 0o7777)
                elif item.get("clusterTrustBundle") is not None:
                    errs.append("clusterTrustBundle projections are not supported by the pykube kubelet")
            except VolumeError as exc:
                errs.append(str(exc))
        if errs:
            raise VolumeError(aggregate(errs))
        return payload

    async def _token(self, pod: Obj, source: Obj) -> bytes | None:
        """A bound token for the pod's ServiceAccount; None when the API has no TokenRequest."""
        meta, spec = pod["metadata"], pod.get("spec") or {}
        sa = spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
        audience = source.get("audience") or ""
        expiration = int(source.get("expirationSeconds") or 3600)
        key = (meta["uid"], sa, audience, expiration)
        now = self.clock.now()
        cached = self._tokens.get(key)
        if cached is not None and now < cached.refresh_at:
            return cached.token
        if now < self._token_api_missing_until:
            return cached.token if cached is not None else None
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                "spec": {"audiences": [audience] if audience else [], "expirationSeconds": expiration,
                         "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"],
                                            "uid": meta["uid"]}}}
        try:
            answer = await self.client.create(SERVICEACCOUNTS, body, namespace=meta["namespace"], name=sa,
                                              subresource="token")
        except errors.NotFound as exc:
            if (exc.details or {}).get("kind") == "serviceaccounts":
                raise VolumeError(f"failed to fetch token: {exc.message}") from None
            self._token_api_missing_until = now + TOKEN_API_RETRY_SECONDS
            if cached is not None:
                return cached.token
            return None
        except errors.StatusError as exc:
            if cached is not None:  # keep serving the old token until it expires, as the kubelet does
                return cached.token
            raise VolumeError(f"failed to fetch token: {exc.message}") from None
        status = answer.get("status") or {}
        ttl = float(expiration)
        stamp = status.get("expirationTimestamp")
        if stamp:
            try:
                ttl = max(0.0, datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
                          - self.clock.wall().timestamp())
            except ValueError:
                pass
        token = str(status.get("token", "")).encode()
        self._tokens[key] = _Token(token, now + min(ttl * TOKEN_REFRESH_FRACTION, TOKEN_MAX_AGE_SECONDS))
        return token

    async def _claim_path(self, pod: Obj, source: Obj, *, read_only: bool = False) -> str:
        ns, claim = pod["metadata"]["namespace"], source.get("claimName", "")
        try:
            pvc = await self.client.get(PERSISTENTVOLUMECLAIMS, claim, namespace=ns)
        except errors.StatusError as exc:
            raise ProcessError(f"error processing PVC {ns}/{claim}: failed to fetch PVC from API server: "
                               f"{exc.message}") from None
        if pvc["metadata"].get("deletionTimestamp"):
            raise ProcessError(f"error processing PVC {ns}/{claim}: PVC is being deleted")
        if (pvc.get("status") or {}).get("phase") != "Bound":
            raise ProcessError(f"error processing PVC {ns}/{claim}: PVC is not bound")
        pv_name = (pvc.get("spec") or {}).get("volumeName") or ""
        if not pv_name:
            raise ProcessError(f"error processing PVC {ns}/{claim}: PVC has empty pvc.Spec.VolumeName")
        try:
            pv = await self.client.get(PERSISTENTVOLUMES, pv_name)
        except errors.StatusError as exc:
            raise ProcessError(f"error processing PVC {ns}/{claim}: failed to fetch PV {pv_name} from API server: "
                               f"{exc.message}") from None
        pv_spec = pv.get("spec") or {}
        ref = pv_spec.get("claimRef")
        if ref is None:
            raise ProcessError(f"error processing PVC {ns}/{claim}: found PV object {pv_name} but it has a nil "
                               f"pv.Spec.ClaimRef indicating it is not yet bound to the claim")
        if ref.get("uid") != pvc["metadata"].get("uid"):
            raise ProcessError(f"error processing PVC {ns}/{claim}: found PV object {pv_name} but its "
                               f"pv.Spec.ClaimRef.UID {ref.get('uid', '')} does not point to claim.UID "
                               f"{pvc['metadata'].get('uid', '')}")
        via_csi = self._csi_source(pv)
        if via_csi is not None:
            return await self._publish(pod, pv_name, read_only, *via_csi)
        if pv_spec.get("hostPath"):
            host = pv_spec["hostPath"]
            check_host_path(host.get("path", ""), host.get("type") or "")
            return str(host.get("path", ""))
        if pv_spec.get("local"):
            path = str(pv_spec["local"].get("path", ""))
            if not os.path.exists(path):
                raise VolumeError(f"path \"{path}\" does not exist")
            return path
        kind = next((k for k in pv_spec if k not in _PV_COMMON), "unknown")
        raise VolumeError(f'volume type "{kind}" of PersistentVolume {pv_name} is not supported by the pykube kubelet')

    # --- CSI --------------------------------------------------------------------------------
    def _csi_source(self, pv: Obj) -> tuple[str, str, dict[str, str]] | None:
        """(driver, volume id, attributes) when `pv` is a CSI driver's; None for other types."""
        spec = pv.get("spec") or {}
        if spec.get("csi"):
            src = spec["csi"]
            return str(src.get("driver", "")), str(src.get("volumeHandle", "")), dict(src.get("volumeAttributes") or {})
        by = ((pv.get("metadata") or {}).get("annotations") or {}).get("pv.kubernetes.io/provisioned-by", "")
        if by in self.csi_drivers and spec.get("hostPath"):  # local-path's PVs: its driver stages them
            path = str(spec["hostPath"].get("path", ""))
            return by, path, {"path": path}
        return None

    async def _publish(self, pod: Obj, pv_name: str, read_only: bool, driver: str, volume_id: str,
                       attributes: dict[str, str]) -> str:
        """NodeStageVolume (once per node) then NodePublishVolume (once per pod); the target path."""
        uid = pod["metadata"]["uid"]
        target = csi.target_path(self.root, uid, pv_name)
        if pv_name in self._published.get(uid, {}):
            return str(target)
        plugin = self.csi_drivers.get(driver)
        if plugin is None:
            raise VolumeError(f"kubernetes.io/csi: attacher.MountDevice failed to create newCsiDriverClient: "
                              f"driver name {driver} not found in the list of registered CSI drivers")
        staging = csi.staging_path(self.root, driver, volume_id)
        users = self._staged.get((driver, volume_id))
        try:
            if users is None:
                await plugin.node_stage_volume(volume_id, staging, attributes)
                users = self._staged[(driver, volume_id)] = set()
            await plugin.node_publish_volume(volume_id, staging, target, read_only=read_only, attributes=attributes)
        except csi.CSIError as exc:
            raise VolumeError(str(exc)) from None
        users.add(uid)
        self._published.setdefault(uid, {})[pv_name] = (driver, volume_id, staging, target)
        return str(target)

    async def unpublish(self, uid: str) -> None:
        """NodeUnpublishVolume for each CSI volume of the pod; NodeUnstageVolume for those no
        other pod of this node uses."""
        for driver, volume_id, staging, target in self._published.pop(uid, {}).values():
            plugin = self.csi_drivers.get(driver)
            if plugin is None:
                continue
            try:
                await plugin.node_unpublish_volume(volume_id, target)
                users = self._staged.get((driver, volume_id), set())
                users.discard(uid)
                if not users:
                    self._staged.pop((driver, volume_id), None)
                    await plugin.node_unstage_volume(volume_id, staging)
            except (csi.CSIError, OSError) as exc:
                log.warning("pod %s: unmounting CSI volume %s failed: %s", uid, volume_id, exc)

    # --- containers --------------------------------------------------------------------------
    def container_mounts(self, container: Obj, volumes: Mapping[str, MountedVolume],
                         env: Mapping[str, str]) -> tuple[Mount, ...]:
        """The container's volumeMounts as host bind mounts (subPath and subPathExpr resolved)."""
        out = []
        cname = container.get("name", "")
        for vm in container.get("volumeMounts") or []:
            vol = volumes.get(vm.get("name", ""))
            if vol is None:
                raise MountError(f'cannot find volume "{vm.get("name", "")}" to mount into container "{cname}"')
            host = vol.path
            sub = vm.get("subPath") or ""
            if vm.get("subPathExpr"):
                sub = expand(vm["subPathExpr"], dict(env))
            if sub:
                host = self._sub_path(vol, sub, vm, cname)
            out.append(Mount(host, vm.get("mountPath", ""), bool(vm.get("readOnly")) or vol.read_only))
        return tuple(out)

    @staticmethod
    def _sub_path(vol: MountedVolume, sub: str, vm: Obj, cname: str) -> str:
        failed = f'failed to prepare subPath for volumeMount "{vm.get("name", "")}" of container "{cname}"'
        if sub.startswith("/") or ".." in sub.split("/"):
            raise MountError(failed)
        full = os.path.join(vol.path, sub)
        if not os.path.lexists(full):
            try:
                os.makedirs(full, mode=stat.S_IMODE(os.stat(vol.path).st_mode), exist_ok=True)
            except OSError:
                raise MountError(failed) from None
        resolved, base = os.path.realpath(full), os.path.realpath(vol.path)
        if resolved != base and not resolved.startswith(base + os.sep):
            raise MountError(f'subpath "{resolved}" not within volume path "{base}"')
        return resolved

    # --- teardown ----------------------------------------------------------------------------
    def forget(self, uid: str) -> None:
        self._last.pop(uid, None)
        self._ready.pop(uid, None)
        for key in [k for k in self._tokens if k[0] == uid]:
            del self._tokens[key]

    def cleanup(self, uid: str) -> None:
        """Remove the pod's volume directories (never hostPath or PV paths, which live elsewhere)."""
        self.forget(uid)
        shutil.rmtree(self.pod_dir(uid), ignore_errors=True)

    def cleanup_orphans(self, keep: set[str]) -> None:
        pods = self.root / "pods"
        if not pods.is_dir():
            return
        for entry in pods.iterdir():
            if entry.name not in keep:
                log.info("removing volumes of orphaned pod %s", entry.name)
                self.cleanup(entry.name)


_PV_COMMON = frozenset({"accessModes", "capacity", "claimRef", "persistentVolumeReclaimPolicy", "storageClassName",
                        "mountOptions", "volumeMode", "nodeAffinity", "volumeAttributesClassName"})
