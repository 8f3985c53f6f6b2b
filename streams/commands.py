"""Subcommands of `leadscore` for this area; each sets `handler` to a function(args) -> exit code."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(commands: "argparse._SubParsersAction[Any]") -> None:
    """Register this area's subcommands."""
