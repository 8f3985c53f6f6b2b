"""Subcommands of `leadscore` for this area; each sets `handler` to a function(args) -> code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Register this area's subcommands."""
    send = commands.add_parser(
        "send",
        help="produce a file of raw events to a source's raw topic",
        description="Check each raw event of FILE (a JSON array, or JSON lines) with the "
        "source's payload model and produce the valid ones to the source's raw topic, keyed "
        "by prospect. Bad lines are reported and skipped. Exit status: 0 when every event "
        "was sent, 1 when any was not, 2 when nothing could be tried.",
    )
    send.add_argument("source", metavar="SOURCE", help="source name, e.g. web, email, crm")
    send.add_argument("file", metavar="FILE", type=Path, help="file of raw events")
    send.add_argument(
        "--topic", help="full topic name to produce to (default: the source's raw topic)"
    )
    send.set_defaults(handler=run_send)

    worker = commands.add_parser(
        "worker",
        help="run a stream-processing worker (configured by LEADSCORE_* settings)",
        description="Run one worker of the live pipeline: map raw events, resolve identities, "
        "score, publish decisions, serve the ingest API and /metrics. Start several with the "
        "same settings to share the partitions. See docs/configuration.md.",
    )
    worker.set_defaults(handler=run_worker_command)

    dev = commands.add_parser(
        "dev",
        help="run the whole pipeline locally on the embedded broker, with the example events",
        description="Start the embedded Kafka-compatible broker (Tansu) and Redis, a worker, "
        "send examples/events.jsonl, and print decisions as they arrive. Ctrl-C stops all.",
    )
    dev.add_argument("--events", type=Path, help="canonical events to send (JSON lines)")
    dev.set_defaults(handler=run_dev_command)


def run_worker_command(args: argparse.Namespace) -> int:
    from leadscore.settings import Settings
    from streams.worker import run_worker

    return run_worker(Settings())


def run_dev_command(args: argparse.Namespace) -> int:
    from leadscore.settings import Settings
    from streams.dev import EXAMPLES, run_dev

    return run_dev(Settings(), args.events or EXAMPLES)


def run_send(args: argparse.Namespace) -> int:
    from kafka.errors import KafkaError

    from leadscore.settings import Settings
    from streams.send import send_file
    from streams.sources import SourceError, discover_sources

    settings = Settings()
    try:
        sources = discover_sources()
    except SourceError as error:
        print(f"leadscore send: {error}", file=sys.stderr)
        return 2
    source = sources.get(args.source)
    if source is None:
        known = ", ".join(sorted(sources)) or "none"
        print(f"leadscore send: no source named {args.source!r}; installed: {known}",
              file=sys.stderr)
        return 2
    if not args.file.is_file():
        print(f"leadscore send: {args.file}: no such file", file=sys.stderr)
        return 2
    topic = args.topic or settings.topic(source.topic)
    try:
        report = send_file(source, args.file, topic, settings.kafka_bootstrap_servers)
    except (KafkaError, UnicodeDecodeError) as error:
        print(f"leadscore send: {args.file}: {error}", file=sys.stderr)
        return 2
    for where, reason in report.rejected:
        print(f"{args.file}: {where}: {reason}", file=sys.stderr)
    total = report.sent + len(report.rejected)
    print(f"sent {report.sent} of {total} events to {topic}")
    return 1 if report.rejected else 0
