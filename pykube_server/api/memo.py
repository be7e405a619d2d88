"""A bounded memo for work that depends only on the exact JSON of what is written.

Controllers create their objects from one template (a ReplicaSet's pods differ in name, uid and
owner only), so a create's defaulting, validation and managedFields walks see the same shapes
again and again. Their modules remember results here, keyed by the bytes that decide them;
the oldest entry goes when the memo is full, so a stream of distinct shapes costs one lookup each.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedMemo(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self.size = size
        self._items: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        return self._items.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def put(self, key: K, value: V) -> None:
        if key not in self._items and len(self._items) >= self.size:
            del self._items[next(iter(self._items))]
        self._items[key] = value

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)
