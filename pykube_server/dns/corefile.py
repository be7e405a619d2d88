"""The subset of CoreDNS's Corefile that kubeadm's `coredns` ConfigMap uses, plus stub domains.

Why: on a kubeadm cluster DNS is configured by editing that ConfigMap (`kubectl -n kube-system
edit cm coredns`): forwarders, stub domains (`consul.local:53 { forward . 10.150.0.1 }`), the
zone's TTL and pod mode. The `dns` command reads the same file (`--conf`, mounted from the
ConfigMap) and, with the `reload` plugin, applies edits while running.

Understood: server blocks `ZONE[:PORT] ... { ... }`; in them `kubernetes ZONES... { pods MODE;
ttl N; fallthrough ...; endpoint URL }`, `forward FROM TO...` (TO is an address, `dns://`
address, or a resolv.conf path whose nameservers are used), `health [ADDR]`, `ready [ADDR]`,
`prometheus [ADDR]`, `reload`. Other plugins (errors, cache, loop, loadbalance, log...) are
accepted and ignored; a syntax error raises CorefileError with the line, as CoreDNS refuses to
start on one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pykube_server.dns.records import DEFAULT_TTL
from pykube_server.dns.server import upstreams_from_resolv_conf


class CorefileError(ValueError):
    """The Corefile cannot be read."""


@dataclass
class Directive:
    name: str
    args: list[str]
    block: list[Directive] = field(default_factory=list)
    line: int = 0


@dataclass
class ServerBlock:
    zones: list[str]
    """Without the trailing dot; "." is the root."""
    port: int
    directives: list[Directive]

    def get(self, name: str) -> Directive | None:
        return next((d for d in self.directives if d.name == name), None)


@dataclass
class Settings:
    """What the server needs from a Corefile."""

    port: int = 53
    cluster_domain: str = "cluster.local"
    ttl: int = DEFAULT_TTL
    pods: str = "insecure"
    endpoint: str = ""
    routes: list[tuple[str, list[str]]] = field(default_factory=list)
    """(zone, upstreams) for `forward`, most specific first; "." is every other name."""
    health: str | None = None
    ready: str | None = None
    metrics: str | None = None
    reload_seconds: float = 0.0
    """`reload [INTERVAL]`: how often the file is checked for edits (0: never; CoreDNS's default 30s)."""


def _tokens(text: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0]
        for raw in line.replace("{", " { ").replace("}", " } ").split():
            out.append((raw, number))
        out.append(("\n", number))
    return out


def _directives(tokens: list[tuple[str, int]], pos: int) -> tuple[list[Directive], int]:
    """Directives up to the matching `}` (pos is after the `{`); returns them and the position after `}`."""
    out: list[Directive] = []
    current: Directive | None = None
    while pos < len(tokens):
        token, line = tokens[pos]
        if token == "}":
            return out, pos + 1
        if token == "\n":
            current = None
        elif token == "{":
            if current is None:
                raise CorefileError(f"Corefile:{line} - Error during parsing: Unexpected token '{{'")
            current.block, pos = _directives(tokens, pos + 1)
            current = None
            continue
        elif current is None:
            current = Directive(token, [], line=line)
            out.append(current)
        else:
            current.args.append(token)
        pos += 1
    raise CorefileError("Corefile: Error during parsing: Unexpected EOF (a '}' is missing)")


def parse(text: str) -> list[ServerBlock]:
    tokens = _tokens(text)
    blocks: list[ServerBlock] = []
    pos = 0
    keys: list[tuple[str, int]] = []
    while pos < len(tokens):
        token, line = tokens[pos]
        if token == "{":
            if not keys:
                raise CorefileError(f"Corefile:{line} - Error during parsing: a server block needs a zone")
            directives, pos = _directives(tokens, pos + 1)
            zones, ports = [], set()
            for key, key_line in keys:
                zone, port = _zone_port(key, key_line)
                zones.append(zone)
                ports.add(port)
            blocks.append(ServerBlock(zones, min(ports), directives))
            keys = []
            continue
        if token == "}":
            raise CorefileError(f"Corefile:{line} - Error during parsing: Unexpected token '}}'")
        if token != "\n":
            keys.append((token, line))
        pos += 1
    if keys:
        raise CorefileError(f"Corefile:{keys[0][1]} - Error during parsing: a server block needs '{{'")
    return blocks


def _zone_port(key: str, line: int) -> tuple[str, int]:
    key = key.removeprefix("dns://")
    zone, _, port = key.rpartition(":") if ":" in key else (key, "", "53")
    try:
        number = int(port or 53)
    except ValueError:
        raise CorefileError(f"Corefile:{line} - Error during parsing: invalid port {port!r}") from None
    zone = zone.rstrip(".") or "."
    return zone.lower(), number


def _upstreams(args: list[str], line: int) -> list[str]:
    out: list[str] = []
    for arg in args:
        if arg.startswith("/"):
            out += upstreams_from_resolv_conf(arg)
        else:
            out.append(arg.removeprefix("dns://"))
    if not args:
        raise CorefileError(f"Corefile:{line} - Error during parsing: Wrong argument count or unexpected line ending")
    return out


def settings(blocks: list[ServerBlock]) -> Settings:
    """The server's settings: the cluster zone from the block holding `kubernetes`, forwarders
    from every block (a block's own zone when `forward .` is inside `zone:53 { }`)."""
    out = Settings()
    if not blocks:
        raise CorefileError("Corefile: no server blocks")
    out.port = blocks[0].port
    routes: dict[str, list[str]] = {}
    for block in blocks:
        kube = block.get("kubernetes")
        if kube is not None:
            zones = [z.rstrip(".").lower() for z in kube.args] or [z for z in block.zones if z != "."]
            domains = [z for z in zones if not z.endswith(("in-addr.arpa", "ip6.arpa"))]
            if domains:
                out.cluster_domain = domains[0]
            for d in kube.block:
                if d.name == "ttl" and d.args:
                    try:
                        out.ttl = int(d.args[0])
                    except ValueError:
                        raise CorefileError(f"Corefile:{d.line} - Error during parsing: ttl must be a number") from None
                    if not 0 <= out.ttl <= 3600:
                        raise CorefileError(f"Corefile:{d.line} - Error during parsing: ttl must be in range [0, 3600]: "
                                            f"{out.ttl}")
                elif d.name == "pods" and d.args:
                    if d.args[0] not in ("insecure", "verified", "disabled"):
                        raise CorefileError(f"Corefile:{d.line} - Error during parsing: wrong value for pods: "
                                            f"{d.args[0]},  must be one of: disabled, verified, insecure")
                    out.pods = d.args[0]
                elif d.name == "endpoint" and d.args:
                    out.endpoint = d.args[0]
        for d in block.directives:
            if d.name == "forward" and d.args:
                source = d.args[0].rstrip(".").lower() or "."
                zones = block.zones if source == "." else [source]
                for zone in zones:
                    routes.setdefault(zone, _upstreams(d.args[1:], d.line))
            elif d.name in ("health", "ready", "prometheus"):
                default = {"health": ":8080", "ready": ":8181", "prometheus": ":9153"}[d.name]
                addr = d.args[0] if d.args else default
                setattr(out, {"health": "health", "ready": "ready", "prometheus": "metrics"}[d.name], addr)
            elif d.name == "reload":
                out.reload_seconds = _duration(d.args[0], d.line) if d.args else 30.0
    out.routes = sorted(routes.items(), key=lambda r: (r[0] == ".", -r[0].count(".")))
    return out


def _duration(value: str, line: int) -> float:
    """A Go duration such as `2s`, `1m30s`, `500ms`."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise CorefileError(f"Corefile:{line} - Error during parsing: invalid duration {value!r}")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(float(n) * scale[u] for n, u in parts)


def load(path: str | Path) -> Settings:
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise CorefileError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return settings(parse(text))


def kubeadm_corefile(cluster_domain: str = "cluster.local") -> str:
    """The Corefile kubeadm writes into the `coredns` ConfigMap."""
    return (".:53 {\n"
            "    errors\n"
            "    health {\n"
            "       lameduck 5s\n"
            "    }\n"
            "    ready\n"
            f"    kubernetes {cluster_domain} in-addr.arpa ip6.arpa {{\n"
            "       pods insecure\n"
            "       fallthrough in-addr.arpa ip6.arpa\n"
            "       ttl 30\n"
            "    }\n"
            "    prometheus :9153\n"
            "    forward . /etc/resolv.conf {\n"
            "       max_concurrent 1000\n"
            "    }\n"
            "    cache 30\n"
            "    loop\n"
            "    reload\n"
            "    loadbalance\n"
            "}\n")
