"""The cluster zone's answers, per the Kubernetes DNS specification and CoreDNS's kubernetes plugin
(kubeadm's Corefile: `pods insecure`, `ttl 30`)."""

from __future__ import annotations

import pytest

from pykube_server.dns import wire
from pykube_server.dns.records import DEFAULT_TTL, Zone, reverse_ip, undashed
from tests.dns.fixtures import endpoint, endpoint_slice, service

DOMAIN = "cluster.local"


@pytest.fixture
def zone() -> Zone:
    services = [
        service("kubernetes", cluster_ip="127.96.0.1", ports=[{"name": "https", "port": 443, "protocol": "TCP"}]),
        service("web", "shop", cluster_ip="127.96.0.20",
                ports=[{"name": "http", "port": 80, "protocol": "TCP"}, {"port": 81, "protocol": "TCP"}]),
        service("db", "shop", cluster_ip="None", ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}]),
        service("empty", "shop", cluster_ip="None"),
        service("ext", "shop", cluster_ip="", type="ExternalName", externalName="example.com", ports=[]),
        service("alias", "shop", cluster_ip="", type="ExternalName", externalName=f"web.shop.svc.{DOMAIN}", ports=[]),
        service("notready", "shop", cluster_ip="None", publishNotReadyAddresses=True),
    ]
    slices = [
        endpoint_slice("web", "shop", endpoints=[endpoint("127.244.1.5")]),
        endpoint_slice("db", "shop", endpoints=[endpoint("127.244.1.7", hostname="db-0"),
                                                endpoint("127.244.1.8", hostname="db-1"),
                                                endpoint("127.244.1.9", hostname="db-2", ready=False),
                                                endpoint("127.244.1.10")],
                       ports=[{"name": "pg", "port": 5432, "protocol": "TCP"}]),
        endpoint_slice("notready", "shop", endpoints=[endpoint("127.244.1.11", ready=False)]),
    ]
    return Zone(DOMAIN, services, slices, ["default", "shop", "kube-system"], serial=1700000000)


def ask(zone: Zone, name: str, qtype: int = wire.A):  # type: ignore[no-untyped-def]
    answer = zone.resolve(wire.Question(name, qtype))
    assert answer is not None, name
    return answer


def values(records: list[wire.Record]) -> list[object]:
    return [wire.parse_rdata(r) for r in records]


def test_service_a_record_is_the_cluster_ip_with_kubeadms_ttl(zone: Zone) -> None:
    answer = ask(zone, "web.shop.svc.cluster.local")
    assert answer.rcode == wire.NOERROR
    assert [(r.name, r.type, r.ttl) for r in answer.answers] == [("web.shop.svc.cluster.local", wire.A, 30)]
    assert values(answer.answers) == ["127.96.0.20"]
    assert DEFAULT_TTL == 30


def test_names_compare_case_insensitively_and_answers_keep_the_askers_case(zone: Zone) -> None:
    answer = ask(zone, "Web.SHOP.svc.Cluster.Local")
    assert answer.answers[0].name == "Web.SHOP.svc.Cluster.Local"
    assert values(answer.answers) == ["127.96.0.20"]


def test_aaaa_for_an_ipv4_service_is_nodata_with_the_soa(zone: Zone) -> None:
    answer = ask(zone, "web.shop.svc.cluster.local", wire.AAAA)
    assert (answer.rcode, answer.answers) == (wire.NOERROR, [])
    assert values(answer.authority) == [("ns.dns.cluster.local", "hostmaster.cluster.local", 1700000000,
                                         7200, 1800, 86400, 30)]


def test_unknown_names_in_the_zone_are_nxdomain_with_the_soa(zone: Zone) -> None:
    for name in ("nope.shop.svc.cluster.local", "web.nons.svc.cluster.local", "x.y.z.svc.cluster.local.extra"
                 ".cluster.local", "foo.cluster.local", "nons.svc.cluster.local"):
        answer = ask(zone, name)
        assert answer.rcode == wire.NXDOMAIN, name
        assert [r.type for r in answer.authority] == [wire.SOA]


def test_existing_namespace_and_zone_apex_are_nodata(zone: Zone) -> None:
    assert ask(zone, "shop.svc.cluster.local").rcode == wire.NOERROR
    assert ask(zone, "svc.cluster.local").rcode == wire.NOERROR
    assert values(ask(zone, "cluster.local", wire.SOA).answers)[0][0] == "ns.dns.cluster.local"  # type: ignore[index]
    assert values(ask(zone, "cluster.local", wire.NS).answers) == ["ns.dns.cluster.local"]


def test_headless_service_answers_each_ready_endpoint(zone: Zone) -> None:
    answer = ask(zone, "db.shop.svc.cluster.local")
    assert sorted(values(answer.answers)) == ["127.244.1.10", "127.244.1.7", "127.244.1.8"]  # not the unready .9


def test_headless_service_without_ready_endpoints_is_nodata_not_nxdomain(zone: Zone) -> None:
    answer = ask(zone, "empty.shop.svc.cluster.local")
    assert (answer.rcode, answer.answers) == (wire.NOERROR, [])


def test_publish_not_ready_addresses_counts_every_endpoint(zone: Zone) -> None:
    assert values(ask(zone, "notready.shop.svc.cluster.local").answers) == ["127.244.1.11"]


def test_endpoint_hostnames_resolve_under_their_service(zone: Zone) -> None:
    assert values(ask(zone, "db-1.db.shop.svc.cluster.local").answers) == ["127.244.1.8"]
    assert values(ask(zone, "127-244-1-10.db.shop.svc.cluster.local").answers) == ["127.244.1.10"]
    assert ask(zone, "db-2.db.shop.svc.cluster.local").rcode == wire.NXDOMAIN  # not ready
    assert ask(zone, "db-9.db.shop.svc.cluster.local").rcode == wire.NXDOMAIN


def test_srv_for_a_cluster_ip_service_points_at_the_service_name(zone: Zone) -> None:
    answer = ask(zone, "_http._tcp.web.shop.svc.cluster.local", wire.SRV)
    assert values(answer.answers) == [(0, 100, 80, "web.shop.svc.cluster.local")]
    assert values(answer.additional) == ["127.96.0.20"]
    assert answer.additional[0].name == "web.shop.svc.cluster.local"
    assert ask(zone, "_https._tcp.kubernetes.default.svc.cluster.local", wire.SRV).answers[0].ttl == 30


def test_srv_for_a_headless_service_names_each_ready_endpoint(zone: Zone) -> None:
    answer = ask(zone, "_pg._tcp.db.shop.svc.cluster.local", wire.SRV)
    assert sorted(values(answer.answers)) == [  # type: ignore[type-var]
        (0, 33, 5432, "127-244-1-10.db.shop.svc.cluster.local"), (0, 33, 5432, "db-0.db.shop.svc.cluster.local"),
        (0, 33, 5432, "db-1.db.shop.svc.cluster.local")]
    assert sorted(values(answer.additional)) == ["127.244.1.10", "127.244.1.7", "127.244.1.8"]


def test_srv_for_unknown_port_or_protocol_is_nxdomain(zone: Zone) -> None:
    assert ask(zone, "_nope._tcp.web.shop.svc.cluster.local", wire.SRV).rcode == wire.NXDOMAIN
    assert ask(zone, "_http._udp.web.shop.svc.cluster.local", wire.SRV).rcode == wire.NXDOMAIN
    assert ask(zone, "_http._quic.web.shop.svc.cluster.local", wire.SRV).rcode == wire.NXDOMAIN


def test_srv_query_on_the_service_name_lists_named_ports_only(zone: Zone) -> None:
    assert values(ask(zone, "web.shop.svc.cluster.local", wire.SRV).answers) == [(0, 100, 80, "web.shop.svc.cluster.local")]


def test_external_name_is_a_cname_chased_inside_the_zone(zone: Zone) -> None:
    ext = ask(zone, "ext.shop.svc.cluster.local")
    assert [(r.type, wire.parse_rdata(r)) for r in ext.answers] == [(wire.CNAME, "example.com")]
    alias = ask(zone, "alias.shop.svc.cluster.local")
    assert [(r.type, wire.parse_rdata(r)) for r in alias.answers] == [
        (wire.CNAME, "web.shop.svc.cluster.local"), (wire.A, "127.96.0.20")]


def test_pod_records_need_a_known_namespace_and_a_dashed_ip(zone: Zone) -> None:
    assert values(ask(zone, "127-244-1-99.shop.pod.cluster.local").answers) == ["127.244.1.99"]
    assert ask(zone, "127-244-1-99.nons.pod.cluster.local").rcode == wire.NXDOMAIN
    assert ask(zone, "not-an-ip.shop.pod.cluster.local").rcode == wire.NXDOMAIN


def test_pods_verified_and_disabled_modes() -> None:
    verified = Zone(DOMAIN, [], [], ["shop"], pod_ips=[("shop", "127.244.1.5")])
    assert values(ask(verified, "127-244-1-5.shop.pod.cluster.local").answers) == ["127.244.1.5"]
    assert ask(verified, "127-244-1-6.shop.pod.cluster.local").rcode == wire.NXDOMAIN
    disabled = Zone(DOMAIN, [], [], ["shop"], pods=False)
    assert ask(disabled, "127-244-1-5.shop.pod.cluster.local").rcode == wire.NXDOMAIN


def test_dns_version_txt(zone: Zone) -> None:
    assert values(ask(zone, "dns-version.cluster.local", wire.TXT).answers) == [("1.1.0",)]


def test_ptr_for_cluster_ips_and_endpoints(zone: Zone) -> None:
    assert values(ask(zone, "20.0.96.127.in-addr.arpa", wire.PTR).answers) == ["web.shop.svc.cluster.local"]
    assert values(ask(zone, "8.1.244.127.in-addr.arpa", wire.PTR).answers) == ["db-1.db.shop.svc.cluster.local"]
    assert values(ask(zone, "10.1.244.127.in-addr.arpa", wire.PTR).answers) == [
        "127-244-1-10.db.shop.svc.cluster.local"]


def test_names_outside_the_zone_are_not_ours(zone: Zone) -> None:
    assert zone.resolve(wire.Question("example.com", wire.A)) is None
    assert zone.resolve(wire.Question("99.99.99.10.in-addr.arpa", wire.PTR)) is None  # fallthrough in-addr.arpa
    assert zone.resolve(wire.Question("cluster.localx", wire.A)) is None


def test_ip_helpers() -> None:
    assert undashed("10-244-1-5") == "10.244.1.5"
    assert undashed("fd00--1") == "fd00::1"
    assert undashed("web") is None
    assert reverse_ip("5.1.244.10.in-addr.arpa") == "10.244.1.5"
    assert reverse_ip("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa") == "fd00::1"
