"""Events already in leadscore's canonical shape (`leadscore.events.Event`).

For exports from another leadscore, hand-written test files like `examples/events.jsonl`,
and any system that emits the canonical event directly.
"""

from __future__ import annotations

from leadscore.events import Event
from streams.sources import Source


def _as_is(event: Event) -> list[Event]:
    return [event]


source = Source(name="canonical", payload=Event, to_events=_as_is, topic="raw.canonical")
