"""Streaming sessions of the process runtime: exec as a local process, attach through the shim.

Why separate from `process.py`: these are the I/O halves of CRI's Exec and Attach (pipes, a
pseudo-terminal, the shim's attach socket), while `process.py` keeps the container
bookkeeping. Both classes satisfy `runtime.StreamSession`.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import signal
import struct
import subprocess
import termios
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

from pykube_server.kubelet.runtime import RuntimeServiceError

CHUNK = 32 * 1024
ATTACH_PREFIX = "\0pykube-attach-"
"""Abstract unix socket names (no path length limit, gone with the shim); see shim.py."""
FRAME = struct.Struct(">BI")
STDIN, STDOUT, STDERR, STDIN_CLOSED, RESIZE, HELLO = range(6)
EOT = b"\x04"


def attach_address(container_id: str) -> str:
    return ATTACH_PREFIX + container_id


def set_winsize(fd: int, width: int, height: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))


def _controlling_tty() -> None:
    """In the child, a new session's leader: its stdin terminal becomes its controlling one
    (so ^C and job control work in `kubectl exec -it ... sh`)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _then_controlling_tty(enter: Callable[[], None] | None) -> Callable[[], None]:
    def run() -> None:  # the terminal first: entering a PID namespace forks (see nsenter.enter)
        _controlling_tty()
        if enter is not None:
            enter()
    return run


def exec_failure(cmd: Sequence[str], exc: OSError) -> str:
    """containerd's wording for a command that cannot be started (what kubectl ends up showing)."""
    what = cmd[0] if cmd else ""
    detail = "executable file not found in $PATH" if isinstance(exc, FileNotFoundError) else (
        exc.strerror or str(exc)).lower()
    return (f"failed to exec in container: failed to start exec: OCI runtime exec failed: exec failed: "
            f"unable to start container process: exec: \"{what}\": {detail}: unknown")


class ExecSession:
    """One command run for `exec`: pipes, or a pseudo-terminal with `tty`."""

    def __init__(self, proc: asyncio.subprocess.Process, *, master: int | None,
                 tty_reader: asyncio.StreamReader | None) -> None:
        self._proc = proc
        self._master = master
        self._tty_reader = tty_reader

    @classmethod
    async def start(cls, cmd: Sequence[str], *, env: Mapping[str, str] | None, cwd: str | None, stdin: bool,
                    tty: bool, enter: Callable[[], None] | None = None,
                    size: tuple[int, int] | None = None) -> ExecSession:
        """`enter`, when given, runs in the child first (joining the container's namespaces)."""
        if not cmd:
            raise RuntimeServiceError("failed to exec in container: no command given")
        master: int | None = None
        try:
            if tty:
                master, slave = os.openpty()
                if size and size[0] > 0 and size[1] > 0:
                    set_winsize(slave, *size)
                try:
                    proc = await asyncio.create_subprocess_exec(
                        *cmd, env=env, cwd=cwd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                        preexec_fn=_then_controlling_tty(enter))
                finally:
                    os.close(slave)
            else:
                proc = await asyncio.create_subprocess_exec(
                    *cmd, env=env, cwd=cwd, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, start_new_session=True,
                    preexec_fn=enter)
        except (OSError, subprocess.SubprocessError) as exc:
            if master is not None:
                os.close(master)
            if isinstance(exc, OSError):
                raise RuntimeServiceError(exec_failure(cmd, exc)) from exc
            raise RuntimeServiceError("failed to exec in container: the container has stopped") from exc
        reader = None
        if master is not None:
            reader = asyncio.StreamReader(limit=CHUNK * 4)
            loop = asyncio.get_running_loop()
            # reading needs its own descriptor: the transport closes it at the end
            await loop.connect_read_pipe(lambda: _EndOnError(reader),
                                         os.fdopen(os.dup(master), "rb", buffering=0))
        return cls(proc, master=master, tty_reader=reader)

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        if self._tty_reader is not None:
            while True:
                try:
                    data = await self._tty_reader.read(CHUNK)
                except OSError:  # EIO: the terminal's last user has gone
                    return
                if not data:
                    return
                yield 1, data
        streams = {ch: r for ch, r in ((1, self._proc.stdout), (2, self._proc.stderr)) if r is not None}
        pending = {asyncio.ensure_future(r.read(CHUNK)): ch for ch, r in streams.items()}
        try:
            while pending:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    ch = pending.pop(task)
                    data = task.result()
                    if data:
                        yield ch, data
                        pending[asyncio.ensure_future(streams[ch].read(CHUNK))] = ch
        finally:
            for task in pending:
                task.cancel()

    async def write_stdin(self, data: bytes) -> None:
        if self._master is not None:
            await _write_fd(self._master, data)
            return
        if self._proc.stdin is None or self._proc.stdin.is_closing():
            return
        try:
            self._proc.stdin.write(data)
            await self._proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass

    async def close_stdin(self) -> None:
        if self._master is not None:
            await _write_fd(self._master, EOT)
        elif self._proc.stdin is not None and not self._proc.stdin.is_closing():
            self._proc.stdin.close()

    def resize(self, width: int, height: int) -> None:
        if self._master is not None and width > 0 and height > 0:
            set_winsize(self._master, width, height)

    async def wait(self) -> int:
        code = await self._proc.wait()
        return 128 - code if code < 0 else code

    async def aclose(self) -> None:
        if self._proc.returncode is None:
            try:
                os.killpg(self._proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            await self._proc.wait()
        if self._master is not None:
            master, self._master = self._master, None
            os.close(master)


class _EndOnError(asyncio.StreamReaderProtocol):
    """A terminal master reports the end of its last user as EIO: that is end of output, and
    what was read before it must still be delivered (an error would discard it)."""

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(None)


async def _write_fd(fd: int, data: bytes) -> None:
    """Writes to a terminal master that may be non-blocking (it shares flags with the reader)."""
    while data:
        try:
            data = data[os.write(fd, data):]
        except BlockingIOError:
            await asyncio.sleep(0.01)
        except OSError as exc:
            if exc.errno in (errno.EIO, errno.EBADF):
                return
            raise


class AttachSession:
    """A client of the shim's attach socket: the running main process's streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def connect(cls, address: str, *, stdin: bool) -> AttachSession:
        try:
            reader, writer = await asyncio.open_unix_connection(address)
        except OSError as exc:
            raise RuntimeServiceError(f"failed to attach to the container: {exc.strerror or exc}") from exc
        session = cls(reader, writer)
        await session._send(HELLO, b"\x01" if stdin else b"\x00")
        return session

    async def _send(self, kind: int, data: bytes) -> None:
        if self._writer.is_closing():
            return
        try:
            self._writer.write(FRAME.pack(kind, len(data)) + data)
            await self._writer.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        while True:
            try:
                kind, length = FRAME.unpack(await self._reader.readexactly(FRAME.size))
                data = await self._reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            if kind in (STDOUT, STDERR):
                yield kind, data

    async def write_stdin(self, data: bytes) -> None:
        await self._send(STDIN, data)

    async def close_stdin(self) -> None:
        await self._send(STDIN_CLOSED, b"")

    def resize(self, width: int, height: int) -> None:
        if width > 0 and height > 0 and not self._writer.is_closing():
            self._writer.write(FRAME.pack(RESIZE, 4) + struct.pack(">HH", width, height))

    async def wait(self) -> int:
        return 0

    async def aclose(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass
