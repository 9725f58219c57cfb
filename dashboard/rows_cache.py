"""Rendered rows of the bot list (and its filter form), shared by every viewer of the same
scope and query.

Fifty pollers of one page cost one render per status refresh instead of fifty. An entry is
keyed by what the rows depend on: the viewer's scope, the query, the status snapshot and the
`bot_changes` generation, a counter a trigger bumps in the same transaction as any change to
`bots`. So a cached render is never older than the table in any process, and never older than
the status every viewer shares anyway. STATUS_CACHE_SECONDS=0 turns it off.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from sqlalchemy import text

from .models import db

MAX_ENTRIES = 256  # distinct (scope, query) pairs kept; least recently used go first


def bots_generation() -> int:
    return list_figures(firing=False)[0]


def list_figures(*, firing: bool) -> tuple[int, int | None, list]:
    """The generation, with `firing` an admin's bell count (None without), and the servers'
    rows for fleet's look (servers.SERVER_ROWS), in one statement: three before."""
    from .alerts.service import ADMIN_FIRING_COUNT
    from .servers import SERVER_ROWS

    row = db.session.execute(text(
        "SELECT generation, CASE WHEN :firing THEN " + ADMIN_FIRING_COUNT + " END, "  # noqa: S608
        "COALESCE(" + SERVER_ROWS + ", '[]') FROM bot_changes WHERE id = 1"),
        {"firing": firing}).one()
    return row[0], row[1], row[2]


class RowsCache:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()

    def get_or_render(self, key: Hashable, render: Callable[[], Any]) -> Any:
        if self.ttl <= 0:
            return render()
        now = self._clock()
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and now - hit[0] < self.ttl:
                self._entries.move_to_end(key)
                return hit[1]
        html = render()
        with self._lock:
            self._entries[key] = (now, html)
            self._entries.move_to_end(key)
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)
        return html
