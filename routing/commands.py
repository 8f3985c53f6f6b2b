"""`leadscore roster ...` and `leadscore queue ...`: thin adapters over the roster checker,
the roster topic and a worker's queue API."""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

import orjson

from leadscore.decisions import FAST_TRACK
from routing.lead_states import ASSIGNED, QUEUES

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
    listing = actions.add_parser(
        "list", help="a rep's fast-track inbox and 24-hour queue, as a table",
        description="A page of the rep's leads, the fast-track inbox first; times in the "
        "rep's time zone.")
    listing.add_argument("rep")
    listing.add_argument("--json", action="store_true",
                         help="print the queue API's answer, for programs")
    listing.add_argument("--limit", type=int, help="leads a page (default 50, at most 500)")
    listing.add_argument("--cursor", help="the page after this one (a listing's `next`)")
    listing.set_defaults(handler=run_queue, action="list")
    for action, helped, who in (
            ("ack", "acknowledge a lead (stops the fast-track ladder)", "--rep"),
            ("claim", "take a lead of one's team, acknowledged", "--rep"),
            ("complete", "mark a lead worked", "--rep"),
            ("reassign", "give a lead to another rep of its team", "--to")):
        parser = actions.add_parser(action, help=helped)
        parser.add_argument("lead", help="the lead's id (`lead` of its lead.routed)")
        parser.add_argument(who, required=action != "complete", help="a rep id")
        if action == "reassign":
            parser.add_argument("--by", help="the rep id of who reassigns it (in the "
                                "decision's reason)")
            parser.add_argument("--force", action="store_true",
                                help="even to a rep who cannot take it (another team's, out "
                                "of office today, not an MRR)")
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

    from leadscore.kafka.topics import deployment_topics
    from leadscore.kafka_security import kafka_python_security
    from leadscore.settings import Settings
    from routing.roster import ROSTER_KEY, RosterError, load_roster, published

    settings, path = Settings(), _path(args)
    if path is None:
        return 2
    try:
        roster = load_roster(path, settings.message_max_bytes)
    except RosterError as error:
        print(error, file=sys.stderr)
        print("not published: the running roster stays in force", file=sys.stderr)
        return 2
    topic = deployment_topics(settings, {}).roster
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
    # Every id is quoted whole: an id with `/` or `?` must not reach another route.
    if args.action == "list":
        query = urlencode({name: value for name, value in (("limit", args.limit),
                                                            ("cursor", args.cursor))
                           if value is not None})
        url = f"{base}/v1/reps/{quote(args.rep, safe='')}/queue" + (f"?{query}" if query else "")
        body = None
    else:
        url = f"{base}/v1/leads/{quote(args.lead, safe='')}/{args.action}"
        fields = ({"rep": args.rep} if args.action != "reassign" else
                  {"to": args.to, "by": args.by, "force": args.force})
        body = orjson.dumps({name: value for name, value in fields.items() if value})
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
    if args.action == "list" and not args.json:
        print(queue_table(answer, datetime.now(UTC)), end="")
    else:
        print(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
    return 0


def queue_table(page: dict[str, Any], now: datetime) -> str:
    """A queue listing as a person reads it: one table a queue, the due time in the rep's
    time zone and the time left to the SLA's deadline (a fast-track lead's acknowledgement,
    a standard lead's work), and how to see the next page."""
    zone = ZoneInfo(page["time_zone"])
    lines = []
    for name, title in zip(QUEUES, ("Fast-track inbox", "24-hour queue"), strict=True):
        cards, total = page[name], page["total"][name]
        lines.append(f"{title} of {page['rep']}: {total} lead{'' if total == 1 else 's'}"
                     + (f", {len(cards)} shown" if cards and len(cards) < total else ""))
        rows = [("lead", "prospect", "name", "company", "score", "state", "due", "SLA left")]
        for card in cards:
            profile = card.get("profile") or {}
            fast = card["track"] == FAST_TRACK
            due = datetime.fromisoformat(card["deadline"] if fast else card["due"])
            left = ("met" if fast and card["state"] != ASSIGNED
                    else _left(due.timestamp() - now.timestamp()))
            rows.append((card["lead"], card["prospect"], profile.get("name") or "-",
                         profile.get("company") or "-", str(card.get("score", "-")),
                         card["state"], f"{due.astimezone(zone):%Y-%m-%d %H:%M %Z}", left))
        if len(rows) > 1:
            lines += _columns(rows)
        lines.append("")
    if page["next"]:
        lines.append(f"more: leadscore queue list {page['rep']} --cursor {page['next']}")
    return "\n".join(lines).rstrip("\n") + "\n"


def _columns(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as indented columns, two spaces apart; the score to the right."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    score = rows[0].index("score")
    return ["  " + "  ".join(cell.rjust(width) if column == score else cell.ljust(width)
                             for column, (cell, width) in enumerate(zip(row, widths,
                                                                        strict=True))).rstrip()
            for row in rows]


def _left(seconds: float) -> str:
    """A time to a deadline, to the minute (to the second in its last hour)."""
    whole = int(abs(seconds))
    days, hours, minutes = whole // 86_400, whole % 86_400 // 3600, whole % 3600 // 60
    span = (f"{days}d {hours:02d}h" if days else f"{hours}h {minutes:02d}m" if hours
            else f"{minutes}m {whole % 60:02d}s")
    return span if seconds >= 0 else f"overdue {span}"


def _path(args: argparse.Namespace) -> Path | None:
    from leadscore.settings import Settings

    path: Path | None = args.path or Settings().roster_path
    if path is None:
        print("leadscore roster: give a roster file, or set LEADSCORE_ROSTER_PATH",
              file=sys.stderr)
    return path
