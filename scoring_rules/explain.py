"""`leadscore explain`: why a prospect has the score it has, as a table a person can read."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from leadscore.decisions import (
    ANON_PREFIX,
    MERGE_RULE,
    PROSPECT_PROMOTED,
    SCORE_CHANGED,
    Decision,
    routing_summary,
)
from scoring_rules.compile import RuleSet
from scoring_rules.replay import ReplayEnd, replay_lines
from scoring_rules.state import ProspectState


@dataclass
class Explanation:
    key: str
    rows: list[Decision]
    state: ProspectState | None
    anonymous_ids: list[str]


def explain(
    rules: RuleSet, lines: Iterable[bytes], prospect: str, now: datetime | None = None,
    then: Callable[[Iterable[Any]], Iterable[Any]] | None = None,
) -> Explanation:
    """The decisions about `prospect` (an email, or `anon:<id>`), including those made while
    they were still an anonymous visitor, in the order the engine made them. `then` adds
    the decisions a later stage makes of the replay's (routing's, with a roster)."""
    key = prospect if prospect.startswith(ANON_PREFIX) else prospect.strip().lower()
    by_key: dict[str, list[Decision]] = {}
    end: ReplayEnd | None = None
    items: Iterable[Any] = replay_lines(rules, lines, now)
    for item in then(items) if then else items:
        if isinstance(item, ReplayEnd):
            end = item
        elif "prospect" in item:
            by_key.setdefault(item["prospect"], []).append(item)
    assert end is not None
    anonymous = [a for a, into in end.aliases.items() if into == key]
    rows = [row for a in anonymous for row in by_key.get(ANON_PREFIX + a, [])]
    rows.extend(by_key.get(key, []))
    rows.sort(key=lambda row: row["at"])  # stable: same-time rows keep the engine's order
    return Explanation(key, rows, end.states.get(key), anonymous)


def render(explanation: Explanation, rules: RuleSet, note: str | None = None) -> str:
    """The prospect's score history as a table, and `note` (if any) under it, at its
    width."""
    state = explanation.state
    if state is None:
        return f"{explanation.key}: no events for this prospect.\n"
    score = state.score(rules.min_score, rules.max_score)
    track = f" ({state.track.replace('_', ' ')})" if state.track else ""
    lines = [
        f"{explanation.key}: score {score} (fit {state.fit}, behavior {state.behavior}), "
        f"{state.stage}{track}; rules {rules.version}",
    ]
    if explanation.anonymous_ids:
        lines.append("includes activity as anonymous visitor " +
                     ", ".join(explanation.anonymous_ids))
    table: list[tuple[str, ...]] = [("at", "event", "rule", "delta", "score")]
    for row in explanation.rows:
        if row["type"] == PROSPECT_PROMOTED:
            table.append((row["at"], "", f"=> promoted to lead, {row['track']}", "",
                          str(row["score"])))
            continue
        if row["type"] != SCORE_CHANGED:
            table.append((row["at"], "=> " + routing_summary(row)))
            continue
        rule = row["rule"]
        if row["prospect"] != explanation.key:
            rule += " (anonymous)"
        event = row["event_id"] or ("(decay)" if rule != MERGE_RULE else "")
        table.append((row["at"], event, rule, f"{row['delta']:+d}", str(row["score"])))
    lines.extend(_columns(table))
    if note:  # under the table, at its width
        lines += ["", *textwrap.wrap(note, _width(table))]
    return "\n".join(lines) + "\n"


def _widths(table: list[tuple[str, ...]]) -> list[int]:
    """Each score column's width."""
    cells = [row for row in table if len(row) == 5]
    return [max(len(r[i]) for r in cells) for i in range(5)]


def _width(table: list[tuple[str, ...]]) -> int:
    """The score table's width: its columns and the two spaces between each."""
    return sum(_widths(table)) + 2 * 4


def _columns(table: list[tuple[str, ...]]) -> list[str]:
    """The score rows as columns; a routing row, (time, text), wrapped under the table at
    its width (its own lines indented past the `=> `), so that long explanations of where a
    lead went do not widen the score columns."""
    widths = _widths(table)
    width = _width(table)
    lines = []
    for r in table:
        if len(r) == 2:
            at = r[0].ljust(widths[0]) + "  "
            lines += textwrap.wrap(r[1], width, initial_indent=at,
                                   subsequent_indent=" " * (len(at) + 3),
                                   break_on_hyphens=False)
            continue
        lines.append("  ".join((r[0].ljust(widths[0]), r[1].ljust(widths[1]),
                                r[2].ljust(widths[2]), r[3].rjust(widths[3]),
                                r[4].rjust(widths[4]))).rstrip())
    return lines
