"""The stack works for real: Kafka consumer groups and Redis data types.

Each Kafka test runs on the session broker (Apache Kafka in CI) and on the embedded Tansu
broker of the dev mode.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis
from kafka import KafkaConsumer, KafkaProducer

from leadscore.infra.broker import Broker, admin_client
from leadscore.kafka.topics import ensure_topics

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(
    params=[
        pytest.param("broker", marks=pytest.mark.kafka),
        pytest.param("tansu_broker", marks=pytest.mark.tansu),
    ]
)
def kafka(request: pytest.FixtureRequest) -> Broker:
    """Each broker a Kafka test must pass on."""
    started: Broker = request.getfixturevalue(request.param)
    return started


def produce(bootstrap: str, topic: str, messages: list[tuple[str, str]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for key, value in messages:
            producer.send(topic, key=key.encode(), value=value.encode())
        producer.flush(timeout=30)
    finally:
        producer.close()


def consume(consumer: KafkaConsumer, count: int, timeout: float = 60.0) -> list[tuple[int, str]]:
    """(offset, value) of the next `count` messages, or fewer if `timeout` passes."""
    received: list[tuple[int, str]] = []
    deadline = time.monotonic() + timeout
    while len(received) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            received.extend((record.offset, record.value.decode()) for record in records)
    return received


def group_member(bootstrap: str, topic: str, group: str) -> KafkaConsumer:
    # Short session and poll limits: Tansu holds a group join open for a share of them,
    # which with kafka-python's defaults (10 s, 300 s) costs about 20 s a join.
    return KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
        max_poll_interval_ms=10000,
    )


def test_second_group_member_resumes_after_committed_offset(kafka: Broker, unique: str) -> None:
    topic, group = f"{unique}.roundtrip", f"{unique}.group"
    ensure_topics(kafka.bootstrap_servers, [topic], partitions=1)
    produce(kafka.bootstrap_servers, topic, [("k", f"first-{i}") for i in range(5)])

    first = group_member(kafka.bootstrap_servers, topic, group)
    try:
        assert consume(first, 5) == [(i, f"first-{i}") for i in range(5)]
        first.commit()
    finally:
        first.close()

    produce(kafka.bootstrap_servers, topic, [("k", f"second-{i}") for i in range(3)])
    second = group_member(kafka.bootstrap_servers, topic, group)
    try:
        # Starting from "earliest" would replay first-0..4: only the commit prevents it.
        assert consume(second, 3) == [(5 + i, f"second-{i}") for i in range(3)]
    finally:
        second.close()


def test_ensure_topics_creates_missing_topics_and_keeps_existing_ones(
    kafka: Broker, unique: str
) -> None:
    names = [f"{unique}.a", f"{unique}.b"]
    ensure_topics(kafka.bootstrap_servers, names[:1], partitions=3)
    ensure_topics(kafka.bootstrap_servers, names, partitions=2, compacted=[f"{unique}.c"])

    with admin_client(kafka.bootstrap_servers) as admin:
        topics = admin.describe_topics([*names, f"{unique}.c"])
    partitions = {topic["name"]: len(topic["partitions"]) for topic in topics}
    # The first call's 3 partitions survive the second call's 2.
    assert partitions == {f"{unique}.a": 3, f"{unique}.b": 2, f"{unique}.c": 2}


def test_redis_strings_sorted_sets_and_streams(redis_url: str, unique: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        client.set(f"{unique}:owner", "mrr-7")
        assert client.get(f"{unique}:owner") == "mrr-7"

        board = f"{unique}:scores"
        client.zadd(board, {"ana": 70, "ben": 40, "cy": 65})
        client.zincrby(board, 10, "ben")
        assert client.zrevrange(board, 0, -1, withscores=True) == [
            ("ana", 70.0), ("cy", 65.0), ("ben", 50.0)
        ]

        alerts = f"{unique}:alerts"
        client.xgroup_create(alerts, "mrrs", id="0", mkstream=True)
        first = client.xadd(alerts, {"lead": "ana"})
        second = client.xadd(alerts, {"lead": "cy"})
        delivered = client.xreadgroup("mrrs", "rep-1", {alerts: ">"}, count=1)
        assert delivered == [[alerts, [(first, {"lead": "ana"})]]]
        client.xack(alerts, "mrrs", first)
        assert client.xpending(alerts, "mrrs")["pending"] == 0
        assert client.xreadgroup("mrrs", "rep-2", {alerts: ">"}) == [
            [alerts, [(second, {"lead": "cy"})]]
        ]
    finally:
        client.close()
