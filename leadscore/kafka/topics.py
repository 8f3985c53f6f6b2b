"""Topics as Kafka has them: creating them before anything subscribes, waiting for their
metadata, the record size limit, and how many records a topic holds. Which topics a
deployment has is each area's to say (`streams.topics` for the pipeline's)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError, for_code

from leadscore.infra.broker import admin_client


def ensure_topics(
    bootstrap_servers: str,
    names: Iterable[str],
    partitions: int,
    compacted: Iterable[str] = (),
    configs: Mapping[str, Mapping[str, str]] | None = None,
    security: Mapping[str, Any] | None = None,
) -> None:
    """Create the topics in `names` that do not exist yet; existing ones are left as they are.

    Topics named in `compacted` (also created if not in `names`) get
    `cleanup.policy=compact`, for state where only the latest value per key matters;
    `configs` adds topic configs by name. The replication factor is the broker's default.
    `security`: the connection's options (`leadscore.kafka_security`).
    """
    compacted = set(compacted)
    wanted = dict.fromkeys([*names, *sorted(compacted)])
    new_topics = [
        NewTopic(
            name,
            num_partitions=partitions,
            replication_factor=-1,
            topic_configs={
                **({"cleanup.policy": "compact"} if name in compacted else {}),
                **(configs or {}).get(name, {}),
            },
        )
        for name in wanted
    ]
    if not new_topics:
        return
    with admin_client(bootstrap_servers, security=security) as admin:
        response = admin.create_topics(new_topics, raise_errors=False)
    failures = [
        f"{topic['name']}: {for_code(topic['error_code']).__name__}"
        f"{' - ' + topic['error_message'] if topic.get('error_message') else ''}"
        for topic in response["topics"]
        if topic["error_code"] not in (0, TopicAlreadyExistsError.errno)
    ]
    if failures:
        raise RuntimeError(
            f"could not create topics on {bootstrap_servers}: " + "; ".join(failures)
        )


#: Bytes a record takes in a batch beyond its key and value (lengths, offsets, attributes),
#: and a batch beyond its records (its header), rounded up: Kafka limits a batch's size.
RECORD_OVERHEAD = 64
BATCH_OVERHEAD = 128


def batch_size(records: Iterable[tuple[bytes | None, bytes]]) -> int:
    """The most bytes a batch of these (key, value) records takes."""
    return BATCH_OVERHEAD + sum(_record_size(key, value) for key, value in records)


def fits(key: bytes | None, value: bytes, max_bytes: int) -> bool:
    """Whether a record with `key` and `value` fits the record size limit `max_bytes` (the
    broker's limit is on a batch: this is a batch of that one record)."""
    return BATCH_OVERHEAD + _record_size(key, value) <= max_bytes


def _record_size(key: bytes | None, value: bytes) -> int:
    return len(key or b"") + len(value) + RECORD_OVERHEAD


def wait_for_topics(
    bootstrap_servers: str, names: Iterable[str], timeout: float = 30.0,
    security: Mapping[str, Any] | None = None,
) -> None:
    """Return once metadata lists every topic in `names` with a leader for each partition.

    CreateTopics answers once the controller has the topics; the broker's metadata follows a
    few milliseconds later. A consumer assigned to a topic before then retries with no
    backoff, logging hundreds of "not found" errors a second, so the worker waits here.
    """
    wanted = list(names)
    deadline = time.monotonic() + timeout
    with admin_client(bootstrap_servers, security=security) as admin:
        while True:
            missing = [topic["name"] for topic in admin.describe_topics(wanted)
                       if topic["error_code"] or not topic["partitions"]
                       or any(p["leader_id"] < 0 for p in topic["partitions"])]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"topics not in the metadata of {bootstrap_servers} after "
                                   f"{timeout} s: {', '.join(missing)}")
            time.sleep(0.05)


def topic_size(bootstrap_servers: str, topic: str) -> int:
    """How many records `topic` has received: the sum of its partitions' end offsets."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers)
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()
