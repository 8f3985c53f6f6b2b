"""Each event type's rules written out as one Python function, generated once per rule set.

Why generate code: scoring an event with a general engine means a loop over the event
type's rules, and for each a call to its `where` test, a call to its frequency gate, and
attribute reads of the rule's points, bounds and owners. In a replay this overhead, not
the work itself, was most of the time per event. The function written here for one event
type does the same steps in the same order as a plain reading of the rules, with the
loop unrolled, bounds, points and ids as constants, and the visit id read once: one call
scores an event.

The generated source is plain Python and can be read: `evaluator_source(rules,
"web.page_view")` returns it, and tracebacks and debuggers show its lines. It only
sequences steps; the steps with state of their own (per-visit gates, caps, decay,
promotion) stay ordinary functions in `scoring_rules.engine`, which compiles the source
(`engine.evaluator`) and calls the result from `apply_event`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from leadscore.decisions import ANONYMOUS, FAST_TRACK, LEAD, PROSPECT, score_changed_source
from scoring_rules.compile import MATCH_MEMORY, VISITS_WITHIN, BehaviorRule, RuleSet
from scoring_rules.conditions import Predicate
from scoring_rules.state import REMEMBERED_EVENT_IDS, REMEMBERED_VISITS

OUTCOME_EVENT = "lead.outcome"
#: The event type whose profile facts a lead card shows (`engine.PROFILE_FACTS`).
PROFILE_EVENT = "prospect.updated"


def has_own_evaluator(rules: RuleSet, event_type: str) -> bool:
    """Whether `event_type` gets a function of its own (else it shares the no-rules one)."""
    return (event_type in rules.behavior or event_type in rules.fit
            or event_type in (OUTCOME_EVENT, PROFILE_EVENT))


def evaluator_source(rules: RuleSet, event_type: str | None) -> str:
    """The Python source of the function scoring `event_type` (None: a type with no rules)."""
    return generate(rules, event_type)[0]


def generate(rules: RuleSet, event_type: str | None) -> tuple[str, dict[str, Any]]:
    """The source of `evaluate(state, event_id, event_type, t, props, at, decisions)`, which appends
    the event's decisions to `decisions`, and the values it refers to by name (the rules'
    tests, owners and fit evaluators).

    It also calls, by name, the engine's `rules`, `run_due`, `iso`, `_apply_fit`, `_hold`,
    `_record_outcome`, `_record_profile`, `_count_hit`, `_trigger`, `_promote_if_due`,
    `reengaged`, `UNREAD`
    and `ABSENT`, which the caller provides.
    """
    code = _Code()
    low, high = rules.min_score, rules.max_score
    behavior = rules.behavior.get(event_type, ()) if event_type else ()
    fit = rules.fit.get(event_type, ()) if event_type else ()
    code.add(0, "def evaluate(state, event_id, event_type, t, props, at, decisions):")
    code.add(1, f'"""{event_type or "any event type without rules"}: rules {rules.version}."""')
    code.add(1, "seen = state.seen  # an event already applied is ignored")
    code.add(1, "if event_id in seen:")
    code.add(2, "return")
    code.add(1, "seen[event_id] = None")
    code.add(1, f"if len(seen) > {REMEMBERED_EVENT_IDS}:")
    code.add(2, "state.forget_oldest(event_id)")
    due = ["state.lots or state.halvings"] if rules.aging else []
    if rules.decay_after is not None:
        code.add(1, "last = state.last_activity")
        due.append(f"(last is not None and last + {code.value(rules.decay_after)} "
                   f"+ state.decays * {code.value(rules.decay_every)} <= t)")
    if due:
        code.add(1, f"if {' or '.join(due)}:  # decays due before the event")
        code.add(2, "run_due(rules, state, t, decisions)")
    code.add(1, "clock = state.clock")
    code.add(1, "if clock is None or t > clock:")
    code.add(2, "state.clock = t")
    if fit:
        code.add(1, "at = at or iso(t)")
        code.add(1, f"_apply_fit(rules, state, {code.name('fit', fit)}, event_id, at, props, "
                    "decisions)")
    if behavior:
        _behavior(code, behavior, low, high, rules.version)
    if event_type == OUTCOME_EVENT:
        code.add(1, '_record_outcome(state, props.get("outcome"))')
    if event_type == PROFILE_EVENT:
        code.add(1, "_record_profile(state, props)")
    if not behavior:
        code.add(1, "total = state.fit + state.behavior")
    # The clamped score reaches a threshold inside the bounds exactly when the total does.
    reached = (f"total >= {rules.threshold}" if low < rules.threshold <= high
               else f"({_clamped('total', low, high)}) >= {rules.threshold}")
    code.add(1, f"if state.stage == {PROSPECT!r} and (state.track == {FAST_TRACK!r} or "
                f"{reached}):")
    code.add(2, "_promote_if_due(rules, state, t, decisions, "
                "_trigger(event_id, event_type, props))")
    if any(rule.fast_track for rule in behavior):
        code.add(1, "if raised:  # a lead raised their hand again: its owner hears of it")
        code.add(2, "decisions.append(reengaged(rules.version, state.key, "
                    "state.score(rules.min_score, rules.max_score), at or iso(t), "
                    "_trigger(event_id, event_type, props)))")
    return code.source(), code.values


def _behavior(
    code: _Code, behavior: tuple[BehaviorRule, ...], low: int, high: int, version: str
) -> None:
    """Every behavior rule of the type that matches, in file order."""
    # Any activity (a rule whose `where` holds) restarts the decay clock.
    always_active = any(not rule.where for rule in behavior)
    if not always_active:
        code.add(1, "active = False")
    if any(rule.fast_track for rule in behavior):
        code.add(1, "raised = False")
    code.add(1, "total = state.fit + state.behavior  # the score before clamping to bounds")
    where = _where(code, behavior)
    gated = [rule for rule in behavior if rule.gate]
    # The visit id is read where the original loop would first need it: at the first
    # per-visit rule that applies. "lazy": it may be unread yet at a given rule.
    visit = "lazy" if gated and gated[0].where else "unread"
    if visit == "lazy":
        code.add(1, "visit = UNREAD")
    for rule in behavior:
        depth = 1
        code.add(1, f"# {rule.id}")
        if rule.where:
            code.add(1, f"if {where[rule.id]}:")
            depth = 2
            if not always_active:
                code.add(depth, "active = True")
        if rule.gate:
            if visit != "read":
                _read_visit(code, depth, lazy=visit == "lazy")
                if not rule.where:
                    visit = "read"
            if rule.gate == VISITS_WITHIN:
                depth = _visits_within(code, depth, rule)
            else:
                depth = _count_in_visit(code, depth, rule)
        body = len(code.lines)
        if rule.fast_track:
            code.add(depth, f"if state.stage in ({ANONYMOUS!r}, {PROSPECT!r}):")
            code.add(depth + 1, f"state.track = {FAST_TRACK!r}")
            code.add(depth, f"elif state.stage == {LEAD!r}:")
            code.add(depth + 1, "raised = True")
        if rule.points:
            _points(code, depth, rule, low, high, version)
        if len(code.lines) == body:
            code.add(depth, "pass")
    condition = "" if always_active else "active and "
    code.add(1, f"if {condition}(state.last_activity is None or t >= state.last_activity):")
    code.add(2, "state.last_activity = t")
    code.add(2, "state.decays = 0")


def _where(code: _Code, behavior: tuple[BehaviorRule, ...]) -> dict[str, str]:
    """Code answering every `where` test of the event type, property by property; returns
    each rule's condition on those answers (`where_0[1] and where_2[0]`).

    The tests of all the rules on one property are answered together, as a tuple, and
    the tuple is remembered for each text value (see `_answers`).
    """
    tests: dict[str, list[Predicate]] = {}
    for rule in behavior:
        for name, test in rule.where:
            tests.setdefault(name, []).append(test)
    conditions: dict[str, list[str]] = {}
    for group, (name, group_tests) in enumerate(tests.items()):
        users: list[str] = []
        for rule in behavior:  # each test's place in the tuple: the order `tests` has
            for rule_name, _ in rule.where:
                if rule_name == name:
                    conditions.setdefault(rule.id, []).append(f"where_{group}[{len(users)}]")
                    users.append(rule.id)
        memo, answer = _answers(group_tests)
        none = code.name("none", (False,) * len(group_tests))
        code.add(1, f"# `where` tests on {name!r}: {', '.join(users)}")
        code.add(1, f"value = props.get({name!r}, ABSENT)")
        code.add(1, f"where_{group} = {none} if value is ABSENT else (type(value) is str "
                    f"and {code.name('memo', memo)}.get(value) or "
                    f"{code.name('answer', answer)}(value))")
    return {rule_id: " and ".join(parts) for rule_id, parts in conditions.items()}


def _answers(
    tests: list[Predicate],
) -> tuple[dict[str, tuple[bool, ...]], Callable[[Any], tuple[bool, ...]]]:
    """The answers of `tests` for a value, and the memory of those answers for text.

    A test is a pure function of one value, and the same few values come back all the time
    (a site's page URLs, a form's name): a page view costs a look-up, not a URL parse per
    rule. Only text is remembered (1, 1.0 and True are equal keys, but a rule tells them
    apart), up to `MATCH_MEMORY` values, after which the memory starts afresh.
    """
    memo: dict[str, tuple[bool, ...]] = {}

    def answer(value: Any) -> tuple[bool, ...]:
        found = tuple(test(value) for test in tests)
        if type(value) is str:
            if len(memo) >= MATCH_MEMORY:
                memo.clear()
            memo[value] = found
        return found

    return memo, answer


def _count_in_visit(code: _Code, depth: int, rule: BehaviorRule) -> int:
    """A once- or count-per-visit gate: counts the match in its visit; the depth of the
    code that runs when the rule fires."""
    code.add(depth, "if visit is not None:")
    depth += 1
    _gate(code, depth, rule, "{}")
    code.add(depth, "count = gate.get(visit, 0) + 1  # 0: it fired in this visit already")
    code.add(depth, "if count > 0:")
    depth += 1
    code.add(depth, f"if count == 1 and len(gate) >= {REMEMBERED_VISITS}:")
    code.add(depth + 1, "del gate[next(iter(gate))]  # a new visit: forget the oldest")
    code.add(depth, f"gate[visit] = -1 if count >= {rule.gate_count} else count")
    code.add(depth, f"if count >= {rule.gate_count}:")
    return depth + 1


def _visits_within(code: _Code, depth: int, rule: BehaviorRule) -> int:
    """N distinct visits within the window, firing at most once per window.

    The gate is [last fired at, visit, last seen at, visit, last seen at, ...]. Visits are
    kept in the order they were last seen, so the ones that fell out of the window are at
    the front, and at most N are needed to know whether N were seen.
    """
    count, window = rule.gate_count, code.value(rule.window)
    code.add(depth, "if visit is not None:")
    depth += 1
    _gate(code, depth, rule, "[None]")
    code.add(depth, "if len(gate) > 1 and gate[-2] == visit:  # the latest visit again")
    code.add(depth + 1, "gate[-1] = t")
    code.add(depth, "else:")
    code.add(depth + 1, "for i in range(1, len(gate), 2):")
    code.add(depth + 2, "if gate[i] == visit:")
    code.add(depth + 3, "del gate[i:i + 2]")
    code.add(depth + 3, "break")
    code.add(depth + 1, "gate += (visit, t)")
    code.add(depth + 1, f"if len(gate) > {1 + 2 * count}:")
    code.add(depth + 2, "del gate[1:3]")
    code.add(depth, f"if gate[0] is None or not t - gate[0] < {window}:")
    depth += 1
    code.add(depth, f"oldest = t - {window}")
    code.add(depth, "while not gate[2] >= oldest:  # it fell out of the window")
    code.add(depth + 1, "del gate[1:3]")
    code.add(depth, f"if len(gate) >= {1 + 2 * count}:")
    code.add(depth + 1, "gate[0] = t")
    return depth + 1


def _gate(code: _Code, depth: int, rule: BehaviorRule, empty: str) -> None:
    code.add(depth, "gates = state.gates")
    code.add(depth, "if gates is None:")
    code.add(depth + 1, "gates = state.gates = {}")
    code.add(depth, f"gate = gates.get({rule.id!r})")
    code.add(depth, "if gate is None:")
    code.add(depth + 1, f"gate = gates[{rule.id!r}] = {empty}")


def _read_visit(code: _Code, depth: int, *, lazy: bool) -> None:
    if lazy:
        code.add(depth, "if visit is UNREAD:")
        depth += 1
    code.add(depth, 'visit = props.get("visit_id")')
    code.add(depth, "if visit is not None:")
    code.add(depth + 1, "visit = str(visit)")


def _points(code: _Code, depth: int, rule: BehaviorRule, low: int, high: int,
            version: str) -> None:
    """Add the rule's points within the bounds (`ProspectState.add_behavior`, written out
    for the sign of the points); a decision if the score moved. `total`, fit plus
    behavior before clamping, is kept up to date."""
    points = rule.points
    if rule.owners:  # capped or aging: the points are recorded against their owners
        code.add(depth, f"_hold(rules, {code.name('rule', rule)}, state, t)")
        code.add(depth, "new = state.fit + state.behavior")
        code.add(depth, f"before = {_clamped('total', low, high)}")
        code.add(depth, f"after = {_clamped('new', low, high)}")
        code.add(depth, "if after != before:")
        _decision(code, depth + 1, rule, "after - before", "after", version)
    else:  # written out for the sign: which bound the points move towards
        toward, away, past = (high, low, ">") if points > 0 else (low, high, "<")
        within = "<" if past == ">" else ">"
        code.add(depth, f"if total {within} {toward}:  # else it is at that bound already")
        depth += 1
        code.add(depth, f"new = total + {points}")
        code.add(depth, f"if new {past} {toward}:")
        code.add(depth + 1, f"new = {toward}")
        code.add(depth, "state.behavior += new - total")
        code.add(depth, f"if new {past} {away}:  # the score moved off {away} or from total")
        _decision(code, depth + 1, rule, f"new - (total if total {past} {away} else {away})",
                  "new", version)
    code.add(depth, "total = new")


def _decision(code: _Code, depth: int, rule: BehaviorRule, delta: str, score: str,
              version: str) -> None:
    code.add(depth, "if at is None:")
    code.add(depth + 1, "at = iso(t)")
    code.add(depth, f"change = {delta}")
    record = score_changed_source(prospect="state.key", rule=repr(rule.id), delta="change",
                                  score=score, event_id="event_id", at="at",
                                  rules_version=repr(version))
    code.add(depth, f"decisions.append({record})")
    code.add(depth, f"_count_hit(state, {rule.id!r}, change)")


def _clamped(name: str, low: int, high: int) -> str:
    return f"{low} if {name} < {low} else {high} if {name} > {high} else {name}"


class _Code:
    """Source lines being written, and the objects they name."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.values: dict[str, Any] = {}
        self._names: dict[int, str] = {}

    def add(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def name(self, kind: str, value: object) -> str:
        """A name for `value` in the generated code (the same object, the same name)."""
        found = self._names.get(id(value))
        if found is None:
            found = self._names[id(value)] = f"{kind}_{len(self._names)}"
            self.values[found] = value
        return found

    def value(self, number: float) -> str:
        """A number as a literal when it reads back exactly, else by name."""
        return repr(number) if math.isfinite(number) else self.name("number", number)

    def source(self) -> str:
        return "\n".join(self.lines) + "\n"
