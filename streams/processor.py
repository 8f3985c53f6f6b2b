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
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition

from leadscore.settings import Settings
from scoring_rules import RuleSet
from streams import metrics
from streams.decay_clock import PartitionClock, tick_time
from streams.due_index import DueIndex
from streams.outbox import changelog_topic
from streams.scoring import (
    event_message,
    handle,
    position_of,
    rebuild_index,
    run_due_decays,
)
from streams.sources import Source, map_raw
from streams.store import Table, open_table, restore_tables

log = logging.getLogger("leadscore.worker")

#: Records per poll: large enough to batch produce requests, small enough to keep latency.
MAX_BATCH = 2_000
#: How often offsets are committed. Committing after every batch made each small batch
#: wait for one more broker round trip before the next poll.
COMMIT_SECONDS = 0.5


@dataclass
class Pipeline:
    settings: Settings
    #: The rule set in force; replaced whole when a new version is accepted.
    rules: RuleSet
    sources: dict[str, Source]
    #: Every topic the pipeline reads or writes, by role; raw topics as `raw.<source>`.
    topics: dict[str, str]
    producer: AIOKafkaProducer


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


def topic_names(settings: Settings, sources: dict[str, Source]) -> dict[str, str]:
    names = {role: settings.topic(role) for role in ("events", "decisions", "dead-letter", "rules")}
    for name, source in sources.items():
        names[f"raw.{name}"] = settings.topic(source.topic)
    names["changelog"] = changelog_topic(settings.app_id)
    return names


async def run_processor(pipeline: Pipeline) -> None:
    """Consume, map, score and commit until cancelled; leaves the group on the way out."""
    settings, topics = pipeline.settings, pipeline.topics
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
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
    raw = [name for role, name in topics.items() if role.startswith("raw.")]
    consumer.subscribe([*raw, topics["events"]], listener=_Rebalance(processor))
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=MAX_BATCH)
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
    sends: list[Awaitable[Any]] = []
    touched: set[int] = set()
    assigned = processor.consumer.assignment()
    for tp, records in batches.items():
        if tp not in assigned:
            continue  # revoked since it was fetched: its new owner reads it from the commit
        if tp.topic == topics["events"]:
            _score(processor, tp.partition, records)
            touched.add(tp.partition)
        else:
            sends.extend(await _map(pipeline, tp.topic, records))
    if time.monotonic() >= processor.next_tick and pipeline.settings.decay_tick_seconds > 0:
        _run_decays(processor)
        touched.update(processor.owned)
        processor.next_tick = time.monotonic() + pipeline.settings.decay_tick_seconds
    written: dict[int, list[Awaitable[Any]]] = {}
    for partition in touched:
        owned = processor.owned[partition]
        written[partition] = [
            await pipeline.producer.send(
                topics["changelog"], key=key.encode(), value=orjson.dumps(entry),
                partition=partition,
            )
            for key, entry in owned.table.take_changes()
        ]
    await asyncio.gather(*sends)
    for partition, acks in written.items():
        metadata = await asyncio.gather(*acks)
        if metadata:
            processor.owned[partition].table.flush(metadata[-1].offset)
    processor.uncommitted = processor.uncommitted or bool(batches)
    if processor.uncommitted and time.monotonic() >= processor.next_commit:
        await processor.consumer.commit()
        processor.uncommitted = False
        processor.next_commit = time.monotonic() + COMMIT_SECONDS


async def _map(pipeline: Pipeline, topic: str, records: list[Any]) -> list[Awaitable[Any]]:
    """Map raw records to canonical events on `events`, or to dead letters. Each event
    carries its record's position, by which scoring recognises a record mapped again."""
    source = next(role[4:] for role, name in pipeline.topics.items()
                  if name == topic and role.startswith("raw."))
    producer, topics = pipeline.producer, pipeline.topics
    sends = []
    for record in records:
        metrics.EVENTS_IN.labels(source).inc()
        mapped = map_raw(source, record.value)
        if isinstance(mapped, dict):
            metrics.DEAD_LETTERS.labels(source, mapped["stage"]).inc()
            log.warning("dead letter", extra={"source": source, "reason": mapped["reason"]})
            sends.append(await producer.send(
                topics["dead-letter"], key=record.key, value=orjson.dumps(mapped)
            ))
            continue
        for number, event in enumerate(mapped):
            message = event_message(event.model_dump(mode="json"), position_of(record), number)
            sends.append(await producer.send(
                topics["events"], key=event.prospect.key.encode(), value=orjson.dumps(message)
            ))
    return sends


def _score(processor: Processor, partition: int, records: list[Any]) -> None:
    owned = processor.owned[partition]
    rules = processor.pipeline.rules
    for record in records:
        started = time.perf_counter()
        message = orjson.loads(record.value)
        handle(rules, owned.table, owned.index, record.key.decode(), message, record.offset)
        if message["kind"] == "event":
            occurred = datetime.fromisoformat(message["event"]["occurred_at"])
            owned.clock.saw(time.monotonic(), occurred)
        metrics.SCORING_SECONDS.observe(time.perf_counter() - started)


def _run_decays(processor: Processor) -> None:
    """Decay, on every partition this worker owns, the prospects that are due."""
    settings = processor.pipeline.settings
    wall, monotonic = datetime.now(UTC), time.monotonic()
    for owned in processor.owned.values():
        now = tick_time(owned.clock, wall, monotonic, settings.decay_idle_seconds)
        if now is not None:
            run_due_decays(processor.pipeline.rules, owned.table, owned.index, now)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Restores the tables of partitions gained; drops those of partitions lost."""

    def __init__(self, processor: Processor) -> None:
        self.processor = processor

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        processor = self.processor
        async with processor.lock:  # the batch in flight is finished first
            await processor.consumer.commit()
            for tp in revoked:
                if tp.topic == processor.pipeline.topics["events"]:
                    owned = processor.owned.pop(tp.partition, None)
                    if owned is not None:
                        owned.table.close()

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        processor = self.processor
        pipeline = processor.pipeline
        events = pipeline.topics["events"]
        gained = {tp.partition: open_table(pipeline.settings, tp.partition)
                  for tp in assigned
                  if tp.topic == events and tp.partition not in processor.owned}
        started = time.monotonic()
        # The consumer may already be fetching the new partitions: hold their records back
        # until their tables are whole.
        async with processor.lock:
            read = await restore_tables(pipeline.settings, pipeline.topics["changelog"], gained)
            for partition, table in gained.items():
                index = rebuild_index(pipeline.rules, table, list(table))
                processor.owned[partition] = Owned(table, index,
                                                   PartitionClock(time.monotonic()))
        log.info("partitions assigned", extra={
            "topic": events, "partitions": sorted(processor.owned),
            "restored_records": read, "restore_seconds": round(time.monotonic() - started, 3),
        })
