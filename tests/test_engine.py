"""The engine core: decay in event time, bounds, duplicates, identity merge, lead cycles,
rule-owned decay, caps, and state that survives a restart."""

from __future__ import annotations

from datetime import timedelta

import orjson

from leadscore.events import Event, ProspectRef
from scoring_rules import ProspectState, ReplayEnd, advance, apply, merge, next_due, replay
from tests.scoring_events import START, default_rules, event, hits, page, rules_from, run

RULES = default_rules()


def _analyst(hours: int = 0) -> Event:
    return event("content.downloaded", timedelta(hours=hours), category="analyst_review")


def test_decay_over_several_months_uses_the_band_of_the_current_score() -> None:
    events = [event("content.downloaded", timedelta(minutes=i), category="analyst_review")
              for i in range(4)] + [event("demo.watched", timedelta(minutes=5), video_id="d")]
    state, decisions = run(RULES, events, now=START + timedelta(days=200))
    decays = [(d["rule"], d["delta"], d["score"], d["at"][:10]) for d in decisions
              if d["event_id"] is None]
    assert decays == [
        ("decay-above-30", -15, 38, "2026-02-04"),
        ("decay-above-30", -15, 23, "2026-03-06"),
        ("decay-30-or-less", -5, 18, "2026-04-05"),
        ("decay-30-or-less", -5, 13, "2026-05-05"),
        ("decay-30-or-less", -5, 8, "2026-06-04"),
        ("decay-30-or-less", -5, 3, "2026-07-04"),
    ]
    assert (state.behavior, state.fit) == (3, 0)


def test_decay_never_goes_below_zero_and_then_stops() -> None:
    state, decisions = run(RULES, [page("/")], now=START + timedelta(days=400))
    assert [d["delta"] for d in decisions if d["event_id"] is None] == [-1]
    assert state.score(0, 100) == 0
    assert next_due(RULES, state) is None


def test_decays_due_before_an_event_apply_before_it_and_activity_restarts_the_clock() -> None:
    events = [_analyst(), _analyst(1), _analyst(2), page("/", at=timedelta(days=65))]
    state, decisions = run(RULES, events)
    assert hits(decisions)[3:] == [("decay-above-30", -15), ("decay-30-or-less", -5),
                                   ("page-view", 1)]
    assert next_due(RULES, state) == START + timedelta(days=95)


def test_advance_applies_decay_with_no_event_and_next_due_says_when() -> None:
    state, _ = run(RULES, [_analyst()])
    assert next_due(RULES, state) == START + timedelta(days=30)
    state, decisions = advance(RULES, state, START + timedelta(days=29))
    assert decisions == []
    state, decisions = advance(RULES, state, START + timedelta(days=30))
    assert hits(decisions) == [("decay-30-or-less", -5)]
    assert decisions[0]["at"] == "2026-02-04T09:00:00Z"
    assert next_due(RULES, state) == START + timedelta(days=60)


def test_fit_alone_does_not_decay() -> None:
    state, decisions = run(RULES, [event("prospect.reviewed", approved=True)],
                           now=START + timedelta(days=365))
    assert (hits(decisions), state.score(0, 100)) == ([("approved-by-rep", 30)], 30)


def test_decay_takes_engagement_only_and_leaves_fit_in_place() -> None:
    events = [event("prospect.reviewed", approved=True),
              event("demo.watched", timedelta(minutes=1), video_id="d")]
    state, decisions = run(RULES, events, now=START + timedelta(days=365))
    # score 35 is in the "above 30" band (-15), but only the 5 behavior points can fade
    assert hits(decisions) == [("approved-by-rep", 30), ("demo-watched", 5),
                               ("decay-above-30", -5)]
    assert (state.fit, state.behavior, state.score(0, 100)) == (30, 0, 30)
    assert next_due(RULES, state) is None


def test_replay_leaves_anonymous_visitors_undecayed_at_the_end() -> None:
    from scoring_rules import replay

    visit = event("web.page_view", url="https://acme.example/pricing", visit_id="s1")
    anonymous = visit.model_copy(update={"prospect": ProspectRef(anonymous_id="v-9")})
    items = list(replay(RULES, [anonymous], now=START + timedelta(days=400)))
    assert [d["rule"] for d in items if isinstance(d, dict)] == ["page-view", "pricing-page"]


def test_score_stays_within_bounds_and_deltas_are_what_the_score_moved() -> None:
    downloads = [_analyst(h) for h in range(9)]
    state, decisions = run(RULES, downloads)
    assert [d["delta"] for d in decisions if d["type"] == "score.changed"][-1] == 4
    assert state.score(0, 100) == 100 and state.behavior == 100
    state, decisions = run(RULES, [page("/careers", at=timedelta(hours=10))], state=state)
    assert hits(decisions) == [("careers-page", -10)]  # the +1 of a page view at 100 is lost
    assert state.score(0, 100) == 90


def test_negative_points_stop_at_zero() -> None:
    state, decisions = run(RULES, [page("/careers"), page("/careers/x", at=timedelta(hours=1))])
    assert state.score(0, 100) == 0
    assert hits(decisions) == [("page-view", 1), ("careers-page", -1)] * 2


def test_an_event_already_applied_is_ignored() -> None:
    first = page("/pricing")
    state, decisions = run(RULES, [first, first, first])
    assert hits(decisions) == [("page-view", 1), ("pricing-page", 5)]
    assert state.score(0, 100) == 6


def test_remembered_event_ids_are_bounded() -> None:
    state, _ = run(RULES, [page("/", at=timedelta(seconds=i)) for i in range(500)])
    assert len(state.seen) <= 64


def test_a_promotion_happens_once_per_lead_cycle_and_again_after_a_recycle() -> None:
    state, decisions = run(RULES, [
        event("form.submitted", form="contact_me"),
        event("form.submitted", timedelta(hours=1), form="contact_me"),
        event("lead.outcome", timedelta(days=21), outcome="recycled"),
        event("form.submitted", timedelta(days=40), form="trial_request"),
    ])
    promotions = [d["at"][:10] for d in decisions if d["type"] == "prospect.promoted"]
    assert promotions == ["2026-01-05", "2026-02-14"]
    assert state.stage == "lead"


def test_anonymous_activity_is_merged_when_the_visitor_identifies() -> None:
    events = [
        event("web.page_view", email=None, anonymous_id="v-9", url="/pricing", visit_id="a"),
        event("web.page_view", timedelta(days=1), email=None, anonymous_id="v-9", url="/",
              visit_id="b"),
        event("prospect.reviewed", timedelta(days=1), email="bo@acme.example", approved=True),
        event("form.submitted", timedelta(days=2), email="Bo@Acme.example", anonymous_id="v-9",
              form="newsletter"),
        event("web.page_view", timedelta(days=3), email=None, anonymous_id="v-9", url="/",
              visit_id="c"),
    ]
    *made, end = list(replay(RULES, events))
    assert isinstance(end, ReplayEnd)
    items = [item for item in made if isinstance(item, dict)]
    merged = [d for d in items if d.get("rule") == "identity.merge"]
    assert merged == [{
        "type": "score.changed", "prospect": "bo@acme.example", "rule": "identity.merge",
        "delta": 15, "score": 45, "event_id": None, "at": "2026-01-07T09:00:00Z",
        "rules_version": RULES.version,
    }]
    assert items[-1]["prospect"] == "bo@acme.example"  # later anonymous views count for Bo
    assert set(end.states) == {"bo@acme.example"}
    assert end.states["bo@acme.example"].score(0, 100) == 46


def test_merge_brings_the_visitor_up_to_date_before_folding_it_in() -> None:
    anon, _ = run(RULES, [event("demo.watched", email=None, anonymous_id="v", video_id="d")])
    known, decisions = merge(RULES, None, anon, "cy@acme.example", START + timedelta(days=31))
    assert [(d["prospect"], d["rule"], d["delta"]) for d in decisions] == [
        ("anon:v", "decay-30-or-less", -5)]  # nothing left to merge: no merge decision
    assert known.key == "cy@acme.example" and known.stage == "prospect"


def test_an_anonymous_visitor_is_never_promoted_until_identified() -> None:
    events = [event("content.downloaded", timedelta(minutes=i), email=None, anonymous_id="v",
                    category="analyst_review") for i in range(6)]
    state, decisions = run(RULES, events)
    assert state.stage == "anonymous"
    assert not [d for d in decisions if d["type"] == "prospect.promoted"]
    known, merged = merge(RULES, None, state, "di@acme.example", START + timedelta(hours=1))
    assert merged[-1]["type"] == "prospect.promoted" and known.stage == "lead"


def test_state_round_trips_and_a_restored_state_decides_the_same() -> None:
    rules = rules_from(AGING)
    history = [event("webinar.attended", webinar_id="w"), page("/", "v1", timedelta(hours=1)),
               page("/", "v2", timedelta(days=1)), event("email.open", timedelta(days=2))]
    state, _ = run(rules, history)
    stored = orjson.loads(orjson.dumps(state.to_dict()))
    restored = ProspectState.from_dict(stored)
    assert restored.to_dict() == state.to_dict()
    later = [page("/", "v3", timedelta(days=3)), event("email.open", timedelta(days=40))]
    _, original = run(rules, later, state=state, now=START + timedelta(days=90))
    _, again = run(rules, later, state=restored, now=START + timedelta(days=90))
    assert original == again


def test_a_state_stored_by_the_older_version_restores_the_same() -> None:
    """Changelogs written before 2026-12 keep the per-visit gates as `visits` and
    `windows` ({visit id: seen at}); a worker upgraded over them reads them as before."""
    history = [page("/", "v1"), page("/pricing", "v1", timedelta(minutes=5)),
               page("/", "v2", timedelta(days=1)), page("/", "v3", timedelta(days=2))]
    state, _ = run(RULES, history)
    assert state.gates and any(type(gate) is list for gate in state.gates.values())
    current = state.to_dict()
    older = {name: value for name, value in current.items() if name != "gates"}
    older["visits"] = {k: v for k, v in state.gates.items() if type(v) is dict}
    older["windows"] = {k: [v[0], dict(zip(v[1::2], v[2::2], strict=True))]
                        for k, v in state.gates.items() if type(v) is list}
    assert ProspectState.from_dict(orjson.loads(orjson.dumps(older))) == state


AGING = """
settings:
  decay: {after: 30d, bands: [{id: monthly, subtract: 5}]}
groups:
  - id: email-engagement
    half_life: 10d
rules:
  - id: webinar
    event: webinar.attended
    points: 20
    expires_after: 14d
  - id: open
    event: email.open
    points: 20
    group: email-engagement
  - id: visit
    event: web.page_view
    points: 1
  - id: visits
    event: web.page_view
    visits: {at_least: 2, within: 7d}
    points: 3
"""


def test_points_owned_by_a_rule_expire_after_its_window() -> None:
    rules = rules_from(AGING)
    state, decisions = run(rules, [event("webinar.attended", webinar_id="w"),
                                   page("/", at=timedelta(days=10))],
                           now=START + timedelta(days=20))
    assert hits(decisions) == [("webinar", 20), ("visit", 1), ("webinar", -20)]
    assert [d["at"] for d in decisions][-1] == "2026-01-19T09:00:00Z"
    assert state.score(0, 100) == 1


def test_points_owned_by_a_group_halve_every_half_life_while_others_age_monthly() -> None:
    rules = rules_from(AGING)
    state, decisions = run(rules, [event("email.open", campaign_id="c")],
                           now=START + timedelta(days=45))
    aging = [(d["rule"], d["delta"], d["at"][:10]) for d in decisions if d["event_id"] is None]
    # On 2026-02-04 both are due; the score's own decay goes first, and takes the rest.
    assert aging == [("email-engagement", -10, "2026-01-15"),
                     ("email-engagement", -5, "2026-01-25"),
                     ("monthly", -5, "2026-02-04")]
    assert state.score(0, 100) == 0


def test_a_rule_cap_and_a_group_cap_limit_what_rules_add() -> None:
    rules = rules_from("""
settings:
  threshold: 8
groups:
  - id: email
    max_points: 5
rules:
  - id: view
    event: web.page_view
    points: 1
    max_points: 3
  - id: open
    event: email.open
    points: 2
    group: email
  - id: click
    event: email.click
    points: 2
    group: email
""")
    events = [page("/", at=timedelta(minutes=i)) for i in range(5)]
    events += [event(kind, timedelta(hours=i)) for i, kind in
               enumerate(["email.open", "email.click", "email.open", "email.click"])]
    state, decisions = run(rules, events)
    assert hits(decisions) == [("view", 1)] * 3 + [("open", 2), ("click", 2), ("open", 1)]
    assert state.score(0, 100) == 8


def test_once_per_visit_counts_each_visit_once() -> None:
    rules = rules_from("""
rules:
  - id: visit
    event: web.page_view
    once_per: visit
    points: 2
""")
    views = [page("/", v, timedelta(minutes=i)) for i, v in enumerate("aabab c".replace(" ", ""))]
    assert hits(run(rules, views)[1]) == [("visit", 2)] * 3


def test_apply_with_a_later_now_applies_the_decays_due_after_the_event() -> None:
    state, decisions = apply(RULES, None, page("/"), START + timedelta(days=31))
    assert hits(decisions) == [("page-view", 1), ("decay-30-or-less", -1)]
    assert state.key == "ana@acme.example"
