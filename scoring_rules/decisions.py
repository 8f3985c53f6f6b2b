"""The decisions the engine emits, as the JSON-ready dicts replay prints and live publishes.

Each carries the rule set's version, so a decision can always be traced to the rules
that made it.
"""

from __future__ import annotations

from typing import Any

from scoring_rules.compile import RuleSet

Decision = dict[str, Any]


def score_changed(
    rules: RuleSet, prospect: str, rule: str, delta: int, score: int, *, event_id: str | None,
    at: str,
) -> Decision:
    return {
        "type": "score.changed", "prospect": prospect, "rule": rule, "delta": delta,
        "score": score, "event_id": event_id, "at": at, "rules_version": rules.version,
    }


def promoted(rules: RuleSet, prospect: str, score: int, track: str, at: str) -> Decision:
    return {
        "type": "prospect.promoted", "prospect": prospect, "score": score, "track": track,
        "at": at, "rules_version": rules.version,
    }


def rejected(rules: RuleSet, line: int, error: str) -> Decision:
    return {"type": "event.rejected", "line": line, "error": error,
            "rules_version": rules.version}
