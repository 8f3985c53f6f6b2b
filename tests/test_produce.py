"""Batched producing: records land where Kafka's clients put them, in order, all acknowledged."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from leadscore.infra.broker import Broker
from leadscore.kafka.produce import Record, murmur2, partition_of, produce
from leadscore.kafka.topics import ensure_topics


@given(st.binary(max_size=300), st.integers(min_value=1, max_value=64))
def test_a_key_goes_to_the_partition_kafkas_default_partitioner_picks(
    key: bytes, count: int
) -> None:
    partitions = list(range(count))
    assert partition_of(key, count) == DefaultPartitioner()(key, partitions, partitions)
    assert partition_of(key, count) == partition_of(key, count)  # remembered, unchanged


def test_murmur2_matches_the_java_clients_known_values() -> None:
    # Values from org.apache.kafka.common.utils.UtilsTest.testMurmur2.
    cases = {b"21": -973932308, b"foobar": -790332482, b"a-little-bit-long-string":
             -985981536, b"a-little-bit-longer-string": -1486304829,
             b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
             bytes([ord("a"), ord("b"), ord("c")]): 479470107}
    for data, expected in cases.items():
        assert murmur2(data) == expected & 0xFFFFFFFF


def test_records_are_written_in_order_per_partition_in_batches_and_all_acknowledged(
    broker: Broker, unique: str
) -> None:
    topic = f"{unique}.produce"
    ensure_topics(broker.bootstrap_servers, [topic], 3)
    keys = [f"p{n % 7}@acme.example".encode() for n in range(3000)]
    # 3,000 records of 2 kB do not fit one 64 kB batch: many batches per partition.
    records = [Record(topic, key, f"{n:06d}".encode() * 340) for n, key in enumerate(keys)]
    records.append(Record(topic, b"pinned", b"to partition 2", 1_700_000_000_000, 2))

    async def run() -> tuple[dict[TopicPartition, int], list[tuple[int, bytes, bytes, int]]]:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers,
                                    max_batch_size=65_536)
        await producer.start()
        try:
            written = await produce(producer, records)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap_servers,
                                    auto_offset_reset="earliest")
        await consumer.start()
        read: list[tuple[int, bytes, bytes, int]] = []
        try:
            while len(read) < len(records):
                for tp, batch in (await consumer.getmany(timeout_ms=1000)).items():
                    read += [(tp.partition, r.key, r.value, r.timestamp) for r in batch]
        finally:
            await consumer.stop()
        return written, read

    written, read = asyncio.run(run())
    for key in set(keys):
        sent = [r.value for r in records if r.key == key]
        partitions = {p for p, k, _, _ in read if k == key}
        assert partitions == {partition_of(key, 3)}
        assert [value for _, k, value, _ in read if k == key] == sent  # in order
    assert (2, b"pinned", b"to partition 2", 1_700_000_000_000) in read
    per_partition = {p: sum(1 for q, *_ in read if q == p) for p in range(3)}
    assert written == {TopicPartition(topic, p): n - 1 for p, n in per_partition.items() if n}


def test_a_record_larger_than_a_batch_goes_alone_in_its_own(broker: Broker, unique: str) -> None:
    topic = f"{unique}.large"
    ensure_topics(broker.bootstrap_servers, [topic], 1)

    async def run() -> dict[TopicPartition, int]:
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap_servers,
                                    max_batch_size=16_384)
        await producer.start()
        try:
            return await produce(producer, [Record(topic, None, b"a"),
                                            Record(topic, None, b"x" * 70_000),
                                            Record(topic, None, b"b")])
        finally:
            await producer.stop()

    assert asyncio.run(run()) == {TopicPartition(topic, 0): 2}
