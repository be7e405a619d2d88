"""Each pod's /etc/resolv.conf and /etc/hosts, as the kubelet's DNS configurer and hosts manager
write them.

Why files bound over /etc: a container of the process runtime shares this machine's root
filesystem, so its resolver would read the node's files. Like the real kubelet (which hands
the runtime a DNSConfig for the sandbox's resolv.conf and bind-mounts `pods/<uid>/etc-hosts`
into each container), `container_mounts()` writes both files under the pod's directory and
returns them as read-write Mounts at /etc/resolv.conf and /etc/hosts, bound in the container's
own mount namespace (see runtimes/shim.py); the node's files are never touched.

resolv.conf by `dnsPolicy` (kubelet's `GetPodDNS`):
* ClusterFirst (default; Default for hostNetwork pods): `nameserver` = `--cluster-dns`,
  `search <ns>.svc.<domain> svc.<domain> <domain>` + the node's search domains,
  `options ndots:5`. Without `--cluster-dns` the pod falls back to Default with a
  MissingClusterDNS Warning event, as kubelet does.
* ClusterFirstWithHostNet: ClusterFirst even for hostNetwork pods.
* Default: the node's resolv.conf (nameservers, search, options).
* None: only `dnsConfig`.
`dnsConfig` is then merged in (nameservers and searches appended without duplicates, options
replacing same-named ones), and the limits kubelet enforces applied: 3 nameservers, 32
search domains of at most 2048 characters together (DNSConfigForming Warning events with
kubelet's messages).

/etc/hosts is kubelet's managed file: the localhost and IPv6 lines, `<podIP> <hostname>` or
`<podIP> <hostname>.<subdomain>.<ns>.svc.<domain> <hostname>` with `subdomain`, then the
`hostAliases`. hostNetwork pods get the node's /etc/hosts under the host-network header.
A container that mounts its own /etc/hosts or /etc/resolv.conf keeps it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pykube_server.api.types import Obj
from pykube_server.kubelet.runtime import Mount

RESOLV_CONF = "/etc/resolv.conf"
ETC_HOSTS = "/etc/hosts"
MAX_NAMESERVERS = 3
MAX_SEARCH_PATHS = 32
MAX_SEARCH_CHARS = 2048
DEFAULT_OPTIONS = ("ndots:5",)
MANAGED_HEADER = "# Kubernetes-managed hosts file.\n"
MANAGED_HEADER_HOST_NETWORK = "# Kubernetes-managed hosts file (host network).\n"


@dataclass(frozen=True)
class DNSConfig:
    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def render(self) -> str:
        """The resolv.conf text as the container runtime writes it: search, nameservers, options."""
        lines = []
        if self.searches:
            lines.append("search " + " ".join(self.searches))
        lines += [f"nameserver {s}" for s in self.servers]
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "\n".join(lines) + "\n" if lines else ""


def parse_resolv_conf(text: str) -> DNSConfig:
    servers: list[str] = []
    searches: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if not fields:
            continue
        if fields[0] == "nameserver" and len(fields) > 1:
            servers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            searches = [d.rstrip(".") for d in fields[1:]]  # the last search/domain line wins, as in libc
        elif fields[0] == "options":
            options += fields[1:]
    return DNSConfig(tuple(servers), tuple(searches), tuple(options))


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))


def _merge_options(base: tuple[str, ...], extra: list[Obj]) -> tuple[str, ...]:
    """kubelet's mergeDNSOptions: a pod option replaces the one of the same name."""
    merged: dict[str, str] = {}
    for opt in base:
        name, _, value = opt.partition(":")
        merged[name] = opt
    for opt in extra:
        name = str(opt.get("name") or "")
        if name:
            merged[name] = f"{name}:{opt['value']}" if opt.get("value") is not None else name
    return tuple(merged.values())


class PodDNS:
    """One node's DNS configurer: `--cluster-dns`, `--cluster-domain` and the node's resolv.conf."""

    def __init__(self, root: Path, *, cluster_dns: tuple[str, ...], cluster_domain: str,
                 resolv_conf: str = RESOLV_CONF, hosts_file: str = ETC_HOSTS,
                 warn: Callable[[Obj, str, str], None] | None = None) -> None:
        self.root = Path(root)
        self.cluster_dns = tuple(cluster_dns)
        self.cluster_domain = cluster_domain.strip(".")
        self.resolv_conf = resolv_conf
        self.hosts_file = hosts_file
        self.warn = warn or (lambda pod, reason, message: None)
        """(pod, reason, message): a Warning event about the pod."""

    def pod_dir(self, uid: str) -> Path:
        return self.root / "pods" / uid

    def _host_config(self) -> DNSConfig:
        try:
            return parse_resolv_conf(Path(self.resolv_conf).read_text())
        except OSError:
            return DNSConfig()

    def config_for(self, pod: Obj) -> DNSConfig:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        policy = spec.get("dnsPolicy") or "ClusterFirst"
        host = self._host_config()
        if policy == "None":
            config = DNSConfig()
        elif policy == "ClusterFirstWithHostNet" or (policy == "ClusterFirst" and not spec.get("hostNetwork")):
            if self.cluster_dns:
                domain = self.cluster_domain
                searches = [f"{meta['namespace']}.svc.{domain}", f"svc.{domain}", domain, *host.searches]
                config = DNSConfig(self.cluster_dns, _unique(searches), DEFAULT_OPTIONS)
            else:
                message = ('kubelet does not have ClusterDNS IP configured and cannot create Pod using "ClusterFirst" '
                           'policy. Falling back to "Default" policy.')
                self.warn(pod, "MissingClusterDNS", f'pod: "{meta["name"]}_{meta["namespace"]}({meta["uid"]})". '
                                                    f"{message}")
                config = host
        else:
            config = host
        extra = spec.get("dnsConfig") or {}
        if extra:
            config = DNSConfig(_unique([*config.servers, *(extra.get("nameservers") or [])]),
                               _unique([*config.searches, *(extra.get("searches") or [])]),
                               _merge_options(config.options, extra.get("options") or []))
        return self._fit_limits(pod, config)

    def _fit_limits(self, pod: Obj, config: DNSConfig) -> DNSConfig:
        servers, searches = config.servers, config.searches
        if len(servers) > MAX_NAMESERVERS:
            servers = servers[:MAX_NAMESERVERS]
            self.warn(pod, "DNSConfigForming", "Nameserver limits were exceeded, some nameservers have been omitted, "
                                               f"the applied nameserver line is: {' '.join(servers)}")
        kept: list[str] = []
        for domain in searches[:MAX_SEARCH_PATHS]:
            if len(" ".join([*kept, domain])) > MAX_SEARCH_CHARS:
                break
            kept.append(domain)
        if len(kept) != len(searches):
            self.warn(pod, "DNSConfigForming", "Search Line limits were exceeded, some search paths have been omitted, "
                                               f"the applied search line is: {' '.join(kept)}")
        return DNSConfig(servers, tuple(kept), config.options)

    def hosts_for(self, pod: Obj, pod_ip: str) -> str:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        if spec.get("hostNetwork"):
            try:
                base = Path(self.hosts_file).read_text()
            except OSError:
                base = ""
            text = MANAGED_HEADER_HOST_NETWORK + base + ("" if not base or base.endswith("\n") else "\n")
        else:
            hostname = (spec.get("hostname") or meta["name"])[:63].rstrip("-.")
            text = (MANAGED_HEADER + "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                    "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
            if pod_ip:
                if spec.get("subdomain"):
                    fqdn = f"{hostname}.{spec['subdomain']}.{meta['namespace']}.svc.{self.cluster_domain}"
                    text += f"{pod_ip}\t{fqdn}\t{hostname}\n"
                else:
                    text += f"{pod_ip}\t{hostname}\n"
        aliases = [a for a in spec.get("hostAliases") or [] if a.get("ip")]
        if aliases:
            text += "\n# Entries added by HostAliases.\n"
            text += "".join(f"{a['ip']}\t" + "\t".join(a.get("hostnames") or []) + "\n" for a in aliases)
        return text

    def container_mounts(self, pod: Obj, pod_ip: str, container: Obj) -> tuple[Mount, ...]:
        """Write the pod's files (when changed) and return the container's mounts of them."""
        uid = pod["metadata"]["uid"]
        own = {os.path.normpath(str(vm.get("mountPath") or "")) for vm in container.get("volumeMounts") or []}
        out = []
        for target, name, text in ((RESOLV_CONF, "resolv.conf", lambda: self.config_for(pod).render()),
                                   (ETC_HOSTS, "etc-hosts", lambda: self.hosts_for(pod, pod_ip))):
            if target in own:
                continue
            path = self.pod_dir(uid) / name
            _write_in_place(path, text())
            out.append(Mount(str(path), target))
        return tuple(out)


def _write_in_place(path: Path, text: str) -> None:
    """Rewrite without replacing the inode: a running container's bind mount keeps seeing it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if path.read_text() == text:
            return
    except OSError:
        pass
    with open(path, "w") as f:
        f.write(text)
