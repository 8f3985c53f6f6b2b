"""The `leadscore` command. Each area adds its own subcommands; this file only wires them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from leadscore import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leadscore",
        description="Real-time lead scoring and routing for B2B sales teams.",
    )
    parser.add_argument("--version", action="version", version=f"leadscore {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Each area registers its subcommands; imports stay local so `--help` stays fast.
    from scoring_rules.commands import add_commands as add_rules_commands
    from streams.commands import add_commands as add_stream_commands

    add_rules_commands(commands)
    add_stream_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 0
    result: int = args.handler(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
