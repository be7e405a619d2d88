"""The kubelet's exec/attach WebSocket sessions (`kubelet/streaming.py`) over a process runtime.

What a client of the kubelet sees: the negotiated subprotocol, the opening empty frame, output
frames, the Status on the error channel as the kubelet words it, then the close.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from pykube_server.api import remotecommand as rc
from pykube_server.kubelet import streaming
from pykube_server.kubelet.runtimes.fake import FakeRuntime
from pykube_server.kubelet.runtimes.process import ProcessRuntime
from tests.kubelet import runtime_contract as contract


@pytest.fixture
async def base(tmp_path: Path) -> AsyncIterator[str]:
    """A server whose /exec and /attach reach one running container of each runtime."""
    process, fake = ProcessRuntime(tmp_path / "rt"), FakeRuntime()
    ids = {}
    for name, rt in (("process", process), ("simulated", fake)):
        cid = await rt.create_container(await contract.sandbox(rt), contract.RUNS)
        await rt.start_container(cid)
        ids[name] = (rt, cid)

    async def handle(request: web.Request) -> web.StreamResponse:
        rt, cid = ids[request.match_info["which"]]
        try:
            opts = streaming.parse_options(request.query)
        except ValueError as exc:
            return streaming.error_response(str(exc), 400)
        return await streaming.serve(request, rt, cid, kind=request.match_info["kind"], opts=opts)

    app = web.Application()
    app.router.add_route("*", "/{kind}/{which}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()
        await process.aclose(stop=True)


async def session(url: str, protocols: list[str], *, send: list[bytes | str] = (),  # type: ignore[assignment]
                  params: list[tuple[str, str]]) -> tuple[str | None, list[bytes | str]]:
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(url, protocols=protocols, params=params) as ws:
            for message in send:
                await (ws.send_str(message) if isinstance(message, str) else ws.send_bytes(message))
            received = []
            async with asyncio.timeout(10):
                async for msg in ws:
                    received.append(msg.data)
            return ws.protocol, received


def command(*argv: str) -> list[tuple[str, str]]:
    return [("command", a) for a in argv]


async def test_v5_exec_with_stdin_closed_by_the_client(base: str) -> None:
    proto, frames = await session(f"{base}/exec/process", [rc.V5, rc.V4],
                                  params=[("input", "1"), ("output", "1"), ("error", "1"), *command("cat")],
                                  send=[b"\x00hello\n", b"\xff\x00"])
    assert proto == rc.V5
    assert frames[0] == b"\x01"  # the streams are open
    assert b"".join(f[1:] for f in frames if f[:1] == b"\x01") == b"hello\n"
    assert frames[-1] == b'\x03{"metadata":{},"status":"Success"}'


async def test_v4_exit_code_status_as_the_kubelet_words_it(base: str) -> None:
    proto, frames = await session(f"{base}/exec/process", [rc.V4],
                                  params=[("stdout", "true"), ("stderr", "true"), *command("sh", "-c", "echo e >&2; exit 3")])
    assert proto == rc.V4
    assert b"\x02e\n" in frames
    status = json.loads(frames[-1][1:])
    assert status == {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
                      "message": "command terminated with non-zero exit code: error executing command "
                                 "[sh -c echo e >&2; exit 3], exit code 3",
                      "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}


async def test_old_protocols_base64_frames_and_bare_error_text(base: str) -> None:
    proto, frames = await session(f"{base}/exec/process", [rc.V1_BASE64],
                                  params=[("output", "1"), *command("echo", "hi")])
    assert proto == rc.V1_BASE64
    assert frames == ["1", "1aGkK"]  # no status on success before v4
    proto, frames = await session(f"{base}/exec/process", [rc.V1], params=[("output", "1"), *command("nope-x")])
    assert frames[-1].startswith(b"\x03Internal error occurred: error executing command in container: ")


async def test_the_simulated_runtime_answers_with_an_internal_error(base: str) -> None:
    _proto, frames = await session(f"{base}/attach/simulated", [rc.V5], params=[("output", "1")])
    status = json.loads(frames[-1][1:])
    assert status["reason"] == "InternalError" and status["code"] == 500
    assert status["message"].startswith("Internal error occurred: error attaching to container: container runs "
                                        "is simulated by pykube")


async def test_refusals_before_the_upgrade(base: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/exec/process", params=[("output", "1"), *command("true")],
                             headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1"}) as resp:
            assert resp.status == 400 and "WebSocket only" in await resp.text()
        async with http.get(f"{base}/exec/process", params=command("true")) as resp:
            assert (resp.status, await resp.text()) == (400, "you must specify at least 1 of stdin, stdout, stderr")
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await http.ws_connect(f"{base}/exec/process", protocols=["v9.channel.k8s.io"],
                                  params=[("output", "1"), *command("true")])
        assert info.value.status == 400
        assert "not supported" in info.value.headers[streaming.ERROR_HEADER]


async def test_a_tty_exec_starts_with_the_clients_terminal_size(base: str) -> None:
    _proto, frames = await session(f"{base}/exec/process", [rc.V5],
                                   params=[("input", "1"), ("output", "1"), ("error", "1"), ("tty", "1"),
                                           *command("sh", "-c", "stty size; tty")],
                                   send=[b'\x04{"Width":91,"Height":33}\n'])
    out = b"".join(f[1:] for f in frames if f[:1] == b"\x01")
    assert out.startswith(b"33 91\r\n/dev/pts/")
    assert not [f for f in frames if f[:1] == b"\x02"]  # a terminal has no separate stderr
    assert frames[-1] == b'\x03{"metadata":{},"status":"Success"}'
