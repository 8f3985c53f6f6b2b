"""The pipeline's topics: a raw topic for each installed source beside the deployment's
(`leadscore.kafka.topics.deployment_topics`), and the events topic's size limit."""

from __future__ import annotations

from collections.abc import Mapping

from leadscore.kafka.topics import Topics, deployment_topics, fits
from leadscore.settings import Settings
from streams.sources import Source, discover_sources


def topics_of(settings: Settings, sources: Mapping[str, Source] | None = None) -> Topics:
    """The topics for `settings`, with a raw topic for each of `sources` (default: the
    installed ones)."""
    installed = discover_sources() if sources is None else sources
    return deployment_topics(settings, {name: source.topic for name, source in
                                        installed.items()})


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
