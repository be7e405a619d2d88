"""Container termination messages: the file at `terminationMessagePath`, or the log's tail.

Why: clients (and the conformance suite) read `state.terminated.message` to learn why a
container ended. The real kubelet bind-mounts a per-container host file at the container's
`terminationMessagePath` (default /dev/termination-log) and, once the container exits, reads at
most the last 4096 bytes of it. With `terminationMessagePolicy: FallbackToLogsOnError` and a
non-zero exit code, an empty or missing file makes it use the tail of the container's log
instead: its last 80 lines, at most 2048 bytes of them.
"""

from __future__ import annotations

import os
from pathlib import Path

from pykube_server.api.types import Obj
from pykube_server.kubelet.runtime import ContainerStatus, Mount

MAX_MESSAGE_BYTES = 4096
"""kubecontainer.MaxContainerTerminationMessageLength."""
MAX_LOG_LINES = 80
MAX_LOG_BYTES = 2048
FALLBACK = "FallbackToLogsOnError"


def host_file(pod_dir: Path, name: str, attempt: int) -> Path:
    """One file per container instance, under the pod's directory (removed with the pod)."""
    return pod_dir / "containers" / name / f"termination-{attempt}"


def mount(spec: Obj, pod_dir: Path, attempt: int) -> Mount | None:
    """Create the empty, world-writable host file and the bind mount onto the container's path
    (None when the container has no terminationMessagePath)."""
    target = spec.get("terminationMessagePath") or ""
    if not target:
        return None
    path = host_file(pod_dir, spec["name"], attempt)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    os.chmod(path, 0o666)  # the container may run as any user
    return Mount(host_path=str(path), container_path=target)


def _tail_bytes(path: Path, limit: int) -> bytes:
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - limit))
        return f.read()


def _cri_text(line: bytes) -> bytes:
    """`<time> <stream> <F|P> <text>` -> the text, with its newline unless the line was partial."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 4:
        return line
    return parts[3] + (b"" if parts[2] == b"P" else b"\n")


def log_tail(log_path: str) -> str:
    """The last 80 lines of the container's CRI-format log as plain text, limited to 2048 bytes
    (the kubelet reads them with tailLines 80 and limitBytes 2048, so the cut keeps the start)."""
    try:
        data = _tail_bytes(Path(log_path), 256 * 1024)
    except OSError:
        return ""
    lines = data.splitlines(keepends=True)[-MAX_LOG_LINES:]
    return b"".join(_cri_text(line) for line in lines)[:MAX_LOG_BYTES].decode(errors="replace")


def message(spec: Obj, status: ContainerStatus, pod_dir: Path) -> str:
    """What the kubelet puts into an exited container's `state.terminated.message`."""
    fallback = spec.get("terminationMessagePolicy") == FALLBACK and (status.exit_code or 0) != 0
    text = ""
    if spec.get("terminationMessagePath"):
        path = host_file(pod_dir, spec["name"], status.attempt)
        try:
            text = _tail_bytes(path, MAX_MESSAGE_BYTES).decode(errors="replace")
        except FileNotFoundError:
            text = ""
        except OSError as exc:
            return f"Error on reading termination log {path}: {exc}"
    if not text and fallback:
        text = log_tail(status.log_path)
    return text
