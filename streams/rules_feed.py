"""Rules change without a restart: every worker follows the compacted `rules` topic
(`leadscore.kafka.versions`). `leadscore rules publish` checks a rule set and writes its files
there; a version that fails the check anyway (written by other means) is refused and set
aside, and the running rules stay in force."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import orjson
from kafka import KafkaProducer

from leadscore.kafka.versions import follow_versions
from leadscore.kafka_security import kafka_python_security
from leadscore.settings import Settings
from scoring_rules import RulesError, RuleSet, load_rule_texts, rule_file_texts
from streams import metrics
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

    def refused(value: bytes) -> str | None:
        outcome = accept(pipeline, value)
        if isinstance(outcome, str):
            metrics.RULES_REFUSED.inc()
            return outcome
        return None

    await follow_versions(pipeline.settings, pipeline.producer, pipeline.topics.rules,
                          RULES_KEY, "rules", pipeline.topics.dead_letter, refused)


def publish_rules(settings: Settings, path: Path) -> str:
    """Check the rule set at `path` and publish it; returns its version. Raises RulesError."""
    files = rule_file_texts(path)
    rules = load_rule_texts(files, all_event_types())
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
                             **kafka_python_security(settings))
    try:
        producer.send(topics_of(settings).rules, key=RULES_KEY,
                      value=encode_rules(files)).get(30)
    finally:
        producer.close()
    return rules.version
