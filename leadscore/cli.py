"""The `leadscore` command. Each area adds its own subcommands; this file only wires them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from leadscore import __version__
from leadscore.events import describe_error


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leadscore",
        description="Real-time lead scoring and routing for B2B sales teams.",
    )
    parser.add_argument("--version", action="version", version=f"leadscore {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Each area registers its subcommands; imports stay local so `--help` stays fast.
    from routing.commands import add_commands as add_routing_commands
    from scoring_rules.commands import add_commands as add_rules_commands
    from streams.commands import add_commands as add_stream_commands

    rules_commands = add_rules_commands(commands)
    add_stream_commands(commands, rules_commands)
    add_routing_commands(commands)
    return parser


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
