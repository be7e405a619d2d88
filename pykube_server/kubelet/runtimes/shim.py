"""The container shim: one small process per container, as containerd-shim or conmon is.

Run as a script (`python -I shim.py <container dir>`, no package imports, so it starts fast).
It detaches (double fork into its own session), so a container outlives a kubelet restart and
the next kubelet finds it again from the files this shim keeps in the container directory:

* reads `config.json` (argv, env, cwd, log path, and `isolate`: the pod's hostname and the
  volume mounts);
* with `isolate` (the kubelet runs as root), moves itself into new mount and UTS namespaces
  (`unshare`), makes every mount private, sets the hostname, and bind-mounts each volume at its
  mountPath (a read-only remount for readOnly), so the container process it then starts sees
  its volumes and the pod's name; with `pid_ns` (a `shareProcessNamespace` pod) it joins the
  pod's PID namespace (its pause process's, see pause.py) for the container process, which
  first takes a mount namespace of its own with a `/proc` of that PID namespace (so `ps` shows
  the pod's processes); when `unshare` is refused the container runs unisolated and
  `state.json` says why (`isolation_problem`); a failing bind is a StartError, as runc's is;
* starts the container process in a new session (its pid is its process group, so the
  kubelet signals the whole group: `sh -c 'sleep 30'` stops as a whole);
* writes `state.json` (`pid`, `shim_pid`, `proc_start` from /proc to detect pid reuse,
  `started_at`), or `exit.json` with exit code 128 and reason StartError when exec fails;
* copies stdout/stderr into the log file in the CRI format, one
  `<RFC3339Nano> <stdout|stderr> <F|P> <text>` line per line (P for a partial line of 16 KiB);
* when the process ends writes `exit.json` (`exit_code` 128+signal when killed, `finished_at`,
  `reason` Completed/Error/OOMKilled) atomically, then exits;
* serves `attach` (as conmon's attach socket does) on the abstract unix socket
  `\0pykube-attach-<container id>`: every connected client gets the output as it is written,
  and may write to the process's stdin, which stays open when the container has `stdin: true`
  (closed when the first client detaches if `stdinOnce`). With `tty: true` the process runs on
  a pseudo-terminal (one output stream, logged as stdout) that clients can resize.

Attach frames, both ways: one type byte, a 4-byte big-endian length, the data. Types: 0 stdin,
1 stdout, 2 stderr, 3 stdin closed, 4 resize (two big-endian 16-bit numbers: width, height),
5 hello (one byte: 1 when the client attaches stdin).
"""

import fcntl
import json
import os
import pty
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
from datetime import datetime, timezone

MAX_LINE = 16 * 1024
CHUNK = 32 * 1024
ATTACH_PREFIX = "\0pykube-attach-"
FRAME = struct.Struct(">BI")
STDIN, STDOUT, STDERR, STDIN_CLOSED, RESIZE, HELLO = range(6)
SEND_TIMEOUT_SECONDS = 5.0


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


class Attached:
    """The attached clients: output fans out to each; a client that stops reading is dropped
    rather than allowed to stall the container's output (and its log)."""

    def __init__(self, config: dict, stdin_fd: int | None, tty_fd: int | None) -> None:
        self.clients: list[socket.socket] = []
        self.lock = threading.Lock()
        self.stdin_fd = stdin_fd
        self.tty_fd = tty_fd
        self.stdin_once = bool(config.get("stdin_once"))

    def send(self, kind: int, data: bytes) -> None:
        with self.lock:
            for client in list(self.clients):
                try:
                    client.sendall(FRAME.pack(kind, len(data)) + data)
                except OSError:
                    self._drop(client)

    def _drop(self, client: socket.socket) -> None:
        if client in self.clients:
            self.clients.remove(client)
        try:
            client.close()
        except OSError:
            pass

    def close_all(self) -> None:
        with self.lock:
            for client in list(self.clients):
                try:
                    client.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._drop(client)

    def close_stdin(self) -> None:
        if self.tty_fd is not None:
            _write_all(self.tty_fd, b"\x04")  # end of input on a terminal
        elif self.stdin_fd is not None:
            fd, self.stdin_fd = self.stdin_fd, None
            os.close(fd)

    def serve(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            client.settimeout(SEND_TIMEOUT_SECONDS)
            with self.lock:
                self.clients.append(client)
            threading.Thread(target=self._read, args=(client,), daemon=True).start()

    def _read(self, client: socket.socket) -> None:
        with_stdin = False
        try:
            while True:
                head = _recv_exact(client, FRAME.size)
                if head is None:
                    break
                kind, length = FRAME.unpack(head)
                data = _recv_exact(client, length) if length else b""
                if data is None:
                    break
                if kind == HELLO:
                    with_stdin = data == b"\x01"
                elif kind == STDIN and with_stdin:
                    fd = self.tty_fd if self.tty_fd is not None else self.stdin_fd
                    if fd is not None:
                        _write_all(fd, data)
                elif kind == STDIN_CLOSED and self.stdin_once:
                    self.close_stdin()
                elif kind == RESIZE and self.tty_fd is not None and len(data) == 4:
                    width, height = struct.unpack(">HH", data)
                    fcntl.ioctl(self.tty_fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))
        except OSError:
            pass
        finally:
            with self.lock:
                self._drop(client)
            if with_stdin and self.stdin_once:
                self.close_stdin()


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        try:
            chunk = sock.recv(n - len(buf))
        except socket.timeout:
            continue
        if not chunk:
            return None
        buf += chunk
    return buf


def _write_all(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass


def _copy(fd: int, stream: str, log, lock: threading.Lock, attached: Attached) -> None:
    """Raw chunks to attached clients at once; whole lines (or 16 KiB pieces) to the log."""
    kind = STDOUT if stream == "stdout" else STDERR
    pending = b""
    while True:
        try:
            chunk = os.read(fd, CHUNK)
        except OSError:  # EIO: the terminal's last user is gone
            chunk = b""
        if not chunk:
            break
        attached.send(kind, chunk)
        pending += chunk
        while True:
            cut = pending.find(b"\n")
            if cut < 0 and len(pending) < MAX_LINE:
                break
            end = cut + 1 if 0 <= cut < MAX_LINE else MAX_LINE
            _log_line(log, lock, stream, pending[:end])
            pending = pending[end:]
    if pending:
        _log_line(log, lock, stream, pending)


def _log_line(log, lock: threading.Lock, stream: str, line: bytes) -> None:
    tag = "F" if line.endswith(b"\n") else "P"
    text = line[:-1] if tag == "F" else line
    with lock:
        log.write(f"{_stamp()} {stream} {tag} ".encode() + text + b"\n")
        log.flush()


CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWPID = 0x00020000, 0x04000000, 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 8, 32, 4096, 16384, 1 << 18


class MountFailed(Exception):
    """A bind mount failed after isolation succeeded: the container cannot start (runc's error)."""


def _isolate(spec: dict) -> str:
    """Enter new mount and UTS namespaces and set up hostname and mounts; returns "" when
    isolated, or why the container runs unisolated. Raises MountFailed for a failing mount."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS | CLONE_NEWUTS) != 0:
        return f"unshare(CLONE_NEWNS|CLONE_NEWUTS): {os.strerror(ctypes.get_errno())}"

    def mount(source, target: str, flags: int, what: str) -> None:
        if libc.mount(source, target.encode(), None, flags, None) != 0:
            raise MountFailed(f"error mounting \"{what}\" to rootfs at \"{target}\": "
                              f"{os.strerror(ctypes.get_errno()).lower()}")

    mount(None, "/", MS_REC | MS_PRIVATE, "/")
    hostname = spec.get("hostname", "").encode()
    if hostname and libc.sethostname(hostname, len(hostname)) != 0:
        raise MountFailed(f"sethostname: {os.strerror(ctypes.get_errno()).lower()}")
    for host, target, read_only in spec.get("mounts") or []:
        mount(host.encode(), target, MS_BIND | MS_REC, host)
        if read_only:
            mount(None, target, MS_REMOUNT | MS_BIND | MS_RDONLY, host)
    return ""


def _set_pid_ns(path: str) -> None:
    """Where this process's next children are born (setns(CLONE_NEWPID) changes only that).
    Threads cannot be started meanwhile (the kernel refuses CLONE_THREAD then), so the shim
    joins the pod's namespace just around starting the container and returns to its own."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise MountFailed(f"joining the pod's PID namespace: {(exc.strerror or '').lower()}") from None
    try:
        if libc.setns(fd, CLONE_NEWPID) != 0:
            raise MountFailed(f"joining the pod's PID namespace: {os.strerror(ctypes.get_errno()).lower()}")
    finally:
        os.close(fd)


def _pod_proc() -> None:
    """In the child, already in the pod's PID namespace: a mount namespace of its own whose
    `/proc` shows that namespace (the shim keeps the host's, to watch its child by host pid)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNS) != 0 or libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC,
                                                     None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mounting the pod's /proc: {os.strerror(err)}")


def _controlling_tty() -> None:
    """In the child (already a session leader): make its stdin terminal the controlling one."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _run(cdir: str) -> None:
    with open(os.path.join(cdir, "config.json")) as f:
        config = json.load(f)
    os.makedirs(os.path.dirname(config["log_path"]), exist_ok=True)
    log = open(config["log_path"], "ab")
    problem = ""
    if config.get("isolate") is not None:
        try:
            problem = _isolate(config["isolate"])
        except MountFailed as exc:
            message = ("failed to create containerd task: failed to create shim task: OCI runtime create failed: "
                       f"runc create failed: unable to start container process: error during container init: "
                       f"{exc}: unknown")
            _write_json(os.path.join(cdir, "exit.json"), {"exit_code": 128, "finished_at": time.time(),
                                                         "reason": "StartError", "message": message})
            return
    tty = bool(config.get("tty"))
    shared_pid = bool((config.get("isolate") or {}).get("pid_ns")) and not problem
    master = slave = None
    if tty:
        master, slave = pty.openpty()
        io: dict = dict(stdin=slave, stdout=slave, stderr=slave, preexec_fn=_controlling_tty)
    else:
        io = dict(stdin=subprocess.PIPE if config.get("stdin") else subprocess.DEVNULL,
                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if shared_pid:
        first = io.get("preexec_fn")
        io["preexec_fn"] = (lambda: (_pod_proc(), first())) if first else _pod_proc
    try:
        if shared_pid:
            _set_pid_ns(config["isolate"]["pid_ns"])
        try:
            proc = subprocess.Popen(config["argv"], env=config["env"], cwd=config["cwd"] or None,
                                    start_new_session=True, **io)
        finally:
            if shared_pid:
                _set_pid_ns("/proc/self/ns/pid")  # our own again: the copy threads below need it
    except MountFailed as exc:
        message = ("failed to create containerd task: failed to create shim task: OCI runtime create failed: "
                   f"runc create failed: unable to start container process: error during container init: "
                   f"{exc}: unknown")
        _write_json(os.path.join(cdir, "exit.json"), {"exit_code": 128, "finished_at": time.time(),
                                                     "reason": "StartError", "message": message})
        return
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
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # attachable once state.json says running
    listener.bind(ATTACH_PREFIX + os.path.basename(os.path.normpath(cdir)))
    listener.listen(16)
    _write_json(os.path.join(cdir, "state.json"), {"pid": proc.pid, "shim_pid": os.getpid(),
                                                  "proc_start": _proc_start(proc.pid), "started_at": time.time(),
                                                  "isolated": config.get("isolate") is not None and not problem,
                                                  "isolation_problem": problem})
    if slave is not None:
        os.close(slave)
    stdin_fd = proc.stdin.fileno() if proc.stdin is not None else None
    attached = Attached(config, stdin_fd, master)
    threading.Thread(target=attached.serve, args=(listener,), daemon=True).start()
    lock = threading.Lock()
    outputs = [(master, "stdout")] if master is not None else [
        (proc.stdout.fileno(), "stdout"), (proc.stderr.fileno(), "stderr")]
    threads = [threading.Thread(target=_copy, args=(fd, name, log, lock, attached), daemon=True)
               for fd, name in outputs]
    for t in threads:
        t.start()
    code = proc.wait()
    for t in threads:
        t.join(timeout=2.0)
    listener.close()
    attached.close_all()
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
