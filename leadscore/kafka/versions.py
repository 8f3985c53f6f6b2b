"""Following a compacted topic of published versions: the rules, the roster.

`publish` commands check a version and write it under one key, so the topic's last record
is the version in force and a worker that starts later reads it too. Each worker reads the
whole topic itself (no consumer group): every worker needs every version. At start, the
last version published before the worker started that passes is put in force (a refused
one was set aside when it was published, not again at every start); then each one
published since, or, if it is refused, it is set aside on the dead-letter topic with why,
and the running one stays.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from leadscore.kafka.dead_letters import Stage, counted, describe, letter, send
from leadscore.kafka_security import aiokafka_security
from leadscore.settings import Settings

#: Puts a published value in force; returns why it is refused, or None.
Accept = Callable[[bytes], "str | None"]


async def follow_versions(
    settings: Settings, producer: AIOKafkaProducer, topic: str, key: bytes, stage: Stage,
    dead_letter_topic: str, accept: Accept,
) -> None:
    """A worker task: follow `topic` until cancelled."""
    started_ms = int(time.time() * 1000)  # what is published from now on is followed

    async def follow(record: Any) -> None:
        """Put one published version in force, or set it aside with why not."""
        if record.key != key or record.value is None:
            return
        reason, cause = _safely(accept, record.value)
        if reason is not None:
            dead = counted(letter(stage, reason, record, stage, cause), cause)
            await send(producer, dead_letter_topic, dead, settings.message_max_bytes)

    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                enable_auto_commit=False, **aiokafka_security(settings))
    await consumer.start()
    try:
        partition = TopicPartition(topic, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning()
        end = (await consumer.end_offsets([partition]))[partition]
        history: list[Any] = []
        later: list[Any] = []
        while await consumer.position(partition) < end:
            for record in (await consumer.getmany(partition, timeout_ms=1000)).get(partition, []):
                recent = record.offset >= end or record.timestamp >= started_ms
                (later if recent else history).append(record)
        for record in reversed(history):
            if record.key == key and record.value is not None and _safely(
                    accept, record.value)[0] is None:
                break
        for record in later:
            await follow(record)
        async for record in consumer:
            await follow(record)
    finally:
        await consumer.stop()


def _safely(accept: Accept, value: bytes) -> tuple[str | None, Exception | None]:
    """`accept`, with a bug of ours on this record made a reason (and its exception)."""
    try:
        return accept(value), None
    except Exception as error:  # the feed goes on
        return describe(error), error
