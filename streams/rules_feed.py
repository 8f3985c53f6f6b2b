"""Rules change without a restart: every worker follows the compacted `rules` topic.

`leadscore rules publish` checks a rule set and writes its files to the topic under one
key, so the topic's last record is the version in force and a worker that starts later
reads it too. Each worker reads the whole topic itself (no consumer group), because every
worker needs every version, not a share of them. A version that fails the check is
refused, logged with its errors, and the running rules stay in force.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaProducer

from leadscore.settings import Settings
from scoring_rules import RulesError, RuleSet, load_rule_texts, rule_file_texts
from streams import metrics
from streams.dead_letters import counted, describe, letter, send
from streams.pipeline import Pipeline
from streams.sources import all_event_types
from streams.topics import topics_of

log = logging.getLogger("leadscore.rules")

RULES_KEY = b"rules"


def encode_rules(files: Mapping[str, str]) -> bytes:
    return orjson.dumps({"files": dict(files)})


def accept(pipeline: Pipeline, value: bytes) -> RuleSet | str:
    """Compile a published version and put it in force; or, if it is refused, the reason
    (the running rules stay in force)."""
    try:
        document = orjson.loads(value)
        files = document.get("files") if isinstance(document, dict) else None
        if not isinstance(files, dict) or not all(
                isinstance(name, str) and isinstance(text, str) for name, text in files.items()):
            return 'not a published rule set: expected {"files": {name: text, ...}}'
        rules = load_rule_texts(files, all_event_types())
    except RulesError as error:
        return str(error)
    except orjson.JSONDecodeError as error:
        return f"not JSON: {error}"
    if rules.version != pipeline.rules.version:
        metrics.RULES_VERSION.clear()
        metrics.RULES_VERSION.labels(rules.version).set(1)
        log.info("rules in force", extra={"version": rules.version,
                                           "previous": pipeline.rules.version})
        pipeline.rules = rules
    return rules


async def follow_rules(pipeline: Pipeline) -> None:
    """A worker task: apply the rule set in force, then every one published later."""
    metrics.RULES_VERSION.labels(pipeline.rules.version).set(1)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=pipeline.settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partition = TopicPartition(pipeline.topics.rules, 0)
        consumer.assign([partition])
        await consumer.seek_to_beginning()
        end = (await consumer.end_offsets([partition]))[partition]
        # What was published before the start is history: the last version that passes is
        # the one in force (a refused one was set aside when it was published, not again at
        # every start).
        history: list[Any] = []
        later: list[Any] = []
        while await consumer.position(partition) < end:
            for record in (await consumer.getmany(partition, timeout_ms=1000)).get(partition, []):
                (later if record.offset >= end else history).append(record)
        for record in reversed(history):
            if record.key == RULES_KEY and record.value is not None and not isinstance(
                    _accept_safely(pipeline, record.value)[0], str):
                break
        for record in later:
            await _follow(pipeline, record)
        async for record in consumer:
            await _follow(pipeline, record)
    finally:
        await consumer.stop()


async def _follow(pipeline: Pipeline, record: Any) -> None:
    """Accept one published version, or set it aside with why it was refused (the running
    rules stay in force)."""
    if record.key != RULES_KEY or record.value is None:
        return
    outcome, cause = _accept_safely(pipeline, record.value)
    if not isinstance(outcome, str):
        return
    metrics.RULES_REFUSED.inc()
    dead = counted(letter("rules", outcome, record, "rules", cause), cause)
    await (await send(pipeline.producer, pipeline.topics.dead_letter, dead,
                      pipeline.settings.message_max_bytes))


def _accept_safely(
    pipeline: Pipeline, value: bytes
) -> tuple[RuleSet | str, Exception | None]:
    """`accept`, with a bug of ours on this record made a reason (and its exception)."""
    try:
        return accept(pipeline, value), None
    except Exception as error:  # the feed goes on
        return describe(error), error


def publish_rules(settings: Settings, path: Path) -> str:
    """Check the rule set at `path` and publish it; returns its version. Raises RulesError."""
    files = rule_file_texts(path)
    rules = load_rule_texts(files, all_event_types())
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers.split(","))
    try:
        producer.send(topics_of(settings).rules, key=RULES_KEY,
                      value=encode_rules(files)).get(30)
    finally:
        producer.close()
    return rules.version
