"""Up to when the decay tick may decay a partition's prospects.

Decays are computed in event time, and a tick must never decay a prospect past an event of
theirs that is still on its way: during a backfill or after a restart, a partition can hold
hours or months of events not yet scored. Events reach a partition in time order, so the
latest event time scored there (its stream time) is a safe bound. Once a partition has had
no message for `idle_seconds`, nothing is on its way and the wall clock takes over, so quiet
prospects still decay when no traffic comes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class PartitionClock:
    #: Wall-clock (monotonic) seconds when the partition last delivered a message, or when
    #: it was assigned to this worker.
    last_message: float
    #: The latest event time scored on the partition since it was assigned.
    event_time: datetime | None = None

    def saw(self, monotonic: float, event_time: datetime | None) -> None:
        self.last_message = monotonic
        if event_time is not None and (self.event_time is None or event_time > self.event_time):
            self.event_time = event_time


def tick_time(
    clock: PartitionClock, wall: datetime, monotonic: float, idle_seconds: float
) -> datetime | None:
    """The time to decay the partition up to, or None when nothing is safe yet."""
    if monotonic - clock.last_message >= idle_seconds:
        return wall
    if clock.event_time is None:
        return None
    return min(clock.event_time, wall)
