"""`leadscore send`: produce a file of raw events to a source's raw topic.

For replaying captured webhooks, loading exports and demos. The file is a JSON array of raw
events, or JSON lines (one raw event per line, or one captured batch, a JSON array, per
line). Each item is checked like the ingest API checks it; bad items are reported with their
line and skipped, the good ones are sent, keyed by prospect so each prospect's events stay
in order on one partition.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

from streams.ingest import ItemError, RawRecord, check_item
from streams.sources import Source

_decoder = json.JSONDecoder()


@dataclass(frozen=True)
class Unreadable:
    reason: str


@dataclass
class SendReport:
    topic: str
    sent: int = 0
    #: (where, reason) of each item not sent, e.g. ("line 4", "email: ...").
    rejected: list[tuple[str, str]] = field(default_factory=list)


def read_items(text: str) -> Iterator[tuple[str, Any]]:
    """(where, item) for every item of the file, with an `Unreadable` for a line not JSON.

    `where` is "line N", or "line N, item I" (1-based) for items of an array.
    """
    if text.lstrip().startswith("["):
        try:
            document = json.loads(text)
        except ValueError:
            document = None  # not one array: JSON lines that happen to start with one
        if isinstance(document, list):
            yield from _array_items(text)
            return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
        except ValueError as error:
            yield f"line {number}", Unreadable(f"not JSON: {error}")
            continue
        if isinstance(document, list):
            for index, item in enumerate(document, start=1):
                yield f"line {number}, item {index}", item
        else:
            yield f"line {number}", document


def _array_items(text: str) -> Iterator[tuple[str, Any]]:
    """Items of a file holding one JSON array, with the line each item starts on."""
    position = _skip_space(text, text.index("[") + 1)
    line, counted_to = 1, 0
    index = 0
    while text[position] != "]":
        line += text.count("\n", counted_to, position)
        counted_to = position
        item, position = _decoder.raw_decode(text, position)
        index += 1
        yield f"line {line}, item {index}", item
        position = _skip_space(text, position)
        if text[position] == ",":
            position = _skip_space(text, position + 1)


def _skip_space(text: str, position: int) -> int:
    while text[position].isspace():
        position += 1
    return position


def send_file(
    source: Source, path: Path, topic: str, bootstrap_servers: str, max_bytes: int,
    security: Mapping[str, Any] | None = None,
) -> SendReport:
    """Check every item of `path` and produce the valid ones to `topic`; waits for the acks.
    `max_bytes` is the record size limit (`message_max_bytes`); `security`, the
    connection's options (`leadscore.kafka_security`)."""
    report = SendReport(topic=topic)
    records: list[tuple[str, RawRecord]] = []
    for where, item in read_items(path.read_text(encoding="utf-8")):
        checked = (ItemError(None, item.reason) if isinstance(item, Unreadable)
                   else check_item(source, item, max_bytes))
        if isinstance(checked, ItemError):
            report.rejected.append((where, checked.reason))
        else:
            records.append((where, checked))
    if not records:
        return report
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", linger_ms=5,
                             max_request_size=max_bytes, **(security or {}))
    try:
        futures = [(where, producer.send(topic, key=r.key, value=r.value)) for where, r in records]
        producer.flush(timeout=60)
        for where, future in futures:
            try:
                future.get(timeout=30)
            except KafkaError as error:
                report.rejected.append((where, f"not sent: {error}"))
            else:
                report.sent += 1
    finally:
        producer.close()
    return report
