"""`--encryption-provider-config`: kube's EncryptionConfiguration file, read into transformers.

The file is the real format (`apiserver.config.k8s.io/v1`, kind `EncryptionConfiguration`):
a list of entries, each naming resources (`secrets`, `configmaps`, `deployments.apps`,
`*.apps`, `*.*`) and an ordered list of providers (`aescbc`, `aesgcm`, `secretbox` with named
base64 keys, and `identity`). The first provider writes; all of them read. A resource named by
several entries takes the first, as kube does. `up` writes one for Secrets with a fresh key
(`default_config`), so a fresh cluster never stores a Secret in clear text.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from pykube_server.registry.spec import ResourceSpec
from pykube_server.storage.transformer import AESCBC, AESGCM, Identity, Rule, Secretbox, Transformer, Transformers

KEYED_PROVIDERS = {"aescbc": AESCBC, "aesgcm": AESGCM, "secretbox": Secretbox}
CONFIG_KINDS = {("apiserver.config.k8s.io/v1", "EncryptionConfiguration"),
                ("apiserver.config.k8s.io/v1beta1", "EncryptionConfiguration")}


class ConfigError(ValueError):
    pass


def _providers(entry: dict[str, Any], where: str) -> tuple[Transformer, ...]:
    out: list[Transformer] = []
    for i, provider in enumerate(entry.get("providers") or []):
        if not isinstance(provider, dict) or len(provider) != 1:
            raise ConfigError(f"{where}.providers[{i}]: exactly one provider must be specified")
        (kind, body), = provider.items()
        if kind == "identity":
            out.append(Identity())
        elif kind in KEYED_PROVIDERS:
            keys = (body or {}).get("keys") or []
            if not keys:
                raise ConfigError(f"{where}.providers[{i}].{kind}.keys: Required value: at least one key must be provided")
            for j, key in enumerate(keys):
                name, secret = (key or {}).get("name"), (key or {}).get("secret")
                if not name or not secret:
                    raise ConfigError(f"{where}.providers[{i}].{kind}.keys[{j}]: name and secret are required")
                try:
                    raw = base64.b64decode(secret, validate=True)
                    out.append(KEYED_PROVIDERS[kind](name, raw))
                except (ValueError, TypeError) as exc:
                    raise ConfigError(f"{where}.providers[{i}].{kind}.keys[{j}].secret: {exc}") from exc
        elif kind == "kms":
            raise ConfigError(f"{where}.providers[{i}]: kms providers are not supported by pykube")
        else:
            raise ConfigError(f"{where}.providers[{i}]: unknown provider {kind!r}")
    if not out:
        raise ConfigError(f"{where}.providers: Required value: at least one provider must be specified")
    return tuple(out)


def _key_prefixes(name: str, specs: Iterable[ResourceSpec], where: str) -> list[str]:
    """Storage key prefixes of a resource name as the file writes it (`plural[.group]`)."""
    plural, _, group = name.partition(".")
    if plural == "*" and group == "*":
        return ["/registry/"]
    matched = sorted({spec.key_root for spec in specs
                      if spec.persisted and (plural == "*" or spec.plural == plural) and spec.group == group})
    if not matched:
        if plural != "*" and group and "." in group:  # custom resources: /registry/<group>/<plural>
            return [f"/registry/{group}/{plural}"]
        raise ConfigError(f"{where}: unknown resource {name!r}")
    return [prefix + "/" for prefix in matched]


def load(path: str | Path, specs: Iterable[ResourceSpec]) -> Transformers:
    """The transformers a configuration file describes; ConfigError when it is invalid."""
    doc = yaml.safe_load(Path(path).read_text())
    if not isinstance(doc, dict) or (doc.get("apiVersion"), doc.get("kind")) not in CONFIG_KINDS:
        raise ConfigError(f"{path}: not an apiserver.config.k8s.io/v1 EncryptionConfiguration")
    specs = list(specs)
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, entry in enumerate(doc.get("resources") or []):
        where = f"resources[{i}]"
        providers = _providers(entry or {}, where)
        for name in (entry or {}).get("resources") or []:
            for prefix in _key_prefixes(str(name), specs, where):
                if prefix not in seen:  # the first entry naming a resource wins
                    seen.add(prefix)
                    rules.append(Rule(prefix, providers))
    # Longer prefixes first, so `secrets` beats a later `*.*` and exact entries beat wildcards.
    rules.sort(key=lambda rule: -len(rule.key_prefix))
    return Transformers(rules)


def default_config(path: Path) -> Path:
    """Write (once) the configuration `up` uses: Secrets encrypted with a fresh AES-GCM key,
    plaintext still readable (identity) for data stored before encryption was turned on."""
    if not path.exists():
        key = base64.b64encode(os.urandom(32)).decode()
        doc = {"apiVersion": "apiserver.config.k8s.io/v1", "kind": "EncryptionConfiguration",
               "resources": [{"resources": ["secrets"],
                              "providers": [{"aesgcm": {"keys": [{"name": "key1", "secret": key}]}}, {"identity": {}}]}]}
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
    return path
