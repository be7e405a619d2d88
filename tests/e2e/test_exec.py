"""exec, attach and cp through the API server to the kubelet, with the real kubectl and the
official Python client (kubectl 1.33 speaks WebSocket `v5.channel.k8s.io`)."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import pty
import select
import ssl
import struct
import subprocess
import tempfile
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.conftest import KUBECTL, ServerProcess, _new_namespace, requires_kubectl

pytestmark = [requires_kubectl, pytest.mark.kubectl]

NODE = "pykube-node-1"


def pod_manifest(name: str, command: str, *, extra: str = "", init: str = "", restart: str = "Always") -> str:
    init_block = f"""
  initContainers:
  - name: init
    image: busybox
    command: ["sh", "-c", "{init}"]""" if init else ""
    return f"""
apiVersion: v1
kind: Pod
metadata: {{name: {name}}}
spec:
  nodeName: {NODE}
  restartPolicy: {restart}
  terminationGracePeriodSeconds: 2{init_block}
  containers:
  - name: main
    image: busybox
    command: ["sh", "-c", "{command}"]{extra}
"""


def wait_phase(cluster: ServerProcess, ns: str, name: str, want: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    phase = ""
    while time.monotonic() < deadline:
        phase = cluster.kubectl("get", "pod", name, "-n", ns, "-o", "jsonpath={.status.phase}", check=False).stdout
        if phase == want:
            return
        time.sleep(0.2)
    raise AssertionError(f"pod {ns}/{name} is {phase!r}, not {want!r}")


@pytest.fixture(scope="module")
def ns(cluster: ServerProcess) -> str:
    return _new_namespace(cluster)


@pytest.fixture(scope="module")
def pod(cluster: ServerProcess, ns: str) -> str:
    """A running pod (`sleep`), shared by the tests that only exec into it."""
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("p", "sleep 3600"))
    wait_phase(cluster, ns, "p", "Running")
    return "p"


def test_exec_prints_output_and_exits_with_the_commands_code(cluster: ServerProcess, ns: str, pod: str) -> None:
    result = cluster.kubectl("exec", "-n", ns, pod, "--", "sh", "-c", "echo $HOSTNAME; echo oops >&2; exit 3",
                             check=False)
    assert result.returncode == 3
    assert result.stdout == "p\n"
    assert result.stderr == "oops\ncommand terminated with exit code 3\n"
    assert cluster.kubectl("exec", "-n", ns, pod, "--", "true").returncode == 0


def test_exec_i_feeds_stdin_until_its_end(cluster: ServerProcess, ns: str, pod: str) -> None:
    result = cluster.kubectl("exec", "-i", "-n", ns, pod, "--", "cat", input="line one\nline two\n")
    assert result.stdout == "line one\nline two\n"


def test_cp_into_the_pod_and_back(cluster: ServerProcess, ns: str, pod: str, tmp_path: Path) -> None:
    local = tmp_path / "local.txt"
    local.write_text("copied by kubectl cp\n")
    remote = tmp_path / "in-pod" / "x.txt"  # the process runtime's containers see this machine's files
    remote.parent.mkdir()
    cluster.kubectl("cp", str(local), f"{ns}/{pod}:{remote}")
    assert remote.read_text() == "copied by kubectl cp\n"
    back = tmp_path / "back.txt"
    cluster.kubectl("cp", f"{ns}/{pod}:{remote}", str(back))
    assert back.read_text() == "copied by kubectl cp\n"


def test_exec_into_a_missing_container_is_refused(cluster: ServerProcess, ns: str, pod: str) -> None:
    result = cluster.kubectl("exec", "-n", ns, pod, "-c", "nope", "--", "true", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == "Error from server (BadRequest): container nope is not valid for pod p"


def test_exec_into_a_container_not_yet_running(cluster: ServerProcess, ns: str) -> None:
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest("w", "sleep 60", init="sleep 60"))
    wait_phase(cluster, ns, "w", "Pending")
    deadline = time.monotonic() + 20
    while True:  # the init container runs; main has not started
        result = cluster.kubectl("exec", "-n", ns, "w", "-c", "init", "--", "echo", "in-init", check=False)
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert result.stdout == "in-init\n"
    result = cluster.kubectl("exec", "-n", ns, "w", "-c", "main", "--", "true", check=False)
    assert result.returncode == 1
    assert result.stderr.strip() == 'error: Internal error occurred: unable to upgrade connection: container not found ("main")'


def test_exec_of_a_missing_command(cluster: ServerProcess, ns: str, pod: str) -> None:
    result = cluster.kubectl("exec", "-n", ns, pod, "--", "no-such-command", check=False)
    assert result.returncode == 1
    assert result.stderr.startswith("error: Internal error occurred: Internal error occurred: error executing "
                                    "command in container: failed to exec in container: ")
    assert 'exec: "no-such-command": executable file not found in $PATH' in result.stderr


def test_exec_it_runs_on_a_terminal_of_the_callers_size(cluster: ServerProcess, ns: str, pod: str) -> None:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 33, 91, 0, 0))
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "HOME": str(cluster.home)}
    proc = subprocess.Popen([KUBECTL, "exec", "-it", "-n", ns, pod, "--", "sh", "-c", "stty size; tty; exit 4"],
                            stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            elif proc.poll() is not None:
                break
        assert proc.wait(timeout=10) == 4
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert b"33 91" in out and b"/dev/pts/" in out


def test_attach_with_stdin_once(cluster: ServerProcess, ns: str) -> None:
    extra = "\n    stdin: true\n    stdinOnce: true"
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=pod_manifest(
        "a", "echo started; while read l; do echo got:$l; done; echo bye", extra=extra, restart="Never"))
    wait_phase(cluster, ns, "a", "Running")
    result = cluster.kubectl("attach", "-i", "-n", ns, "a", input="one\ntwo\n", timeout=30)
    assert "got:one\ngot:two\nbye\n" in result.stdout
    wait_phase(cluster, ns, "a", "Succeeded")  # stdinOnce: the container's stdin ended with the client's
    assert cluster.kubectl("logs", "-n", ns, "a").stdout == "started\ngot:one\ngot:two\nbye\n"


def test_python_client_stream(cluster: ServerProcess, ns: str, pod: str) -> None:
    from kubernetes import client
    from kubernetes.stream import stream

    api = client.CoreV1Api(cluster.api_client())
    out = stream(api.connect_get_namespaced_pod_exec, pod, ns, command=["sh", "-c", "echo out; echo err >&2"],
                 stderr=True, stdin=False, stdout=True, tty=False)
    assert sorted(out.splitlines()) == ["err", "out"]  # two streams: their relative order is not kept
    resp = stream(api.connect_get_namespaced_pod_exec, pod, ns, command=["sh", "-c", "read x; echo got:$x; exit 7"],
                  stderr=True, stdin=True, stdout=True, tty=False, _preload_content=False)
    resp.write_stdin("hi\n")
    resp.run_forever(timeout=10)
    assert resp.read_stdout(timeout=10) == "got:hi\n"
    assert resp.returncode == 7
    resp.close()


@pytest.fixture
def tls(cluster: ServerProcess) -> Iterator[ssl.SSLContext]:
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    user = config["users"][0]["user"]
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for name, data in (("ca", config["clusters"][0]["cluster"]["certificate-authority-data"]),
                           ("crt", user["client-certificate-data"]), ("key", user["client-key-data"])):
            files[name] = Path(tmp) / name
            files[name].write_bytes(base64.b64decode(data))
        ctx = ssl.create_default_context(cafile=str(files["ca"]))
        ctx.load_cert_chain(str(files["crt"]), str(files["key"]))
        yield ctx


async def test_wire_v4_passthrough_spdy_and_plain_requests(cluster: ServerProcess, ns: str, pod: str,
                                                           tls: ssl.SSLContext) -> None:
    url = f"{cluster.url}/api/v1/namespaces/{ns}/pods/{pod}/exec"
    params = [("command", "sh"), ("command", "-c"), ("command", "exit 5"), ("stdout", "true")]
    async with aiohttp.ClientSession() as http:
        # v4 only (the aio client's offer): relayed as the kubelet wrote it, not translated
        async with http.ws_connect(url, params=params, protocols=["v4.channel.k8s.io"], ssl=tls) as ws:
            assert ws.protocol == "v4.channel.k8s.io"
            frames = [msg.data async for msg in ws]
        assert frames[0] == b"\x01"
        status = json.loads(frames[-1][1:])
        assert status["message"] == ("command terminated with non-zero exit code: error executing command "
                                     "[sh -c exit 5], exit code 5")
        # v5: the translator's wording
        async with http.ws_connect(url, params=params, protocols=["v5.channel.k8s.io"], ssl=tls) as ws:
            assert ws.protocol == "v5.channel.k8s.io"
            frames = [msg.data async for msg in ws]
        assert json.loads(frames[-1][1:])["message"] == ("command terminated with non-zero exit code: "
                                                        "command terminated with exit code 5")
        async with http.post(url, params=params, ssl=tls,
                             headers={"Connection": "Upgrade", "Upgrade": "SPDY/3.1",
                                      "X-Stream-Protocol-Version": "v4.channel.k8s.io"}) as resp:
            body = await resp.json()
            assert resp.status == 400 and body["reason"] == "BadRequest" and "WebSocket only" in body["message"]
        async with http.get(url, params=params, ssl=tls) as resp:
            assert resp.status == 400 and (await resp.json())["message"] == "Upgrade request required"
