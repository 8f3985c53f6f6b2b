"""Prospects indexed by the time their next decay is due.

The decay tick must not scan every prospect: with a million prospects in state and a tick
every second, a scan would cost more than scoring itself. A heap ordered by due time makes
a tick cost proportional to the prospects actually due. Rescheduling a key leaves its old
heap entry behind; `pop_due` skips entries that no longer match `_due`, so updates stay
O(log n) with no search. Times are kept as epoch seconds: comparing floats is several times
cheaper than comparing aware datetimes, and a heap pop does ~20 comparisons.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from datetime import datetime


@dataclass
class DueIndex:
    _heap: list[tuple[float, str]] = field(default_factory=list)
    _due: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._due)

    def schedule(self, key: str, due: datetime | None) -> None:
        """Set (or with `None`, clear) when `key` is next due."""
        if due is None:
            self._due.pop(key, None)
            return
        when = due.timestamp()
        if self._due.get(key) == when:
            return
        self._due[key] = when
        heapq.heappush(self._heap, (when, key))
        if len(self._heap) > 2 * len(self._due) + 1024:
            self._compact()

    def pop_due(self, now: datetime) -> list[str]:
        """Remove and return the keys due at or before `now`, earliest first."""
        due_keys = []
        heap, due, limit = self._heap, self._due, now.timestamp()
        while heap and heap[0][0] <= limit:
            when, key = heapq.heappop(heap)
            if due.get(key) == when:
                del due[key]
                due_keys.append(key)
        return due_keys

    def _compact(self) -> None:
        """Drop stale entries left by rescheduling, so memory tracks live keys."""
        self._heap = [(when, key) for key, when in self._due.items()]
        heapq.heapify(self._heap)
