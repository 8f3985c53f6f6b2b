"""Publishes what the scoring stage decided: the outbox of each changelog record.

This is the transactional-outbox pattern, with the relay inside the processor. The scoring
stage writes a prospect's new state together with what it decided (decisions, and the
hand-over messages for `events`) as one changelog record. Once the broker has acknowledged
a batch's changelog records, the processor produces their outboxes; once those are
acknowledged too, it commits its input offsets and, in the group `<app_id>-outbox`, the
changelog offset before which every outbox is published: the mark.

A worker taking a partition over reads the changelog from the mark on (a restore reads it
anyway) and publishes those records' outboxes again before it scores anything. Whatever a
crash left unpublished is thus published, at worst twice, as exact repeats that consumers
drop; nothing is lost. Forwards carry their changelog record's position, by which scoring
recognises one published again.

The relay used to be a second consumer reading the changelog back: a Kafka hop, a fetch wait
and a parse of every record in the path of each decision, a tenth of the worker's CPU. The
marks are kept where that consumer kept its offsets, so a worker upgraded from it goes on
from where it stopped.

The changelog is compacted, but only closed segments are, and the table is created with a
minimum compaction lag of a day: a mark less than a day old finds every record after it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any, cast

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from leadscore.kafka_security import aiokafka_security
from leadscore.logs import mask_email
from streams import metrics
from streams.dead_letters import as_record, counted, describe, letter
from streams.pipeline import Pipeline
from streams.produce import Record
from streams.scoring import Entry, outbox
from streams.topics import fits

log = logging.getLogger("leadscore.outbox")

#: The decisions counter of each decision type (`labels()` costs more than the count).
_DECIDED: dict[str, Any] = {}
#: Changelog records stay uncompacted this long, so a mark can lag this much.
MIN_COMPACTION_LAG_MS = 24 * 3600 * 1000


def add_outboxes(
    pipeline: Pipeline, partition: int, written: Iterable[tuple[int, bytes, Entry | None]],
    out: list[Record],
) -> None:
    """Add to `out` what each changelog record of `partition` asks to publish, given as
    (offset, key, entry); a record whose outbox cannot be published is set aside instead."""
    topics = pipeline.topics
    for offset, key, entry in written:
        try:
            out.extend(_messages(pipeline, entry, partition, offset))
        except Exception as error:  # a bug of ours, or an oversized decision: set aside
            value = orjson.dumps(entry) if entry is not None else None
            where = SimpleNamespace(topic=topics.changelog, partition=partition, offset=offset,
                                    key=key, value=value)
            dead = counted(letter("outbox", describe(error), where, "changelog", error), error)
            out.append(as_record(topics.dead_letter, dead, pipeline.settings.message_max_bytes))


def add_unpublished(pipeline: Pipeline, records: Iterable[Any], out: list[Record]) -> None:
    """Add to `out` the outboxes of changelog `records` read back after a mark; one that is
    not an entry's record is set aside (bad input: no traceback)."""
    topics = pipeline.topics
    for record in records:
        try:
            entry = orjson.loads(record.value) if record.value is not None else None
            if entry is not None and type(entry) is not dict:
                raise ValueError("not a JSON object")
        except ValueError as error:
            dead = counted(letter("outbox", describe(error), record, "changelog"))
            out.append(as_record(topics.dead_letter, dead, pipeline.settings.message_max_bytes))
            continue
        add_outboxes(pipeline, record.partition,
                     [(record.offset, record.key, cast(Entry | None, entry))], out)


def _messages(
    pipeline: Pipeline, entry: Entry | None, partition: int, offset: int
) -> list[Record]:
    """What one changelog record asks to publish, all checked to fit before any is sent,
    stamped with when the message that made them reached leadscore (`Entry.received`)."""
    topics, limit = pipeline.topics, pipeline.settings.message_max_bytes
    received = entry.get("received") if entry else None
    messages: list[Record] = []
    decisions = []
    for kind, key, item in outbox(entry, (f"{topics.changelog}/{partition}", offset)):
        topic = topics.decisions if kind == "decision" else topics.events
        name, value = key.encode(), orjson.dumps(item)
        if not fits(name, value, limit):
            raise ValueError(f"a {kind} of {len(value)} bytes does not fit a record")
        messages.append(Record(topic, name, value, received))
        if kind == "decision":
            decisions.append(item)
    for decision in decisions:
        _count_and_log(decision)
    return messages


def _count_and_log(decision: dict[str, Any]) -> None:
    counter = _DECIDED.get(decision["type"])
    if counter is None:
        counter = _DECIDED[decision["type"]] = metrics.DECISIONS.labels(decision["type"])
    counter.inc()
    if decision["type"] == "prospect.promoted":
        log.info("promoted", extra={
            "prospect": mask_email(decision["prospect"]), "track": decision["track"],
            "score": decision["score"],
        })


async def start_marks(pipeline: Pipeline) -> AIOKafkaConsumer:
    """The client that reads and commits the marks. It never joins the group and never
    fetches: it is assigned every changelog partition once, paused (assigning anew at each
    rebalance races aiokafka's coordinator task), and commits only those the processor
    owns."""
    settings, changelog = pipeline.settings, pipeline.topics.changelog
    marks = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, **aiokafka_security(settings),
        group_id=f"{settings.app_id}-outbox", enable_auto_commit=False,
    )
    await marks.start()
    try:
        partitions = await pipeline.producer.partitions_for(changelog)
    except BaseException:
        await marks.stop()
        raise
    tps = [TopicPartition(changelog, partition) for partition in sorted(partitions)]
    marks.assign(tps)
    marks.pause(*tps)
    return marks


async def read_marks(
    marks: AIOKafkaConsumer, pipeline: Pipeline, partitions: Iterable[int]
) -> dict[int, int]:
    """The mark of each partition: 0 where none was ever committed (the changelog is then
    published from its start: a new deployment's is empty)."""
    changelog = pipeline.topics.changelog
    return {partition: await marks.committed(TopicPartition(changelog, partition)) or 0
            for partition in partitions}


async def commit_marks(
    marks: AIOKafkaConsumer, pipeline: Pipeline, published: dict[int, int]
) -> None:
    """Commit, for each partition, the offset before which every outbox is published. A
    failed commit only means more repeats after a crash: it is logged, and the next one
    covers it (during an upgrade it fails until the last older worker, whose outbox
    publisher is a member of the group, has stopped)."""
    changelog = pipeline.topics.changelog
    offsets = {TopicPartition(changelog, partition): offset
               for partition, offset in published.items() if offset > 0}
    if not offsets:
        return
    try:
        await marks.commit(offsets)
    except KafkaError as error:
        log.warning("the outbox marks were not committed; a restart after a crash publishes "
                    "more decisions again", extra={"error": repr(error)})
