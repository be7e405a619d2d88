"""`pykube-server up`: the API server in this process, every other component as a child process.

Two cores are the norm: a busy controller manager or kubelet must not steal the API server's
event loop, so each component runs in its own process and talks to the API server over
loopback HTTPS with its own client certificate, exactly as it would from another machine.
A component that exits is restarted after a second (as a kubelet restarts static pods).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from pykube_server.apiserver import certs
from pykube_server.apiserver.kubeconfig import write_kubeconfig

log = logging.getLogger("pykube.up")

RESTART_DELAY_SECONDS = 1.0
STOP_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class Component:
    name: str
    """The `pykube-server` subcommand."""
    common_name: str
    organizations: tuple[str, ...] = ()


def components_for(args: argparse.Namespace) -> list[tuple[Component, list[str]]]:
    """The table of what `up` runs, with each component's extra flags."""
    table = [
        (Component("controller-manager", "system:kube-controller-manager"), []),
        (Component("scheduler", "system:kube-scheduler"), []),
        (Component("proxy", "system:kube-proxy"), []),
        (Component("kubelet", "system:node:pykube-node-1", ("system:nodes",)),
         ["--nodes", str(getattr(args, "nodes", 1)), "--runtime", getattr(args, "runtime", "process"),
          "--data-dir", str(Path(getattr(args, "data_dir", ".pykube")).resolve())]),
    ]
    wanted = [w.strip() for w in getattr(args, "components", "*").split(",") if w.strip()]
    names = {c.name for c, _ in table}
    chosen = set(names) if "*" in wanted else set()
    for w in wanted:
        if w.startswith("-"):
            chosen.discard(w[1:])
        elif w != "*":
            chosen.add(w)
    return [(c, extra) for c, extra in table if c.name in chosen]


def write_component_kubeconfig(pki: certs.Pki, data_dir: Path, server_url: str, component: Component) -> Path:
    cert_pem, key_pem = certs.issue_client_cert(pki.ca, component.common_name, list(component.organizations))
    path = data_dir / "kubeconfigs" / f"{component.name}.yaml"
    write_kubeconfig(path, server=server_url, ca_pem=pki.ca.cert_pem, client_cert_pem=cert_pem,
                     client_key_pem=key_pem, user_name=component.common_name)
    return path


async def supervise(component: Component, argv: list[str]) -> None:
    """Run one component until cancelled, restarting it whenever it exits."""
    while True:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "pykube_server", component.name, *argv,
                                                    preexec_fn=_die_with_parent)
        try:
            code = await proc.wait()
        except asyncio.CancelledError:
            await _stop(proc)
            raise
        log.warning("%s exited with %s; restarting", component.name, code)
        await asyncio.sleep(RESTART_DELAY_SECONDS)


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM if `up` dies (even by kill -9), so nothing is orphaned."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except OSError:
        pass


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is not None:
        return
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), STOP_GRACE_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()


def run_components(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The `components` hook for `apiserver.serve`."""

    async def run(server_url: str, pki: certs.Pki, data_dir: Path) -> None:
        async with asyncio.TaskGroup() as tg:
            for component, extra in components_for(args):
                kubeconfig = write_component_kubeconfig(pki, data_dir, server_url, component)
                argv = ["--kubeconfig", str(kubeconfig), "--log-level", args.log_level, *extra]
                tg.create_task(supervise(component, argv), name=f"supervise-{component.name}")
        await asyncio.Event().wait()  # `--components=` (the API server alone) keeps serving until stopped

    return run
