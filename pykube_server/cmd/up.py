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
from pykube_server.cmd import addons
from pykube_server.cmd.apiserver import service_account_signing_key

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
        (Component("controller-manager", "system:kube-controller-manager"),
         ["--service-account-private-key-file", str(service_account_signing_key(args)),
          "--local-path-dir", str(Path(getattr(args, "data_dir", ".pykube")).resolve() / "local-path"),
          "--cluster-signing-cert-file", str(Path(getattr(args, "data_dir", ".pykube")).resolve() / "pki" / certs.CA_CERT_FILE),
          "--cluster-signing-key-file", str(Path(getattr(args, "data_dir", ".pykube")).resolve() / "pki" / certs.CA_KEY_FILE),
          "--load-balancer-ip-range", getattr(args, "load_balancer_ip_range", "127.240.0.0/16")]),
        (Component("scheduler", "system:kube-scheduler"), []),
        (Component("proxy", "system:kube-proxy"),
         ["--hostname-override", ",".join(f"pykube-node-{i}" for i in range(1, getattr(args, "nodes", 1) + 1))]),
        (Component("kubelet", "system:node:pykube-node-1", ("system:nodes",)),
         ["--nodes", str(getattr(args, "nodes", 1)), "--runtime", getattr(args, "runtime", "process"),
          "--cluster-dns", addons.dns_service_ip(getattr(args, "service_cluster_ip_range", "127.96.0.0/16"))
          if addons.addon_enabled(getattr(args, "components", "*"), "dns") else "",
          "--cluster-domain", getattr(args, "cluster_domain", "cluster.local"),
          "--pod-cidr", getattr(args, "pod_cidr", "127.244.0.0/16"),
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


OWN_IDENTITY_MAX_NODES = 16
"""Up to this many virtual nodes each get their own `system:node:<name>` identity (and so the
Node authorizer's and NodeRestriction's confinement, as real kubelets do); a larger simulated
fleet shares one identity, `system:kubelet-pool` in `system:nodes`, as kwok's do."""
POOL_IDENTITY = "system:kubelet-pool"


def write_node_kubeconfigs(pki: certs.Pki, data_dir: Path, server_url: str, names: list[str]) -> Path:
    """One kubeconfig per virtual node (`<name>.yaml`), for the kubelet's `--node-kubeconfig-dir`."""
    directory = data_dir / "kubeconfigs" / "nodes"
    for name in names:
        cert_pem, key_pem = certs.issue_client_cert(pki.ca, f"system:node:{name}", ["system:nodes"])
        write_kubeconfig(directory / f"{name}.yaml", server=server_url, ca_pem=pki.ca.cert_pem,
                         client_cert_pem=cert_pem, client_key_pem=key_pem, user_name=f"system:node:{name}")
    return directory


async def bind_node_role_to_all_nodes(pki: certs.Pki, data_dir: Path, server_url: str) -> None:
    """A large simulated fleet shares one identity in `system:nodes` that is no node's, so the
    Node authorizer does not apply to it; as kube documents for clusters that need it, the
    `system:node` ClusterRole is bound to the `system:nodes` group (kube's pre-1.8 binding)."""
    from pykube_server.client.rest import Client, Resource

    bindings = Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", namespaced=False)
    subject = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:nodes"}
    admin = Component("up", certs.ADMIN_COMMON_NAME, (certs.ADMIN_ORGANIZATION,))
    async with Client.from_kubeconfig(write_component_kubeconfig(pki, data_dir, server_url, admin)) as client:
        binding = await client.get(bindings, "system:node")
        if subject not in (binding.get("subjects") or []):
            binding["subjects"] = [*(binding.get("subjects") or []), subject]
            await client.update(bindings, binding)
    log.info("bound ClusterRole system:node to group system:nodes (one kubelet runs several nodes)")


async def apply_dns_addon(args: argparse.Namespace, pki: certs.Pki, data_dir: Path, server_url: str) -> None:
    """kubeadm's addon phase for DNS: the CoreDNS objects, created once the API server answers."""
    from pykube_server.client.rest import Client

    admin = Component("addons", certs.ADMIN_COMMON_NAME, (certs.ADMIN_ORGANIZATION,))
    try:
        async with Client.from_kubeconfig(write_component_kubeconfig(pki, data_dir, server_url, admin)) as client:
            await addons.apply_dns(client, service_ip=addons.dns_service_ip(args.service_cluster_ip_range),
                                   cluster_domain=getattr(args, "cluster_domain", "cluster.local"),
                                   api_endpoint=server_url)
    except Exception:  # an addon's failure must not take the cluster down with it
        log.exception("dns addon failed")


def run_components(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    """The `components` hook for `apiserver.serve`."""

    async def run(server_url: str, pki: certs.Pki, data_dir: Path) -> None:
        chosen = components_for(args)
        nodes = getattr(args, "nodes", 1)
        if any(c.name == "kubelet" for c, _ in chosen):
            if nodes > OWN_IDENTITY_MAX_NODES:
                await bind_node_role_to_all_nodes(pki, data_dir, server_url)
                chosen = [(Component("kubelet", POOL_IDENTITY, ("system:nodes",)), extra) if c.name == "kubelet"
                          else (c, extra) for c, extra in chosen]
            elif nodes > 1:
                names = [f"pykube-node-{i}" for i in range(1, nodes + 1)]
                directory = write_node_kubeconfigs(pki, data_dir, server_url, names)
                chosen = [(c, [*extra, "--node-kubeconfig-dir", str(directory)]) if c.name == "kubelet"
                          else (c, extra) for c, extra in chosen]
        async with asyncio.TaskGroup() as tg:
            if addons.addon_enabled(getattr(args, "components", "*"), "dns"):
                tg.create_task(apply_dns_addon(args, pki, data_dir, server_url), name="addon-dns")
            for component, extra in chosen:
                kubeconfig = write_component_kubeconfig(pki, data_dir, server_url, component)
                argv = ["--kubeconfig", str(kubeconfig), "--log-level", args.log_level, *extra]
                tg.create_task(supervise(component, argv), name=f"supervise-{component.name}")
        await asyncio.Event().wait()  # `--components=` (the API server alone) keeps serving until stopped

    return run
