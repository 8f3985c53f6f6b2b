"""What a worker's tasks share: settings, the rules in force, sources, topics, a producer.

The processor, the outbox publisher, the rules feed and the web server each take this one
context; none of them imports another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from aiokafka import AIOKafkaProducer

from leadscore.kafka.topics import Topics
from leadscore.settings import Settings
from scoring_rules import RuleSet
from streams.health import Health
from streams.sources import Source

#: How often the processor and the outbox publisher commit their offsets. Committing after
#: every batch put one more broker round trip in the path of every event (the outbox's
#: commit alone took p50 from 10 to 24 ms at 2,000 events/s); a crash repeats at most this
#: much work, which scoring and the decisions' consumers recognise.
COMMIT_SECONDS = 0.5


@dataclass
class Pipeline:
    settings: Settings
    #: The rule set in force; replaced whole when a new version is accepted.
    rules: RuleSet
    sources: dict[str, Source]
    topics: Topics
    producer: AIOKafkaProducer
    #: The processor's account of itself, for `/healthz` and `/readyz`.
    health: Health = field(default_factory=Health)
