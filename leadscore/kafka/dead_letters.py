"""The dead-letter record: what a stage set aside, why, and where it came from.

The rule of every consumer: a record it cannot process (bad input, or a bug of ours on that
one record) is set aside here with its stage, its reason and its position, counted, logged
once, and the stage goes on. A crash loop on one record would stop everyone's scoring;
a dead letter stops nothing. Broker and network failures are not dead letters: the
client retries them, and the record is processed once the broker is back.

Each letter keeps the record's bytes (as UTF-8 text, or base64 when they are not text) and
its position, so `leadscore dead-letters` can list it and, once the cause is fixed, send
it back to the topic it was read from. A letter too large to fit a record keeps only the
position; the original is still at that offset of its topic while retention keeps it.
"""

from __future__ import annotations

import base64
import logging
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, Literal, TypedDict

import orjson
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter
from pydantic import ValidationError

from leadscore.events import describe_error
from leadscore.kafka.produce import Record, produce
from leadscore.kafka.topics import fits
from leadscore.logs import mask_email

log = logging.getLogger("leadscore.dead_letters")

DEAD_LETTERS = Counter(
    "leadscore_dead_letters_total", "Events sent to the dead-letter topic", ["source", "stage"]
)

#: Keys longer than this are not used as the dead letter's record key (the letter keeps it).
_MAX_KEY = 1024

#: The stages that set records aside:
#: parse (a raw record that is not its source's payload), map (a payload that does not map
#: to valid events, or a mapping that failed), score (an `events` message), decay (a
#: prospect whose due decay failed), outbox (a changelog record whose decisions could not
#: be published), rules (a published rule set that failed the check), roster (a published
#: roster that failed its check), route (a decision the router could not read).
Stage = Literal["parse", "map", "score", "decay", "outbox", "rules", "roster", "route"]
#: Stages whose records go back to the topic they came from when re-driven.
REDRIVABLE: frozenset[str] = frozenset({"parse", "map", "score", "route"})


class DeadLetter(TypedDict):
    stage: Stage
    #: The raw source for the map stage's records; else the topic's role (events, rules...).
    source: str
    reason: str
    #: The exception type when the cause is a bug of ours, else None.
    error: str | None
    topic: str
    partition: int
    offset: int
    key: str | None
    #: The record's value: UTF-8 text, or base64 when `encoding` says so; None when the
    #: letter would not fit a record (read it at `topic`/`partition`/`offset`).
    raw: str | None
    encoding: Literal["utf-8", "base64"]
    at: str


def letter(
    stage: Stage, reason: str, record: Any, source: str, error: BaseException | None = None,
) -> DeadLetter:
    """The dead letter of a Kafka `record` (anything with topic, partition, offset, key,
    value), set aside now."""
    raw, encoding = _text(record.value)
    key = None if record.key is None else bytes(record.key).decode(errors="replace")
    return {
        "stage": stage, "source": source, "reason": reason,
        "error": type(error).__name__ if error is not None else None,
        "topic": record.topic, "partition": record.partition, "offset": record.offset,
        "key": key, "raw": raw, "encoding": encoding,
        "at": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }


def unrecorded(
    topic: str, partition: int, key: str | bytes | None, value: bytes | None = None,
) -> Any:
    """What `letter` takes for something no Kafka record holds (a due decay or a table
    change of prospect `key`, an entry of a Redis stream): offset -1."""
    return SimpleNamespace(topic=topic, partition=partition, offset=-1, value=value,
                           key=key.encode() if isinstance(key, str) else key)


def describe(error: BaseException) -> str:
    """A one-line reason for an error met on a record."""
    if isinstance(error, ValidationError):
        return f"invalid: {describe_error(error)}"
    return f"{type(error).__name__}: {error}"


def as_record(topic: str, dead: DeadLetter, max_bytes: int) -> Record:
    """The letter as a record for `topic` that fits `max_bytes`: whole if it can be, else
    without its raw bytes (and with its reason cut), else without its key as well."""
    key = dead["key"].encode() if dead["key"] and len(dead["key"]) <= _MAX_KEY else None
    value = orjson.dumps(dead)
    if fits(key, value, max_bytes):
        return Record(topic, key, value)
    dead = {**dead, "raw": None, "reason": dead["reason"][:2000]}
    value = orjson.dumps(dead)
    if fits(key, value, max_bytes):
        return Record(topic, key, value)
    return Record(topic, None, orjson.dumps({**dead, "key": None}))


async def send(producer: AIOKafkaProducer, topic: str, dead: DeadLetter, max_bytes: int) -> None:
    """Produce the one letter `dead` to the dead-letter `topic`, and wait until it is written
    (a stage with more to produce adds `as_record` to its batch instead)."""
    await produce(producer, [as_record(topic, dead, max_bytes)])


def raw_bytes(dead: DeadLetter) -> bytes | None:
    """The original record's value, as it was read (None if the letter does not hold it)."""
    if dead["raw"] is None:
        return None
    if dead["encoding"] == "base64":
        return base64.b64decode(dead["raw"])
    return dead["raw"].encode()


def key_bytes(dead: DeadLetter) -> bytes | None:
    return None if dead["key"] is None else dead["key"].encode()


def counted(dead: DeadLetter, cause: BaseException | None = None) -> DeadLetter:
    """Count and log `dead` (once; with the traceback when a bug of ours is the cause)."""
    DEAD_LETTERS.labels(dead["source"], dead["stage"]).inc()
    fields = {
        "stage": dead["stage"], "source": dead["source"], "reason": dead["reason"][:500],
        "position": f"{dead['topic']}/{dead['partition']}@{dead['offset']}",
        "key": mask_email(dead["key"]) if dead["key"] else None,
    }
    if cause is not None:
        log.error("set aside after an error of ours", extra=fields, exc_info=cause)
    else:
        log.warning("set aside", extra=fields)
    return dead


def _text(value: bytes | None) -> tuple[str | None, Literal["utf-8", "base64"]]:
    if value is None:
        return None, "utf-8"
    try:
        return value.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(value).decode(), "base64"
