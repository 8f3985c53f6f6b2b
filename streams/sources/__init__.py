"""Event sources as plugins: what a source is, how installed ones are found, and the map stage.

A source is data, not a class to subclass: a name, the pydantic model of its raw payload,
a function from that payload to canonical events, and the raw topic it is produced to.
Installed packages offer sources through the `leadscore.sources` entry point group, so a new
source is one module plus one line of its package's pyproject.toml; nothing in leadscore
changes. `docs/sources.md` walks through it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Annotated, Any, Literal, TypedDict

import orjson
from pydantic import BaseModel, Field, ValidationError

from leadscore.events import EVENT_TYPES, Event, check_seconds, describe_error

ENTRY_POINT_GROUP = "leadscore.sources"

#: Field types for payload models: a non-empty string, and an email address (loosely: the
#: sender's own validation is authoritative; this only rejects what cannot be one).
Text = Annotated[str, Field(min_length=1)]
Email = Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


@dataclass(frozen=True)
class Source:
    """One event source.

    `payload` validates one raw item (one webhook event, one tracker call) and is where
    garbage is rejected with a reason; `to_events` may return no events for raw items that
    nothing scores (say so in the source's docs). `topic` is the raw topic's suffix; the full
    name gets the settings' prefix (`streams.topics.topics_of(settings).raw[name]`).
    """

    name: str
    payload: type[BaseModel]
    to_events: Callable[[Any], list[Event]]
    topic: str
    #: Event types this source emits beyond `leadscore.events.EVENT_TYPES`, with descriptions.
    event_types: Mapping[str, str] = field(default_factory=dict)


class SourceError(Exception):
    """An installed source plugin is broken or clashes with another one."""


class Unmapped(TypedDict):
    """Why a raw message maps to no events; the map stage makes it a dead letter
    (`leadscore.kafka.dead_letters`)."""

    source: str
    raw: str
    reason: str
    stage: Literal["parse", "map"]


def discover_sources(*, reload: bool = False) -> dict[str, Source]:
    """The installed sources by name, from the `leadscore.sources` entry points.

    Entry points are read once per process (the map stage looks sources up per message);
    `reload=True` reads them again, for a plugin installed since. Raises `SourceError`
    naming the package when a plugin does not load, is not a `Source`, or reuses a name.
    """
    if reload:
        _installed.cache_clear()
    return dict(_installed())


@cache
def _installed() -> dict[str, Source]:
    found: dict[str, Source] = {}
    packages: dict[str, str] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        package = _package_of(entry_point)
        source = _load(entry_point, package)
        if source.name in found:
            raise SourceError(
                f"two installed packages offer the event source {source.name!r}: "
                f"{packages[source.name]} and {package}; uninstall one of them"
            )
        found[source.name] = source
        packages[source.name] = package
    return found


def _package_of(entry_point: EntryPoint) -> str:
    dist = entry_point.dist
    return f"{dist.name} {dist.version}" if dist is not None else f"the module {entry_point.module}"


def _load(entry_point: EntryPoint, package: str) -> Source:
    where = f"event source {entry_point.name!r} ({entry_point.value}) of package {package}"
    try:
        source = entry_point.load()
    except Exception as error:
        raise SourceError(f"{where} does not load: {type(error).__name__}: {error}") from error
    if not isinstance(source, Source):
        raise SourceError(
            f"{where} is a {type(source).__name__}, not a streams.sources.Source"
        )
    if source.name != entry_point.name:
        raise SourceError(
            f"{where} is named {source.name!r}; the entry point name must be the source name"
        )
    return source


def all_event_types(sources: Mapping[str, Source] | None = None) -> dict[str, str]:
    """Every known event type: the catalog plus what the installed sources declare."""
    known = dict(EVENT_TYPES)
    for source in (discover_sources() if sources is None else sources).values():
        for name, description in source.event_types.items():
            known.setdefault(name, description)
    return known


def map_raw(source: str | Source, raw: bytes | None) -> list[Event] | Unmapped:
    """The map stage: one raw message of `source` -> its canonical events, or a dead letter.

    Never raises: a message that is not JSON or fails the payload model is a dead letter of
    stage "parse"; a mapping that fails or yields an invalid event, of stage "map".
    """
    if raw is None:
        return _unmapped(source if isinstance(source, str) else source.name, b"",
                         "the record has no value", "parse")
    if isinstance(source, str):
        found = discover_sources().get(source)
        if found is None:
            return _unmapped(source, raw, f"no installed source named {source!r}", "parse")
        source = found
    try:
        payload = source.payload.model_validate_json(raw)
    except ValidationError as error:
        return _unmapped(source.name, raw, describe_error(error), "parse")
    try:
        return source.to_events(payload)
    except ValidationError as error:
        return _unmapped(source.name, raw, f"invalid event: {describe_error(error)}", "map")
    except Exception as error:  # a plugin bug must not stop the stream
        return _unmapped(source.name, raw, f"{type(error).__name__}: {error}", "map")


def _unmapped(
    source: str, raw: bytes, reason: str, stage: Literal["parse", "map"]
) -> Unmapped:
    text = raw.decode("utf-8", errors="replace")
    return {"source": source, "raw": text, "reason": reason, "stage": stage}


# Helpers for mapping functions: ids and times the same way in every source.


def event_id(source: str, *parts: str) -> str:
    """A provider-given id, namespaced by source so two providers' ids never collide."""
    return ":".join((source, *parts))


def content_id(source: str, payload: BaseModel) -> str:
    """An id for payloads without a provider id: a digest of the payload's content.

    The digest is over the validated payload with sorted keys, so a redelivered webhook gets
    the same id (and is deduplicated) whatever its key order or whitespace.
    """
    body = orjson.dumps(payload.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return event_id(source, hashlib.sha256(body).hexdigest()[:32])


def from_unix(seconds: float) -> datetime:
    """Unix seconds (as webhook providers send them) as an aware UTC datetime; a ValueError
    (a refusal at ingest, a dead letter in the map stage) outside the accepted range."""
    return datetime.fromtimestamp(check_seconds(seconds), tz=UTC)


def present(**values: Any) -> dict[str, Any]:
    """The keyword arguments that have a value: properties without empty fields."""
    return {name: value for name, value in values.items() if value is not None}
