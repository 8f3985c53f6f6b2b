"""The stream processor: one consumer loop that maps raw events and scores them.

    raw.<source> --map--> events --score--> prospect table --outbox--> decisions
                   \\-> dead-letter  (key: prospect)   (changelog)

The loop polls a batch from the raw topics and the `events` partitions this worker owns,
maps raw records (`streams.sources.map_raw`) and scores events (`streams.scoring.handle`),
writing every table change to the changelog. Once every record the batch produced is
acknowledged, its offsets may be committed: at most every `COMMIT_SECONDS`, and always
before a partition is handed over. A crash repeats at most that much work, and the changelog
already holds the changes (and so the decisions) of whatever was scored before it: scoring
recognises the repeats by their `events` offsets and by the raw positions that mapped
events carry (`streams.scoring`).

Partitions move between workers with the consumer group. A worker that gets an `events`
partition restores its table from the changelog before it polls again; one that loses a
partition finishes and commits the batch in flight first (the processing lock).

Decays: after each batch, and at least every `decay_tick_seconds`, the loop runs the decays
due on each partition it owns, up to the partition's stream time (`streams.decay_clock`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from leadscore.kafka.dead_letters import (
    DeadLetter,
    as_record,
    counted,
    describe,
    letter,
    unrecorded,
)
from leadscore.kafka.produce import Record, produce
from leadscore.kafka.topics import fits
from leadscore.kafka_security import aiokafka_security
from scoring_rules import RuleSet
from streams import metrics
from streams.decay_clock import PartitionClock, tick_time
from streams.due_index import DueIndex
from streams.pipeline import COMMIT_SECONDS, Pipeline
from streams.scoring import (
    event_message,
    handle,
    position_of,
    rebuild_index,
    run_due_decays,
)
from streams.sources import map_raw
from streams.store import Table, open_table, restore_tables
from streams.topics import event_too_large

log = logging.getLogger("leadscore.worker")

#: Records per poll: large enough to batch produce requests, small enough to keep latency.
MAX_BATCH = 2_000


@dataclass
class Owned:
    """An `events` partition this worker owns."""

    table: Table
    index: DueIndex
    clock: PartitionClock


@dataclass
class Processor:
    pipeline: Pipeline
    consumer: AIOKafkaConsumer
    owned: dict[int, Owned] = field(default_factory=dict)
    #: Held while a batch is processed, so a revocation waits for its commit.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    next_tick: float = 0.0
    next_commit: float = 0.0
    #: Whether records were processed since the last commit.
    uncommitted: bool = False


async def run_processor(pipeline: Pipeline) -> None:
    """Consume, map, score and commit until cancelled; leaves the group on the way out."""
    settings, topics = pipeline.settings, pipeline.topics
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        **aiokafka_security(settings),
        group_id=settings.app_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # A fetch waits this long for partitions with nothing new, and meanwhile holds back
        # the others' next fetch: this bounds the latency a quiet partition adds.
        fetch_max_wait_ms=20,
        session_timeout_ms=int(settings.session_timeout_seconds * 1000),
        heartbeat_interval_ms=int(min(3.0, settings.session_timeout_seconds / 3) * 1000),
    )
    processor = Processor(pipeline, consumer)
    consumer.subscribe([*topics.raw.values(), topics.events], listener=_Rebalance(processor))
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=MAX_BATCH)
            pipeline.health.polled_at = time.monotonic()
            async with processor.lock:
                await _process(processor, batches)
    finally:
        await consumer.stop()


async def _process(
    processor: Processor, batches: dict[TopicPartition, list[Any]]
) -> None:
    """One batch: map, score, run due decays; commit once everything is acknowledged."""
    pipeline = processor.pipeline
    topics = pipeline.topics
    out: list[Record] = []
    touched: set[int] = set()
    assigned = processor.consumer.assignment()
    for tp, records in batches.items():
        if tp not in assigned:
            continue  # revoked since it was fetched: its new owner reads it from the commit
        if tp.topic == topics.events:
            _score(processor, tp.partition, records, out)
            touched.add(tp.partition)
        else:
            _map(pipeline, tp.topic, records, out)
    if time.monotonic() >= processor.next_tick and pipeline.settings.decay_tick_seconds > 0:
        _run_decays(processor, out)
        touched.update(processor.owned)
        processor.next_tick = time.monotonic() + pipeline.settings.decay_tick_seconds
    for partition in touched:
        _write_changes(pipeline, partition, processor.owned[partition].table, out)
    written = await produce(pipeline.producer, out)
    for partition in touched:
        offset = written.get(TopicPartition(topics.changelog, partition))
        if offset is not None:
            processor.owned[partition].table.flush(offset)
    processor.uncommitted = processor.uncommitted or bool(batches)
    if processor.uncommitted and time.monotonic() >= processor.next_commit:
        await processor.consumer.commit()
        processor.uncommitted = False
        processor.next_commit = time.monotonic() + COMMIT_SECONDS


def _write_changes(pipeline: Pipeline, partition: int, table: Table, out: list[Record]) -> None:
    """Add the table's changes to the changelog's records. A prospect whose state grew too
    large for a record (events parked while it waits for a hand-over, each up to the event
    limit) has this batch's changes dropped, in the table too, and set aside: the table
    never holds what the changelog does not."""
    limit = pipeline.settings.message_max_bytes
    changelog = pipeline.topics.changelog
    changes = [(key, key.encode(), value) for key, value in table.take_changes()]
    too_large = {key: len(value) for key, name, value in changes if not fits(name, value, limit)}
    for key, size in too_large.items():
        table.discard(key)
        where = unrecorded(changelog, partition, key)
        reason = (f"the prospect's state grew to {size} bytes, over message_max_bytes "
                  f"({limit}): this batch's changes to it were dropped")
        out.append(as_record(pipeline.topics.dead_letter,
                             counted(letter("score", reason, where, "events")), limit))
    out.extend(Record(changelog, name, value, None, partition)
               for key, name, value in changes if key not in too_large)


def _map(pipeline: Pipeline, topic: str, records: list[Any], out: list[Record]) -> None:
    """Map raw records to canonical events on `events`, or to dead letters. Each event
    carries its record's position, by which scoring recognises a record mapped again, and
    its record's arrival as its timestamp."""
    source = pipeline.topics.source_of(topic)
    topics = pipeline.topics
    limit = pipeline.settings.message_max_bytes
    metrics.EVENTS_IN.labels(source).inc(len(records))
    for record in records:
        try:
            messages = _mapped(pipeline, source, record)
        except Exception as error:  # a bug of ours on this record: it must not stop the stage
            messages = letter("map", describe(error), record, source, error)
            counted(messages, error)
        if isinstance(messages, dict):
            out.append(as_record(topics.dead_letter, messages, limit))
            continue
        out.extend(Record(topics.events, key, value, record.timestamp)
                   for key, value in messages)


def _mapped(
    pipeline: Pipeline, source: str, record: Any
) -> list[tuple[bytes, bytes]] | DeadLetter:
    """One raw record as (key, value) messages for `events`, or its counted dead letter."""
    mapped = map_raw(pipeline.sources.get(source) or source, record.value)
    if isinstance(mapped, dict):
        return counted(letter(mapped["stage"], mapped["reason"], record, source))
    messages = []
    for number, event in enumerate(mapped):
        message = event_message(event.model_dump(mode="json"), position_of(record), number)
        key, value = event.prospect.key.encode(), orjson.dumps(message)
        too_large = event_too_large(key, value, pipeline.settings.message_max_bytes)
        if too_large:
            return counted(letter("map", too_large, record, source))
        messages.append((key, value))
    return messages


def _score(processor: Processor, partition: int, records: list[Any], out: list[Record]) -> None:
    """Score `records` of one `events` partition; their dead letters are added to `out`."""
    owned = processor.owned[partition]
    pipeline = processor.pipeline
    for record in records:
        started = time.perf_counter()
        dead = score_one(pipeline.rules, owned, record)
        if dead is not None:
            out.append(as_record(pipeline.topics.dead_letter, dead,
                                 pipeline.settings.message_max_bytes))
        metrics.SCORING_SECONDS.observe(time.perf_counter() - started)


def score_one(rules: RuleSet, owned: Owned, record: Any) -> DeadLetter | None:
    """Score one `events` record; its counted dead letter if it cannot be."""
    try:
        if record.key is None or record.value is None:
            raise ValueError("an events message needs a key (the prospect) and a value")
        message = orjson.loads(record.value)
        occurred = handle(rules, owned.table, owned.index, record.key.decode(), message,
                          record.offset, record.timestamp)
        if occurred is not None:
            owned.clock.saw(time.monotonic(), occurred)
    except ValueError as error:  # bad input: not JSON, not a message, an invalid event
        return counted(letter("score", describe(error), record, "events"))
    except Exception as error:  # a bug of ours: set aside with its traceback, and go on
        return counted(letter("score", describe(error), record, "events", error), error)
    return None


def _run_decays(processor: Processor, out: list[Record]) -> None:
    """Decay, on every partition this worker owns, the prospects that are due; a prospect
    whose decay fails is set aside (and is not tried again until its next change)."""
    pipeline = processor.pipeline
    settings = pipeline.settings
    wall, monotonic = datetime.now(UTC), time.monotonic()
    for partition, owned in processor.owned.items():
        now = tick_time(owned.clock, wall, monotonic, settings.decay_idle_seconds)
        if now is None:
            continue
        for key, error in run_due_decays(pipeline.rules, owned.table, owned.index, now):
            where = unrecorded(pipeline.topics.events, partition, key)
            dead = counted(letter("decay", describe(error), where, "events", error), error)
            out.append(as_record(pipeline.topics.dead_letter, dead, settings.message_max_bytes))


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Restores the tables of partitions gained; drops those of partitions lost."""

    def __init__(self, processor: Processor) -> None:
        self.processor = processor

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        processor = self.processor
        processor.pipeline.health.member = False
        async with processor.lock:  # the batch in flight is finished first
            if revoked:  # (the first join revokes nothing, and has nothing to commit)
                try:
                    await processor.consumer.commit()
                except (CommitFailedError, IllegalStateError) as error:
                    log.warning("commit before a hand-over failed; the new owner repeats "
                                "the last batch, which scoring recognises",
                                extra={"error": repr(error)})
            for tp in revoked:
                if tp.topic == processor.pipeline.topics.events:
                    owned = processor.owned.pop(tp.partition, None)
                    if owned is not None:
                        owned.table.close()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        processor = self.processor
        pipeline = processor.pipeline
        events = pipeline.topics.events
        gained = {tp.partition: open_table(pipeline.settings, tp.partition)
                  for tp in assigned
                  if tp.topic == events and tp.partition not in processor.owned}
        started = time.monotonic()
        health = pipeline.health
        health.member, health.restoring = True, len(gained)
        # The consumer may already be fetching the new partitions: hold their records back
        # until their tables are whole.
        async with processor.lock:
            read = await restore_tables(pipeline.settings, pipeline.topics.changelog, gained)
            set_aside: list[Record] = []
            for partition, table in gained.items():
                index, unreadable = rebuild_index(pipeline.rules, table, list(table))
                for key, error in unreadable:
                    where = unrecorded(pipeline.topics.changelog, partition, key)
                    reason = f"the prospect's stored entry cannot be read: {describe(error)}"
                    # Bad input (the changelog holds what no stage of ours writes): no
                    # traceback in the log; the reason names the error.
                    set_aside.append(as_record(
                        pipeline.topics.dead_letter,
                        counted(letter("score", reason, where, "changelog")),
                        pipeline.settings.message_max_bytes))
                processor.owned[partition] = Owned(table, index,
                                                   PartitionClock(time.monotonic()))
            await produce(pipeline.producer, set_aside)  # one request, not one per letter
        health.restoring = 0
        log.info("partitions assigned", extra={
            "topic": events, "partitions": sorted(processor.owned),
            "restored_records": read, "restore_seconds": round(time.monotonic() - started, 3),
        })
