"""kubeadm's Corefile (the `coredns` ConfigMap) read into the server's settings, stub domains,
the flags-over-Corefile rule, and `reload` applying an edit while the server runs."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from pykube_server.cmd import dns as dnscmd
from pykube_server.dns import corefile, wire
from pykube_server.dns.cluster import ClusterZone
from pykube_server.dns.server import Resolver


def test_kubeadms_corefile_gives_kubeadms_settings(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 10.0.0.2\n")
    text = corefile.kubeadm_corefile("cluster.local").replace("/etc/resolv.conf", str(resolv))
    got = corefile.settings(corefile.parse(text))
    assert (got.port, got.cluster_domain, got.ttl, got.pods) == (53, "cluster.local", 30, "insecure")
    assert (got.health, got.ready, got.metrics, got.reload_seconds) == (":8080", ":8181", ":9153", 30.0)
    assert got.routes == [(".", ["10.0.0.2"])]


def test_stub_domains_route_before_the_default_forwarder() -> None:
    got = corefile.settings(corefile.parse("""
.:53 {
    kubernetes corp.internal in-addr.arpa ip6.arpa {
       pods verified
       ttl 5
    }
    forward . 8.8.8.8 dns://1.1.1.1
    reload 2s
}
consul.local:53 {
    errors
    forward . 10.150.0.1:8600
}
"""))
    assert (got.cluster_domain, got.ttl, got.pods, got.reload_seconds) == ("corp.internal", 5, "verified", 2.0)
    assert got.routes == [("consul.local", ["10.150.0.1:8600"]), (".", ["8.8.8.8", "1.1.1.1"])]
    resolver = Resolver(lambda: None, [], routes=got.routes)
    assert resolver.upstreams_for("web.service.consul.local") == ["10.150.0.1:8600"]
    assert resolver.upstreams_for("example.com") == ["8.8.8.8", "1.1.1.1"]


@pytest.mark.parametrize("text, message", [
    (".:53 {\n kubernetes cluster.local {\n  ttl 9999\n }\n}\n", "Corefile:3 - Error during parsing: ttl must be in range"),
    (".:53 {\n kubernetes cluster.local {\n  pods maybe\n }\n}\n", "Corefile:3 - Error during parsing: wrong value for pods"),
    (".:53 {\n errors\n", "Unexpected EOF"),
    ("}\n", "Corefile:1 - Error during parsing: Unexpected token '}'"),
    (".:53 {\n reload soon\n}\n", "Corefile:2 - Error during parsing: invalid duration 'soon'"),
])
def test_broken_corefiles_say_where(text: str, message: str) -> None:
    with pytest.raises(corefile.CorefileError, match=message):
        corefile.settings(corefile.parse(text))


def parse_flags(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    dnscmd.add_flags(p)
    return p.parse_args(argv)


def test_the_corefile_fills_what_the_flags_leave_unset(tmp_path: Path) -> None:
    conf = tmp_path / "Corefile"
    conf.write_text(corefile.kubeadm_corefile("example.internal"))
    argv = ["-conf", str(conf), "--listen", "127.244.1.7", "--endpoint", "https://127.0.0.1:6443"]
    settings, explicit = dnscmd.settings_from(parse_flags(argv), argv)
    assert (settings.listen, settings.cluster_domain, settings.ttl, settings.endpoint) == (
        "127.244.1.7:53", "example.internal", 30, "https://127.0.0.1:6443")
    assert (settings.health_listen, settings.ready_listen, settings.metrics_listen) == (
        "127.244.1.7:8080", "127.244.1.7:8181", "127.244.1.7:9153")
    argv = ["--conf", str(conf), "--listen", "127.0.0.1:5353", "--ttl", "7"]
    settings, _ = dnscmd.settings_from(parse_flags(argv), argv)
    assert (settings.listen, settings.ttl) == ("127.0.0.1:5353", 7)
    conf.write_text(".:5300 {\n kubernetes cluster.local {\n  ttl 0\n }\n}\n")
    argv = ["-conf", str(conf)]
    settings, _ = dnscmd.settings_from(parse_flags(argv), argv)
    assert (settings.listen, settings.ttl, settings.health_listen) == ("127.0.0.1:5300", 0, "")


async def test_reload_applies_an_edited_corefile_and_keeps_the_old_one_when_broken(tmp_path: Path) -> None:
    conf = tmp_path / "Corefile"
    conf.write_text(".:53 {\n kubernetes cluster.local\n forward . 10.0.0.2\n reload 50ms\n}\n")
    argv = ["-conf", str(conf)]
    settings, explicit = dnscmd.settings_from(parse_flags(argv), argv)

    class NoInformers:
        def informer(self, resource: object) -> object:
            class Stub:
                def add_handler(self, handler: object) -> None: ...
            return Stub()

    zone = ClusterZone(NoInformers(), settings.cluster_domain, ttl=settings.ttl)  # type: ignore[arg-type]
    resolver = Resolver(lambda: None, [], routes=[(z, list(u)) for z, u in settings.routes or ()])
    task = asyncio.create_task(dnscmd._reload(settings, explicit, zone, resolver))
    try:
        await asyncio.sleep(0.1)  # the reloader has read the file it started with
        conf.write_text(".:53 {\n kubernetes corp.local {\n  ttl 3\n }\n forward . 10.0.0.9\n reload 50ms\n}\n")
        for _ in range(100):
            if zone.domain == "corp.local":
                break
            await asyncio.sleep(0.02)
        assert (zone.domain, zone.ttl, resolver.upstreams_for("example.com")) == ("corp.local", 3, ["10.0.0.9"])
        conf.write_text(".:53 {\n kubernetes corp.local {\n  ttl -1\n }\n")  # broken: ignored
        await asyncio.sleep(0.2)
        assert zone.ttl == 3 and resolver.upstreams_for("example.com") == ["10.0.0.9"]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
