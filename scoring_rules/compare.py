"""`leadscore replay --compare`: what a rule change would change, tried on past events."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from leadscore.decisions import FAST_TRACK, PROSPECT_PROMOTED, SCORE_CHANGED
from scoring_rules.compile import RuleSet
from scoring_rules.replay import ReplayEnd, replay_lines

#: How many prospect names a list in the report shows before "... and N more".
SHOWN = 20


@dataclass
class Outcome:
    """What one rule set decided on the events."""

    rules: RuleSet
    promoted: set[str] = field(default_factory=set)
    fast_tracked: set[str] = field(default_factory=set)
    hits: Counter[str] = field(default_factory=Counter)
    stages: dict[str, str] = field(default_factory=dict)


def outcome(rules: RuleSet, lines: Iterable[bytes]) -> Outcome:
    result = Outcome(rules)
    for item in replay_lines(rules, lines):
        if isinstance(item, ReplayEnd):
            result.stages = {key: state.stage for key, state in item.states.items()}
        elif item["type"] == SCORE_CHANGED:
            result.hits[item["rule"]] += 1
        elif item["type"] == PROSPECT_PROMOTED:
            result.promoted.add(item["prospect"])
            if item["track"] == FAST_TRACK:
                result.fast_tracked.add(item["prospect"])
    return result


def compare(
    base: RuleSet, other: RuleSet, lines: Callable[[], Iterable[bytes]]
) -> tuple[Outcome, Outcome]:
    """Replay the same events (`lines()` gives them afresh) under both rule sets."""
    return outcome(base, lines()), outcome(other, lines())


def render(base: Outcome, other: Outcome) -> str:
    out = [f"Comparing rules {base.rules.version} (current) with {other.rules.version} "
           f"(proposed) on the same events", ""]
    for title, before, after in (("Promotions to lead", base.promoted, other.promoted),
                                 ("Fast tracks", base.fast_tracked, other.fast_tracked)):
        out.append(f"{title}: {len(before)} -> {len(after)}")
        out += _names("gained", after - before) + _names("lost", before - after)
    out += ["", "Hits per rule (score changes):"]
    rules = sorted(set(base.hits) | set(other.hits),
                   key=lambda r: (-(other.hits[r] - base.hits[r]) ** 2, r))
    width = max((len(r) for r in rules), default=4)
    out.append(f"  {'rule'.ljust(width)}  {'current':>8}  {'proposed':>8}  {'change':>7}")
    for rule in rules:
        change = other.hits[rule] - base.hits[rule]
        out.append(f"  {rule.ljust(width)}  {base.hits[rule]:>8}  {other.hits[rule]:>8}  "
                   f"{f'{change:+d}' if change else '':>7}")
    differ = sorted(k for k in set(base.stages) | set(other.stages)
                    if base.stages.get(k) != other.stages.get(k))
    out += ["", f"Prospects whose stage differs at the end: {len(differ)}"]
    out += [f"  {key}: {base.stages.get(key, '-')} -> {other.stages.get(key, '-')}"
            for key in differ[:SHOWN]]
    if len(differ) > SHOWN:
        out.append(f"  ... and {len(differ) - SHOWN} more")
    return "\n".join(out) + "\n"


def _names(label: str, keys: set[str]) -> list[str]:
    if not keys:
        return []
    shown = sorted(keys)[:SHOWN]
    more = f" ... and {len(keys) - SHOWN} more" if len(keys) > SHOWN else ""
    return [f"  {label} ({len(keys)}): {', '.join(shown)}{more}"]
