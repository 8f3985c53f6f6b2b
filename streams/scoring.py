"""The scoring stage, as plain functions over a table-like mapping.

Each table entry is a prospect's state *and* the outbox of its last change:
`{"state": ..., "decisions": [...], "forwards": [[key, message], ...]}`. The worker never
publishes decisions itself; `streams.outbox` publishes them from the table's changelog.
So a state change and the decisions it caused become durable in one record: after a crash,
an event whose change survived is recognised as a duplicate by the engine and its decisions
are still published from the changelog; an event whose change was lost is processed again.
No decision is lost and none is made twice.

The Faust agent and the plain-aiokafka baseline in `bench/` both call `handle`, so what they
decide is the engine's decision, not the adapter's.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from datetime import datetime
from typing import Any

from leadscore.events import Event
from scoring_rules import ProspectState, RuleSet, advance, apply, merge, next_due
from streams.due_index import DueIndex
from streams.identity import ScoringMessage

Decision = dict[str, Any]
Entry = dict[str, Any]
Table = MutableMapping[str, Entry]


def handle(
    rules: RuleSet, table: Table, index: DueIndex, key: str, message: ScoringMessage
) -> None:
    """Apply one scoring message, writing each changed entry (state plus outbox) to `table`."""
    kind = message["kind"]
    if kind == "tick":
        run_due_decays(rules, table, index, datetime.fromisoformat(message["now"]))
    elif kind == "link":
        _hand_over(table, index, key, message)
    else:
        _score(rules, table, index, key, message)


def _score(
    rules: RuleSet, table: Table, index: DueIndex, key: str, message: ScoringMessage
) -> None:
    event = Event.model_validate(message["event"])
    state = state_of(table.get(key))
    decisions: list[Decision] = []
    absorbed = message.get("absorb")
    if absorbed is not None:
        anon = ProspectState.from_dict(absorbed)
        state, merged = merge(rules, state, anon, key, event.occurred_at)
        decisions.extend(merged)
    state, applied = apply(rules, state, event, event.occurred_at)
    decisions.extend(applied)
    _store(rules, table, index, key, state, decisions)


def _hand_over(table: Table, index: DueIndex, key: str, message: ScoringMessage) -> None:
    """Send an identified visitor's anonymous state on to its prospect, with the event.

    The anonymous key keeps a tombstone-like entry (no state) whose outbox carries the
    hand-over, so the move is as durable as any other change.
    """
    entry = table.get(key)
    forward: ScoringMessage = {
        "kind": "event",
        "event": message["event"],
        "absorb": entry["state"] if entry else None,
        "absorb_key": key,
    }
    table[key] = {"state": None, "decisions": [], "forwards": [[message["into"], forward]]}
    index.schedule(key, None)


def run_due_decays(rules: RuleSet, table: Table, index: DueIndex, now: datetime) -> None:
    """Decay every prospect of this partition that is due by `now`, and only those."""
    for key in index.pop_due(now):
        state = state_of(table.get(key))
        if state is not None:
            state, decisions = advance(rules, state, now)
            _store(rules, table, index, key, state, decisions)


def rebuild_index(rules: RuleSet, table: Table, keys: list[str]) -> DueIndex:
    """Index `keys` by due time: done once per partition after a (re)assignment."""
    index = DueIndex()
    for key in keys:
        state = state_of(table.get(key))
        if state is not None:
            index.schedule(key, next_due(rules, state))
    return index


def state_of(entry: Entry | None) -> ProspectState | None:
    if entry is None or entry["state"] is None:
        return None
    return ProspectState.from_dict(entry["state"])


def outbox(entry: Entry | None) -> Iterator[tuple[str, str, Any]]:
    """What a changelog entry asks to publish: ("decision", key, d) and ("forward", key, m)."""
    if not entry:
        return
    for decision in entry["decisions"]:
        yield "decision", decision["prospect"], decision
    for target, message in entry["forwards"]:
        yield "forward", target, message


def _store(
    rules: RuleSet, table: Table, index: DueIndex, key: str, state: ProspectState,
    decisions: list[Decision],
) -> None:
    table[key] = {"state": state.to_dict(), "decisions": decisions, "forwards": []}
    index.schedule(key, next_due(rules, state))
