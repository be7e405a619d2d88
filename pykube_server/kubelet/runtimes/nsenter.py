"""Entering a running container's mount and UTS namespaces (for exec, attach helpers, exec probes).

Why: under the process runtime (as root) each container runs in its own mount namespace, where
its volumes are bound at their mountPaths, and its own UTS namespace, named after the pod. A
command run "in the container" (`kubectl exec`, an exec probe) must see the same files and the
same hostname, so it joins those namespaces before it execs.

Use `preexec(pid, cwd)` as `preexec_fn` of `subprocess.Popen` / `asyncio.create_subprocess_exec`:
the child (single-threaded after fork, as `setns(CLONE_NEWNS)` requires) joins
`/proc/<pid>/ns/mnt` and `/proc/<pid>/ns/uts` of the container process whose pid `state.json`
records, then changes to `cwd` again (joining a mount namespace resets the working directory to
its root). `namespaces_of(pid)` says whether there is anything to join (the container may run
unisolated when the kubelet is not root).
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWPID = 0x20000000
NAMESPACES = (("mnt", CLONE_NEWNS), ("uts", CLONE_NEWUTS), ("pid", CLONE_NEWPID))
"""`pid` differs only for a `shareProcessNamespace` pod; joining it places the command's
children in the pod's PID namespace (the command itself keeps its host pid, as setns does)."""


def _setns(fd: int, nstype: int) -> None:
    setns = getattr(os, "setns", None)  # Python 3.12+
    if setns is not None:
        setns(fd, nstype)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def namespaces_of(pid: int) -> list[str]:
    """The namespaces of `pid` that differ from ours (those worth joining), e.g. ["mnt", "uts"]."""
    out = []
    for name, _ in NAMESPACES:
        try:
            if os.readlink(f"/proc/{pid}/ns/{name}") != os.readlink(f"/proc/self/ns/{name}"):
                out.append(name)
        except OSError:
            continue
    return out


def enter(pid: int, cwd: str = "") -> None:
    """Join the mount and UTS namespaces of `pid` (those that differ from ours), then chdir to `cwd`.

    Raises OSError (no such process, or not permitted). Call it only in a fresh child process.
    """
    wanted = namespaces_of(pid)
    fds = [(os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY), flag) for name, flag in NAMESPACES if name in wanted]
    try:
        for fd, flag in fds:
            _setns(fd, flag)
    finally:
        for fd, _ in fds:
            os.close(fd)
    if cwd:
        os.chdir(cwd)
    if "pid" in wanted:
        _continue_as_child()


def _continue_as_child() -> None:
    """Only children are born in a joined PID namespace: fork, let the child go on to exec the
    command (inside the pod's namespace, with a /proc/self of its own), and make this process
    wait and end as the child did. It stays the group and session leader, so the kubelet's
    killpg still reaches the command; its other descriptors (subprocess's error pipe among
    them) are closed so the caller's start does not wait for the command's end."""
    child = os.fork()
    if child == 0:
        return
    os.closerange(3, 65536)
    while True:
        try:
            _, status = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            os._exit(255)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.WEXITSTATUS(status))


def preexec(pid: int, cwd: str = "") -> Callable[[], None]:
    """A `preexec_fn` that enters the container of `pid` (see `enter`)."""
    def run() -> None:
        enter(pid, cwd)
    return run
