"""Subcommands of `leadscore` for this area; each sets `handler` to a function(args) -> code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from leadscore.arguments import aware_time


def add_commands(
    commands: argparse._SubParsersAction[Any], rules_commands: argparse._SubParsersAction[Any],
) -> None:
    """Register this area's subcommands, and `rules publish` among the `rules` ones."""
    publish = rules_commands.add_parser(
        "publish", help="check a rule set and put it in force on every running worker",
        description="Check the rules at PATH; if they pass, publish them to the compacted "
        "rules topic, where every worker picks them up without a restart. A rule set that "
        "fails the check is not published (exit 2).")
    publish.add_argument("path", nargs="?", type=Path,
                         help="a rule file or folder (default: the rules_path setting)")
    publish.set_defaults(handler=run_publish)

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

    letters = commands.add_parser(
        "dead-letters",
        help="list what the stages set aside, or send it back once the cause is fixed",
        description="Every record a stage could not process is kept on the dead-letter topic "
        "with its stage, reason and position. `list` counts them by source, stage and reason "
        "(--full prints each letter); `redrive` produces the chosen letters' original records "
        "back to the topics they came from.",
    )
    actions = letters.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, helped in (("list", "count the letters by source, stage and reason"),
                           ("redrive", "send the chosen letters back to their topics")):
        chosen = actions.add_parser(action, help=helped)
        chosen.add_argument("--source", help="only letters of this source (web, email, ...)")
        chosen.add_argument("--stage", help="only letters of this stage (parse, map, score, ...)")
        chosen.add_argument("--reason", metavar="TEXT", help="only letters whose reason has TEXT")
        chosen.add_argument("--since", metavar="ISO8601", type=aware_time,
                            help="only letters set aside at or after this time")
        if action == "list":
            chosen.add_argument("--full", action="store_true",
                                help="print each letter as a JSON line, its record included")
        else:
            chosen.add_argument("--dry-run", action="store_true",
                                help="say what would be sent, send nothing")
        chosen.set_defaults(handler=run_dead_letters)


def run_publish(args: argparse.Namespace) -> int:
    from kafka.errors import KafkaError

    from leadscore.settings import Settings
    from scoring_rules import RulesError
    from streams.rules_feed import publish_rules
    from streams.topics import topics_of

    settings = Settings()
    try:
        version = publish_rules(settings, args.path or settings.rules_path)
    except RulesError as error:
        print(error, file=sys.stderr)
        print("not published: the running rules stay in force", file=sys.stderr)
        return 2
    except KafkaError as error:
        print(f"leadscore rules publish: {error}", file=sys.stderr)
        return 1
    print(f"published rules {version} to {topics_of(settings).rules}")
    return 0


def run_send(args: argparse.Namespace) -> int:
    from kafka.errors import KafkaError

    from leadscore.arguments import InputFileError, check_text_file
    from leadscore.kafka_security import kafka_python_security
    from leadscore.settings import Settings
    from streams.send import send_file
    from streams.sources import SourceError, discover_sources
    from streams.topics import topics_of

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
    try:
        check_text_file(args.file)
    except InputFileError as error:
        print(f"leadscore send: {error}", file=sys.stderr)
        return 2
    topic = args.topic or topics_of(settings, sources).raw[source.name]
    try:
        report = send_file(source, args.file, topic, settings.kafka_bootstrap_servers,
                           settings.message_max_bytes, kafka_python_security(settings))
    except (KafkaError, UnicodeDecodeError) as error:
        print(f"leadscore send: {args.file}: {error}", file=sys.stderr)
        return 2
    for where, reason in report.rejected:
        print(f"{args.file}: {where}: {reason}", file=sys.stderr)
    total = report.sent + len(report.rejected)
    print(f"sent {report.sent} of {total} events to {topic}")
    return 1 if report.rejected else 0


def run_dead_letters(args: argparse.Namespace) -> int:
    import orjson
    from kafka.errors import KafkaError

    from leadscore.kafka_security import kafka_python_security
    from leadscore.settings import Settings
    from streams.redrive import Selection, read_letters, redrive, summarise
    from streams.topics import topics_of

    settings = Settings()
    topic = topics_of(settings).dead_letter
    chosen = Selection(args.source, args.stage, args.reason, args.since)
    try:
        letters = [d for d in read_letters(settings.kafka_bootstrap_servers, topic,
                                           kafka_python_security(settings)) if chosen(d)]
        if args.action == "list":
            if args.full:
                for dead in letters:
                    print(orjson.dumps(dead).decode())
            else:
                for source, stage, reason, count in summarise(letters):
                    print(f"{count:>7}  {source:<10} {stage:<7} {reason}")
            print(f"{len(letters)} letter(s) on {topic}", file=sys.stderr)
            return 0
        if args.dry_run:
            print(f"would send back {len(letters)} letter(s)")
            return 0
        outcome = redrive(settings.kafka_bootstrap_servers, letters, settings.message_max_bytes,
                          kafka_python_security(settings))
    except KafkaError as error:
        print(f"leadscore dead-letters: {error}", file=sys.stderr)
        return 1
    for where, why in outcome.skipped:
        print(f"not sent: {where}: {why}", file=sys.stderr)
    print(f"sent back {outcome.sent} of {len(letters)} letter(s)")
    return 1 if outcome.skipped else 0
