"""The webhook configurations in force, read from the API server's watch cache.

kube-apiserver keeps the configurations from an informer and sorts them by name; each hook is
called in that order, within a configuration in the order written. Decoded configurations are
kept per cached object, so a request pays for decoding only after a configuration changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pykube_server.registry.store import ResourceStore

Obj = dict[str, Any]
GROUP = "admissionregistration.k8s.io"


@dataclass(frozen=True, slots=True)
class Hook:
    configuration: str
    index: int
    spec: Obj

    @property
    def name(self) -> str:
        return str(self.spec.get("name", ""))


class Configurations:
    def __init__(self, store: ResourceStore) -> None:
        self.store = store
        self._decoded: dict[str, tuple[object, list[Hook]]] = {}
        self._current: tuple[tuple[int, int], list[Hook]] | None = None
        """The last answer and the cache state it was computed at (revision, object count)."""

    def hooks(self) -> list[Hook]:
        """Every hook in calling order (the same list while the configurations are unchanged:
        every write asks, nearly always with nothing configured)."""
        cache = self.store.cacher.resource(self.store.root)
        state = (cache.revision, len(cache.objects))
        if self._current is not None and self._current[0] == state:
            return self._current[1]
        hooks = self._compute(cache.objects)
        self._current = (state, hooks)
        return hooks

    def _compute(self, objects: dict[str, Any]) -> list[Hook]:
        out: list[tuple[str, list[Hook]]] = []
        for key, cached in objects.items():
            seen = self._decoded.get(key)
            if seen is None or seen[0] is not cached:
                config = cached.decode()
                name = config["metadata"]["name"]
                hooks = [Hook(name, i, h) for i, h in enumerate(config.get("webhooks") or ()) if isinstance(h, dict)]
                seen = self._decoded[key] = (cached, hooks)
            out.append((cached.name, seen[1]))
        for gone in set(self._decoded) - set(objects):
            del self._decoded[gone]
        return [hook for _, hooks in sorted(out, key=lambda item: item[0]) for hook in hooks]
