"""The topics of a deployment and Kafka's side of them: their names by role, creating them
before anything subscribes, waiting for their metadata, the record size limit, and how many
records a topic holds.

Every topic name comes from `deployment_topics`; nothing else spells one. A consumer
subscribed to a topic that does not exist yet sees nothing until its next metadata refresh,
and consumers never trigger a broker's automatic topic creation; the changelog needs its own
settings. So workers and tools create their topics up front.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError, for_code

from leadscore.infra.broker import admin_client
from leadscore.settings import Settings


@dataclass(frozen=True)
class Topics:
    """The topics of one deployment (its `topic_prefix` and `app_id`), by role."""

    #: Canonical events and the scoring stage's hand-over messages, keyed by prospect.
    events: str
    #: Every decision, keyed by prospect: the audit trail and the integration surface.
    decisions: str
    #: What a stage set aside (`leadscore.kafka.dead_letters`).
    dead_letter: str
    #: Published rule sets (compacted; the last record is in force).
    rules: str
    #: Published rosters (compacted; the last record is in force).
    roster: str
    #: The prospect tables' changelog, partition for partition with `events`.
    changelog: str
    #: Each source's raw topic, by source name.
    raw: Mapping[str, str] = field(default_factory=dict)

    def source_of(self, topic: str) -> str:
        """The source whose raw topic is `topic`."""
        return next(name for name, raw in self.raw.items() if raw == topic)

    def all(self) -> list[str]:
        return [self.events, self.decisions, self.dead_letter, self.rules, self.roster,
                self.changelog, *self.raw.values()]


def deployment_topics(settings: Settings, raw: Mapping[str, str]) -> Topics:
    """The topics for `settings`; `raw` names each source's raw topic (its suffix), by
    source."""
    prefix = settings.topic_prefix
    return Topics(
        events=f"{prefix}events", decisions=f"{prefix}decisions",
        dead_letter=f"{prefix}dead-letter", rules=f"{prefix}rules", roster=f"{prefix}roster",
        changelog=f"{settings.app_id}-prospects-changelog",
        raw={name: f"{prefix}{topic}" for name, topic in raw.items()},
    )


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
