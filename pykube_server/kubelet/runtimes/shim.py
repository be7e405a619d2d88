"""The container shim: one small process per container, as containerd-shim or conmon is.

Run as a script (`python -I shim.py <container dir>`, no package imports, so it starts fast).
It detaches (double fork into its own session), so a container outlives a kubelet restart and
the next kubelet finds it again from the files this shim keeps in the container directory:

* reads `config.json` (argv, env, cwd, log path);
* starts the container process in a new session (its pid is its process group, so the
  kubelet signals the whole group: `sh -c 'sleep 30'` stops as a whole);
* writes `state.json` (`pid`, `shim_pid`, `proc_start` from /proc to detect pid reuse,
  `started_at`), or `exit.json` with exit code 128 and reason StartError when exec fails;
* copies stdout/stderr into the log file in the CRI format, one
  `<RFC3339Nano> <stdout|stderr> <F|P> <text>` line per line (P for a partial line of 16 KiB);
* when the process ends writes `exit.json` (`exit_code` 128+signal when killed, `finished_at`,
  `reason` Completed/Error/OOMKilled) atomically, then exits.
"""

import json
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

MAX_LINE = 16 * 1024


def _stamp() -> str:
    now = time.time()
    base = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{int((now % 1) * 1e9):09d}Z"


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


def _copy(pipe, stream: str, log, lock: threading.Lock) -> None:
    while True:
        line = pipe.readline(MAX_LINE)
        if not line:
            return
        tag = "F" if line.endswith(b"\n") else "P"
        text = line[:-1] if tag == "F" else line
        with lock:
            log.write(f"{_stamp()} {stream} {tag} ".encode() + text + b"\n")
            log.flush()


def _run(cdir: str) -> None:
    with open(os.path.join(cdir, "config.json")) as f:
        config = json.load(f)
    os.makedirs(os.path.dirname(config["log_path"]), exist_ok=True)
    log = open(config["log_path"], "ab")
    try:
        proc = subprocess.Popen(config["argv"], env=config["env"], cwd=config["cwd"] or None,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
    except OSError as exc:
        what = config["argv"][0] if config["argv"] else ""
        detail = "executable file not found in $PATH" if isinstance(exc, FileNotFoundError) else exc.strerror
        if isinstance(exc, FileNotFoundError) and config["cwd"] and not os.path.isdir(config["cwd"]):
            detail = f"chdir to cwd (\"{config['cwd']}\") set in config.json failed: no such file or directory"
        message = (f"failed to create containerd task: failed to create shim task: OCI runtime create failed: "
                   f"runc create failed: unable to start container process: exec: \"{what}\": {detail}: unknown")
        _write_json(os.path.join(cdir, "exit.json"), {"exit_code": 128, "finished_at": time.time(),
                                                     "reason": "StartError", "message": message})
        return
    _write_json(os.path.join(cdir, "state.json"), {"pid": proc.pid, "shim_pid": os.getpid(),
                                                  "proc_start": _proc_start(proc.pid), "started_at": time.time()})
    lock = threading.Lock()
    threads = [threading.Thread(target=_copy, args=(pipe, name, log, lock), daemon=True)
               for pipe, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr"))]
    for t in threads:
        t.start()
    code = proc.wait()
    for t in threads:
        t.join(timeout=2.0)
    code = 128 - code if code < 0 else code
    reason = "OOMKilled" if code == 137 and _oom_marker(cdir) else ("Completed" if code == 0 else "Error")
    _write_json(os.path.join(cdir, "exit.json"), {"exit_code": code, "finished_at": time.time(), "reason": reason})


def _oom_marker(cdir: str) -> bool:
    return os.path.exists(os.path.join(cdir, "oom"))


def main() -> None:
    cdir = sys.argv[1]
    if os.fork() > 0:  # the launcher returns at once; the shim lives on, reparented to init
        os._exit(0)
    os.setsid()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    try:
        _run(cdir)
    except BaseException as exc:  # the kubelet reads this instead of waiting forever
        _write_json(os.path.join(cdir, "exit.json"), {"exit_code": 128, "finished_at": time.time(),
                                                     "reason": "StartError", "message": f"shim failed: {exc!r}"})


if __name__ == "__main__":
    main()
