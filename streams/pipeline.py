"""What a worker's tasks share: settings, the rules in force, sources, topics, a producer.

The processor, the outbox publisher, the rules feed and the web server each take this one
context; none of them imports another.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiokafka import AIOKafkaProducer

from leadscore.settings import Settings
from scoring_rules import RuleSet
from streams.sources import Source
from streams.topics import Topics


@dataclass
class Pipeline:
    settings: Settings
    #: The rule set in force; replaced whole when a new version is accepted.
    rules: RuleSet
    sources: dict[str, Source]
    topics: Topics
    producer: AIOKafkaProducer
