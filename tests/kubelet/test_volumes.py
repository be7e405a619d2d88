"""The volume manager: the atomic writer's layout, payload rules, hostPath types, PVCs, tokens,
container mounts, and the pod worker waiting in ContainerCreating for a missing ConfigMap.

Facts from the real kubelet (pkg/volume/util/atomic_writer.go, configmap/secret/projected and
hostpath plugins, the volume manager's desired-state populator): `..data` -> `..<UTC time>.<n>`
(mode 0755), one `name -> ..data/name` symlink per top-level path, default file mode 0644;
`configmap "x" not found`, `configmap references non-existent config key: k`,
`references non-existent secret key: k`; hostPath `doesn't exist` / `type check failed: ... is
not a directory, it's a File`; `error processing PVC ns/c: PVC is not bound` in an
`Unable to attach or mount volumes: unmounted volumes=[v], unattached volumes=[], failed to
process volumes=[v]: ...` event.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import os
import re
import socket
import stat
from pathlib import Path
from typing import Any

import pytest

from pykube_server.api import errors
from pykube_server.client.clock import FakeClock
from pykube_server.kubelet import volumes_atomic
from pykube_server.kubelet.context import IPAllocator, NodeContext
from pykube_server.kubelet.pod_workers import PodWorker
from pykube_server.kubelet.runtime import ContainerConfig, ContainerState, Mount, SandboxConfig
from pykube_server.kubelet.runtimes import mountpoints
from pykube_server.kubelet.runtimes.fake import FakeRuntime
from pykube_server.kubelet.runtimes.process import ProcessRuntime
from pykube_server.kubelet.volumes import MountError, VolumeManager, check_host_path
from pykube_server.kubelet.volumes_atomic import FileProjection
from pykube_server.kubelet.volumes_sources import (
    VolumeError, configmap_payload, downward_payload, format_map, secret_payload,
)

TS_DIR = re.compile(r"^\.\.\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}\.\d+$")


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class StubClient:
    """Objects by (plural, namespace, name); TokenRequest answers from `token_answer`."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.token_answer: dict[str, Any] | errors.StatusError | None = None
        self.token_requests: list[tuple[str, str, dict[str, Any]]] = []
        self.statuses: list[dict[str, Any]] = []

    def put(self, plural: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.objects[(plural, meta.get("namespace", ""), meta["name"])] = obj

    async def get(self, resource: Any, name: str, *, namespace: str = "", **kw: Any) -> dict[str, Any]:
        obj = self.objects.get((resource.plural, namespace if resource.namespaced else "", name))
        if obj is None:
            raise errors.NotFound(f'{resource.plural} "{name}" not found',
                                  details={"name": name, "kind": resource.plural})
        return copy.deepcopy(obj)

    async def create(self, resource: Any, body: dict[str, Any], *, namespace: str = "", name: str = "",
                     subresource: str = "", **kw: Any) -> dict[str, Any]:
        assert (resource.plural, subresource) == ("serviceaccounts", "token")
        self.token_requests.append((namespace, name, body))
        if isinstance(self.token_answer, errors.StatusError):
            raise self.token_answer
        assert self.token_answer is not None
        return self.token_answer

    async def patch(self, resource: Any, name: str, patch: dict[str, Any], **kw: Any) -> dict[str, Any]:
        self.statuses.append(copy.deepcopy(patch["status"]))
        return {}

    async def delete(self, resource: Any, name: str, **kw: Any) -> dict[str, Any]:
        return {}


class StubRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def event(self, obj: Any, type: str, reason: str, message: str, *, field_path: str = "") -> None:
        self.events.append((type, reason, message))


def make_pod(volumes: list[dict[str, Any]], mounts: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    container = {"name": "c", "image": "busybox", "volumeMounts": mounts or [],
                 "resources": {"limits": {"memory": "64Mi"}}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ns", "uid": "uid-1", "labels": {"app": "web", "tier": "a\"b"},
                         "annotations": {"note": "x"}},
            "spec": {"nodeName": "n1", "restartPolicy": "Always", "containers": [container], "volumes": volumes,
                     **spec},
            "status": {"phase": "Pending"}}


@pytest.fixture
def client() -> StubClient:
    return StubClient()


@pytest.fixture
def manager(tmp_path: Path, client: StubClient) -> VolumeManager:
    return VolumeManager(tmp_path / "node", client, clock=FakeClock())  # type: ignore[arg-type]


# --- the atomic writer ---------------------------------------------------------------------------
def test_atomic_writer_layout_modes_and_update(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    assert volumes_atomic.write(target, {"key": FileProjection(b"v1", 0o644),
                                         "dir/nested": FileProjection(b"n", 0o400)})
    data = os.readlink(target / "..data")
    assert TS_DIR.match(data), data
    assert stat.S_IMODE(os.stat(target / data).st_mode) == 0o755
    assert os.readlink(target / "key") == "..data/key" and os.readlink(target / "dir") == "..data/dir"
    assert (target / "key").read_bytes() == b"v1" and (target / "dir" / "nested").read_bytes() == b"n"
    assert stat.S_IMODE(os.stat(target / "dir" / "nested").st_mode) == 0o400
    assert sorted(p.name for p in target.iterdir()) == sorted(["..data", data, "key", "dir"])

    assert not volumes_atomic.write(target, {"key": FileProjection(b"v1", 0o644),
                                             "dir/nested": FileProjection(b"n", 0o400)})
    assert os.readlink(target / "..data") == data  # nothing changed, nothing rewritten

    assert volumes_atomic.write(target, {"key": FileProjection(b"v2", 0o644)})
    new = os.readlink(target / "..data")
    assert new != data and not (target / data).exists()  # the old version is gone
    assert (target / "key").read_bytes() == b"v2" and not os.path.lexists(target / "dir")


@pytest.mark.parametrize("path,message", [
    ("/abs", "invalid path: must be relative path: /abs"),
    ("a/../b", "invalid path: must not contain '..': a/../b"),
    ("..x", "invalid path: must not start with '..': ..x"),
])
def test_atomic_writer_refuses_bad_paths(tmp_path: Path, path: str, message: str) -> None:
    with pytest.raises(volumes_atomic.PayloadError, match=re.escape(message)):
        volumes_atomic.write(tmp_path / "v", {path: FileProjection(b"", 0o644)})


# --- payloads ------------------------------------------------------------------------------------
def test_configmap_payload_items_modes_binary_and_optional() -> None:
    cm = {"data": {"a": "1", "b": "2"}, "binaryData": {"bin": b64("\x00\x01")}}
    whole = configmap_payload({"name": "cm", "defaultMode": 0o600}, cm)
    assert whole == {"a": FileProjection(b"1", 0o600), "b": FileProjection(b"2", 0o600),
                     "bin": FileProjection(b"\x00\x01", 0o600)}
    items = configmap_payload({"name": "cm", "items": [{"key": "a", "path": "conf/a.txt", "mode": 0o400},
                                                       {"key": "b", "path": "b"}]}, cm)
    assert items == {"conf/a.txt": FileProjection(b"1", 0o400), "b": FileProjection(b"2", 0o644)}
    with pytest.raises(VolumeError, match=r"^configmap references non-existent config key: zz$"):
        configmap_payload({"name": "cm", "items": [{"key": "zz", "path": "z"}]}, cm)
    assert configmap_payload({"name": "cm", "optional": True, "items": [{"key": "zz", "path": "z"}]}, cm) == {}
    with pytest.raises(VolumeError, match=r'^configmap "gone" not found$'):
        configmap_payload({"name": "gone"}, None)
    assert configmap_payload({"name": "gone", "optional": True}, None) == {}


def test_secret_payload_decodes_and_reports_missing() -> None:
    secret = {"data": {"user": b64("admin"), "pass": b64("s3cret")}}
    assert secret_payload({"secretName": "s", "defaultMode": 0o400}, secret) == {
        "user": FileProjection(b"admin", 0o400), "pass": FileProjection(b"s3cret", 0o400)}
    with pytest.raises(VolumeError, match=r"^references non-existent secret key: nope$"):
        secret_payload({"secretName": "s", "items": [{"key": "nope", "path": "n"}]}, secret)
    with pytest.raises(VolumeError, match=r'^secret "s" not found$'):
        secret_payload({"secretName": "s"}, None)


def test_downward_api_payload() -> None:
    pod = make_pod([])
    source = {"items": [
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}},
        {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}},
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "app", "fieldRef": {"fieldPath": "metadata.labels['app']"}, "mode": 0o400},
        {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}},
    ]}
    out = downward_payload(source, pod, allocatable={})
    assert out["name"].data == b"p" and out["ns"].data == b"ns" and out["uid"].data == b"uid-1"
    assert out["labels"].data == b'app="web"\ntier="a\\"b"'
    assert out["app"] == FileProjection(b"web", 0o400)
    assert out["mem"].data == b"64" and out["name"].mode == 0o644
    assert format_map({}) == ""


# --- hostPath ------------------------------------------------------------------------------------
def test_host_path_types(tmp_path: Path) -> None:
    made = tmp_path / "made" / "deep"
    check_host_path(str(made), "DirectoryOrCreate")
    assert made.is_dir() and stat.S_IMODE(made.stat().st_mode) == 0o755
    file = tmp_path / "f.txt"
    check_host_path(str(file), "FileOrCreate")
    assert file.is_file()
    check_host_path(str(file), "File")
    check_host_path(str(tmp_path / "nothing"), "")  # no type: no checks
    with pytest.raises(VolumeError, match=f"^hostPath {tmp_path}/nothing doesn't exist$"):
        check_host_path(str(tmp_path / "nothing"), "Directory")
    with pytest.raises(VolumeError, match=f"^hostPath type check failed: {file} is not a directory, it's a File$"):
        check_host_path(str(file), "Directory")
    with pytest.raises(VolumeError, match=f"^hostPath type check failed: {made} is not a file, it's a Directory$"):
        check_host_path(str(made), "File")
    with pytest.raises(VolumeError, match="is not a socket file, it's a File$"):
        check_host_path(str(file), "Socket")
    sock_path = str(tmp_path / "s.sock")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(sock_path)
        check_host_path(sock_path, "Socket")
    check_host_path("/dev/null", "CharDevice")


# --- the manager -----------------------------------------------------------------------------------
async def test_setup_layout_missing_configmap_then_present(manager: VolumeManager, client: StubClient) -> None:
    pod = make_pod([{"name": "config", "configMap": {"name": "app", "defaultMode": 420}},
                    {"name": "scratch", "emptyDir": {}}])
    result = await manager.setup(pod)
    assert result.blocking and result.mount_failures == [("config", 'configmap "app" not found')]
    client.put("configmaps", {"metadata": {"name": "app", "namespace": "ns"}, "data": {"key": "hello"}})
    result = await manager.setup(pod)  # a blocking result is never served from the cache
    assert not result.blocking and not result.mount_failures
    config = Path(result.volumes["config"].path)
    assert config == manager.root / "pods" / "uid-1" / "volumes" / "kubernetes.io~configmap" / "config"
    assert (config / "key").read_text() == "hello" and result.volumes["config"].read_only
    scratch = Path(result.volumes["scratch"].path)
    assert scratch.name == "scratch" and scratch.parent.name == "kubernetes.io~empty-dir"
    assert stat.S_IMODE(scratch.stat().st_mode) == 0o777 and not result.volumes["scratch"].read_only

    client.put("configmaps", {"metadata": {"name": "app", "namespace": "ns"}, "data": {"key": "changed"}})
    assert (await manager.setup(pod)) is result  # within REFRESH_SECONDS: cached
    assert manager.clock.step(11) is None  # type: ignore[attr-defined]
    refreshed = await manager.setup(pod)
    assert (config / "key").read_text() == "changed" and refreshed is not result

    client.objects.clear()  # a source deleted later: the old contents stay mounted, the pod is not blocked
    manager.clock.step(11)  # type: ignore[attr-defined]
    later = await manager.setup(pod)
    assert not later.blocking and later.mount_failures and (config / "key").read_text() == "changed"

    (scratch / "data").write_text("x")
    manager.cleanup("uid-1")
    assert not (manager.root / "pods" / "uid-1").exists()


async def test_projected_sources_and_token(manager: VolumeManager, client: StubClient) -> None:
    client.put("configmaps", {"metadata": {"name": "cm", "namespace": "ns"}, "data": {"a": "1"}})
    client.put("secrets", {"metadata": {"name": "s", "namespace": "ns"}, "data": {"b": b64("2")}})
    client.token_answer = {"status": {"token": "tok-1", "expirationTimestamp": "2025-01-01T01:00:00Z"}}
    projected = {"defaultMode": 0o440, "sources": [
        {"configMap": {"name": "cm"}}, {"secret": {"name": "s", "items": [{"key": "b", "path": "sec/b"}]}},
        {"downwardAPI": {"items": [{"path": "podname", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        {"serviceAccountToken": {"path": "token", "audience": "vault", "expirationSeconds": 3600}}]}
    pod = make_pod([{"name": "all", "projected": projected}], serviceAccountName="robot")
    result = await manager.setup(pod)
    assert not result.mount_failures and not result.token_unavailable
    root = Path(result.volumes["all"].path)
    assert root.parent.name == "kubernetes.io~projected"
    assert {p.name for p in root.iterdir() if not p.name.startswith("..")} == {"a", "sec", "podname", "token"}
    assert (root / "sec" / "b").read_text() == "2" and (root / "token").read_text() == "tok-1"
    assert stat.S_IMODE(os.stat(root / "a").st_mode) == 0o440
    [(ns, sa, body)] = client.token_requests
    assert (ns, sa) == ("ns", "robot") and body["kind"] == "TokenRequest"
    assert body["spec"] == {"audiences": ["vault"], "expirationSeconds": 3600,
                            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "uid-1"}}

    clock: FakeClock = manager.clock  # type: ignore[assignment]
    client.token_answer = {"status": {"token": "tok-2", "expirationTimestamp": "2025-01-01T02:01:00Z"}}
    clock.step(60)
    await manager.setup(pod)
    assert len(client.token_requests) == 1  # fresh enough: not requested again
    clock.step(0.8 * 3600)
    await manager.setup(pod)
    assert len(client.token_requests) == 2 and (root / "token").read_text() == "tok-2"


async def test_token_api_missing_is_skipped_but_missing_account_fails(manager: VolumeManager,
                                                                        client: StubClient) -> None:
    pod = make_pod([{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}])
    client.token_answer = errors.NotFound("the server could not find the requested resource")
    result = await manager.setup(pod)
    assert result.token_unavailable == ["t"] and not result.blocking
    assert not (Path(result.volumes["t"].path) / "token").exists()
    manager.clock.step(11)  # type: ignore[attr-defined]
    await manager.setup(pod)
    assert len(client.token_requests) == 1  # the missing API is asked again only after a minute
    manager.forget("uid-1")
    manager.clock.step(60)  # type: ignore[attr-defined]
    client.token_answer = errors.NotFound('serviceaccounts "default" not found',
                                          details={"name": "default", "kind": "serviceaccounts"})
    result = await manager.setup(pod)
    assert result.blocking
    assert result.mount_failures == [("t", 'failed to fetch token: serviceaccounts "default" not found')]


async def test_host_path_and_claims(manager: VolumeManager, client: StubClient, tmp_path: Path) -> None:
    data = tmp_path / "pv-data"
    pod = make_pod([{"name": "host", "hostPath": {"path": str(tmp_path / "h"), "type": "DirectoryOrCreate"}},
                    {"name": "data", "persistentVolumeClaim": {"claimName": "claim", "readOnly": True}}])
    result = await manager.setup(pod)
    assert result.volumes["host"].path == str(tmp_path / "h") and (tmp_path / "h").is_dir()
    assert result.blocking and result.process_failures == [
        ("data", "error processing PVC ns/claim: failed to fetch PVC from API server: "
                 'persistentvolumeclaims "claim" not found')]
    client.put("persistentvolumeclaims", {"metadata": {"name": "claim", "namespace": "ns", "uid": "c-uid"},
                                          "spec": {}, "status": {"phase": "Pending"}})
    result = await manager.setup(pod)
    assert result.attach_message(["host", "data"]) == (
        "Unable to attach or mount volumes: unmounted volumes=[data], unattached volumes=[], failed to process "
        "volumes=[data]: error processing PVC ns/claim: PVC is not bound")
    client.put("persistentvolumeclaims", {"metadata": {"name": "claim", "namespace": "ns", "uid": "c-uid"},
                                          "spec": {"volumeName": "pv1"}, "status": {"phase": "Bound"}})
    client.put("persistentvolumes", {"metadata": {"name": "pv1"},
                                     "spec": {"claimRef": {"uid": "c-uid"},
                                              "hostPath": {"path": str(data), "type": "DirectoryOrCreate"}}})
    result = await manager.setup(pod)
    assert not result.blocking and result.volumes["data"].path == str(data) and result.volumes["data"].read_only
    manager.cleanup("uid-1")
    assert data.is_dir() and (tmp_path / "h").is_dir()  # host and PV paths are never removed


async def test_container_mounts_sub_paths_and_read_only(manager: VolumeManager, client: StubClient) -> None:
    client.put("configmaps", {"metadata": {"name": "app", "namespace": "ns"}, "data": {"key": "v"}})
    pod = make_pod([{"name": "config", "configMap": {"name": "app"}}, {"name": "scratch", "emptyDir": {}}])
    result = await manager.setup(pod)
    container = {"name": "c", "volumeMounts": [
        {"name": "config", "mountPath": "/etc/config"},
        {"name": "config", "mountPath": "/etc/key.conf", "subPath": "key"},
        {"name": "scratch", "mountPath": "/data", "readOnly": True},
        {"name": "scratch", "mountPath": "/logs", "subPathExpr": "$(POD_NAME)/logs"}]}
    mounts = manager.container_mounts(container, result.volumes, {"POD_NAME": "p"})
    config, scratch = result.volumes["config"].path, result.volumes["scratch"].path
    key_file = os.path.realpath(os.path.join(config, "key"))
    assert mounts == (Mount(config, "/etc/config", True), Mount(key_file, "/etc/key.conf", True),
                      Mount(scratch, "/data", True), Mount(os.path.join(scratch, "p", "logs"), "/logs", False))
    assert os.path.isdir(os.path.join(scratch, "p", "logs"))
    with pytest.raises(MountError, match='failed to prepare subPath for volumeMount "scratch" of container "c"'):
        manager.container_mounts({"name": "c", "volumeMounts": [{"name": "scratch", "mountPath": "/x",
                                                                  "subPath": "../../etc"}]}, result.volumes, {})


# --- the pod worker --------------------------------------------------------------------------------
async def test_pod_waits_in_container_creating_for_missing_configmap(tmp_path: Path, client: StubClient) -> None:
    clock = FakeClock()
    recorder = StubRecorder()

    async def getter(kind: str, ns: str, name: str) -> None:
        return None

    ctx = NodeContext(node_name="n1", host_ip="127.0.0.1", client=client, recorder=recorder,  # type: ignore[arg-type]
                      runtime=FakeRuntime(clock=clock), ips=IPAllocator("127.244.1.0/24"), getter=getter,
                      services=lambda ns, links: [], clock=clock,
                      volumes=VolumeManager(tmp_path, client, clock=clock))  # type: ignore[arg-type]
    pod = make_pod([{"name": "config", "configMap": {"name": "app"}}], [{"name": "config", "mountPath": "/etc/config"}])
    worker = PodWorker(ctx, pod)
    await worker.sync()
    assert recorder.events == [("Warning", "FailedMount", 'MountVolume.SetUp failed for volume "config" : '
                                                          'configmap "app" not found')]
    status = client.statuses[-1]
    assert status["phase"] == "Pending" and "podIP" not in status
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert await ctx.runtime.list_pod_sandboxes() == []  # volumes come before the sandbox
    client.put("configmaps", {"metadata": {"name": "app", "namespace": "ns"}, "data": {"key": "v"}})
    await worker.sync()
    assert client.statuses[-1]["phase"] == "Running"
    assert [e[1] for e in recorder.events[1:]] == ["Pulled", "Created", "Started"]
    await worker._teardown()
    assert not (tmp_path / "pods" / "uid-1").exists()


# --- mount points and the process runtime ------------------------------------------------------------
def test_mount_points_are_created_and_removed_when_unused(tmp_path: Path) -> None:
    src_dir, src_file = tmp_path / "src", tmp_path / "src.txt"
    src_dir.mkdir()
    src_file.write_text("x")
    a, b = tmp_path / "sandboxes" / "a", tmp_path / "sandboxes" / "b"
    a.mkdir(parents=True)
    b.mkdir()
    target = tmp_path / "host" / "etc" / "config"
    mountpoints.prepare([Mount(str(src_dir), str(target)), Mount(str(src_file), str(tmp_path / "host" / "f.conf"))], a)
    mountpoints.prepare([Mount(str(src_dir), str(target))], b)  # exists already: b records nothing
    assert target.is_dir() and (tmp_path / "host" / "f.conf").is_file()
    (tmp_path / "host" / "keep").write_text("someone else's")
    mountpoints.release(a, [a, b], in_use=[str(target)])  # another container mounts there: kept
    assert target.is_dir() and not (tmp_path / "host" / "f.conf").exists()
    mountpoints.release(a, [a, b])
    assert not target.exists() and not (tmp_path / "host" / "f.conf").exists()
    assert (tmp_path / "host" / "keep").exists()  # never removes what it did not create


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mount and UTS namespaces need root")


@needs_root
async def test_process_runtime_binds_volumes_and_sets_hostname(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "key").write_text("from-the-volume")
    target = f"/tmp/pykube-test-{os.getpid()}-{id(tmp_path)}/etc/config"
    rt = ProcessRuntime(tmp_path / "rt")
    sid = await rt.run_pod_sandbox(SandboxConfig(uid="u", namespace="ns", name="web-0", hostname="web-0"))
    cid = await rt.create_container(sid, ContainerConfig(
        name="c", image="busybox", command=("sh", "-c", f"cat {target}/key; echo; hostname; "
                                                        f"touch {target}/new 2>/dev/null || echo read-only"),
        mounts=(Mount(str(vol), target, True),)))
    try:
        await rt.start_container(cid)
        for _ in range(200):
            [c] = await rt.list_containers()
            if c.state is ContainerState.EXITED:
                break
            await asyncio.sleep(0.05)
        assert c.exit_code == 0 and rt.isolation_problem(cid) == ""
        logs = b"".join([chunk async for chunk in rt.container_logs(cid, follow=False)]).decode()
        lines = [line.split(" ", 3)[3] for line in logs.splitlines()]
        assert lines == ["from-the-volume", "web-0", "read-only"]
        assert socket.gethostname() != "web-0" and os.listdir(target) == []  # the host sees neither
    finally:
        await rt.remove_pod_sandbox(sid)
    assert not os.path.exists(f"/tmp/pykube-test-{os.getpid()}-{id(tmp_path)}")


@needs_root
async def test_exec_sync_enters_the_container_namespaces(tmp_path: Path) -> None:
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "key").write_text("inside")
    target = str(tmp_path / "mnt" / "config")
    rt = ProcessRuntime(tmp_path / "rt")
    sid = await rt.run_pod_sandbox(SandboxConfig(uid="u", namespace="ns", name="pod-x"))
    cid = await rt.create_container(sid, ContainerConfig(name="c", image="busybox", command=("sleep", "30"),
                                                         mounts=(Mount(str(vol), target, False),)))
    try:
        await rt.start_container(cid)
        result = await rt.exec_sync(cid, ["sh", "-c", f"cat {target}/key; hostname"], timeout=10)
        assert (result.exit_code, result.stdout) == (0, b"insidepod-x\n")
        assert os.listdir(target) == []
    finally:
        await rt.remove_pod_sandbox(sid)


class UnisolatedRuntime(FakeRuntime):
    def isolation_problem(self, container_id: str) -> str:
        return "the kubelet does not run as root"


async def test_unisolated_container_gets_one_warning_event(tmp_path: Path, client: StubClient) -> None:
    clock = FakeClock()
    recorder = StubRecorder()

    async def getter(kind: str, ns: str, name: str) -> None:
        return None

    ctx = NodeContext(node_name="n1", host_ip="127.0.0.1", client=client, recorder=recorder,  # type: ignore[arg-type]
                      runtime=UnisolatedRuntime(clock=clock), ips=IPAllocator("127.244.1.0/24"), getter=getter,
                      services=lambda ns, links: [], clock=clock,
                      volumes=VolumeManager(tmp_path, client, clock=clock))  # type: ignore[arg-type]
    pod = make_pod([{"name": "scratch", "emptyDir": {}}], [{"name": "scratch", "mountPath": "/data"}])
    worker = PodWorker(ctx, pod)
    await worker.sync()
    await worker.sync()
    warnings = [e for e in recorder.events if e[0] == "Warning"]
    assert warnings == [("Warning", "IsolationUnavailable",
                         "container c runs without its own mount and UTS namespaces (the kubelet does not run as "
                         "root): volumes not mounted at /data; hostname not set to the pod's")]


async def test_process_runtime_says_why_it_did_not_isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pykube_server.kubelet.runtimes import process

    monkeypatch.setattr(process.os, "geteuid", lambda: 1000)
    rt = ProcessRuntime(tmp_path / "rt")
    sid = await rt.run_pod_sandbox(SandboxConfig(uid="u", namespace="ns", name="p"))
    cid = await rt.create_container(sid, ContainerConfig(name="c", image="busybox", command=("sleep", "30"),
                                                         mounts=(Mount(str(tmp_path), "/nonexistent-x", True),)))
    try:
        await rt.start_container(cid)
        assert rt.isolation_problem(cid) == "the kubelet does not run as root"
        assert not os.path.exists("/nonexistent-x")  # no mount points without isolation
    finally:
        await rt.remove_pod_sandbox(sid)
