"""The `leadscore` command. Each area adds its own subcommands; this file wires them, and
adds the commands that run the areas together: `worker` and `dev`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from leadscore import __version__
from leadscore.events import describe_error

if TYPE_CHECKING:
    from scoring_rules.commands import Stage


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leadscore",
        description="Real-time lead scoring and routing for B2B sales teams.",
    )
    parser.add_argument("--version", action="version", version=f"leadscore {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Each area registers its subcommands; imports stay local so `--help` stays fast.
    from routing.commands import add_commands as add_routing_commands
    from scoring_rules.commands import Wiring
    from scoring_rules.commands import add_commands as add_rules_commands
    from streams.commands import add_commands as add_stream_commands

    rules_commands = add_rules_commands(commands, Wiring(_event_types, _routing_preview))
    add_stream_commands(commands, rules_commands)
    add_routing_commands(commands)
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
    return parser


def _event_types() -> dict[str, str]:
    """Event types the rules may use: the catalog plus those of installed source plugins."""
    from streams.sources import all_event_types

    return all_event_types()


def _routing_preview(path: Path) -> tuple[Stage, str] | str:
    """Routing's preview for the rules' `replay` and `explain` (`routing.offline.preview`)."""
    from routing.offline import preview

    return preview(path)


def run_worker_command(args: argparse.Namespace) -> int:
    from app.worker import run_worker
    from leadscore.settings import Settings

    return run_worker(Settings())


def run_dev_command(args: argparse.Namespace) -> int:
    from app.dev import EXAMPLES, run_dev
    from leadscore.settings import Settings

    return run_dev(Settings(), args.events or EXAMPLES)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    try:
        result: int = args.handler(args)
    except ValidationError as error:
        if error.title != "Settings":
            raise
        print(f"leadscore: the settings are wrong: {describe_error(error)} (see "
              "docs/configuration.md)", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    sys.exit(main())
