"""The `ServiceAccount` admission plugin: every pod runs as a service account, with its token.

On pod create (kube's plugin/pkg/admission/serviceaccount):

* an empty `spec.serviceAccountName` becomes `default` (the deprecated `serviceAccount` follows);
* the account must exist, else 403 `error looking up service account <ns>/<sa>: serviceaccount
  "<sa>" not found`. The `default` account is made by the controller manager just after its
  namespace, so a miss on it is retried ten times, 100-200 ms apart, before refusing;
* unless `automountServiceAccountToken` is false on the pod (which wins) or else on the account,
  the projected volume `kube-api-access-<5 random chars>` (a 3607 s token, the root CA from the
  `kube-root-ca.crt` ConfigMap, the namespace from the downward API; mode 0644) is added and
  mounted read-only at /var/run/secrets/kubernetes.io/serviceaccount in every init container
  and container that has nothing mounted there yet;
* a pod without `imagePullSecrets` gets the account's;
* an account annotated `kubernetes.io/enforce-mountable-secrets: "true"` limits the pod to the
  Secrets (volumes, env, envFrom) and imagePullSecrets the account lists.

Mirror pods (annotation `kubernetes.io/config.mirror`) are left as they are, but may not name a
service account, reference secrets or project service account tokens.
"""

from __future__ import annotations

import asyncio
import random
from typing import TYPE_CHECKING, Any

from pykube_server.api import errors
from pykube_server.apiserver.admission import CREATE, Attributes
from pykube_server.apiserver.admission.priority import forbidden

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

Obj = dict[str, Any]

DEFAULT_SERVICE_ACCOUNT = "default"
VOLUME_PREFIX = "kube-api-access-"
MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
TOKEN_EXPIRATION_SECONDS = 3607
PROJECTED_DEFAULT_MODE = 0o644
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
"""apimachinery's random-string alphabet (no vowels, no confusable characters)."""
DEFAULT_ACCOUNT_ATTEMPTS = 10
ENFORCE_MOUNTABLE_SECRETS = "kubernetes.io/enforce-mountable-secrets"
GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
"""What Go's strconv.ParseBool reads as true."""


def token_volume(name: str) -> Obj:
    """The projected volume kube 1.33 adds, field for field."""
    return {"name": name, "projected": {
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": TOKEN_EXPIRATION_SECONDS, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace",
                                        "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
        ],
        "defaultMode": PROJECTED_DEFAULT_MODE,
    }}


def should_automount(account: Obj, pod: Obj) -> bool:
    pod_choice = (pod.get("spec") or {}).get("automountServiceAccountToken")
    if pod_choice is not None:
        return bool(pod_choice)
    account_choice = account.get("automountServiceAccountToken")
    return True if account_choice is None else bool(account_choice)


def mount_token(pod: Obj) -> None:
    """Mount the token volume in every container lacking a mount at the token path; add the
    volume (reusing an existing `kube-api-access-*` one) if any container needed it."""
    spec = pod.setdefault("spec", {})
    volumes = spec.get("volumes") or []
    existing = next((v.get("name") for v in volumes if str(v.get("name", "")).startswith(VOLUME_PREFIX)), None)
    name = existing or VOLUME_PREFIX + "".join(random.choice(NAME_ALPHABET) for _ in range(5))
    needed = False
    for container in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        mounts = container.get("volumeMounts") or []
        if any(m.get("mountPath") == MOUNT_PATH for m in mounts):
            continue
        container["volumeMounts"] = [*mounts, {"name": name, "readOnly": True, "mountPath": MOUNT_PATH}]
        needed = True
    if needed and existing is None:
        spec["volumes"] = [*volumes, token_volume(name)]


def _secret_names(pod: Obj) -> bool:
    """Does the pod reference any Secret (volumes, env, envFrom, image pull secrets)?"""
    spec = pod.get("spec") or {}
    if spec.get("imagePullSecrets"):
        return True
    for volume in spec.get("volumes") or []:
        if volume.get("secret") or any(s.get("secret") for s in (volume.get("projected") or {}).get("sources") or []):
            return True
        if any(isinstance(v, dict) and v.get("secretRef") for v in volume.values()):
            return True
    containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or []),
                  *(spec.get("ephemeralContainers") or [])]
    for container in containers:
        if any((e.get("valueFrom") or {}).get("secretKeyRef") for e in container.get("env") or []):
            return True
        if any(e.get("secretRef") for e in container.get("envFrom") or []):
            return True
    return False


def enforces_mountable_secrets(account: Obj) -> bool:
    annotations = (account.get("metadata") or {}).get("annotations") or {}
    return annotations.get(ENFORCE_MOUNTABLE_SECRETS) in GO_TRUE


def secret_reference_error(account: Obj, pod: Obj) -> str | None:
    """kube's limitSecretReferences: with `kubernetes.io/enforce-mountable-secrets: "true"` on the
    account, a pod may use only the Secrets the account lists (and its imagePullSecrets)."""
    name = (account.get("metadata") or {}).get("name", "")
    spec = pod.get("spec") or {}
    mountable = {s.get("name") for s in account.get("secrets") or []}
    tail = f"is not allowed because service account {name} does not reference that secret"
    for volume in spec.get("volumes") or []:
        secret = volume.get("secret")
        if secret is not None and secret.get("secretName", "") not in mountable:
            return f'volume with secret.secretName="{secret.get("secretName", "")}" {tail}'
    for label, containers in (("init container", spec.get("initContainers")), ("container", spec.get("containers"))):
        for container in containers or []:
            for env in container.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref is not None and ref.get("name", "") not in mountable:
                    return (f'{label} {container.get("name", "")} with envVar {env.get("name", "")} referencing '
                            f'secret.secretName="{ref.get("name", "")}" {tail}')
            for env_from in container.get("envFrom") or []:
                ref = env_from.get("secretRef")
                if ref is not None and ref.get("name", "") not in mountable:
                    return (f'{label} {container.get("name", "")} with envFrom referencing '
                            f'secret.secretName="{ref.get("name", "")}" {tail}')
    pull = {s.get("name") for s in account.get("imagePullSecrets") or []}
    for i, ref in enumerate(spec.get("imagePullSecrets") or []):
        if ref.get("name", "") not in pull:
            return (f'imagePullSecrets[{i}].name="{ref.get("name", "")}" is not allowed because service account '
                    f"{name} does not reference that imagePullSecret")
    return None


class ServiceAccount:
    name = "ServiceAccount"

    def __init__(self, server: APIServer) -> None:
        self.accounts = server.store_for("", "v1", "serviceaccounts")

    async def _account(self, namespace: str, name: str) -> Obj | None:
        """From the watch cache, then a consistent read; `default` is retried (kube's getter)."""
        try:
            return (await self.accounts.get(namespace, name, resource_version="0")).decode()
        except errors.NotFound:
            pass
        attempts = DEFAULT_ACCOUNT_ATTEMPTS if name == DEFAULT_SERVICE_ACCOUNT else 1
        interval = random.uniform(0.1, 0.2)
        for attempt in range(attempts):
            if attempt:
                await asyncio.sleep(interval)
            try:
                return (await self.accounts.get(namespace, name)).decode()
            except errors.NotFound:
                continue
        return None

    async def _required_account(self, attributes: Attributes, name: str) -> Obj:
        account = await self._account(attributes.namespace, name)
        if account is None:
            raise forbidden(attributes, f"error looking up service account {attributes.namespace}/{name}: "
                                        f'serviceaccount "{name}" not found')
        return account

    @staticmethod
    def _applies(attributes: Attributes) -> bool:
        return (attributes.is_("", "pods") and attributes.operation == CREATE and attributes.obj is not None
                and attributes.obj.get("kind", "Pod") == "Pod")

    async def admit(self, attributes: Attributes) -> None:
        if not self._applies(attributes):
            return
        pod = attributes.obj
        assert pod is not None
        if MIRROR_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {}):
            return
        spec = pod.setdefault("spec", {})
        if not spec.get("serviceAccountName"):
            spec["serviceAccountName"] = DEFAULT_SERVICE_ACCOUNT
        spec["serviceAccount"] = spec["serviceAccountName"]
        account = await self._required_account(attributes, spec["serviceAccountName"])
        if should_automount(account, pod):
            mount_token(pod)
        if not spec.get("imagePullSecrets") and account.get("imagePullSecrets"):
            spec["imagePullSecrets"] = [{"name": s.get("name", "")} for s in account["imagePullSecrets"]]

    async def validate(self, attributes: Attributes) -> None:
        if not self._applies(attributes):
            return
        pod = attributes.obj
        assert pod is not None
        spec = pod.get("spec") or {}
        if MIRROR_ANNOTATION in ((pod.get("metadata") or {}).get("annotations") or {}):
            if spec.get("serviceAccountName"):
                raise forbidden(attributes, "a mirror pod may not reference service accounts")
            if _secret_names(pod):
                raise forbidden(attributes, "a mirror pod may not reference secrets")
            for volume in spec.get("volumes") or []:
                if any(s.get("serviceAccountToken") for s in (volume.get("projected") or {}).get("sources") or []):
                    raise forbidden(attributes, "a mirror pod may not use ServiceAccountToken volume projections")
            return
        if not spec.get("serviceAccountName"):
            meta = pod.get("metadata") or {}
            raise forbidden(attributes, f"no service account specified for pod {attributes.namespace}/{meta.get('name', '')}")
        account = await self._required_account(attributes, spec["serviceAccountName"])
        if enforces_mountable_secrets(account):
            refused = secret_reference_error(account, pod)
            if refused:
                raise forbidden(attributes, refused)
