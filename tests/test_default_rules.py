"""Each rule of DOMAIN.md's default table, on its own, with its exact points."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scoring_rules import RuleSet
from tests.scoring_events import default_rules, event, hits, page, run


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return default_rules()


def test_page_view_adds_one(rules: RuleSet) -> None:
    assert hits(run(rules, [page("/blog/post")])[1]) == [("page-view", 1)]


def test_email_open_adds_one(rules: RuleSet) -> None:
    assert hits(run(rules, [event("email.open", campaign_id="c1")])[1]) == [("email-open", 1)]


def test_demo_adds_five_each_time(rules: RuleSet) -> None:
    demos = [event("demo.watched", timedelta(hours=h), video_id="d1") for h in range(3)]
    state, decisions = run(rules, demos)
    assert hits(decisions) == [("demo-watched", 5)] * 3
    assert state.behavior == 15


def test_webinar_registration_and_attendance_add_five_each(rules: RuleSet) -> None:
    _, decisions = run(rules, [event("webinar.registered", webinar_id="w1"),
                               event("webinar.attended", timedelta(days=7), webinar_id="w1")])
    assert hits(decisions) == [("webinar-registered", 5), ("webinar-attended", 5)]


def test_thought_leadership_download_adds_five(rules: RuleSet) -> None:
    _, decisions = run(rules, [event("content.downloaded", asset_id="a",
                                     category="thought_leadership")])
    assert hits(decisions) == [("thought-leadership-download", 5)]


def test_analyst_review_download_adds_twelve(rules: RuleSet) -> None:
    _, decisions = run(rules, [event("content.downloaded", asset_id="a",
                                     category="analyst_review")])
    assert hits(decisions) == [("analyst-review-download", 12)]


def test_other_downloads_score_nothing(rules: RuleSet) -> None:
    _, decisions = run(rules, [event("content.downloaded", asset_id="a", category="datasheet")])
    assert decisions == []


def test_ninth_page_view_of_a_visit_adds_seven_once(rules: RuleSet) -> None:
    views = [page(f"/p{i}", "v1", timedelta(minutes=i)) for i in range(12)]
    _, decisions = run(rules, views)
    deep = [(i, d["event_id"]) for i, d in enumerate(decisions) if d["rule"] == "deep-visit"]
    assert len(deep) == 1
    assert deep[0][1] == views[8].id  # more than 8: the 9th view
    assert ("deep-visit", 7) in hits(decisions)


def test_eight_views_in_one_visit_are_not_a_deep_visit(rules: RuleSet) -> None:
    views = [page(f"/p{i}", "v1", timedelta(minutes=i)) for i in range(8)]
    assert all(rule == "page-view" for rule, _ in hits(run(rules, views)[1]))


def test_two_visits_within_a_week_add_eight_once_per_week(rules: RuleSet) -> None:
    views = [page("/", "v1"), page("/", "v2", timedelta(days=2)),
             page("/", "v3", timedelta(days=3)),  # within a week of the bonus: none
             page("/", "v4", timedelta(days=9)),  # a week later, v3 and v4 within a week
             page("/", "v5", timedelta(days=10))]
    _, decisions = run(rules, views)
    repeat = [d["event_id"] for d in decisions if d["rule"] == "repeat-visits"]
    assert repeat == [views[1].id, views[3].id]
    assert ("repeat-visits", 8) in hits(decisions)


def test_visits_more_than_a_week_apart_are_not_repeat_visits(rules: RuleSet) -> None:
    _, decisions = run(rules, [page("/", "v1"), page("/", "v2", timedelta(days=8))])
    assert "repeat-visits" not in [rule for rule, _ in hits(decisions)]


def test_brand_search_adds_fifteen(rules: RuleSet) -> None:
    _, decisions = run(rules, [event("web.search", query="Northwind pricing"),
                               event("web.search", query="crm analytics tools")])
    assert hits(decisions) == [("brand-search", 15)]


def test_pricing_page_adds_five_on_top_of_the_page_view(rules: RuleSet) -> None:
    _, decisions = run(rules, [page("/pricing/enterprise?ref=nav")])
    assert hits(decisions) == [("page-view", 1), ("pricing-page", 5)]


def test_careers_page_subtracts_ten(rules: RuleSet) -> None:
    state, decisions = run(rules, [event("demo.watched", video_id="d"),
                                   event("demo.watched", timedelta(hours=1), video_id="d"),
                                   page("/careers/sales-engineer", at=timedelta(hours=2))])
    assert hits(decisions)[-2:] == [("page-view", 1), ("careers-page", -10)]
    assert state.score(0, 100) == 1


def test_rep_approval_adds_thirty_and_a_rejection_takes_it_back(rules: RuleSet) -> None:
    _, decisions = run(rules, [event("prospect.reviewed", approved=True),
                               event("prospect.reviewed", timedelta(days=1), approved=False)])
    assert hits(decisions) == [("approved-by-rep", 30), ("approved-by-rep", -30)]


@pytest.mark.parametrize(("title", "points"), [
    ("CEO", 8), ("Chief Revenue Officer", 8), ("VP Sales", 6), ("Vice President, Marketing", 6),
    ("Director of IT", 4), ("Head of Growth", 4), ("Sales Manager", 2), ("Engineer", 0),
])
def test_job_title_bands(rules: RuleSet, title: str, points: int) -> None:
    state, _ = run(rules, [event("prospect.updated", title=title)])
    assert state.fit_parts.get("job-title", 0) == points
    assert state.fit == points


def test_fit_is_replaced_when_a_fact_changes_never_added_up(rules: RuleSet) -> None:
    titles = ["Sales Manager", "VP Sales", "CEO", "Director of Sales"]
    updates = [event("prospect.updated", timedelta(days=i), title=t) for i, t in enumerate(titles)]
    state, decisions = run(rules, updates)
    assert hits(decisions) == [("job-title", 2), ("job-title", 4), ("job-title", 2),
                               ("job-title", -4)]
    assert state.fit == 4


def test_website_lead_source_adds_seven(rules: RuleSet) -> None:
    _, decisions = run(rules, [event("prospect.updated", lead_source="Website")])
    assert hits(decisions) == [("website-lead", 7)]


def test_thought_leadership_offer_subtracts_five(rules: RuleSet) -> None:
    state, decisions = run(rules, [event("prospect.updated", title="CTO",
                                         offer="thought_leadership")])
    assert hits(decisions) == [("job-title", 8), ("thought-leadership-offer", -5)]
    assert (state.fit, state.score(0, 100)) == (3, 3)


def test_a_profile_update_without_the_fact_keeps_its_points(rules: RuleSet) -> None:
    state, _ = run(rules, [event("prospect.updated", title="CEO"),
                           event("prospect.updated", timedelta(days=1), country="FR")])
    assert state.fit == 8


@pytest.mark.parametrize("form", ["contact_me", "trial_request"])
def test_hand_raisers_become_fast_track_leads_at_once(rules: RuleSet, form: str) -> None:
    state, decisions = run(rules, [event("form.submitted", form=form)])
    assert decisions[-1]["type"] == "prospect.promoted"
    assert (decisions[-1]["track"], decisions[-1]["score"]) == ("fast_track", 0)
    assert (state.stage, state.track) == ("lead", "fast_track")


def test_other_forms_do_not_fast_track(rules: RuleSet) -> None:
    state, decisions = run(rules, [event("form.submitted", form="newsletter")])
    assert (decisions, state.stage) == ([], "prospect")


def test_sixty_five_points_make_a_standard_lead_once(rules: RuleSet) -> None:
    events = [event("prospect.reviewed", approved=True),
              event("content.downloaded", timedelta(hours=1), category="analyst_review"),
              event("content.downloaded", timedelta(hours=2), category="analyst_review"),
              event("webinar.registered", timedelta(hours=3), webinar_id="w"),
              event("webinar.attended", timedelta(hours=4), webinar_id="w"),  # 64
              event("email.open", timedelta(hours=5), campaign_id="c"),  # 65
              event("email.open", timedelta(hours=6), campaign_id="c")]
    state, decisions = run(rules, events)
    promotions = [d for d in decisions if d["type"] == "prospect.promoted"]
    assert len(promotions) == 1
    assert promotions[0]["score"] == 65
    assert promotions[0]["track"] == "standard"
    assert promotions[0]["at"] == "2026-01-05T14:00:00Z"
    assert state.stage == "lead"
