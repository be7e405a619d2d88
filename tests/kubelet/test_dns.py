"""Pods' resolv.conf and /etc/hosts as the kubelet writes them (dnsPolicy, dnsConfig, limits,
hostname/subdomain, hostAliases)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pykube_server.api.types import Obj
from pykube_server.kubelet.dns import PodDNS, parse_resolv_conf
from pykube_server.kubelet.runtime import Mount


def pod(name: str = "web-0", ns: str = "shop", **spec: object) -> Obj:
    return {"metadata": {"name": name, "namespace": ns, "uid": "u-1"},
            "spec": {"containers": [{"name": "main", "image": "busybox"}], **spec}}


@pytest.fixture
def warnings() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def dns(tmp_path: Path, warnings: list[tuple[str, str]]) -> PodDNS:
    node_resolv = tmp_path / "node-resolv.conf"
    node_resolv.write_text("# node\nnameserver 10.255.255.53\nsearch corp.example\noptions timeout:2\n")
    node_hosts = tmp_path / "node-hosts"
    node_hosts.write_text("127.0.0.1 localhost\n10.0.0.1 node-1\n")
    return PodDNS(tmp_path / "node", cluster_dns=("127.96.0.10",), cluster_domain="cluster.local",
                  resolv_conf=str(node_resolv), hosts_file=str(node_hosts),
                  warn=lambda p, reason, message: warnings.append((reason, message)))


def test_cluster_first_uses_the_cluster_dns_namespace_search_path_and_ndots(dns: PodDNS) -> None:
    assert dns.config_for(pod()).render() == (
        "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example\n"
        "nameserver 127.96.0.10\n"
        "options ndots:5\n")


def test_default_policy_and_host_network_use_the_nodes_resolv_conf(dns: PodDNS) -> None:
    node = "search corp.example\nnameserver 10.255.255.53\noptions timeout:2\n"
    assert dns.config_for(pod(dnsPolicy="Default")).render() == node
    assert dns.config_for(pod(hostNetwork=True)).render() == node  # ClusterFirst falls back on hostNetwork
    with_host_net = dns.config_for(pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet")).render()
    assert with_host_net.splitlines()[1] == "nameserver 127.96.0.10"


def test_none_policy_takes_only_dns_config_and_options_merge_by_name(dns: PodDNS) -> None:
    none = pod(dnsPolicy="None", dnsConfig={"nameservers": ["1.2.3.4"], "searches": ["ns1.svc.cluster-domain.example"],
                                            "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]})
    assert dns.config_for(none).render() == ("search ns1.svc.cluster-domain.example\nnameserver 1.2.3.4\n"
                                             "options ndots:2 edns0\n")
    merged = pod(dnsConfig={"nameservers": ["127.96.0.10", "1.2.3.4"], "options": [{"name": "ndots", "value": "1"}]})
    config = dns.config_for(merged)
    assert config.servers == ("127.96.0.10", "1.2.3.4") and config.options == ("ndots:1",)


def test_limits_keep_three_nameservers_and_warn(dns: PodDNS, warnings: list[tuple[str, str]]) -> None:
    config = dns.config_for(pod(dnsConfig={"nameservers": ["1.1.1.1", "2.2.2.2", "3.3.3.3"]}))
    assert config.servers == ("127.96.0.10", "1.1.1.1", "2.2.2.2")
    assert warnings == [("DNSConfigForming", "Nameserver limits were exceeded, some nameservers have been omitted, "
                                             "the applied nameserver line is: 127.96.0.10 1.1.1.1 2.2.2.2")]
    warnings.clear()
    many = [f"d{i}.example" for i in range(40)]
    assert len(dns.config_for(pod(dnsConfig={"searches": many})).searches) == 32
    assert warnings[0][0] == "DNSConfigForming" and warnings[0][1].startswith("Search Line limits were exceeded")


def test_without_cluster_dns_cluster_first_falls_back_with_a_warning(tmp_path: Path,
                                                                     warnings: list[tuple[str, str]]) -> None:
    (tmp_path / "r").write_text("nameserver 10.0.0.2\n")
    bare = PodDNS(tmp_path, cluster_dns=(), cluster_domain="cluster.local", resolv_conf=str(tmp_path / "r"),
                  warn=lambda p, reason, message: warnings.append((reason, message)))
    assert bare.config_for(pod()).servers == ("10.0.0.2",)
    assert warnings == [("MissingClusterDNS", 'pod: "web-0_shop(u-1)". kubelet does not have ClusterDNS IP configured '
                                              'and cannot create Pod using "ClusterFirst" policy. Falling back to '
                                              '"Default" policy.')]


def test_hosts_file_has_the_pod_name_fqdn_and_aliases(dns: PodDNS) -> None:
    plain = dns.hosts_for(pod(), "127.244.1.5")
    assert plain == ("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"
                     "::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\n"
                     "fe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n127.244.1.5\tweb-0\n")
    sts = dns.hosts_for(pod(hostname="db-0", subdomain="db",
                            hostAliases=[{"ip": "10.1.2.3", "hostnames": ["foo.remote", "bar.remote"]}]), "127.244.1.6")
    assert sts.endswith("127.244.1.6\tdb-0.db.shop.svc.cluster.local\tdb-0\n\n"
                        "# Entries added by HostAliases.\n10.1.2.3\tfoo.remote\tbar.remote\n")
    host_net = dns.hosts_for(pod(hostNetwork=True), "127.0.0.1")
    assert host_net == "# Kubernetes-managed hosts file (host network).\n127.0.0.1 localhost\n10.0.0.1 node-1\n"


def test_container_mounts_write_files_in_place_and_respect_own_mounts(dns: PodDNS, tmp_path: Path) -> None:
    p = pod()
    mounts = dns.container_mounts(p, "127.244.1.5", p["spec"]["containers"][0])
    resolv, hosts = tmp_path / "node" / "pods" / "u-1" / "resolv.conf", tmp_path / "node" / "pods" / "u-1" / "etc-hosts"
    assert mounts == (Mount(str(resolv), "/etc/resolv.conf"), Mount(str(hosts), "/etc/hosts"))
    inode = hosts.stat().st_ino
    dns.container_mounts({**p, "spec": {**p["spec"], "hostAliases": [{"ip": "1.2.3.4", "hostnames": ["x"]}]}},
                         "127.244.1.5", p["spec"]["containers"][0])
    assert hosts.stat().st_ino == inode and "1.2.3.4\tx" in hosts.read_text()
    own = {"name": "main", "volumeMounts": [{"name": "h", "mountPath": "/etc/hosts"}]}
    assert [m.container_path for m in dns.container_mounts(p, "127.244.1.5", own)] == ["/etc/resolv.conf"]


def test_parse_resolv_conf_last_search_line_wins() -> None:
    config = parse_resolv_conf("domain a.example\nsearch b.example c.example.\nnameserver 1.1.1.1 ; x\noptions a b\n")
    assert config.searches == ("b.example", "c.example") and config.servers == ("1.1.1.1",)
    assert config.options == ("a", "b")
