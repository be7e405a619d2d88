"""Write kubeconfig files the way kubeadm writes `admin.conf`.

One cluster, one user, one context, with every credential embedded as base64 `*-data` fields
so the file is self-contained and can be copied to another machine. Keys are sorted, which is
also the order `kubectl config view` prints. The file holds a private key or a token, so it is
written atomically with mode 0600, like kubeadm's.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml

from pykube_server.apiserver.certs import write_file_atomic


def write_kubeconfig(
    path: str | os.PathLike[str],
    *,
    server: str,
    ca_pem: bytes,
    client_cert_pem: bytes | None = None,
    client_key_pem: bytes | None = None,
    token: str | None = None,
    cluster_name: str = "pykube",
    user_name: str = "pykube-admin",
    context_name: str = "pykube",
    namespace: str | None = None,
) -> Path:
    """Write a kubeconfig for `server` (an `https://host:port` URL) and return its path.

    Give a client certificate and key, a bearer token, or both; parent directories are created.
    """
    if (client_cert_pem is None) != (client_key_pem is None):
        raise ValueError("client_cert_pem and client_key_pem go together")
    config = build_kubeconfig(
        server=server,
        ca_pem=ca_pem,
        user=_user(client_cert_pem, client_key_pem, token),
        cluster_name=cluster_name,
        user_name=user_name,
        context_name=context_name,
        namespace=namespace,
    )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(config, sort_keys=True, default_flow_style=False)
    write_file_atomic(target, text.encode(), mode=0o600)
    return target


def build_kubeconfig(
    *,
    server: str,
    ca_pem: bytes,
    user: dict[str, Any],
    cluster_name: str,
    user_name: str,
    context_name: str,
    namespace: str | None = None,
) -> dict[str, Any]:
    """The kubeconfig as a dict (`kind: Config`, `apiVersion: v1`)."""
    context: dict[str, Any] = {"cluster": cluster_name, "user": user_name}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)}}],
        "contexts": [{"name": context_name, "context": context}],
        "current-context": context_name,
        "preferences": {},
        "users": [{"name": user_name, "user": user}],
    }


def _user(cert_pem: bytes | None, key_pem: bytes | None, token: str | None) -> dict[str, Any]:
    user: dict[str, Any] = {}
    if cert_pem is not None and key_pem is not None:
        user["client-certificate-data"] = _b64(cert_pem)
        user["client-key-data"] = _b64(key_pem)
    if token is not None:
        user["token"] = token
    return user


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
