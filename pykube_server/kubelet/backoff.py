"""The container restart back-off: 10 s doubling to 5 minutes, per (pod uid, container).

client-go's `flowcontrol.Backoff` as the kubelet uses it: the first restart after an exit is
immediate and arms 10 s; each later exit doubles the delay (to 300 s); an entry untouched for
twice the maximum starts over. "In back-off" means: less than the current delay has passed
since the container finished.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_SECONDS = 10.0
MAX_SECONDS = 300.0


@dataclass
class _Entry:
    delay: float
    last_update: float


def go_duration(seconds: float) -> str:
    """Go's Duration.String for whole seconds: 10s, 1m20s, 5m0s."""
    s = int(seconds)
    return f"{s // 60}m{s % 60}s" if s >= 60 else f"{s}s"


class Backoff:
    def __init__(self, initial: float = INITIAL_SECONDS, maximum: float = MAX_SECONDS) -> None:
        self.initial, self.maximum = initial, maximum
        self._entries: dict[str, _Entry] = {}

    def delay(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.delay if entry else 0.0

    def remaining(self, key: str, *, finished_at: float, now: float) -> float:
        """Seconds left in back-off for a container that finished at `finished_at` (0 = go)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return max(entry.delay - (now - finished_at), 0.0)

    def next(self, key: str, *, now: float) -> None:
        entry = self._entries.get(key)
        if entry is None or now - entry.last_update > 2 * self.maximum:
            self._entries[key] = _Entry(self.initial, now)
        else:
            entry.delay, entry.last_update = min(entry.delay * 2, self.maximum), now

    def forget_prefix(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]
