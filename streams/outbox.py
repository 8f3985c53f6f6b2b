"""Publishes what the scoring stage decided, from the prospects table's changelog.

This is the transactional-outbox pattern: the scoring agent writes a prospect's new state
together with the decisions it caused, in one changelog record; this publisher reads the
changelog in its own consumer group and produces the decisions (and hand-over messages) to
their topics, committing its offsets only after the broker has acknowledged them. A crash
anywhere re-publishes at worst a few decisions (each carries a deterministic `id` for
consumers to drop repeats); it never loses one.

The changelog is compacted, but only closed segments are, and the table is created with a
minimum compaction lag of a day: a publisher less than a day behind sees every record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from leadscore.logs import mask_email
from streams import metrics
from streams.scoring import outbox

if TYPE_CHECKING:
    from streams.app import Pipeline

log = logging.getLogger("leadscore.outbox")

#: Changelog records stay uncompacted this long, so the publisher can lag this much.
MIN_COMPACTION_LAG_MS = 24 * 3600 * 1000


def changelog_topic(app_id: str) -> str:
    return f"{app_id}-prospects-changelog"


def publish_outbox(pipeline: Pipeline) -> Callable[[], Awaitable[None]]:
    """A worker task: publish every changelog record's outbox, at least once, in order."""
    settings = pipeline.settings
    decisions_topic = settings.topic("decisions")
    events_topic = settings.topic("events")

    async def publish() -> None:
        consumer = AIOKafkaConsumer(
            changelog_topic(settings.app_id),
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=f"{settings.app_id}-outbox",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=10
        )
        await producer.start()
        await consumer.start()
        try:
            while True:
                batches = await consumer.getmany(timeout_ms=200, max_records=2000)
                sends: list[Awaitable[Any]] = []
                for records in batches.values():
                    for record in records:
                        entry = orjson.loads(record.value) if record.value else None
                        for kind, key, item in outbox(entry):
                            topic = decisions_topic if kind == "decision" else events_topic
                            if kind == "decision":
                                metrics.DECISIONS.labels(item["type"]).inc()
                                _log_promotion(item)
                            sends.append(await producer.send(
                                topic, key=key.encode(), value=orjson.dumps(item)
                            ))
                if sends:
                    await asyncio.gather(*sends)
                if batches:
                    await consumer.commit()
        finally:
            await consumer.stop()
            await producer.stop()

    return publish


def _log_promotion(decision: dict[str, Any]) -> None:
    if decision["type"] == "prospect.promoted":
        log.info("promoted", extra={
            "prospect": mask_email(decision["prospect"]), "track": decision["track"],
            "score": decision["score"],
        })
