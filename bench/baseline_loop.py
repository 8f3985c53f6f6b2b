"""The benchmark's baseline: a plain aiokafka consume-score-produce loop on the same core.

It maps raw events with the same source plugin and scores them with the same
`streams.scoring.handle` as the worker, but keeps state in a dict (no changelog, no outbox
hop, hand-overs resolved in memory) and produces decisions directly. What the worker
costs on top of this loop is the price of its durability and scale-out.

Run by `bench.pipeline` as `python -m bench.baseline_loop BOOTSTRAP PREFIX`.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from leadscore.settings import Settings
from scoring_rules import load_rules
from streams.due_index import DueIndex
from streams.scoring import Entry, Message, event_message, handle, outbox
from streams.sources import map_raw
from streams.topics import topics_of


async def run(bootstrap_servers: str, prefix: str) -> None:
    settings = Settings(kafka_bootstrap_servers=bootstrap_servers, topic_prefix=prefix)
    rules = load_rules(settings.rules_path)
    table: dict[str, Entry] = {}
    index = DueIndex()
    consumer = AIOKafkaConsumer(
        topics_of(settings).raw["canonical"], bootstrap_servers=bootstrap_servers,
        group_id=f"{prefix}baseline", auto_offset_reset="earliest", fetch_max_wait_ms=5,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=1)
    await consumer.start()
    await producer.start()
    decisions_topic = topics_of(settings).decisions
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=100, max_records=2000)
            out: list[tuple[str, dict[str, Any]]] = []
            for records in batches.values():
                for record in records:
                    mapped = map_raw("canonical", record.value)
                    if isinstance(mapped, dict):
                        continue
                    queue: deque[tuple[str, Message]] = deque(
                        (event.prospect.key, event_message(event.model_dump(mode="json")))
                        for event in mapped
                    )
                    while queue:
                        key, message = queue.popleft()
                        handle(rules, table, index, key, message)
                        for kind, target, item in outbox(table.get(key)):
                            if kind == "decision":
                                out.append((target, item))
                            else:
                                queue.append((target, item))
            sends = [await producer.send(decisions_topic, key=key.encode(),
                                         value=orjson.dumps(item)) for key, item in out]
            await asyncio.gather(*sends)
    finally:
        await consumer.stop()
        await producer.stop()


if __name__ == "__main__":
    asyncio.run(run(sys.argv[1], sys.argv[2]))
