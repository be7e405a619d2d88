"""The `kube-system/extension-apiserver-authentication` ConfigMap.

kube-apiserver publishes how an extension API server should authenticate requests: the client
CA (`client-ca-file`) and the request-header settings of its front proxy: which CA signs the
proxy's client certificate, which common names may assert identities, and which headers carry
user, groups and extras. Extension servers (built with k8s.io/apiserver) read it at start;
reading it is what the bootstrap role `extension-apiserver-authentication-reader` allows.
List values are JSON arrays in strings, as kube writes them.
"""

from __future__ import annotations

from typing import Any

import orjson

from pykube_server.apiserver.aggregation.backend import EXTRA_HEADER_PREFIX, GROUP_HEADER, USER_HEADER
from pykube_server.apiserver.certs import FRONT_PROXY_CLIENT_COMMON_NAME

Obj = dict[str, Any]
NAMESPACE = "kube-system"
NAME = "extension-apiserver-authentication"


def _list(*values: str) -> str:
    return orjson.dumps(list(values)).decode()


def config_map_data(client_ca_pem: str, front_proxy_ca_pem: str) -> dict[str, str]:
    data = {
        "requestheader-allowed-names": _list(FRONT_PROXY_CLIENT_COMMON_NAME),
        "requestheader-client-ca-file": front_proxy_ca_pem,
        "requestheader-extra-headers-prefix": _list(EXTRA_HEADER_PREFIX),
        "requestheader-group-headers": _list(GROUP_HEADER),
        "requestheader-username-headers": _list(USER_HEADER),
    }
    if client_ca_pem:
        data["client-ca-file"] = client_ca_pem
    return dict(sorted(data.items()))


def _certificates(pem: str) -> list[str]:
    blocks, current = [], []
    for line in pem.strip().splitlines():
        current.append(line)
        if line.startswith("-----END"):
            blocks.append("\n".join(current) + "\n")
            current = []
    return blocks


def merged(existing: dict[str, str], ours: dict[str, str]) -> dict[str, str]:
    """Our settings, with the CA bundles of the servers that published before kept (API servers
    sharing a store may each have their own front-proxy CA; kube's cluster authentication trust
    controller combines them the same way)."""
    out = dict(ours)
    for key in ("client-ca-file", "requestheader-client-ca-file"):
        if key in ours:
            certificates = dict.fromkeys(_certificates(ours[key]) + _certificates(existing.get(key, "")))
            out[key] = "".join(certificates)
    return out


async def publish(store: Any, data: dict[str, str]) -> None:
    """Create the ConfigMap, or add this server's settings to it."""
    from pykube_server.api import errors

    body: Obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": NAME, "namespace": NAMESPACE},
                 "data": data}
    try:
        await store.create(NAMESPACE, body)
        return
    except errors.AlreadyExists:
        pass

    async def transform(current: Obj | None) -> Obj:
        if current is None:
            return body
        current["data"] = merged(current.get("data") or {}, data)
        return current

    await store.update(NAMESPACE, NAME, transform)
