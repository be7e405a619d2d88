"""Termination messages: the termination-log file, and FallbackToLogsOnError's log tail."""

from __future__ import annotations

from pathlib import Path

from pykube_server.kubelet import termination
from pykube_server.kubelet.runtime import ContainerState, ContainerStatus

SPEC = {"name": "c", "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}
FALLBACK = {**SPEC, "terminationMessagePolicy": "FallbackToLogsOnError"}


def cri(*texts: str, partial: bool = False) -> bytes:
    tag = "P" if partial else "F"
    return "".join(f"2026-01-01T00:00:00.000000000Z stdout {tag} {t}\n" for t in texts).encode()


def exited(code: int, log: Path, attempt: int = 0) -> ContainerStatus:
    return ContainerStatus(id="x", sandbox_id="s", name="c", image="busybox", state=ContainerState.EXITED,
                           attempt=attempt, exit_code=code, log_path=str(log))


def test_mount_makes_an_empty_writable_file_per_attempt(tmp_path: Path) -> None:
    m = termination.mount(SPEC, tmp_path, 2)
    assert m is not None and m.container_path == "/dev/termination-log" and not m.read_only
    host = Path(m.host_path)
    assert host.read_bytes() == b"" and host.stat().st_mode & 0o666 == 0o666
    assert host == termination.host_file(tmp_path, "c", 2) != termination.host_file(tmp_path, "c", 1)
    assert termination.mount({"name": "c"}, tmp_path, 0) is None


def test_file_message_is_read_and_capped_at_its_last_4096_bytes(tmp_path: Path) -> None:
    termination.mount(SPEC, tmp_path, 0)
    termination.host_file(tmp_path, "c", 0).write_bytes(b"a" * 10 + b"b" * 4096)
    assert termination.message(SPEC, exited(0, tmp_path / "none.log"), tmp_path) == "b" * 4096


def test_file_policy_never_falls_back_to_the_log(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    log.write_bytes(cri("DONE", partial=True))
    termination.mount(SPEC, tmp_path, 0)
    assert termination.message(SPEC, exited(1, log), tmp_path) == ""


def test_fallback_uses_the_log_only_when_failed_and_the_file_is_empty(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    log.write_bytes(cri("DONE", partial=True))
    termination.mount(FALLBACK, tmp_path, 0)
    assert termination.message(FALLBACK, exited(1, log), tmp_path) == "DONE"
    assert termination.message(FALLBACK, exited(0, log), tmp_path) == ""
    termination.host_file(tmp_path, "c", 0).write_bytes(b"OK")
    assert termination.message(FALLBACK, exited(1, log), tmp_path) == "OK"


def test_fallback_without_a_file_reads_the_log(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    log.write_bytes(cri("boom"))
    assert termination.message(FALLBACK, exited(2, log), tmp_path) == "boom\n"


def test_log_tail_is_80_lines_and_2048_bytes(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    log.write_bytes(cri(*(str(i) for i in range(200))))
    tail = termination.log_tail(str(log))
    assert tail.splitlines() == [str(i) for i in range(120, 200)]
    log.write_bytes(cri("start", "x" * 5000))
    tail = termination.log_tail(str(log))
    assert len(tail.encode()) == 2048 and tail.startswith("start\nxxx")
