"""Publishes what the scoring stage decided, from the prospects table's changelog.

This is the transactional-outbox pattern: the scoring agent writes a prospect's new state
together with the decisions it caused, in one changelog record; this publisher reads the
changelog in its own consumer group and produces the decisions (and hand-over messages) to
their topics, committing its offsets only after the broker has acknowledged them. A crash
anywhere re-publishes at worst a few decisions, as exact repeats that consumers can drop;
it never loses one. Forwards carry their changelog record's position, by which scoring
recognises one published again.

The changelog is compacted, but only closed segments are, and the table is created with a
minimum compaction lag of a day: a publisher less than a day behind sees every record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from leadscore.logs import mask_email
from streams import metrics
from streams.dead_letters import as_record, counted, describe, letter
from streams.pipeline import Pipeline
from streams.scoring import outbox, position_of
from streams.topics import fits

log = logging.getLogger("leadscore.outbox")

#: Changelog records stay uncompacted this long, so the publisher can lag this much.
MIN_COMPACTION_LAG_MS = 24 * 3600 * 1000


async def publish_outbox(pipeline: Pipeline) -> None:
    """A worker task: publish every changelog record's outbox, at least once, in order."""
    settings, topics, producer = pipeline.settings, pipeline.topics, pipeline.producer
    consumer = AIOKafkaConsumer(
        topics.changelog,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"{settings.app_id}-outbox",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            sends: list[Awaitable[Any]] = []
            for records in batches.values():
                for record in records:
                    try:
                        messages = _messages(pipeline, record)
                    except Exception as error:  # a bug of ours on one record: set aside
                        dead = counted(letter("outbox", describe(error),
                                              record, "changelog", error), error)
                        messages = [(topics.dead_letter, *as_record(
                            dead, settings.message_max_bytes), None)]
                    for topic, key, value, stamp in messages:
                        sends.append(await producer.send(topic, key=key, value=value,
                                                         timestamp_ms=stamp))
            if sends:
                await asyncio.gather(*sends)
            if batches:
                await consumer.commit()
    finally:
        await consumer.stop()


def _messages(
    pipeline: Pipeline, record: Any
) -> list[tuple[str, bytes | None, bytes, int | None]]:
    """What one changelog record asks to publish, as (topic, key, value, timestamp), all
    checked to fit before any is sent. The timestamp is when the message that made them
    reached leadscore (`Entry.received`)."""
    topics, limit = pipeline.topics, pipeline.settings.message_max_bytes
    entry = orjson.loads(record.value) if record.value else None
    received = entry.get("received") if entry else None
    messages: list[tuple[str, bytes | None, bytes, int | None]] = []
    decisions = []
    for kind, key, item in outbox(entry, position_of(record)):
        topic = topics.decisions if kind == "decision" else topics.events
        name, value = key.encode(), orjson.dumps(item)
        if not fits(name, value, limit):
            raise ValueError(f"a {kind} of {len(value)} bytes does not fit a record")
        messages.append((topic, name, value, received))
        if kind == "decision":
            decisions.append(item)
    for decision in decisions:
        metrics.DECISIONS.labels(decision["type"]).inc()
        _log_promotion(decision)
    return messages


def _log_promotion(decision: dict[str, Any]) -> None:
    if decision["type"] == "prospect.promoted":
        log.info("promoted", extra={
            "prospect": mask_email(decision["prospect"]), "track": decision["track"],
            "score": decision["score"],
        })
