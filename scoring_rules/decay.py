"""Decay in event time: the score's monthly decay and the decay rules or groups own.

Nothing here reads a clock. `run_due` applies, in time order, every decay due up to a
given time; the engine calls it before each event (with the event's time) and at the end
(with `now`), so the same events give the same decays live and in replay.
"""

from __future__ import annotations

from typing import Any

from leadscore.decisions import iso, score_changed
from scoring_rules.compile import RuleSet
from scoring_rules.state import ProspectState

_GLOBAL = ""


def due_at(rules: RuleSet, state: ProspectState) -> float | None:
    """Epoch seconds of the next decay that will change this prospect's score, if any."""
    due = _global_due(rules, state)
    if state.lots:
        for lots in state.lots.values():
            if lots and (due is None or lots[0][0] < due):
                due = lots[0][0]
    if state.halvings:
        for when in state.halvings.values():
            if due is None or when < due:
                due = when
    return due


def _global_due(rules: RuleSet, state: ProspectState) -> float | None:
    if rules.decay_after is None or state.last_activity is None:
        return None
    if state.behavior <= 0 or state.fit + state.behavior <= rules.min_score:
        return None  # nothing left to decay: dormant until new activity
    return state.last_activity + rules.decay_after + state.decays * rules.decay_every


def run_due(
    rules: RuleSet, state: ProspectState, until: float, decisions: list[dict[str, Any]]
) -> None:
    """Apply every decay due at or before `until`, earliest first."""
    while True:
        when, owner = _earliest(rules, state)
        if when is None or when > until:
            return
        before = state.score(rules.min_score, rules.max_score)
        if owner == _GLOBAL:
            rule_id = _decay_global(rules, state, before)
        elif state.lots and owner in state.lots and state.lots[owner][0][0] == when:
            rule_id = _expire(rules, state, owner)
        else:
            rule_id = _halve(rules, state, owner)
        after = state.score(rules.min_score, rules.max_score)
        if after != before and rule_id:
            decisions.append(
                score_changed(rules.version, state.key, rule_id, after - before, after,
                              event_id=None, at=iso(when))
            )


def _earliest(rules: RuleSet, state: ProspectState) -> tuple[float | None, str]:
    when, owner = _global_due(rules, state), _GLOBAL
    if state.lots:
        for owner_id, lots in state.lots.items():
            if lots and (when is None or lots[0][0] < when):
                when, owner = lots[0][0], owner_id
    if state.halvings:
        for owner_id, due in state.halvings.items():
            if when is None or due < when:
                when, owner = due, owner_id
    return when, owner


def _decay_global(rules: RuleSet, state: ProspectState, score: int) -> str | None:
    """Lower the behavior part by the band's points, never below zero.

    The band is chosen by the whole score, but only engagement fades: fit (who the prospect
    is, a rep's approval) stays until the facts change.
    """
    state.decays += 1
    for band in rules.decay_bands:
        if band.above is None or score > band.above:
            state.add_behavior(-min(band.subtract, state.behavior), rules.min_score,
                               rules.max_score)
            return band.id
    return None


def _expire(rules: RuleSet, state: ProspectState, owner: str) -> str:
    assert state.lots is not None and state.held is not None
    lots = state.lots[owner]
    points = int(lots.pop(0)[1])
    if not lots:
        del state.lots[owner]
    state.held[owner] = state.held.get(owner, 0) - points
    state.add_behavior(-points, rules.min_score, rules.max_score)
    return owner


def _halve(rules: RuleSet, state: ProspectState, owner: str) -> str:
    assert state.halvings is not None and state.held is not None
    held = state.held.get(owner, 0)
    half = int(held / 2)
    state.held[owner] = half
    state.add_behavior(half - held, rules.min_score, rules.max_score)
    half_life = rules.owners[owner].half_life
    if half == 0 or not half_life:
        del state.halvings[owner]
    else:
        state.halvings[owner] += half_life
    return owner
