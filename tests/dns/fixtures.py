"""Fake cluster data for the DNS tests: Services and EndpointSlices as the API returns them."""

from __future__ import annotations

from pykube_server.api.types import Obj


def service(name: str, ns: str = "default", *, cluster_ip: str = "127.96.0.20", ports: list[Obj] | None = None,
            **spec: object) -> Obj:
    body: Obj = {"clusterIP": cluster_ip, "type": "ClusterIP",
                 "ports": ports if ports is not None else [{"name": "http", "port": 80, "protocol": "TCP"}], **spec}
    if cluster_ip and cluster_ip != "None":
        body["clusterIPs"] = [cluster_ip]
    return {"metadata": {"name": name, "namespace": ns}, "spec": body}


def endpoint(ip: str, *, hostname: str = "", ready: bool = True) -> Obj:
    ep: Obj = {"addresses": [ip], "conditions": {"ready": ready}}
    if hostname:
        ep["hostname"] = hostname
    return ep


def endpoint_slice(svc: str, ns: str = "default", *, endpoints: list[Obj], ports: list[Obj] | None = None,
                   name: str = "") -> Obj:
    return {"metadata": {"name": name or f"{svc}-abcde", "namespace": ns,
                         "labels": {"kubernetes.io/service-name": svc}},
            "addressType": "IPv4", "endpoints": endpoints,
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}]}
