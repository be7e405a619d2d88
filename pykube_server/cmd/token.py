"""`pykube-server token`: bootstrap tokens for joining nodes, as `kubeadm token` makes them.

`token create` stores `kube-system/bootstrap-token-<id>` (type `bootstrap.kubernetes.io/token`,
usable for authentication and for signing cluster-info, in the group
`system:bootstrappers:kubeadm:default-node-token`, 24 h by default) and, once, what joining
needs on the cluster side, as `kubeadm init` does: the `kube-public/cluster-info` ConfigMap (the
server URL and CA, readable anonymously), and the RBAC bindings that let bootstrappers create
CSRs and have them auto-approved. With `--print-join-command` it prints the kubelet command that
joins a machine: `pykube-server kubelet --server ... --token ... --discovery-token-ca-cert-hash ...`.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import secrets
import string
from typing import Any

import yaml

from pykube_server.api.duration import parse_go_duration
from pykube_server.api import errors
from pykube_server.client.config import load_kubeconfig
from pykube_server.client.rest import CONFIGMAPS, SECRETS, Client, Resource
from pykube_server.client.tlsbootstrap import ca_cert_hash

ALPHABET = string.ascii_lowercase + string.digits
DEFAULT_GROUP = "system:bootstrappers:kubeadm:default-node-token"
ROLES = Resource("rbac.authorization.k8s.io", "v1", "roles")
ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "rolebindings")
CLUSTER_ROLE_BINDINGS = Resource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", namespaced=False)


def add_flags(p: argparse.ArgumentParser) -> None:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", default="kubeconfig/admin.yaml", help="an administrator's kubeconfig")
    common.add_argument("--log-level", default="WARNING")
    sub = p.add_subparsers(dest="token_command", required=True)
    create = sub.add_parser("create", help="create a bootstrap token", parents=[common])
    create.add_argument("token", nargs="?", default="", help="the token to create (default: a random one)")
    create.add_argument("--ttl", default="24h", help="lifetime (e.g. 24h, 30m; 0 = never expires)")
    create.add_argument("--description", default="")
    create.add_argument("--groups", default=DEFAULT_GROUP, help="extra groups, comma separated")
    create.add_argument("--print-join-command", action="store_true", help="print the command that joins a node")
    sub.add_parser("list", help="list bootstrap tokens", parents=[common])
    delete = sub.add_parser("delete", help="delete bootstrap tokens", parents=[common])
    delete.add_argument("tokens", nargs="+", help="token ids or whole tokens")


def generate() -> str:
    pick = lambda n: "".join(secrets.choice(ALPHABET) for _ in range(n))  # noqa: E731
    return f"{pick(6)}.{pick(16)}"


def _seconds(ttl: str) -> float:
    seconds = parse_go_duration(ttl)
    if seconds is None:
        raise SystemExit(f'error: invalid --ttl "{ttl}"')
    return seconds


def token_secret(token: str, ttl_seconds: float, description: str, groups: str) -> dict[str, Any]:
    token_id, secret = token.split(".")
    data = {"token-id": token_id, "token-secret": secret, "usage-bootstrap-authentication": "true",
            "usage-bootstrap-signing": "true", "auth-extra-groups": groups}
    if description:
        data["description"] = description
    if ttl_seconds:
        expires = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=ttl_seconds)
        data["expiration"] = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
            "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def cluster_info(server: str, ca_pem: bytes) -> dict[str, Any]:
    kubeconfig = yaml.safe_dump({"apiVersion": "v1", "kind": "Config", "preferences": {},
                                 "clusters": [{"name": "", "cluster": {
                                     "server": server,
                                     "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
                                 "contexts": [], "current-context": "", "users": []}, sort_keys=False)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cluster-info", "namespace": "kube-public"},
            "data": {"kubeconfig": kubeconfig}}


def _binding(kind: str, name: str, role_kind: str, role: str, subject: dict[str, str], namespace: str = "") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", **subject}]}


def join_objects(server: str, ca_pem: bytes) -> list[tuple[Resource, dict[str, Any]]]:
    """What `kubeadm init`'s bootstrap-token phase creates so nodes can join."""
    group = {"kind": "Group", "name": DEFAULT_GROUP}
    return [
        (CONFIGMAPS, cluster_info(server, ca_pem)),
        (ROLES, {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                 "metadata": {"name": "kubeadm:bootstrap-signer-clusterinfo", "namespace": "kube-public"},
                 "rules": [{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cluster-info"],
                            "verbs": ["get"]}]}),
        (ROLE_BINDINGS, _binding("RoleBinding", "kubeadm:bootstrap-signer-clusterinfo", "Role",
                                 "kubeadm:bootstrap-signer-clusterinfo", {"kind": "User", "name": "system:anonymous"},
                                 "kube-public")),
        (CLUSTER_ROLE_BINDINGS, _binding("ClusterRoleBinding", "kubeadm:kubelet-bootstrap", "ClusterRole",
                                         "system:node-bootstrapper", group)),
        (CLUSTER_ROLE_BINDINGS, _binding("ClusterRoleBinding", "kubeadm:node-autoapprove-bootstrap", "ClusterRole",
                                         "system:certificates.k8s.io:certificatesigningrequests:nodeclient", group)),
        (CLUSTER_ROLE_BINDINGS, _binding("ClusterRoleBinding", "kubeadm:node-autoapprove-certificate-rotation",
                                         "ClusterRole", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
                                         {"kind": "Group", "name": "system:nodes"})),
    ]


async def ensure_join_objects(client: Client, server: str, ca_pem: bytes) -> None:
    for resource, obj in join_objects(server, ca_pem):
        try:
            await client.create(resource, obj, namespace=obj["metadata"].get("namespace", ""))
        except errors.AlreadyExists:
            pass


async def main(args: argparse.Namespace) -> None:
    config = load_kubeconfig(args.kubeconfig)
    async with Client(config) as client:
        if args.token_command == "create":
            token = args.token or generate()
            if len(token.split(".")[0]) != 6 or len(token.split(".")[-1]) != 16:
                raise SystemExit(f'error: the bootstrap token "{token}" was not of the form "[a-z0-9]{{6}}.[a-z0-9]{{16}}"')
            ca_pem = config.ca_data or b""
            await ensure_join_objects(client, config.server, ca_pem)
            await client.create(SECRETS, token_secret(token, _seconds(args.ttl), args.description, args.groups),
                                namespace="kube-system")
            if args.print_join_command:
                print(f"pykube-server kubelet --server {config.server} --token {token} "
                      f"--discovery-token-ca-cert-hash {ca_cert_hash(ca_pem)} --kubeconfig kubelet.yaml")
            else:
                print(token)
        elif args.token_command == "list":
            listed = await client.list(SECRETS, namespace="kube-system")
            print(f"{'TOKEN':<24}{'TTL':<8}{'EXPIRES':<22}USAGES")
            for secret in listed["items"]:
                if secret.get("type") != "bootstrap.kubernetes.io/token":
                    continue
                data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
                usages = ",".join(u[len("usage-bootstrap-"):] for u, v in sorted(data.items())
                                  if u.startswith("usage-bootstrap-") and v == "true")
                print(f"{data.get('token-id', '')}.{data.get('token-secret', ''):<17}{'':<8}"
                      f"{data.get('expiration', '<forever>'):<22}{usages}")
        else:
            for token in args.tokens:
                token_id = token.split(".")[0]
                try:
                    await client.delete(SECRETS, f"bootstrap-token-{token_id}", namespace="kube-system")
                    print(f'bootstrap token "{token_id}" deleted')
                except errors.NotFound:
                    raise SystemExit(f'error: bootstrap token "{token_id}" not found') from None
