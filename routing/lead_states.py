"""A lead's states and queues: the words routing's Redis scripts are told (never spell).

A lead is `assigned` to a rep, `acknowledged` by them, then `completed`; until completed it
is open and waits in one of its rep's queues, chosen by its track.
"""

from __future__ import annotations

from leadscore.decisions import FAST_TRACK

ASSIGNED, ACKNOWLEDGED, COMPLETED = "assigned", "acknowledged", "completed"
#: Each rep's two queues: the fast-track inbox and the 24-hour queue, in the order a
#: listing pages through them.
QUEUES = ("fast", "standard")


def queue_of(track: str) -> str:
    """The queue a lead of `track` waits in."""
    return QUEUES[0] if track == FAST_TRACK else QUEUES[1]
