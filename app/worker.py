"""`leadscore worker`: one production worker, configured from settings.

A worker runs on one event loop: the stream processor (`streams.processor`), the outbox
publisher (`streams.outbox`), the rules follower (`streams.rules_feed`), the web server
(`streams.http`) and, with a roster, the routing stage (`routing.router`). SIGTERM or
SIGINT stops them; the processor leaves its consumer group on the way out, so another
worker takes its partitions over at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from aiokafka import AIOKafkaProducer

from leadscore.infra.processes import spawn
from leadscore.kafka.topics import ensure_topics, wait_for_topics
from leadscore.kafka_security import aiokafka_security, kafka_python_security
from leadscore.logs import configure_logging
from leadscore.settings import Settings
from routing.queue_api import queue_routes
from routing.roster import (
    CompiledRoster,
    RosterError,
    load_roster,
    unset_secrets,
)
from routing.router import Routing, routing_tasks
from routing.store import Store, redis_client
from scoring_rules import RulesError, RuleSet, load_rules
from streams.http import start_web
from streams.outbox import MIN_COMPACTION_LAG_MS, publish_outbox
from streams.pipeline import Pipeline
from streams.processor import run_processor
from streams.rules_feed import follow_rules
from streams.sources import all_event_types, discover_sources
from streams.topics import topics_of

log = logging.getLogger("leadscore.worker")


def prepare_topics(settings: Settings) -> None:
    """Create every topic the pipeline reads or writes, with the settings each needs."""
    topics = topics_of(settings)
    changelog = topics.changelog
    servers, security = settings.kafka_bootstrap_servers, kafka_python_security(settings)
    ensure_topics(servers, topics.raw.values(), settings.raw_topic_partitions,
                  security=security)
    ensure_topics(servers, [topics.events, topics.decisions, topics.dead_letter],
                  settings.topic_partitions, security=security)
    # One changelog partition per `events` partition; compacted, but not before the outbox
    # publisher has had a day to read each record.
    ensure_topics(servers, [], settings.topic_partitions, compacted=[changelog],
                  configs={changelog: {"min.compaction.lag.ms": str(MIN_COMPACTION_LAG_MS)}},
                  security=security)
    ensure_topics(servers, [topics.rules, topics.roster], 1,
                  compacted=[topics.rules, topics.roster], security=security)
    wait_for_topics(servers, topics.all(), security=security)


def run_worker(settings: Settings) -> int:
    """Start the worker; returns 2 without starting when the rules in `rules_path` (or the
    roster in `roster_path`) are bad, or a secret the roster's channels read is not set."""
    configure_logging(settings.log_level)
    try:
        rules = load_rules(settings.rules_path, all_event_types())
    except RulesError as error:
        print(f"leadscore worker: the rules do not pass the check:\n{error}", file=sys.stderr)
        return 2
    try:
        roster = load_roster(settings.roster_path) if settings.roster_path else None
        if roster is not None and (missing := unset_secrets(roster, os.environ)):
            raise RosterError(missing)
    except RosterError as error:
        print(f"leadscore worker: the roster does not pass the check:\n{error}",
              file=sys.stderr)
        return 2
    for warning in roster.warnings if roster else ():
        log.warning("roster warning", extra={"warning": str(warning)})
    prepare_topics(settings)
    asyncio.run(serve(settings, rules, roster))
    return 0


async def serve(settings: Settings, rules: RuleSet, roster: CompiledRoster | None = None) -> None:
    """Run the worker's tasks until a signal asks it to stop, or one of them fails (routing's
    tasks never do: they restart themselves, `routing.router.supervised`)."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    sources = discover_sources()
    # Linger 1 ms: under load, records queue up behind the request in flight and batch
    # anyway; when quiet, a longer linger is only added to every hop's latency.
    # Batches as large as the largest record: ingest produces a request as one batch.
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", linger_ms=1,
        **aiokafka_security(settings),
        max_batch_size=settings.message_max_bytes, max_request_size=settings.message_max_bytes,
    )
    await producer.start()
    pipeline = Pipeline(settings, rules, sources, topics_of(settings, sources), producer)
    routing = None
    if roster is not None:
        redis = redis_client(settings)
        store = Store(redis, settings.app_id, settings.routing_closed_lead_retention_seconds)
        routing = Routing(settings, roster, redis, store, producer, pipeline.topics,
                          warnings=pipeline.health.warnings)
    runner = await start_web(pipeline, queue_routes(routing) if routing else [])
    coroutines = [run_processor(pipeline), publish_outbox(pipeline), follow_rules(pipeline),
                  collect_garbage(),
                  *(routing_tasks(routing) if routing else [])]
    tasks = [asyncio.create_task(coroutine) for coroutine in coroutines]
    log.info("ready", extra={"web": f"http://{settings.web_host}:{settings.web_port}",
                             "rules_version": rules.version})
    try:
        stop = asyncio.create_task(stopping.wait())
        done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
        for task in done - {stop}:
            task.result()  # a task that ended on its own failed: raise its error
    finally:
        log.info("stopping")
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runner.cleanup()
        await producer.stop()
        if routing is not None:
            await routing.redis.aclose()


#: How often the worker collects young garbage cycles, and every how many of those passes
#: it collects them all.
COLLECT_SECONDS, FULL_COLLECTION_EVERY = 1.0, 600


async def collect_garbage() -> None:
    """A worker task: Python's cycle collector, run on a clock instead of on allocations.

    Every record read and every decision made allocates short-lived containers. Run by
    allocation counts, the collector kept walking the batch in flight, thousands of times a
    second: 13 % of the worker's time at 9,000 events/s (and a third of the scoring time
    before tables held bytes). Between two passes a second apart, the objects of the batches
    in between are already freed by reference counting; only cycles wait for the pass.
    What exists at start-up (modules, the rules) is moved out of the collector's sight.
    """
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        for passes in itertools.count(1):
            await asyncio.sleep(COLLECT_SECONDS)
            gc.collect(2 if passes % FULL_COLLECTION_EVERY == 0 else 1)
    finally:
        gc.enable()


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a `leadscore worker` process exactly `settings`."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("LEADSCORE_") and key not in ("KAFKA_BOOTSTRAP_SERVERS",
                                                             "REDIS_URL")}
    for name, value in settings.model_dump(exclude_none=True).items():
        secret = getattr(value, "get_secret_value", None)
        env[f"LEADSCORE_{name.upper()}"] = str(secret() if secret else value)
    return env


def spawn_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    """Start `leadscore worker` with `settings` in a child process (dev mode, tests, bench)."""
    return spawn([sys.executable, "-m", "app.cli", "worker"], log_path,
                 env=worker_env(settings))
