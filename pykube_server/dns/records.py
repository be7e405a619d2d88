"""The cluster zone: Services, EndpointSlices and Namespaces -> DNS answers.

This follows the Kubernetes DNS-Based Service Discovery specification (schema 1.1.0) the
way CoreDNS's `kubernetes` plugin answers it, with kubeadm's Corefile settings
(`pods insecure`, `ttl 30`, `fallthrough in-addr.arpa ip6.arpa`):

* `<svc>.<ns>.svc.<zone>`: A/AAAA -> the ClusterIPs; for a headless Service one record per
  ready endpoint address (no ready endpoint: an empty answer, not NXDOMAIN, since the Service
  exists); an ExternalName Service -> a CNAME to its `externalName` (chased when the target is
  in the zone).
* `<endpoint>.<svc>.<ns>.svc.<zone>` -> that endpoint's address, where `<endpoint>` is the
  endpoint's `hostname` (StatefulSet pods under their governing Service) or, without one, its
  address with dashes (`10-244-1-5`), as CoreDNS names endpoints.
* `_<port>._<proto>.<svc>.<ns>.svc.<zone>` SRV: one record per named port (priority 0, weight
  100 split evenly, as CoreDNS does) whose target is the Service name, or for a headless
  Service each ready endpoint's name; the targets' addresses go in the additional section.
* `<a-b-c-d>.<ns>.pod.<zone>` -> a.b.c.d when the namespace exists (`pods insecure`).
* `dns-version.<zone>` TXT "1.1.0"; the zone apex answers SOA and NS.
* PTR `d.c.b.a.in-addr.arpa` for ClusterIPs (-> the Service name) and ready endpoint
  addresses (-> the endpoint name); other reverse names are not ours (`None`: forward them).
* Anything else under the zone: NXDOMAIN; a name that exists without the asked type: an empty
  NOERROR answer (NODATA). Both carry the zone's SOA in the authority section, whose serial is
  the time of the last change, as CoreDNS's is.

Endpoints count as ready when `conditions.ready` is not false, or for any state when the
Service sets `publishNotReadyAddresses`. Names compare case-insensitively; answers carry
the name as asked.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from pykube_server.api.types import Obj
from pykube_server.dns import wire

DEFAULT_TTL = 30
"""kubeadm's Corefile sets `ttl 30` on the kubernetes plugin (the plugin's own default is 5)."""
SCHEMA_VERSION = "1.1.0"
SOA_REFRESH, SOA_RETRY, SOA_EXPIRE = 7200, 1800, 86400
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
PROTOCOLS = ("tcp", "udp", "sctp")
REVERSE_ZONES = ("in-addr.arpa", "ip6.arpa")


@dataclass(frozen=True)
class Endpoint:
    ip: str
    name: str
    """The endpoint's DNS label: its hostname, or its address with dashes."""
    ports: tuple[tuple[str, str, int], ...]
    """(port name, protocol lower-case, number) from the slice."""


@dataclass
class Answer:
    """What the zone says about one question; `rcode` NOERROR with no answers is NODATA."""

    rcode: int = wire.NOERROR
    answers: list[wire.Record] = field(default_factory=list)
    authority: list[wire.Record] = field(default_factory=list)
    additional: list[wire.Record] = field(default_factory=list)


def dashed(ip: str) -> str:
    return ip.replace(".", "-").replace(":", "-")


def undashed(label: str) -> str | None:
    """`10-244-1-5` -> `10.244.1.5` (and IPv6 with dashes for colons); None when not an IP."""
    for candidate in (label.replace("-", "."), label.replace("-", ":")):
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def reverse_ip(name: str) -> str | None:
    """`5.1.244.10.in-addr.arpa` -> `10.244.1.5` (nibbles for ip6.arpa); None otherwise."""
    labels = name.lower().split(".")
    if labels[-2:] == ["in-addr", "arpa"] and len(labels) == 6:
        try:
            return str(ipaddress.IPv4Address(".".join(reversed(labels[:4]))))
        except ValueError:
            return None
    if labels[-2:] == ["ip6", "arpa"] and len(labels) == 34:
        nibbles = "".join(reversed(labels[:32]))
        try:
            return str(ipaddress.IPv6Address(":".join(nibbles[i:i + 4] for i in range(0, 32, 4))))
        except ValueError:
            return None
    return None


def _ready(endpoint: Obj, publish_not_ready: bool) -> bool:
    return publish_not_ready or (endpoint.get("conditions") or {}).get("ready") is not False


class Zone:
    """An immutable snapshot of the cluster's DNS data, indexed for lookups."""

    def __init__(self, domain: str, services: Iterable[Obj], slices: Iterable[Obj], namespaces: Iterable[str],
                 *, ttl: int = DEFAULT_TTL, serial: int | None = None,
                 pod_ips: Iterable[tuple[str, str]] | None = None, pods: bool = True) -> None:
        self.domain = domain.strip(".").lower()
        self.ttl = ttl
        self.serial = int(time.time()) if serial is None else serial
        self.namespaces = {n.lower() for n in namespaces}
        self.services: dict[tuple[str, str], Obj] = {}
        self.endpoints: dict[tuple[str, str], list[Endpoint]] = {}
        self.reverse: dict[str, list[str]] = {}
        self.pod_ips = None if pod_ips is None else {(ns.lower(), ip) for ns, ip in pod_ips}
        """`pods verified`: (namespace, IP) of existing pods; None is `pods insecure`."""
        self.pods = pods
        """False is `pods disabled`: no `<ip>.<ns>.pod.<zone>` records."""
        for svc in services:
            meta = svc.get("metadata") or {}
            self.services[(meta.get("namespace", "").lower(), meta.get("name", "").lower())] = svc
        by_service: dict[tuple[str, str], list[Obj]] = {}
        for s in slices:
            meta = s.get("metadata") or {}
            owner = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
            if owner and s.get("addressType") in ("IPv4", "IPv6"):
                by_service.setdefault((meta.get("namespace", "").lower(), owner.lower()), []).append(s)
        for key, svc in self.services.items():
            spec = svc.get("spec") or {}
            self.endpoints[key] = self._endpoints(by_service.get(key, []), bool(spec.get("publishNotReadyAddresses")))
            fqdn = self.service_name(svc)
            for ip in self.cluster_ips(svc):
                self.reverse.setdefault(ip, []).append(fqdn)
            for ep in self.endpoints[key]:
                self.reverse.setdefault(ep.ip, []).append(f"{ep.name}.{fqdn}")

    @staticmethod
    def _endpoints(slices: list[Obj], publish_not_ready: bool) -> list[Endpoint]:
        seen: dict[tuple[str, str], Endpoint] = {}
        for s in sorted(slices, key=lambda x: (x.get("metadata") or {}).get("name", "")):
            ports = tuple((str(p.get("name") or "").lower(), str(p.get("protocol") or "TCP").lower(), int(p["port"]))
                          for p in s.get("ports") or [] if p.get("port"))
            for ep in s.get("endpoints") or []:
                if not _ready(ep, publish_not_ready):
                    continue
                for ip in ep.get("addresses") or []:
                    name = str(ep.get("hostname") or dashed(ip)).lower()
                    key = (name, ip)
                    old = seen.get(key)
                    seen[key] = Endpoint(ip, name, tuple(dict.fromkeys((*(old.ports if old else ()), *ports))))
        return sorted(seen.values(), key=lambda e: (e.name, e.ip))

    # --- helpers ---------------------------------------------------------------------------
    def service_name(self, svc: Obj) -> str:
        meta = svc.get("metadata") or {}
        return f"{meta.get('name', '')}.{meta.get('namespace', '')}.svc.{self.domain}"

    @staticmethod
    def cluster_ips(svc: Obj) -> list[str]:
        spec = svc.get("spec") or {}
        ips = list(spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else []))
        return [ip for ip in ips if ip and ip != "None"]

    @staticmethod
    def headless(svc: Obj) -> bool:
        return (svc.get("spec") or {}).get("clusterIP") == "None"

    def soa(self) -> wire.Record:
        return wire.soa(self.domain, self.ttl, f"ns.dns.{self.domain}", f"hostmaster.{self.domain}", self.serial,
                        SOA_REFRESH, SOA_RETRY, SOA_EXPIRE, self.ttl)

    def _nxdomain(self) -> Answer:
        return Answer(wire.NXDOMAIN, authority=[self.soa()])

    def _nodata(self) -> Answer:
        return Answer(wire.NOERROR, authority=[self.soa()])

    def _addresses(self, name: str, qtype: int, ips: Iterable[str]) -> Answer:
        """A/AAAA (or ANY) records for `ips`; NODATA when none of the asked family exists."""
        records = [wire.address(name, self.ttl, ip) for ip in dict.fromkeys(ips)
                   if qtype == wire.ANY or (qtype == wire.AAAA) == (":" in ip)]
        if qtype not in (wire.A, wire.AAAA, wire.ANY) or not records:
            return self._nodata()
        return Answer(answers=records)

    # --- lookups -----------------------------------------------------------------------------
    def owns(self, name: str) -> bool:
        """True when `name` is in the cluster zone (answered here, never forwarded)."""
        key = name.lower().rstrip(".")
        return key == self.domain or key.endswith("." + self.domain)

    def resolve(self, question: wire.Question) -> Answer | None:
        """The answer, or None when the name is not ours (forward it upstream)."""
        key = question.key.rstrip(".")
        if self.owns(key):
            return self._in_zone(question.name.rstrip("."), key, question.type)
        if key.endswith(REVERSE_ZONES) and question.type in (wire.PTR, wire.ANY):
            ip = reverse_ip(key)
            targets = self.reverse.get(ip or "")
            if targets:  # the first match, as CoreDNS answers (an IP behind two Services gets one name)
                return Answer(answers=[wire.ptr(question.name, self.ttl, targets[0])])
        return None

    def _in_zone(self, name: str, key: str, qtype: int) -> Answer:
        labels = key[:-len(self.domain)].rstrip(".").split(".") if key != self.domain else []
        if not labels:
            if qtype == wire.SOA:
                return Answer(answers=[self.soa()])
            if qtype == wire.NS:
                return Answer(answers=[wire.ns(name, self.ttl, f"ns.dns.{self.domain}")])
            return self._nodata()
        if labels == ["dns-version"]:
            if qtype in (wire.TXT, wire.ANY):
                return Answer(answers=[wire.txt(name, self.ttl, SCHEMA_VERSION)])
            return self._nodata()
        kind = labels[-1]
        if kind == "svc":
            return self._service_names(name, labels[:-1], qtype)
        if kind == "pod" and self.pods:
            return self._pod_name(name, labels[:-1], qtype)
        return self._nxdomain()

    def _namespace_known(self, ns: str) -> bool:
        return ns in self.namespaces or any(k[0] == ns for k in self.services)

    def _pod_name(self, name: str, labels: list[str], qtype: int) -> Answer:
        if not labels:
            return self._nodata()
        if len(labels) == 1:
            return self._nodata() if self._namespace_known(labels[0]) else self._nxdomain()
        if len(labels) != 2 or not self._namespace_known(labels[1]):
            return self._nxdomain()
        ip = undashed(labels[0])
        if ip is None or (self.pod_ips is not None and (labels[1], ip) not in self.pod_ips):
            return self._nxdomain()
        return self._addresses(name, qtype, [ip])

    def _service_names(self, name: str, labels: list[str], qtype: int) -> Answer:
        if not labels:
            return self._nodata()
        if len(labels) == 1:
            return self._nodata() if self._namespace_known(labels[0]) else self._nxdomain()
        svc = self.services.get((labels[-1], labels[-2]))
        if svc is None:
            return self._nxdomain()
        key = (labels[-1], labels[-2])
        if len(labels) == 2:
            return self._service(name, svc, key, qtype)
        if len(labels) == 3:
            hits = [e.ip for e in self.endpoints[key] if e.name == labels[0]]
            return self._addresses(name, qtype, hits) if hits else self._nxdomain()
        if len(labels) == 4 and labels[0].startswith("_") and labels[1].startswith("_"):
            return self._srv(name, svc, key, labels[0][1:], labels[1][1:], qtype)
        return self._nxdomain()

    def _service(self, name: str, svc: Obj, key: tuple[str, str], qtype: int) -> Answer:
        spec = svc.get("spec") or {}
        if spec.get("type") == "ExternalName":
            target = str(spec.get("externalName") or "").rstrip(".")
            if not target or qtype not in (wire.A, wire.AAAA, wire.CNAME, wire.ANY):
                return self._nodata()
            answer = Answer(answers=[wire.cname(name, self.ttl, target)])
            if qtype != wire.CNAME and self.owns(target) and target.lower() != name.lower():
                chased = self.resolve(wire.Question(target, qtype))
                if chased is not None:
                    answer.answers += chased.answers
            return answer
        if qtype == wire.SRV:
            return self._srv(name, svc, key, "", "", qtype)
        if self.headless(svc):
            return self._addresses(name, qtype, [e.ip for e in self.endpoints[key]])
        return self._addresses(name, qtype, self.cluster_ips(svc))

    def _srv(self, name: str, svc: Obj, key: tuple[str, str], port: str, proto: str, qtype: int) -> Answer:
        """SRV for `_port._proto` (empty: every named port, as a plain SRV query for the Service gets)."""
        if port and proto not in PROTOCOLS:
            return self._nxdomain()
        fqdn = self.service_name(svc)
        ports = [(str(p.get("name") or "").lower(), str(p.get("protocol") or "TCP").lower(), int(p.get("port") or 0))
                 for p in (svc.get("spec") or {}).get("ports") or []]
        ports = [p for p in ports if p[0] and (not port or (p[0] == port and p[1] == proto))]
        if port and not ports:
            return self._nxdomain()
        targets: list[tuple[int, str, str]] = []
        if self.headless(svc):
            for e in self.endpoints[key]:
                for pname, pproto, number in e.ports:
                    if any(pname == p[0] and pproto == p[1] for p in ports):
                        targets.append((number, f"{e.name}.{fqdn}", e.ip))
        else:
            targets = [(number, fqdn, ip) for _, _, number in ports for ip in self.cluster_ips(svc)]
        if qtype not in (wire.SRV, wire.ANY) or not targets:
            return self._nodata()
        unique = list(dict.fromkeys((number, target) for number, target, _ in targets))
        weight = max(1, 100 // len(unique))
        answer = Answer(answers=[wire.srv(name, self.ttl, 0, weight, number, target) for number, target in unique])
        answer.additional = [wire.address(target, self.ttl, ip) for target, ip in dict.fromkeys((t, ip) for _, t, ip in targets)]
        return answer
