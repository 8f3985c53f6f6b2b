"""`leadscore dead-letters`: see what the stages set aside, and send it back once fixed.

Listing reads the whole dead-letter topic (it is never consumed by a group, so nothing is
lost by looking). Re-driving produces each chosen letter's original bytes to the topic it
was read from, with its key, where the stage reads it again as a new record: a raw record
is mapped again, an `events` message scored again. Scoring recognises events it has
already decided by their ids, so re-driving a letter twice decides nothing twice.

A record read again after a crash may be set aside twice; letters are told apart by the
stage and the position they came from, and each is listed and re-driven once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from leadscore.kafka.dead_letters import REDRIVABLE, DeadLetter, key_bytes, raw_bytes


@dataclass(frozen=True)
class Selection:
    """Which letters a command acts on; each given field must match."""

    source: str | None = None
    stage: str | None = None
    #: A part of the reason, matched ignoring case.
    reason: str | None = None
    #: Letters set aside at or after this time (their `at`).
    since: datetime | None = None

    def __call__(self, dead: DeadLetter) -> bool:
        return ((self.source is None or dead["source"] == self.source)
                and (self.stage is None or dead["stage"] == self.stage)
                and (self.reason is None or self.reason.lower() in dead["reason"].lower())
                and (self.since is None or datetime.fromisoformat(dead["at"]) >= self.since))


def read_letters(
    bootstrap_servers: str, topic: str, security: Mapping[str, Any] | None = None
) -> list[DeadLetter]:
    """Every letter on `topic`, oldest first per partition, each position once; `security`
    is the connection's options (`leadscore.kafka_security`)."""
    letters: dict[tuple[str, str, int, int, str | None], DeadLetter] = {}
    for value in _read_all(bootstrap_servers, topic, security or {}):
        try:
            dead = orjson.loads(value)
            place = (dead["stage"], dead["topic"], dead["partition"], dead["offset"],
                     dead["key"] if dead["offset"] < 0 else None)
        except (orjson.JSONDecodeError, KeyError, TypeError):
            continue  # not a letter of ours: nothing to list or re-drive
        letters.setdefault(place, dead)
    return list(letters.values())


def summarise(letters: Iterable[DeadLetter]) -> list[tuple[str, str, str, int]]:
    """(source, stage, reason, count), most frequent first; a reason is cut to 120
    characters, so letters that differ only in a long tail are counted together."""
    counts = Counter((d["source"], d["stage"], d["reason"][:120]) for d in letters)
    return [(*group, count) for group, count in counts.most_common()]


@dataclass
class Redriven:
    sent: int = 0
    #: (letter position, why it was not sent)
    skipped: list[tuple[str, str]] = field(default_factory=list)


def redrive(
    bootstrap_servers: str, letters: Iterable[DeadLetter], max_bytes: int,
    security: Mapping[str, Any] | None = None,
) -> Redriven:
    """Produce each letter's original record to the topic it was read from; waits for the
    acknowledgements."""
    outcome = Redriven()
    security = security or {}
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers.split(","), acks="all",
                             max_request_size=max_bytes, **security)
    try:
        futures = []
        for dead in letters:
            where = f"{dead['topic']}/{dead['partition']}@{dead['offset']}"
            why_not = not_redrivable(dead)
            if why_not is not None:
                outcome.skipped.append((where, why_not))
                continue
            value = raw_bytes(dead)
            if value is None:
                value = _read_at(bootstrap_servers, dead, security)
            if value is None:
                outcome.skipped.append((where, "the original is no longer on its topic"))
                continue
            if dead["stage"] == "score":
                value = without_origin(value)
            futures.append(producer.send(dead["topic"], key=key_bytes(dead), value=value))
        producer.flush(timeout=60)
        for future in futures:
            future.get(timeout=30)
            outcome.sent += 1
    finally:
        producer.close()
    return outcome


def not_redrivable(dead: DeadLetter) -> str | None:
    """Why `dead` cannot be sent back to where it was read, or None if it can."""
    if dead["stage"] not in REDRIVABLE:
        return _NOT_REDRIVABLE[dead["stage"]]
    if dead["offset"] < 0:
        return ("made from no Kafka record (a table entry, a Redis stream entry): nothing to "
                "send back; see its reason")
    return None


_NOT_REDRIVABLE = {
    "rules": "a refused rule set: fix the files and `leadscore rules publish` them",
    "roster": "a refused roster: fix it and `leadscore roster publish` it",
    "decay": "a failed decay is scheduled again by the prospect's next change",
    "outbox": "a changelog record whose decisions were not published: see its reason",
}


def without_origin(value: bytes) -> bytes:
    """An `events` message without the position it was first made from: sent back, it is
    a new message, which that position would have scoring take for a repeat."""
    try:
        message = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    if isinstance(message, dict) and "origin" in message:
        del message["origin"]
        return orjson.dumps(message)
    return value


def _read_all(bootstrap_servers: str, topic: str, security: Mapping[str, Any]) -> list[bytes]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers.split(","),
                             enable_auto_commit=False, consumer_timeout_ms=5000, **security)
    try:
        partitions = [TopicPartition(topic, p)
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return []
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        values: list[bytes] = []
        while any(consumer.position(tp) < end[tp] for tp in partitions):
            polled = consumer.poll(timeout_ms=2000)
            if not polled:
                break
            values.extend(r.value for records in polled.values() for r in records
                          if r.value is not None)
        return values
    finally:
        consumer.close()


def _read_at(
    bootstrap_servers: str, dead: DeadLetter, security: Mapping[str, Any]
) -> bytes | None:
    """The value at a letter's original position, if the topic still holds it."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers.split(","),
                             enable_auto_commit=False, **security)
    try:
        tp = TopicPartition(dead["topic"], dead["partition"])
        consumer.assign([tp])
        consumer.seek(tp, dead["offset"])
        for records in consumer.poll(timeout_ms=5000, max_records=1).values():
            for record in records:
                if record.offset == dead["offset"]:
                    value: bytes | None = record.value
                    return value
        return None
    finally:
        consumer.close()
