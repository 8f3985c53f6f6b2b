"""The benchmark's references: a plain aiokafka loop on the same core, and a bare ceiling.

`baseline`: maps raw events with the same source plugin and scores them with the same
`streams.scoring.handle` as the worker, but keeps state in a dict (no changelog, no outbox
hop, hand-overs resolved in memory) and produces decisions directly. What the worker costs
on top of it is the price of its durability and scale-out.

`ceiling`: the worker's reads and writes with no mapping or scoring: raw -> `events` (keyed
by prospect) -> changelog -> `decisions`, two consumers as in the worker, each record's JSON
parsed once per hop. What the Kafka client and the loops around it cost on their own: no
worker doing the same reads and writes can be faster.

Both produce in batches, as the worker does (`leadscore.kafka.produce`).
Run by `bench.pipeline` as `python -m bench.baseline_loop baseline|ceiling`, with the
worker's settings in its environment (`app.worker.worker_env`).
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from leadscore.kafka.produce import Record, produce
from leadscore.settings import Settings
from scoring_rules import load_rules
from streams.due_index import DueIndex
from streams.scoring import Entry, Message, event_message, handle, outbox
from streams.sources import map_raw
from streams.topics import topics_of


async def run(mode: str) -> None:
    settings = Settings()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=1,
                                max_batch_size=settings.message_max_bytes)
    await producer.start()
    try:
        if mode == "ceiling":
            await asyncio.gather(_ceiling(settings, producer), _outbox_hop(settings, producer))
        else:
            await _baseline(settings, producer)
    finally:
        await producer.stop()


def _consumer(settings: Settings, group: str, *topics: str) -> AIOKafkaConsumer:
    return AIOKafkaConsumer(*topics, bootstrap_servers=settings.kafka_bootstrap_servers,
                            group_id=f"{settings.topic_prefix}{group}",
                            auto_offset_reset="earliest", fetch_max_wait_ms=5)


async def _baseline(settings: Settings, producer: AIOKafkaProducer) -> None:
    rules = load_rules(settings.rules_path)
    table: dict[str, Entry] = {}
    index = DueIndex()
    topics = topics_of(settings)
    consumer = _consumer(settings, "baseline", topics.raw["canonical"])
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=2000)
            out: list[Record] = []
            for records in batches.values():
                for record in records:
                    _score(rules, table, index, record.value, out, topics.decisions)
            await produce(producer, out)
    finally:
        await consumer.stop()


async def _ceiling(settings: Settings, producer: AIOKafkaProducer) -> None:
    """The processor's hops: raw -> `events` (keyed by prospect), `events` -> changelog."""
    topics = topics_of(settings)
    raw = topics.raw["canonical"]
    consumer = _consumer(settings, "ceiling", raw, topics.events)
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=2000)
            out: list[Record] = []
            for tp, records in batches.items():
                for record in records:
                    event = json_object(record.value)
                    if event is None:
                        continue
                    if tp.topic == raw:
                        prospect = event.get("prospect") or {}
                        key = prospect.get("email") or f"anon:{prospect.get('anonymous_id')}"
                        out.append(Record(topics.events, key.encode(), record.value))
                    else:
                        out.append(Record(topics.changelog, record.key, record.value,
                                          partition=tp.partition))
            await produce(producer, out)
    finally:
        await consumer.stop()


async def _outbox_hop(settings: Settings, producer: AIOKafkaProducer) -> None:
    """The outbox's hop: changelog -> `decisions`."""
    topics = topics_of(settings)
    consumer = _consumer(settings, "ceiling-outbox", topics.changelog)
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=2000)
            out = [Record(topics.decisions, record.key,
                          orjson.dumps({"event_id": (json_object(record.value) or {}).get("id")}))
                   for records in batches.values() for record in records]
            await produce(producer, out)
    finally:
        await consumer.stop()


def json_object(value: bytes | None) -> dict[str, Any] | None:
    """The record's JSON object, or None (the generated events include broken lines)."""
    try:
        parsed = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    return parsed if type(parsed) is dict else None


def _score(
    rules: Any, table: dict[str, Entry], index: DueIndex, raw: bytes, out: list[Record],
    decisions: str,
) -> None:
    mapped = map_raw("canonical", raw)
    if isinstance(mapped, dict):
        return
    queue: deque[tuple[str, Message]] = deque(
        (event.prospect.key, event_message(event.model_dump(mode="json"))) for event in mapped
    )
    while queue:
        key, message = queue.popleft()
        handle(rules, table, index, key, message)
        for kind, target, item in outbox(table.get(key)):
            if kind == "decision":
                out.append(Record(decisions, target.encode(), orjson.dumps(item)))
            else:
                queue.append((target, item))


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1]))
