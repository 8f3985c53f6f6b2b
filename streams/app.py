"""The live pipeline: Faust agents around the pure scoring core.

    raw.<source> --map--> events --score--> prospects table --outbox--> decisions
                   \\-> dead-letter   (key: prospect)   (changelog)

Each stage is a thin adapter: the mapping is the source plugin's (`streams.sources`),
scoring and identity hand-over are `streams.scoring.handle`, publishing is
`streams.outbox`. This module only moves bytes between topics and tables.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import faust
import orjson
from aiokafka.partitioner import DefaultPartitioner
from faust.types import TP, EventT, StreamT

from leadscore.settings import Settings
from scoring_rules import RuleSet
from streams import metrics
from streams.decay_clock import PartitionClock, tick_time
from streams.due_index import DueIndex
from streams.outbox import MIN_COMPACTION_LAG_MS, publish_outbox
from streams.scoring import event_message, handle, rebuild_index
from streams.sources import Source, discover_sources, map_raw

log = logging.getLogger("leadscore.worker")


@dataclass
class Pipeline:
    app: faust.App
    settings: Settings
    #: The rule set in force; replaced whole when a new version is accepted.
    rules: RuleSet
    sources: dict[str, Source]
    topics: dict[str, faust.TopicT]
    indexes: dict[int, DueIndex] = field(default_factory=dict)
    clocks: dict[int, PartitionClock] = field(default_factory=dict)


def topic_names(settings: Settings, sources: dict[str, Source]) -> dict[str, str]:
    """Every topic the pipeline reads or writes, by role; raw topics as `raw.<source>`."""
    names = {role: settings.topic(role) for role in ("events", "decisions", "dead-letter", "rules")}
    for name, source in sources.items():
        names[f"raw.{name}"] = settings.topic(source.topic)
    return names


def create_app(settings: Settings, rules: RuleSet) -> Pipeline:
    """Build the Faust app with all agents; nothing connects until the worker starts."""
    sources = discover_sources()
    names = topic_names(settings, sources)
    brokers = ",".join(f"kafka://{host}" for host in settings.kafka_bootstrap_servers.split(","))
    app = faust.App(
        settings.app_id,
        broker=brokers,
        store=settings.table_store,
        datadir=str(settings.data_dir),
        topic_partitions=settings.topic_partitions,
        web_host=settings.web_host,
        web_port=settings.web_port,
        consumer_auto_offset_reset="earliest",
        topic_allow_declare=True,
        producer_linger_ms=10,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_seconds / 3),
    )
    topics = {
        role: app.topic(
            name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw",
            partitions=settings.raw_topic_partitions if role.startswith("raw.")
            else settings.topic_partitions,
        )
        for role, name in names.items()
    }
    pipeline = Pipeline(
        app=app, settings=settings, rules=rules, sources=sources, topics=topics
    )
    prospects = app.Table(
        "prospects",
        extra_topic_configs={"min.compaction.lag.ms": str(MIN_COMPACTION_LAG_MS)},
    )
    raw_topic_names = {names[f"raw.{name}"]: name for name in sources}

    @app.agent(app.topic(
        *raw_topic_names, key_type=bytes, value_type=bytes, key_serializer="raw",
        value_serializer="raw",
    ))
    async def map_events(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            source = raw_topic_names[event.message.topic]
            metrics.EVENTS_IN.labels(source).inc()
            mapped = map_raw(source, event.value)
            if isinstance(mapped, dict):
                metrics.DEAD_LETTERS.labels(source, mapped["stage"]).inc()
                log.warning("dead letter", extra={"source": source, "reason": mapped["reason"]})
                await topics["dead-letter"].send(key=event.key, value=orjson.dumps(mapped))
                continue
            for canonical in mapped:
                message = event_message(canonical.model_dump(mode="json"))
                await topics["events"].send(
                    key=canonical.prospect.key.encode(), value=orjson.dumps(message)
                )

    @app.agent(topics["events"])
    async def score(stream: StreamT[bytes]) -> None:
        async for event in stream.events():
            await _score_one(pipeline, prospects, event)

    if settings.decay_tick_seconds > 0:

        @app.timer(interval=settings.decay_tick_seconds)  # type: ignore[untyped-decorator]
        async def publish_ticks() -> None:
            """Ask every partition this worker owns to run the decays that are due."""
            wall, monotonic = datetime.now(UTC), time.monotonic()
            for tp in app.assignor.assigned_actives():
                if tp.topic != names["events"]:
                    continue
                clock = pipeline.clocks.setdefault(tp.partition, PartitionClock(monotonic))
                now = tick_time(clock, wall, monotonic, settings.decay_idle_seconds)
                if now is not None:
                    await topics["events"].send(
                        key=b"", value=orjson.dumps({"kind": "tick", "now": now.isoformat()}),
                        partition=tp.partition,
                    )

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def report_assignment(app: faust.App, assigned: set[TP], **_: Any) -> None:
        mine = sorted(tp.partition for tp in assigned if tp.topic == names["events"])
        log.info("partitions assigned", extra={"topic": names["events"], "partitions": mine})

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def forget_indexes(app: faust.App, revoked: set[TP], **_: Any) -> None:
        for tp in revoked:
            pipeline.indexes.pop(tp.partition, None)
            pipeline.clocks.pop(tp.partition, None)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        return web.bytes(metrics.render(), content_type=metrics.CONTENT_TYPE)

    from streams.http import mount_ingest
    from streams.rules_feed import follow_rules

    mount_ingest(pipeline, settings)
    app.task(follow_rules(pipeline, settings))
    app.task(publish_outbox(pipeline))
    return pipeline


async def _score_one(pipeline: Pipeline, prospects: Any, event: EventT[bytes]) -> None:
    started = time.perf_counter()
    partition = event.message.partition
    rules = pipeline.rules
    index = pipeline.indexes.get(partition)
    if index is None:
        keys = _keys_of_partition(prospects, partition, pipeline.settings.topic_partitions)
        index = rebuild_index(rules, prospects, keys)
        pipeline.indexes[partition] = index
    key = event.key.decode() if event.key else ""
    message = orjson.loads(event.value)
    handle(rules, prospects, index, key, message)
    if message["kind"] != "tick":
        scored = message["event"]["occurred_at"] if message["kind"] == "event" else None
        clock = pipeline.clocks.setdefault(partition, PartitionClock(time.monotonic()))
        clock.saw(time.monotonic(), datetime.fromisoformat(scored) if scored else None)
    metrics.SCORING_SECONDS.observe(time.perf_counter() - started)


_partitioner = DefaultPartitioner()


def _keys_of_partition(prospects: Any, partition: int, count: int) -> list[str]:
    """The table keys that live on `partition`: the producer's own murmur2 placement.

    The table holds standby partitions too, so keys are filtered by where the producer
    put them rather than taken whole.
    """
    every = list(range(count))
    return [
        key for key in list(prospects.keys())
        if _partitioner(key.encode(), every, every) == partition
    ]
