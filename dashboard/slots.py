"""Work in flight per key (a Hummingbot server, an alert destination) in one process, at most
`cap` each: a worker passes over the work of a key at its cap, so one slow server or destination
holds `cap` workers, never all of them."""

from __future__ import annotations

import threading
from collections import Counter


class Slots:
    def __init__(self, cap: int):
        self.cap = max(1, cap)
        self._lock = threading.Lock()
        self._busy: Counter[int] = Counter()

    @classmethod
    def for_workers(cls, workers: int) -> Slots:
        return cls(workers - 1)  # all but one: at least one worker stays for the others

    def full(self) -> list[int]:
        """The keys at their cap (a claim passes over their work)."""
        with self._lock:
            return [key for key, n in self._busy.items() if n >= self.cap]

    def take(self, key: int) -> bool:
        with self._lock:
            if self._busy[key] >= self.cap:
                return False
            self._busy[key] += 1
            return True

    def give(self, key: int) -> None:
        with self._lock:
            self._busy[key] -= 1
            if self._busy[key] <= 0:
                del self._busy[key]
