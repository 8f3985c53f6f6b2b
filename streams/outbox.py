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

import logging
import time
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer

from leadscore.decisions import PROSPECT_PROMOTED
from leadscore.kafka.dead_letters import as_record, counted, describe, letter
from leadscore.kafka.produce import Record, produce
from leadscore.kafka.topics import fits
from leadscore.kafka_security import aiokafka_security
from leadscore.logs import mask_email
from streams import metrics
from streams.pipeline import COMMIT_SECONDS, Pipeline
from streams.scoring import outbox, position_of

log = logging.getLogger("leadscore.outbox")

#: The decisions counter of each decision type (`labels()` costs more than the count).
_DECIDED: dict[str, Any] = {}
#: Changelog records stay uncompacted this long, so the publisher can lag this much.
MIN_COMPACTION_LAG_MS = 24 * 3600 * 1000


async def publish_outbox(pipeline: Pipeline) -> None:
    """A worker task: publish every changelog record's outbox, at least once, in order."""
    settings, topics, producer = pipeline.settings, pipeline.topics, pipeline.producer
    consumer = AIOKafkaConsumer(
        topics.changelog,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        **aiokafka_security(settings),
        group_id=f"{settings.app_id}-outbox",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    uncommitted, next_commit = False, 0.0
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            out: list[Record] = []
            for records in batches.values():
                for record in records:
                    try:
                        out.extend(_messages(pipeline, record))
                    except Exception as error:  # a bug of ours on one record: set aside
                        dead = counted(letter("outbox", describe(error),
                                              record, "changelog", error), error)
                        out.append(as_record(topics.dead_letter, dead,
                                             settings.message_max_bytes))
            if out:
                await produce(producer, out)
            # Committed at most every COMMIT_SECONDS, as the processor does: a commit after
            # each batch put a broker round trip in every decision's path.
            uncommitted = uncommitted or bool(batches)
            if uncommitted and time.monotonic() >= next_commit:
                await consumer.commit()
                uncommitted, next_commit = False, time.monotonic() + COMMIT_SECONDS
    finally:
        await consumer.stop()


def _messages(pipeline: Pipeline, record: Any) -> list[Record]:
    """What one changelog record asks to publish, all checked to fit before any is sent,
    stamped with when the message that made them reached leadscore (`Entry.received`)."""
    topics, limit = pipeline.topics, pipeline.settings.message_max_bytes
    entry = orjson.loads(record.value) if record.value else None
    received = entry.get("received") if entry else None
    messages: list[Record] = []
    decisions = []
    for kind, key, item in outbox(entry, position_of(record)):
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
    if decision["type"] == PROSPECT_PROMOTED:
        log.info("promoted", extra={
            "prospect": mask_email(decision["prospect"]), "track": decision["track"],
            "score": decision["score"],
        })
