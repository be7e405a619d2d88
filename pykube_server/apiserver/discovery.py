"""Discovery documents, legacy and aggregated, built once from the resource table.

kubectl asks for aggregated discovery (`apidiscovery.k8s.io/v2`) and decides by the reply's
Content-Type, so that header must be exact; some commands (auth can-i, drain) still fetch the
legacy per-group-version documents, and the Python DynamicClient uses only those. Both are
served from bytes encoded at start-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from pykube_server.registry.spec import ResourceSpec

AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"

Obj = dict[str, Any]


def _gv(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def _discovery_resource(spec: ResourceSpec) -> Obj:
    entry: Obj = {
        "resource": spec.plural,
        "responseKind": {"group": spec.group, "version": spec.version, "kind": spec.kind},
        "scope": "Namespaced" if spec.namespaced else "Cluster",
        "singularResource": spec.singular,
        "verbs": sorted(spec.verbs),
    }
    if spec.short_names:
        entry["shortNames"] = list(spec.short_names)
    if spec.categories:
        entry["categories"] = list(spec.categories)
    subs = []
    for sub in spec.subresources:
        subs.append({
            "subresource": sub.name,
            "responseKind": {"group": spec.group if sub.group is None else sub.group,
                             "version": spec.version if sub.version is None else sub.version, "kind": sub.kind},
            "verbs": sorted(sub.verbs),
        })
    if subs:
        entry["subresources"] = subs
    return entry


def _legacy_resources(spec: ResourceSpec) -> list[Obj]:
    main: Obj = {"name": spec.plural, "singularName": spec.singular, "namespaced": spec.namespaced,
                 "kind": spec.kind, "verbs": sorted(spec.verbs)}
    if spec.short_names:
        main["shortNames"] = list(spec.short_names)
    if spec.categories:
        main["categories"] = list(spec.categories)
    out = [main]
    for sub in spec.subresources:
        entry: Obj = {"name": f"{spec.plural}/{sub.name}", "singularName": "", "namespaced": spec.namespaced}
        if sub.group is not None and (sub.group != spec.group or (sub.version or spec.version) != spec.version):
            entry["group"] = sub.group
            entry["version"] = sub.version or spec.version
        entry["kind"] = sub.kind
        entry["verbs"] = sorted(sub.verbs)
        out.append(entry)
    return out


@dataclass(frozen=True, slots=True)
class RemoteVersion:
    """An aggregated group-version as last fetched from its extension API server."""

    resources: tuple[Obj, ...]
    """The `resources` of its APIResourceList (legacy form)."""
    fresh: bool
    """False when the last fetch failed: aggregated discovery says `Stale`, as kube's does."""


def _from_legacy(group: str, version: str, resources: Iterable[Obj]) -> list[Obj]:
    """Legacy APIResourceList entries as aggregated discovery resources (`res/sub` entries
    become subresources of `res`; an empty singular name becomes the lowercased kind)."""
    out: dict[str, Obj] = {}
    subs: list[tuple[str, Obj]] = []
    for r in resources:
        name = str(r.get("name", ""))
        kind = {"group": r.get("group", group), "version": r.get("version", version), "kind": r.get("kind", "")}
        if "/" in name:
            parent, _, sub = name.partition("/")
            subs.append((parent, {"subresource": sub, "responseKind": kind, "verbs": list(r.get("verbs") or [])}))
            continue
        entry: Obj = {"resource": name, "responseKind": kind,
                      "scope": "Namespaced" if r.get("namespaced") else "Cluster",
                      "singularResource": r.get("singularName") or str(r.get("kind", "")).lower(),
                      "verbs": list(r.get("verbs") or [])}
        for legacy, aggregated in (("shortNames", "shortNames"), ("categories", "categories")):
            if r.get(legacy):
                entry[aggregated] = list(r[legacy])
        out[name] = entry
    for parent, sub in subs:
        if parent in out:
            out[parent].setdefault("subresources", []).append(sub)
    return list(out.values())


class Discovery:
    """Every discovery document, encoded once."""

    def __init__(self, resources: Iterable[ResourceSpec], preferred: dict[str, tuple[str, ...]], server_address: str,
                 remote: Mapping[tuple[str, str], RemoteVersion] | None = None) -> None:
        self.resources = tuple(resources)
        self.preferred = preferred
        self.server_address = server_address
        self.remote = dict(remote or {})
        """Group-versions served by extension API servers (aggregation): their last fetched
        APIResourceList and whether it is current; `preferred` already places them."""
        by_gv: dict[tuple[str, str], list[ResourceSpec]] = {}
        for spec in self.resources:
            by_gv.setdefault((spec.group, spec.version), []).append(spec)
        self.by_gv = by_gv
        groups = [g for g in preferred if g]
        self.api_versions = orjson.dumps({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        })
        self.group_list = orjson.dumps({"kind": "APIGroupList", "apiVersion": "v1",
                                        "groups": [self._group(g) for g in groups]})
        self.groups = {g: orjson.dumps({"kind": "APIGroup", "apiVersion": "v1", **self._group(g)}) for g in groups}
        self.resource_lists = {
            _gv(g, v): orjson.dumps({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": _gv(g, v),
                                     "resources": [r for s in specs for r in _legacy_resources(s)]})
            for (g, v), specs in by_gv.items()
        }
        self.aggregated_core = {v: self._aggregated([""], v) for v in ("v2", "v2beta1")}
        self.aggregated_apis = {v: self._aggregated(groups, v) for v in ("v2", "v2beta1")}

    def _group(self, group: str) -> Obj:
        versions = [{"groupVersion": _gv(group, v), "version": v} for v in self.preferred[group]]
        return {"name": group, "versions": versions, "preferredVersion": versions[0]}

    def _aggregated(self, groups: list[str], version: str) -> bytes:
        items = []
        for group in groups:
            item: Obj = {"metadata": {"name": group, "creationTimestamp": None} if group else {"creationTimestamp": None},
                         "versions": []}
            for v in self.preferred[group]:
                remote = self.remote.get((group, v))
                item["versions"].append({
                    "version": v,
                    "resources": ([_discovery_resource(s) for s in self.by_gv.get((group, v), [])] if remote is None
                                  else _from_legacy(group, v, remote.resources)),
                    "freshness": "Current" if remote is None or remote.fresh else "Stale",
                })
            items.append(item)
        return orjson.dumps({"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}",
                             "metadata": {}, "items": items})


def wants_aggregated(accept: str) -> str:
    """"v2", "v2beta1" or "" (legacy), by the first matching Accept entry."""
    for item in accept.split(","):
        params = {k.strip(): v.strip() for k, _, v in (p.partition("=") for p in item.split(";")[1:])}
        if params.get("g") == "apidiscovery.k8s.io" and params.get("as") == "APIGroupDiscoveryList":
            if params.get("v") in ("v2", "v2beta1"):
                return params["v"]
        elif item.split(";")[0].strip() in ("application/json", "*/*"):
            return ""
    return ""
