"""The engine core: one prospect's state and one event in, the new state and decisions out.

Pure functions of their arguments: time is always passed in, never read from a clock,
so the live stream processors and `leadscore replay` make the same decisions from the
same events. For speed the state passed in is updated in place and returned; keep
`state.to_dict()` if the old one is still needed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from leadscore.events import Event
from scoring_rules.compile import (
    MERGE_RULE,
    VISITS_WITHIN,
    BehaviorRule,
    FitEvaluator,
    RuleSet,
)
from scoring_rules.decay import due_at, run_due
from scoring_rules.decisions import Decision, promoted, score_changed
from scoring_rules.state import (
    ANONYMOUS,
    LEAD,
    PROSPECT,
    REMEMBERED_EVENT_IDS,
    REMEMBERED_VISITS,
    ProspectState,
    iso,
)

FAST_TRACK, STANDARD = "fast_track", "standard"
#: Where a rep's outcome for a lead moves it: a recycled lead can become a lead again.
OUTCOME_STAGES = {"recycled": PROSPECT, "converted": "opportunity", "disqualified": "disqualified"}


def apply(
    rules: RuleSet, state: ProspectState | None, event: Event, now: datetime
) -> tuple[ProspectState, list[Decision]]:
    """Score one event of the prospect `state` belongs to (a new one when `state` is None).

    Decays due before the event are applied first, then the event, then decays due up to
    `now` (pass the event's own time to stop there).
    """
    if state is None:
        state = ProspectState.new(event.prospect.key)
    decisions = apply_event(
        rules, state, event.id, event.type, event.occurred_at.timestamp(), props=event.properties
    )
    until = now.timestamp()
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
        _remember(known, event_id)
    _merge_windows(known, anon)
    if anon.track == FAST_TRACK and known.stage in (ANONYMOUS, PROSPECT):
        known.track = FAST_TRACK
    after = known.score(low, high)
    if after != before:
        decisions.append(score_changed(rules, key, MERGE_RULE, after - before, after,
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

    `apply` and the replay's fast line reader both end here, so they cannot disagree.
    """
    seen = state.seen
    if event_id in seen:
        return []
    seen[event_id] = None
    if len(seen) > REMEMBERED_EVENT_IDS:
        del seen[next(iter(seen))]
    decisions: list[Decision] = []
    last = state.last_activity
    decay_after = rules.decay_after
    if (rules.aging and (state.lots or state.halvings)) or (
        last is not None and decay_after is not None
        and last + decay_after + state.decays * rules.decay_every <= t
    ):
        run_due(rules, state, t, decisions)
    clock = state.clock
    if clock is None or t > clock:
        state.clock = t
    fit_rules = rules.fit.get(event_type)
    if fit_rules:
        at = at or iso(t)
        _apply_fit(rules, state, fit_rules, event_id, at, props, decisions)
    behavior_rules = rules.behavior.get(event_type)
    if behavior_rules:
        # Every behavior rule of the event's type that matches, in file order. The hottest
        # loop of a replay, kept inline: the visit id is read once for all per-visit
        # rules, and points are added without a call.
        low, high = rules.min_score, rules.max_score
        active = False
        visit: Any = _UNREAD
        for rule in behavior_rules:
            match = rule.match
            if match is not None and not match(props):
                continue
            active = True
            gate = rule.gate
            if gate:
                if visit is _UNREAD:
                    visit = props.get("visit_id")
                    if visit is not None:
                        visit = str(visit)
                if visit is None:
                    continue
                if gate == VISITS_WITHIN:
                    if not _visits_within(rule, state, visit, t):
                        continue
                elif not _count_in_visit(rule, state, visit):
                    continue
            if rule.fast_track and state.stage in (ANONYMOUS, PROSPECT):
                state.track = FAST_TRACK
            points = rule.points
            if not points:
                continue
            total = state.fit + state.behavior
            if rule.owners:
                _hold(rules, rule, state, t)
                new = state.fit + state.behavior
            else:  # `ProspectState.add_behavior`, inlined: this is the hottest line
                new = total + points
                if points > 0 and new > high:
                    new = high if total < high else total
                elif points < 0 and new < low:
                    new = low if total > low else total
                state.behavior += new - total
            before = low if total < low else high if total > high else total
            after = low if new < low else high if new > high else new
            if after != before:
                if at is None:
                    at = iso(t)
                decisions.append({
                    "type": "score.changed", "prospect": state.key, "rule": rule.id,
                    "delta": after - before, "score": after, "event_id": event_id, "at": at,
                    "rules_version": rules.version,
                })
        if active and (state.last_activity is None or t >= state.last_activity):
            state.last_activity = t
            state.decays = 0
    if event_type == "lead.outcome":
        _record_outcome(state, props.get("outcome"))
    if state.stage == PROSPECT and (
        state.track == FAST_TRACK or state.score(rules.min_score, rules.max_score)
        >= rules.threshold
    ):
        _promote_if_due(rules, state, t, decisions)
    return decisions


#: Marks "the event's visit id was not looked up yet" (None means it has none).
_UNREAD = object()


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
            decisions.append(score_changed(rules, state.key, fit_rule.id, after - before,
                                           after, event_id=event_id, at=at))


def _advance(rules: RuleSet, state: ProspectState, until: float, decisions: list[Decision]
             ) -> None:
    run_due(rules, state, until, decisions)
    if state.clock is None or until > state.clock:
        state.clock = until
    _promote_if_due(rules, state, until, decisions)


def _promote_if_due(rules: RuleSet, state: ProspectState, t: float, decisions: list[Decision]
                    ) -> None:
    """A prospect becomes a lead once per lead cycle: at the threshold, or as a hand-raiser."""
    if state.stage != PROSPECT:
        return
    score = state.score(rules.min_score, rules.max_score)
    if state.track == FAST_TRACK or score >= rules.threshold:
        state.stage = LEAD
        state.track = state.track or STANDARD
        decisions.append(promoted(rules, state.key, score, state.track, iso(t)))


def _record_outcome(state: ProspectState, outcome: Any) -> None:
    if state.stage == LEAD and outcome in OUTCOME_STAGES:
        state.stage = OUTCOME_STAGES[outcome]
        state.track = None


def _remember(state: ProspectState, event_id: str) -> None:
    seen = state.seen
    seen[event_id] = None
    if len(seen) > REMEMBERED_EVENT_IDS:
        del seen[next(iter(seen))]


def _count_in_visit(rule: BehaviorRule, state: ProspectState, visit: str) -> bool:
    """Whether a once- or count-per-visit rule fires on this match; counts it."""
    visits = state.visits
    if visits is None:
        visits = state.visits = {}
    counts = visits.get(rule.id)
    if counts is None:
        counts = visits[rule.id] = {}
    count = counts.get(visit, 0) + 1
    if count <= 0:
        return False  # already fired in this visit
    if count == 1 and len(counts) >= REMEMBERED_VISITS:
        del counts[next(iter(counts))]
    fire = count >= rule.gate_count
    counts[visit] = -1 if fire else count
    return fire


def _visits_within(rule: BehaviorRule, state: ProspectState, visit: str, t: float) -> bool:
    """N distinct visits within the window, firing at most once per window.

    Visits are kept in the order they were last seen, so the ones that fell out of the
    window are at the front, and at most N are needed to know whether N were seen.
    """
    if state.windows is None:
        state.windows = {}
    window = state.windows.get(rule.id)
    if window is None:
        window = state.windows[rule.id] = [None, {}]
    last_seen: dict[str, float] = window[1]
    if last_seen and next(reversed(last_seen)) == visit:
        last_seen[visit] = t
    else:
        last_seen.pop(visit, None)
        last_seen[visit] = t
        if len(last_seen) > rule.gate_count:
            del last_seen[next(iter(last_seen))]
    fired = window[0]
    if fired is not None and t - fired < rule.window:
        return False
    oldest = t - rule.window
    while True:
        first = next(iter(last_seen))
        if last_seen[first] >= oldest:
            break
        del last_seen[first]
    if len(last_seen) >= rule.gate_count:
        window[0] = t
        return True
    return False


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


def _merge_windows(known: ProspectState, anon: ProspectState) -> None:
    """Fold the visitor's per-visit counts, windows, held points and aging into `known`."""
    if anon.visits:
        known.visits = known.visits or {}
        for rule_id, counts in anon.visits.items():
            mine = known.visits.setdefault(rule_id, {})
            for visit, count in counts.items():
                mine.setdefault(visit, count)
    if anon.windows:
        known.windows = known.windows or {}
        for rule_id, (fired, seen) in anon.windows.items():
            mine_window = known.windows.setdefault(rule_id, [None, {}])
            if fired is not None and (mine_window[0] is None or fired > mine_window[0]):
                mine_window[0] = fired
            for visit, at in seen.items():
                mine_window[1][visit] = max(at, mine_window[1].get(visit, at))
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
