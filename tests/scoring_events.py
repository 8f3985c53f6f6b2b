"""Building canonical events and running them through the engine, for the scoring tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from leadscore.events import Event
from scoring_rules import ProspectState, RuleSet, apply, load_rule_texts, load_rules

DEFAULT_RULES = Path(__file__).resolve().parent.parent / "scoring_rules" / "default"
START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_counter = iter(range(10**9))


def default_rules() -> RuleSet:
    return load_rules(DEFAULT_RULES)


def rules_from(text: str, **more: str) -> RuleSet:
    """A rule set from YAML texts: `text` as rules.yaml, `more` as <name>.yaml."""
    return load_rule_texts({"rules.yaml": text, **{f"{k}.yaml": v for k, v in more.items()}})


def event(
    kind: str,
    at: datetime | timedelta = START,
    email: str | None = "ana@acme.example",
    anonymous_id: str | None = None,
    event_id: str | None = None,
    **properties: Any,
) -> Event:
    """An event of type `kind`; `at` may be an offset from START."""
    when = START + at if isinstance(at, timedelta) else at
    return Event.model_validate({
        "id": event_id or f"e{next(_counter)}", "type": kind, "occurred_at": when,
        "prospect": {"email": email, "anonymous_id": anonymous_id}, "properties": properties,
    })


def run(
    rules: RuleSet, events: list[Event], now: datetime | None = None,
    state: ProspectState | None = None,
) -> tuple[ProspectState, list[dict[str, Any]]]:
    """One prospect's events in order; decays run up to `now` after the last one."""
    decisions: list[dict[str, Any]] = []
    assert events
    for index, item in enumerate(events):
        until = now if now is not None and index == len(events) - 1 else item.occurred_at
        state, made = apply(rules, state, item, until)
        decisions.extend(made)
    assert state is not None
    return state, decisions


def hits(decisions: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(rule, delta) of each score change, in order."""
    return [(d["rule"], d["delta"]) for d in decisions if d["type"] == "score.changed"]


def page(path: str, visit: str = "v1", at: datetime | timedelta = START, **more: Any) -> Event:
    return event("web.page_view", at, url=f"https://northwind.example{path}", visit_id=visit,
                 **more)
