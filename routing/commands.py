"""`leadscore roster ...` and `leadscore queue ...`: thin adapters over the roster checker,
the roster topic and a worker's queue API."""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from leadscore.yaml_files import FileError


def add_commands(commands: argparse._SubParsersAction[Any]) -> None:
    """Register this area's subcommands."""
    roster = commands.add_parser("roster", help="check or publish the sales roster")
    roster_commands = roster.add_subparsers(dest="roster_command", metavar="COMMAND",
                                            required=True)
    check = roster_commands.add_parser(
        "check", help="check a roster; print every error as file:line:col: message")
    check.add_argument("path", nargs="?", type=Path,
                       help="the roster file (default: the roster_path setting)")
    check.set_defaults(handler=run_check)
    publish = roster_commands.add_parser(
        "publish", help="check a roster and put it in force on every running worker",
        description="Check the roster at PATH; if it passes, publish it to the compacted "
        "roster topic, where every worker picks it up without a restart. A roster that "
        "fails the check is not published (exit 2).")
    publish.add_argument("path", nargs="?", type=Path,
                         help="the roster file (default: the roster_path setting)")
    publish.set_defaults(handler=run_publish)

    queue = commands.add_parser(
        "queue", help="a rep's leads: list, acknowledge, claim, complete, reassign",
        description="Talks to a worker's queue API (LEADSCORE_API_SECRET; --url, default "
        "the web_host and web_port settings).")
    queue.add_argument("--url", help="the worker, e.g. http://127.0.0.1:6066")
    actions = queue.add_subparsers(dest="queue_command", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="a rep's fast-track inbox and 24-hour queue")
    listing.add_argument("rep")
    listing.set_defaults(handler=run_queue, action="list")
    for action, helped, who in (
            ("ack", "acknowledge a lead (stops the fast-track ladder)", "--rep"),
            ("claim", "take a lead of one's team, acknowledged", "--rep"),
            ("complete", "mark a lead worked", "--rep"),
            ("reassign", "give a lead to another rep", "--to")):
        parser = actions.add_parser(action, help=helped)
        parser.add_argument("lead", help="the lead's id (`lead` of its lead.routed)")
        parser.add_argument(who, required=action != "complete", help="a rep id")
        parser.set_defaults(handler=run_queue, action=action)


def run_check(args: argparse.Namespace) -> int:
    from leadscore.settings import Settings
    from routing.roster import RosterError, load_roster, secrets_needed, unset_secrets

    path = _path(args)
    if path is None:
        return 2
    try:
        roster = load_roster(path, Settings().message_max_bytes)
    except RosterError as error:
        print(error)
        print(f"{len(error.errors)} error(s)", file=sys.stderr)
        return 2
    reps = sum(rep.role == "MRR" for rep in roster.reps.values())
    print(f"{path}: ok ({len(roster.teams)} teams, {reps} MRRs, "
          f"{len(roster.roster.channels)} channels; version {roster.version})")
    needed = secrets_needed(roster)
    if needed:
        print("its channels read secrets from: " + ", ".join(
            f"{variable} ({', '.join(channels)})" for variable, channels in needed.items()))
    for warning in roster.warnings:
        _warn(warning)
    for missing in unset_secrets(roster, os.environ):
        _warn(missing, "a worker where it is not set refuses this roster")
    return 0


def _warn(warning: FileError, then: str = "") -> None:
    print(f"{warning.file}:{warning.line}:{warning.col}: warning: {warning.message}"
          + (f"; {then}" if then else ""), file=sys.stderr)


def run_publish(args: argparse.Namespace) -> int:
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    from leadscore.kafka_security import kafka_python_security
    from leadscore.settings import Settings
    from routing.roster import ROSTER_KEY, RosterError, load_roster, published
    from streams.topics import topics_of

    settings, path = Settings(), _path(args)
    if path is None:
        return 2
    try:
        roster = load_roster(path, settings.message_max_bytes)
    except RosterError as error:
        print(error, file=sys.stderr)
        print("not published: the running roster stays in force", file=sys.stderr)
        return 2
    topic = topics_of(settings).roster
    try:
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers.split(","),
                                 **kafka_python_security(settings))
        try:
            value = published(str(path), path.read_text())
            producer.send(topic, key=ROSTER_KEY, value=value).get(30)
        finally:
            producer.close()
    except KafkaError as error:
        print(f"leadscore roster publish: {error}", file=sys.stderr)
        return 1
    print(f"published roster {roster.version} to {topic}")
    return 0


def run_queue(args: argparse.Namespace) -> int:
    from leadscore.settings import Settings

    settings = Settings()
    base = args.url or f"http://{settings.web_host}:{settings.web_port}"
    if args.action == "list":
        url, body = f"{base}/v1/reps/{args.rep}/queue", None
    else:
        url = f"{base}/v1/leads/{args.lead}/{args.action}"
        who = {"rep": args.rep} if args.action != "reassign" else {"to": args.to}
        body = orjson.dumps({k: v for k, v in who.items() if v})
    secret = settings.api_secret.get_secret_value() if settings.api_secret else ""
    request = urllib.request.Request(url, data=body, method="POST" if body else "GET",
                                     headers={"Authorization": f"Bearer {secret}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        print(f"leadscore queue: {error.code}: {error.read().decode(errors='replace')}",
              file=sys.stderr)
        return 1
    except OSError as error:
        print(f"leadscore queue: {base} does not answer: {error}", file=sys.stderr)
        return 1
    print(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
    return 0


def _path(args: argparse.Namespace) -> Path | None:
    from leadscore.settings import Settings

    path: Path | None = args.path or Settings().roster_path
    if path is None:
        print("leadscore roster: give a roster file, or set LEADSCORE_ROSTER_PATH",
              file=sys.stderr)
    return path
