"""The engine core: one prospect's state and one event in, the new state and decisions out.

Pure functions of their arguments: time is always passed in, never read from a clock,
so the live stream processors and `leadscore replay` make the same decisions from the
same events. For speed the state passed in is updated in place and returned; keep
`state.to_dict()` if the old one is still needed.
"""

from __future__ import annotations

import linecache
from datetime import UTC, datetime
from typing import Any

from leadscore.decisions import (
    ANONYMOUS,
    DISQUALIFIED,
    FAST_TRACK,
    LEAD,
    MERGE_RULE,
    OPPORTUNITY,
    PROSPECT,
    STANDARD,
    Decision,
    RuleHit,
    Trigger,
    iso,
    promoted,
    reengaged,
    score_changed,
)
from leadscore.events import Event
from leadscore.occurrences import Occurrence, occurrence, prospect_key
from scoring_rules.compile import BehaviorRule, Evaluator, FitEvaluator, RuleSet
from scoring_rules.decay import due_at, run_due
from scoring_rules.evaluators import generate, has_own_evaluator
from scoring_rules.state import ProspectState

#: The profile facts a lead card shows (from `evaluators.PROFILE_EVENT` events).
PROFILE_FACTS = ("name", "title", "company", "country", "lead_source")
#: How many rules a promotion names as its top hits, and how long a text it keeps.
TOP_RULES, SHORT_TEXT = 3, 200
#: Where a rep's outcome for a lead moves it: a recycled lead can become a lead again.
OUTCOME_STAGES = {"recycled": PROSPECT, "converted": OPPORTUNITY, "disqualified": DISQUALIFIED}


def apply(
    rules: RuleSet, state: ProspectState | None, event: Event, now: datetime
) -> tuple[ProspectState, list[Decision]]:
    """Score one event of the prospect `state` belongs to (a new one when `state` is None).

    Decays due before the event are applied first, then the event, then decays due up to
    `now` (pass the event's own time to stop there).
    """
    return apply_occurrence(rules, state, occurrence(event), now.timestamp())


def apply_occurrence(
    rules: RuleSet, state: ProspectState | None, event: Occurrence, until: float
) -> tuple[ProspectState, list[Decision]]:
    """`apply` on an event read by `leadscore.occurrences` (`until` in epoch seconds)."""
    event_id, event_type, t, at, _, _, props = event
    if state is None:
        state = ProspectState.new(prospect_key(event))
    decisions = apply_event(rules, state, event_id, event_type, t, props=props, at=at)
    if state.clock is None or until > state.clock:
        _advance(rules, state, until, decisions)
    return state, decisions


def advance(
    rules: RuleSet, state: ProspectState, now: datetime
) -> tuple[ProspectState, list[Decision]]:
    """Apply the decays (and rule-owned expiries) due up to `now`, with no event."""
    decisions: list[Decision] = []
    _advance(rules, state, now.timestamp(), decisions)
    return state, decisions


def next_due(rules: RuleSet, state: ProspectState) -> datetime | None:
    """When the next decay or expiry will change this prospect's score, if ever."""
    due = due_at(rules, state)
    return None if due is None else datetime.fromtimestamp(due, UTC)


def merge(
    rules: RuleSet, known: ProspectState | None, anon: ProspectState, key: str, at: datetime
) -> tuple[ProspectState, list[Decision]]:
    """Fold an anonymous visitor's state into the prospect `key` they identified as, at `at`.

    Call it when an event first carries both the visitor's anonymous id and an email, with
    that event's time, then `apply` the event. Both states are first brought up to `at`
    (each decays on its own score), then the visitor's behavior points move over in one
    `score.changed` decision whose rule is `identity.merge`.
    """
    until = at.timestamp()
    decisions: list[Decision] = []
    _advance(rules, anon, until, decisions)
    if known is None:
        known = ProspectState.new(key)
    else:
        _advance(rules, known, until, decisions)
    low, high = rules.min_score, rules.max_score
    before = known.score(low, high)
    for rule_id, value in anon.fit_parts.items():
        if rule_id not in known.fit_parts:
            known.fit_parts[rule_id] = value
            known.fit += value
    known.add_behavior(anon.behavior, low, high)
    if anon.last_activity is not None and (
        known.last_activity is None or anon.last_activity > known.last_activity
    ):
        known.last_activity, known.decays = anon.last_activity, anon.decays
    known.clock = max(known.clock or until, anon.clock or until, until)
    for event_id in anon.seen:
        known.remember(event_id)
    _merge_windows(known, anon)
    if anon.profile:
        known.profile = {**anon.profile, **(known.profile or {})}
    for rule_id, points in (anon.hits or {}).items():
        _count_hit(known, rule_id, points)
    if anon.track == FAST_TRACK and known.stage in (ANONYMOUS, PROSPECT):
        known.track = FAST_TRACK
    after = known.score(low, high)
    if after != before:
        decisions.append(score_changed(rules.version, key, MERGE_RULE, after - before, after,
                                       event_id=None, at=iso(until)))
    _promote_if_due(rules, known, until, decisions)
    return known, decisions


def apply_event(
    rules: RuleSet,
    state: ProspectState,
    event_id: str,
    event_type: str,
    t: float,
    *,
    props: dict[str, Any],
    at: str | None = None,
) -> list[Decision]:
    """The engine's hot path, on an event's fields (`t` in epoch seconds; `at`, when the
    caller has it, is `iso(t)`, which decisions carry).

    `apply` and the replay's fast line reader both end here, so they cannot disagree. The
    steps, in order: ignore an event already applied; apply the decays due before it;
    replace the fit rules' values from its facts; add the points of each behavior rule
    that matches and passes its per-visit gate, in file order (a match restarts the
    decay clock); record a lead's outcome; promote if due. They are written out for each
    event type by `scoring_rules.evaluators`; `evaluator_source` shows them.
    """
    evaluate = rules.evaluators.get(event_type) or evaluator(rules, event_type)
    decisions: list[Decision] = []
    evaluate(state, event_id, event_type, t, props, at, decisions)
    return decisions


def evaluator(rules: RuleSet, event_type: str) -> Evaluator:
    """The generated function that scores `event_type` events, compiled on first use."""
    key = event_type if has_own_evaluator(rules, event_type) else None
    found = rules.evaluators.get(key)
    if found is None:
        source, values = generate(rules, key)
        filename = f"<rules {rules.version} {key or 'without rules'}>"
        # Registered so that tracebacks and debuggers show the generated lines.
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        namespace = {**_EVALUATOR_NAMES, "rules": rules, **values}
        exec(compile(source, filename, "exec"), namespace)
        found = rules.evaluators[key] = namespace["evaluate"]
    return found


#: Marks "the event's visit id was not looked up yet" (None means it has none).
UNREAD = object()
#: Marks a property the event does not have.
ABSENT = object()


def _apply_fit(
    rules: RuleSet,
    state: ProspectState,
    fit_rules: tuple[FitEvaluator, ...],
    event_id: str,
    at: str,
    props: dict[str, Any],
    decisions: list[Decision],
) -> None:
    """Replace the value of each fit rule whose fact the event carries."""
    low, high = rules.min_score, rules.max_score
    for fit_rule in fit_rules:
        if fit_rule.fact not in props:
            continue
        value = fit_rule.value(props[fit_rule.fact])
        old = state.fit_parts.get(fit_rule.id, 0)
        if value == old:
            continue
        before = state.score(low, high)
        state.fit += value - old
        state.fit_parts[fit_rule.id] = value
        after = state.score(low, high)
        if after != before:
            decisions.append(score_changed(rules.version, state.key, fit_rule.id, after - before,
                                           after, event_id=event_id, at=at))


def _advance(rules: RuleSet, state: ProspectState, until: float, decisions: list[Decision]
             ) -> None:
    run_due(rules, state, until, decisions)
    if state.clock is None or until > state.clock:
        state.clock = until
    _promote_if_due(rules, state, until, decisions)


def _promote_if_due(rules: RuleSet, state: ProspectState, t: float, decisions: list[Decision],
                    trigger: Trigger | None = None) -> None:
    """A prospect becomes a lead once per lead cycle: at the threshold, or as a hand-raiser.
    The promotion carries what the lead card shows, so routing needs no other lookup."""
    if state.stage != PROSPECT:
        return
    score = state.score(rules.min_score, rules.max_score)
    if state.track == FAST_TRACK or score >= rules.threshold:
        state.stage = LEAD
        state.track = state.track or STANDARD
        decisions.append(promoted(
            rules.version, state.key, score, state.track, iso(t), fit=state.fit,
            behavior=state.behavior, top_rules=_top_rules(state), trigger=trigger,
            profile=dict(state.profile or {})))


def _top_rules(state: ProspectState) -> list[RuleHit]:
    points = {rule: value for rule, value in state.fit_parts.items() if value > 0}
    for rule, value in (state.hits or {}).items():
        if value > 0:
            points[rule] = value
    ranked = sorted(points.items(), key=lambda item: (-item[1], item[0]))[:TOP_RULES]
    return [{"rule": rule, "points": value} for rule, value in ranked]


def _trigger(event_id: str, event_type: str, props: dict[str, Any]) -> Trigger:
    """The event a promotion happened on, with its scalar properties cut short."""
    shown: dict[str, Any] = {}
    for name, value in props.items():
        if isinstance(value, str):
            shown[name] = value[:SHORT_TEXT]
        elif isinstance(value, int | float | bool) or value is None:
            shown[name] = value
        if len(shown) == 10:
            break
    return {"id": event_id, "type": event_type, "properties": shown}


def _record_profile(state: ProspectState, props: dict[str, Any]) -> None:
    """Keep the latest of each profile fact an event carries."""
    for fact in PROFILE_FACTS:
        value = props.get(fact)
        if isinstance(value, str) and value:
            if state.profile is None:
                state.profile = {}
            state.profile[fact] = value[:SHORT_TEXT]


def _count_hit(state: ProspectState, rule_id: str, delta: int) -> None:
    hits = state.hits
    if hits is None:
        hits = state.hits = {}
    hits[rule_id] = hits.get(rule_id, 0) + delta


def _record_outcome(state: ProspectState, outcome: Any) -> None:
    if state.stage == LEAD and outcome in OUTCOME_STAGES:
        state.stage = OUTCOME_STAGES[outcome]
        state.track = None


def _hold(rules: RuleSet, rule: BehaviorRule, state: ProspectState, t: float) -> None:
    """Add a capped or aging rule's points, recording them against their owners."""
    if state.held is None:
        state.held = {}
    held = state.held
    points = rule.points
    for owner in rule.owners:
        if owner.cap is not None:
            room = max(owner.cap - abs(held.get(owner.id, 0)), 0)
            points = min(points, room) if points > 0 else max(points, -room)
    change = state.add_behavior(points, rules.min_score, rules.max_score)
    if not change:
        return
    for owner in rule.owners:
        held[owner.id] = held.get(owner.id, 0) + change
        if owner.expires_after:
            if state.lots is None:
                state.lots = {}
            state.lots.setdefault(owner.id, []).append([t + owner.expires_after, change])
        elif owner.half_life:
            if state.halvings is None:
                state.halvings = {}
            state.halvings.setdefault(owner.id, t + owner.half_life)


def _merge_window(mine: Any, theirs: list[Any]) -> None:
    """Fold a visits-within gate into another: latest firing, latest time of each visit."""
    if theirs[0] is not None and (mine[0] is None or theirs[0] > mine[0]):
        mine[0] = theirs[0]
    for at in range(1, len(theirs), 2):
        visit, seen_at = theirs[at], theirs[at + 1]
        for own in range(1, len(mine), 2):
            if mine[own] == visit:
                mine[own + 1] = max(seen_at, mine[own + 1])
                break
        else:
            mine += (visit, seen_at)


def _merge_windows(known: ProspectState, anon: ProspectState) -> None:
    """Fold the visitor's per-visit counts, windows, held points and aging into `known`."""
    if anon.gates:
        known.gates = known.gates or {}
        for rule_id, gate in anon.gates.items():
            if isinstance(gate, dict):
                counts = known.gates.setdefault(rule_id, {})
                assert type(counts) is dict
                for visit, count in gate.items():
                    counts.setdefault(visit, count)
            else:
                _merge_window(known.gates.setdefault(rule_id, [None]), gate)
    if anon.held:
        known.held = known.held or {}
        for owner_id, points in anon.held.items():
            known.held[owner_id] = known.held.get(owner_id, 0) + points
    if anon.lots:
        known.lots = known.lots or {}
        for owner_id, lots in anon.lots.items():
            known.lots[owner_id] = sorted(known.lots.get(owner_id, []) + lots)
    if anon.halvings:
        known.halvings = known.halvings or {}
        for owner_id, when in anon.halvings.items():
            known.halvings[owner_id] = min(when, known.halvings.get(owner_id, when))


#: What the generated evaluators call by name, besides their rule set and rules.
_EVALUATOR_NAMES: dict[str, Any] = {
    "run_due": run_due, "iso": iso, "UNREAD": UNREAD, "ABSENT": ABSENT, "_apply_fit": _apply_fit,
    "_hold": _hold, "_record_outcome": _record_outcome, "_promote_if_due": _promote_if_due,
    "_trigger": _trigger, "_record_profile": _record_profile, "_count_hit": _count_hit,
    "reengaged": reengaged,
}
