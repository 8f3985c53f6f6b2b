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
from typing import TYPE_CHECKING, Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaProducer

from leadscore.settings import Settings
from scoring_rules import RulesError, RuleSet, load_rule_texts, rule_file_texts
from streams import metrics
from streams.dead_letters import counted, describe, encode, letter
from streams.sources import all_event_types

if TYPE_CHECKING:
    from streams.processor import Pipeline

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
    """A worker task: apply every published rule set, from the first to the last."""
    metrics.RULES_VERSION.labels(pipeline.rules.version).set(1)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=pipeline.settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(pipeline.topics["rules"], 0)])
        await consumer.seek_to_beginning()
        async for record in consumer:
            if record.key == RULES_KEY and record.value is not None:
                await _follow(pipeline, record)
    finally:
        await consumer.stop()


async def _follow(pipeline: Pipeline, record: Any) -> None:
    """Accept one published version, or set it aside with why it was refused (the running
    rules stay in force)."""
    cause: Exception | None = None
    try:
        outcome = accept(pipeline, record.value)
    except Exception as error:  # a bug of ours on this record: the feed goes on
        outcome, cause = describe(error), error
    if not isinstance(outcome, str):
        return
    metrics.RULES_REFUSED.inc()
    dead = counted(letter("rules", outcome, record, "rules", cause), cause)
    await pipeline.producer.send_and_wait(
        pipeline.topics["dead-letter"], key=record.key,
        value=encode(dead, pipeline.settings.message_max_bytes))


def publish_rules(settings: Settings, path: Path) -> str:
    """Check the rule set at `path` and publish it; returns its version. Raises RulesError."""
    files = rule_file_texts(path)
    rules = load_rule_texts(files, all_event_types())
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers.split(","))
    try:
        producer.send(settings.topic("rules"), key=RULES_KEY, value=encode_rules(files)).get(30)
    finally:
        producer.close()
    return rules.version
