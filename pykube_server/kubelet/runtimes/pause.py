"""The pod's pause process: PID 1 of a pod's shared PID namespace (`shareProcessNamespace`).

Run as a script (`python -I pause.py <sandbox dir>`, no package imports). Why a process of its
own: a PID namespace lives as long as its first process, and that process is the namespace's
init, the one every orphan is re-parented to and the one signals reach only when it asked
for them. Kubernetes gives a shared-PID pod the sandbox's `pause` container as that init, so
the containers' own processes are ordinary (SIGTERM stops `sleep`) and see each other in `ps`.

It detaches (double fork, own session) so it outlives a kubelet restart as the shims do;
unshares a new PID namespace, forks its init (which names itself `pause`, reaps orphans and
waits for SIGTERM/SIGINT), and writes `pause.json` in the sandbox directory: `{"pid": <the
init's pid as seen from the host>, "proc_start": ...}` or `{"problem": "<why not>"}`. A shim
joins the namespace through `/proc/<pid>/ns/pid` (see shim.py).
"""

import ctypes
import json
import os
import signal
import sys

CLONE_NEWPID = 0x20000000
PR_SET_NAME = 15


def _write_json(path: str, doc: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


def _proc_start(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except OSError:
        return ""


def _init(libc: ctypes.CDLL) -> None:
    """PID 1: reap whatever ends up here until told to stop."""
    libc.prctl(PR_SET_NAME, b"pause", 0, 0, 0)
    stop = False

    def on_stop(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    while not stop:
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            signal.pause()
        except InterruptedError:
            continue
    os._exit(0)


def main() -> None:
    sdir = sys.argv[1]
    out = os.path.join(sdir, "pause.json")
    if os.fork() > 0:  # the launcher returns at once
        os._exit(0)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWPID) != 0:
        _write_json(out, {"problem": f"unshare(CLONE_NEWPID): {os.strerror(ctypes.get_errno())}"})
        return
    pid = os.fork()
    if pid == 0:
        try:
            _init(libc)
        finally:
            os._exit(0)
    _write_json(out, {"pid": pid, "proc_start": _proc_start(pid)})
    os._exit(0)  # the init is re-parented to the host's init; nothing waits here


if __name__ == "__main__":
    try:
        main()
    except BaseException as exc:  # the runtime reads this instead of waiting forever
        _write_json(os.path.join(sys.argv[1], "pause.json"), {"problem": f"pause failed: {exc!r}"})
        raise SystemExit(1)
