"""Admission: the plugins a write passes through between authorization and storage.

kube-apiserver runs an ordered chain of admission plugins on every create, update, delete and
connect. Mutating plugins (`admit`) run first and may change the object (ServiceAccount fills in
`spec.serviceAccountName` and the token volume, Priority resolves `priorityClassName`); then
the kind's own defaulting and validation run; then validating plugins (`validate`) may only
refuse (ResourceQuota's `exceeded quota`, NodeRestriction). Both run inside the store's
compare-and-swap for updates, so a plugin always sees the object it is judging against.

This package is the seam: `Attributes` (what is being admitted), the `Plugin` protocol, the
`Chain` built from `--enable-admission-plugins` / `--disable-admission-plugins`, and
`RequestAdmission`, the per-request object the registry calls (`registry.store.Admission`).
Plugins live in their own modules and are listed in `plugins.py`, in kube's order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from pykube_server.apiserver.authn import UserInfo

if TYPE_CHECKING:
    from pykube_server.apiserver.app import APIServer

Obj = dict[str, Any]

CREATE, UPDATE, DELETE, CONNECT = "CREATE", "UPDATE", "DELETE", "CONNECT"


@dataclass(slots=True)
class Attributes:
    """One admission request (`admission.Attributes`).

    `obj` is the incoming object (None for DELETE and CONNECT), `old` the stored one (None for
    CREATE). Mutating plugins change `obj` in place.
    """

    operation: str
    group: str
    version: str
    resource: str
    subresource: str
    kind: str
    namespace: str
    name: str
    user: UserInfo
    obj: Obj | None = None
    old: Obj | None = None
    dry_run: bool = False
    options: Obj | None = None
    warnings: list[str] = field(default_factory=list)
    """Warnings for the client (admission webhooks'); one list shared by every copy made for
    this request, which the handler sends back as `Warning` headers (see `warnings_of`)."""

    def is_(self, group: str, resource: str, subresource: str = "") -> bool:
        """True for the given group/resource/subresource (the check every plugin starts with)."""
        return (self.group, self.resource, self.subresource) == (group, resource, subresource)


class Plugin(Protocol):
    """An admission plugin. Either method may be absent (a plugin may only mutate, or only
    validate); both raise `api.errors.StatusError`s to refuse."""

    name: str


class MutatingPlugin(Plugin, Protocol):
    async def admit(self, attributes: Attributes) -> None: ...


class ValidatingPlugin(Plugin, Protocol):
    async def validate(self, attributes: Attributes) -> None: ...


PluginFactory = Callable[["APIServer"], Plugin]


class Chain:
    """The enabled plugins, in order: every mutating one, then every validating one."""

    def __init__(self, plugins: Iterable[Plugin]) -> None:
        self.plugins = list(plugins)
        self.mutating = [p for p in self.plugins if hasattr(p, "admit")]
        self.validating = [p for p in self.plugins if hasattr(p, "validate")]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.plugins]

    async def admit(self, attributes: Attributes) -> None:
        for plugin in self.mutating:
            await plugin.admit(attributes)  # type: ignore[attr-defined]

    async def validate(self, attributes: Attributes) -> None:
        for plugin in self.validating:
            await plugin.validate(attributes)  # type: ignore[attr-defined]


@dataclass(slots=True)
class RequestAdmission:
    """One request's admission, in the shape the registry calls (`registry.store.Admission`).

    The store knows the objects; this knows the request (user, resource, operation).
    `create_on_update` covers a PUT or apply that creates: kube admits it as CREATE.
    """

    chain: Chain
    base: Attributes

    def _attributes(self, obj: Obj | None, old: Obj | None, operation: str | None) -> Attributes:
        op = operation or (CREATE if old is None and obj is not None else UPDATE)
        meta = (obj or old or {}).get("metadata") or {}
        b = self.base  # built field by field: dataclasses.replace costs more than the rest of a plugin-less admit
        return Attributes(op, b.group, b.version, b.resource, b.subresource, b.kind, b.namespace,
                          meta.get("name") or b.name, b.user, obj, old, b.dry_run, b.options, b.warnings)

    async def mutate(self, obj: Obj, old: Obj | None, operation: str | None = None) -> None:
        if self.chain.mutating:
            await self.chain.admit(self._attributes(obj, old, operation))

    async def validate(self, obj: Obj | None, old: Obj | None, operation: str | None = None) -> None:
        if self.chain.validating:
            await self.chain.validate(self._attributes(obj, old, operation))


def warnings_of(admission: RequestAdmission | None) -> list[str]:
    """The warnings this request's admission collected (none when it was not admitted)."""
    return list(dict.fromkeys(admission.base.warnings)) if admission is not None else []  # a retried update adds them again


def build_chain(server: APIServer, enabled: Iterable[str] = (), disabled: Iterable[str] = ()) -> Chain:
    """The chain kube-apiserver would run: the default-on plugins plus `enabled`, minus
    `disabled`, always in the recommended order (kube's `AllOrderedPlugins`)."""
    from pykube_server.apiserver.admission.plugins import DEFAULT_ON, ORDERED

    wanted = (set(DEFAULT_ON) | set(enabled)) - set(disabled)
    unknown = sorted(name for name in {*enabled, *disabled} if name not in ORDERED)
    if unknown:
        raise ValueError(f"unknown admission plugins: {', '.join(unknown)}")
    return Chain(ORDERED[name](server) for name in ORDERED if name in wanted)
