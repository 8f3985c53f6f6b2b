"""The topics leadscore reads and writes: their names and roles, and the events topic's
limit (creating topics and the record size limit are `leadscore.kafka.topics`).

Every topic name comes from `topics_of`; nothing else spells one. A consumer subscribed to
a topic that does not exist yet sees nothing until its next metadata refresh, and consumers
never trigger a broker's automatic topic creation; the changelog needs its own settings.
So workers and tools create their topics up front.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from leadscore.kafka.topics import fits
from leadscore.settings import Settings
from streams.sources import Source, discover_sources


@dataclass(frozen=True)
class Topics:
    """The topics of one deployment (its `topic_prefix` and `app_id`), by role."""

    #: Canonical events and the scoring stage's hand-over messages, keyed by prospect.
    events: str
    #: Every decision, keyed by prospect: the audit trail and the integration surface.
    decisions: str
    #: What a stage set aside (`leadscore.kafka.dead_letters`).
    dead_letter: str
    #: Published rule sets (compacted; the last record is in force).
    rules: str
    #: Published rosters (compacted; the last record is in force).
    roster: str
    #: The prospect tables' changelog, partition for partition with `events`.
    changelog: str
    #: Each source's raw topic, by source name.
    raw: Mapping[str, str] = field(default_factory=dict)

    def source_of(self, topic: str) -> str:
        """The source whose raw topic is `topic`."""
        return next(name for name, raw in self.raw.items() if raw == topic)

    def all(self) -> list[str]:
        return [self.events, self.decisions, self.dead_letter, self.rules, self.roster,
                self.changelog, *self.raw.values()]


def topics_of(settings: Settings, sources: Mapping[str, Source] | None = None) -> Topics:
    """The topics for `settings`, with a raw topic for each of `sources` (default: the
    installed ones)."""
    prefix = settings.topic_prefix
    installed = discover_sources() if sources is None else sources
    return Topics(
        events=f"{prefix}events", decisions=f"{prefix}decisions",
        dead_letter=f"{prefix}dead-letter", rules=f"{prefix}rules", roster=f"{prefix}roster",
        changelog=f"{settings.app_id}-prospects-changelog",
        raw={name: f"{prefix}{source.topic}" for name, source in installed.items()},
    )


def max_event_bytes(max_bytes: int) -> int:
    """The largest `events` message: a quarter of the record size limit, because a
    prospect's state holds an event while it waits for an identity hand-over, and that
    state must still fit a changelog record."""
    return max_bytes // 4


def event_too_large(key: bytes, value: bytes, max_bytes: int) -> str | None:
    """Why an `events` message would not fit (`max_event_bytes`), or None if it fits."""
    if fits(key, value, max_event_bytes(max_bytes)):
        return None
    return (f"it maps to an event of {len(value)} bytes; an event holds at most a quarter "
            f"of message_max_bytes ({max_bytes})")
