"""`leadscore rules check`, `leadscore replay` and `leadscore explain`.

Thin adapters: they read files, call the pure core, and print. Exit codes: 0 done,
2 bad rules (or bad arguments).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from leadscore.arguments import InputFileError, aware_time, check_output_file, check_text_file
from leadscore.decisions import PROSPECT_PROMOTED, SCORE_CHANGED
from scoring_rules import compare, explain
from scoring_rules.compile import RuleSet, load_rules
from scoring_rules.errors import RulesError
from scoring_rules.replay import replay_lines, write_decisions

#: A later stage run on a replay's decisions, given a file (routing, with `--roster FILE`):
#: what adds its decisions and the note its output carries, or why the file is refused.
Stage = Callable[[Iterable[Any]], Iterable[Any]]
Preview = Callable[[Path], "tuple[Stage, str] | str"]


@dataclass(frozen=True)
class Wiring:
    """What these commands take from other areas, given by the composition root: the event
    types installed sources add to the catalog, and routing's preview."""

    event_types: Callable[[], dict[str, str]]
    preview: Preview


def add_commands(
    commands: argparse._SubParsersAction[Any], wiring: Wiring,
) -> argparse._SubParsersAction[Any]:
    """Register this area's subcommands; returns the `rules` subcommands, to which the
    streams area adds `publish`."""
    rules = commands.add_parser("rules", help="work with scoring rule files")
    rules_commands: argparse._SubParsersAction[Any] = rules.add_subparsers(
        dest="rules_command", metavar="COMMAND", required=True)
    check = rules_commands.add_parser(
        "check", help="check rule files; print every error as file:line:col: message")
    check.add_argument("path", nargs="?", type=Path,
                       help="a rule file or folder (default: the rules_path setting)")
    check.set_defaults(handler=partial(run_check, wiring))

    replay = commands.add_parser(
        "replay", help="run past events through the rules; print decisions as JSON lines")
    replay.add_argument("events", type=Path, help="canonical events, one JSON object a line")
    _rules_option(replay)
    _now_option(replay)
    _roster_option(replay)
    replay.add_argument("--state", type=Path, metavar="OUT.json",
                        help="write each prospect's final score, stage and track here")
    replay.add_argument("--compare", type=Path, metavar="OTHER_RULES",
                        help="instead of decisions, report what the other rule set would "
                             "change: promotions, fast tracks, hits per rule, stages")
    replay.set_defaults(handler=partial(run_replay, wiring))

    explain_cmd = commands.add_parser(
        "explain", help="show why a prospect has its score: rule hits in order")
    explain_cmd.add_argument("events", type=Path, help="canonical events, one JSON object a line")
    explain_cmd.add_argument("--prospect", required=True, metavar="EMAIL",
                             help="the prospect's email (or anon:<anonymous_id>)")
    _rules_option(explain_cmd)
    _now_option(explain_cmd)
    _roster_option(explain_cmd)
    explain_cmd.set_defaults(handler=partial(run_explain, wiring))
    return rules_commands


def _rules_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rules", type=Path, metavar="PATH",
                        help="rule file or folder (default: the rules_path setting)")


def _roster_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--roster", type=Path, metavar="FILE",
                        help="also route each promotion with this roster, as live would, "
                             "the SLA ladder playing out on the event clock")


def _later_stage(wiring: Wiring, roster: Path | None) -> tuple[Stage, str] | str | None:
    """Routing's preview with the roster at `roster` (None without one); the error text if
    the roster is refused."""
    return None if roster is None else wiring.preview(roster)


def _now_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--now", type=aware_time, metavar="ISO8601",
                        help="apply decays up to this time (default: the latest event time)")


def _default_rules() -> Path:
    from leadscore.settings import Settings

    return Settings().rules_path


def _load(wiring: Wiring, path: Path | None) -> RuleSet | None:
    try:
        return load_rules(path or _default_rules(), wiring.event_types())
    except RulesError as error:
        print(error, file=sys.stderr)
        return None


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from handle


def _usable(events: Path, state: Path | None = None) -> bool:
    """Whether the files named are fit to read (and write); if not, say why in one line."""
    try:
        check_text_file(events)
        if state is not None:
            check_output_file(state)
    except InputFileError as error:
        print(f"leadscore: {error}", file=sys.stderr)
        return False
    return True


def run_check(wiring: Wiring, args: argparse.Namespace) -> int:
    try:
        rules = load_rules(args.path or _default_rules(), wiring.event_types())
    except RulesError as error:
        print(error)
        files = {e.file for e in error.errors}
        print(f"{len(error.errors)} error(s) in {len(files)} file(s)", file=sys.stderr)
        return 2
    for name, summary in rules.summaries.items():
        print(f"{name}: ok ({summary})")
    return 0


def run_replay(wiring: Wiring, args: argparse.Namespace) -> int:
    if not _usable(args.events, args.state):
        return 2
    rules = _load(wiring, args.rules)
    if rules is None:
        return 2
    if args.compare is not None:
        other = _load(wiring, args.compare)
        if other is None:
            return 2
        base_outcome, other_outcome = compare.compare(rules, other, lambda: _lines(args.events))
        sys.stdout.write(compare.render(base_outcome, other_outcome))
        return 0
    later = _later_stage(wiring, args.roster)
    if isinstance(later, str):
        print(later, file=sys.stderr)
        return 2
    started = time.perf_counter()
    items: Iterable[Any] = replay_lines(rules, _lines(args.events), args.now)
    if later is not None:
        items = later[0](items)
    end, kinds = write_decisions(items, sys.stdout.buffer)
    sys.stdout.buffer.flush()
    if later is not None:
        print(textwrap.fill(later[1], 88), file=sys.stderr)
    if args.state is not None:
        prospects = {key: state.summary(rules.min_score, rules.max_score)
                     for key, state in end.states.items()}
        args.state.write_bytes(orjson.dumps({"prospects": prospects}, option=orjson.OPT_INDENT_2))
    elapsed = time.perf_counter() - started
    print(f"replayed {end.events} events ({end.rejected} rejected) for {len(end.states)} "
          f"prospects up to {end.now.isoformat() if end.now else '-'} with rules {rules.version}:"
          f" {kinds[SCORE_CHANGED]} score changes, {kinds[PROSPECT_PROMOTED]} promotions "
          f"in {elapsed:.2f}s", file=sys.stderr)
    return 0


def run_explain(wiring: Wiring, args: argparse.Namespace) -> int:
    if not _usable(args.events):
        return 2
    rules = _load(wiring, args.rules)
    if rules is None:
        return 2
    later = _later_stage(wiring, args.roster)
    if isinstance(later, str):
        print(later, file=sys.stderr)
        return 2
    found = explain.explain(rules, _lines(args.events), args.prospect, args.now,
                            later[0] if later else None)
    sys.stdout.write(explain.render(found, rules, later[1] if later else None))
    return 0 if found.state is not None else 1
