"""The routing policy, pure: which team, who is eligible and why not, and fairness."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from leadscore.decisions import iso
from routing.offline import Offline
from routing.policy import Lead, Loads, Rotation, assign, route
from routing.roster import RosterError, load_roster, roster_from_text

ROSTER = Path(__file__).resolve().parent.parent / "routing" / "roster.yaml"
#: A Wednesday, 10:00 in Madrid.
WEDNESDAY = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)


def promotion(prospect: str = "ana@acme.example", track: str = "fast_track",
              at: datetime = WEDNESDAY, country: str | None = "ES") -> Any:
    return {"type": "prospect.promoted", "prospect": prospect, "score": 70, "track": track,
            "at": iso(at.timestamp()), "rules_version": "v", "fit": 20, "behavior": 50,
            "top_rules": [], "trigger": None, "profile": {"country": country} if country else {}}


def excluded(routed: dict[str, Any]) -> dict[str, str | None]:
    return {candidate["rep"]: candidate["excluded"] for candidate in routed["candidates"]}


def test_the_shipped_roster_passes_its_check() -> None:
    roster = load_roster(ROSTER)
    assert sorted(roster.teams) == ["americas", "emea"]
    assert [rep.id for rep in roster.members("americas")] == ["dana"]  # sam is an SDR


def test_a_lead_goes_to_its_accounts_ae_team_then_its_country_then_the_default() -> None:
    roster = load_roster(ROSTER)
    globex = route(roster, Lead.of(promotion("li@globex.example", country="US")), Loads(),
                   Rotation()).routed
    assert (globex["team"], globex["matched"]) == (
        "emea", "account globex.example, owned by AE ae-lucia")
    american = route(roster, Lead.of(promotion(country="us")), Loads(), Rotation()).routed
    assert (american["team"], american["matched"], american["rep"]) == (
        "americas", "country US", "dana")
    nowhere = route(roster, Lead.of(promotion(country=None)), Loads(), Rotation()).routed
    assert (nowhere["team"], nowhere["matched"]) == (
        "emea", "no territory matched (no country): the default team")


def test_equal_reps_share_leads_within_one_in_a_strict_rotation() -> None:
    roster = load_roster(ROSTER)
    rotation, counts, order = Rotation(), Counter[str](), []
    for minute in range(100):
        lead = Lead.of(promotion(f"p{minute}@acme.example", "standard",
                                 WEDNESDAY + timedelta(minutes=minute)))
        assignment = route(roster, lead, Loads(), rotation)
        rotation = assignment.rotation
        counts[assignment.rep] += 1
        order.append(assignment.rep)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert order[:6] == ["ana", "bruno", "marta", "ana", "bruno", "marta"]


def test_weights_share_leads_in_proportion() -> None:
    text = ROSTER.read_text().replace("    weight: 1\n    daily_cap: 40", "    weight: 3\n"
                                      "    daily_cap: 400")
    roster = roster_from_text("roster.yaml", text)
    rotation, counts = Rotation(), Counter[str]()
    for n in range(50):
        assignment = route(roster, Lead.of(promotion(f"p{n}@acme.example", "standard")),
                           Loads(), rotation)
        rotation, counts[assignment.rep] = assignment.rotation, counts[assignment.rep] + 1
    assert counts == {"ana": 30, "bruno": 10, "marta": 10}


def test_out_of_office_off_shift_and_caps_are_each_explained() -> None:
    roster = load_roster(ROSTER)
    christmas = datetime(2026, 12, 28, 10, 0, tzinfo=UTC)  # a Monday; Ana is away
    routed = route(roster, Lead.of(promotion(at=christmas)), Loads(), Rotation()).routed
    assert excluded(routed)["ana"] == "out of office"
    night = datetime(2026, 3, 4, 22, 30, tzinfo=UTC)  # 23:30 in Madrid
    routed = route(roster, Lead.of(promotion(at=night)), Loads(), Rotation()).routed
    assert set(excluded(routed).values()) == {"off shift"}
    standard = route(roster, Lead.of(promotion(track="standard", at=night)), Loads(),
                     Rotation()).routed
    assert set(excluded(standard).values()) == {None}  # the 24-hour queue has no shifts
    loads = Loads(day={"ana": 40}, month={"bruno": 400})
    routed = route(roster, Lead.of(promotion()), loads, Rotation()).routed
    assert excluded(routed) == {"ana": "at daily cap 40", "bruno": "at monthly cap 400",
                                "marta": None}
    assert routed["rep"] == "marta"


def test_nobody_eligible_falls_back_to_the_escalation_target_when_at_work() -> None:
    roster = load_roster(ROSTER)
    loads = Loads(day={"ana": 40}, month={"bruno": 400, "marta": 400})  # all at a cap
    routed = route(roster, Lead.of(promotion()), loads, Rotation()).routed
    assert (routed["rep"], routed["fallback"], routed["chosen_by"]) == (
        "marta", True, "nobody in the team can take it: the escalation target")


def test_a_hand_raiser_at_night_waits_for_the_first_rep_on_shift_its_deadline_from_then(
) -> None:
    roster = load_roster(ROSTER)
    saturday = datetime(2026, 3, 7, 11, 0, tzinfo=UTC)  # nobody works weekends
    waiting = route(roster, Lead.of(promotion(at=saturday)), Loads(), Rotation())
    routed = waiting.routed
    assert waiting.chosen == "waits_for_shift"  # counted as such
    # Not the escalation target, off shift too, breached 5 minutes later: the first rep
    # on shift, Monday 09:00 in Madrid, with the 5 minutes counted from then.
    assert (routed["rep"], routed["fallback"]) == ("ana", False)
    assert routed["chosen_by"] == ("nobody on shift or on call: waits for ana's shift, "
                                   "Mon 09 Mar 09:00 Europe/Madrid")
    assert (routed["due"], routed["deadline"]) == ("2026-03-09T08:00:00Z",
                                                   "2026-03-09T08:05:00Z")
    offline = Offline(roster)
    made = offline.route(promotion(at=saturday))
    made += offline.until(saturday + timedelta(days=3))
    first_steps = [(d["type"], d["at"]) for d in made][:3]
    assert first_steps == [("lead.routed", "2026-03-07T11:00:00Z"),
                           ("lead.reminded", "2026-03-09T08:03:00Z"),
                           ("sla.breached", "2026-03-09T08:05:00Z")]


ON_CALL = """
    business_hours: {days: [mon, tue, wed, thu, fri], start: "09:00", end: "18:00",
                     time_zone: Europe/Madrid}
    on_call:
      - {rep: bruno, days: [sat, sun]}
"""


def test_outside_business_hours_a_hand_raiser_goes_to_whoever_is_on_call() -> None:
    text = ROSTER.read_text().replace("    escalation: marta", ON_CALL + "    escalation: marta")
    roster = roster_from_text("roster.yaml", text)
    saturday = datetime(2026, 3, 7, 11, 0, tzinfo=UTC)
    on_call = route(roster, Lead.of(promotion(at=saturday)), Loads(), Rotation())
    routed = on_call.routed
    assert (routed["rep"], routed["chosen_by"]) == ("bruno", "nobody on shift: bruno is on call")
    assert on_call.chosen == "on_call"
    assert routed["deadline"] == "2026-03-07T11:05:00Z"
    with pytest.raises(RosterError, match="on_call: no rep with the id 'nobody'"):
        roster_from_text("roster.yaml", text.replace("rep: bruno, days", "rep: nobody, days"))


def test_a_standard_leads_24_hours_can_count_business_hours_only() -> None:
    text = ROSTER.read_text().replace("    escalation: marta", ON_CALL + "    escalation: marta")
    text = text.replace("        work_within: 24h", "        work_within: 24h\n"
                        "        counts: business hours")
    roster = roster_from_text("roster.yaml", text)
    friday = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)  # 17:00 in Madrid
    routed = route(roster, Lead.of(promotion(track="standard", at=friday)), Loads(),
                   Rotation()).routed
    # 1 h on Friday, 9 h on Monday and Tuesday, 5 h on Wednesday: Wednesday 14:00 Madrid.
    assert routed["due"] == routed["deadline"] == "2026-03-11T13:00:00Z"
    with pytest.raises(RosterError, match="counts: business hours needs"):
        roster_from_text("roster.yaml", text.replace(ON_CALL, "\n"))


def test_a_reassignment_skips_the_reps_tried_and_the_deadlines_follow_the_sla() -> None:
    roster = load_roster(ROSTER)
    lead = Lead.of(promotion())
    first = route(roster, lead, Loads(), Rotation()).routed
    assert (first["due"], first["deadline"]) == ("2026-03-04T09:00:00Z", "2026-03-04T09:05:00Z")
    later = WEDNESDAY + timedelta(minutes=5)
    second = assign(roster, lead, later, Loads(), Rotation(), tried=["ana"]).routed
    assert excluded(second)["ana"] == "had this lead already" and second["rep"] == "bruno"
    standard = route(roster, Lead.of(promotion(track="standard")), Loads(), Rotation()).routed
    assert standard["due"] == standard["deadline"] == "2026-03-05T09:00:00Z"


@pytest.mark.parametrize(("change", "error"), [
    (("team: emea\n    time_zone: Europe/Lisbon", "team: emeaa\n    time_zone: Europe/Lisbon"),
     "roster.yaml:58:11: team: no team with the id 'emeaa'"),
    (("escalation: dana", "escalation: nobody"),
     "roster.yaml:35:17: escalation: no rep with the id 'nobody'"),
    (("weight: 1\n    daily_cap", "wieght: 1\n    daily_cap"),
     "roster.yaml:49:5: unknown key 'wieght' (did you mean 'weight'?)"),
    (("alerts: [webhook]\n\n  - id: marta", "alerts: [pager]\n\n  - id: marta"),
     "roster.yaml:60:14: no channel named 'pager' under channels:"),
    (('start: "09:00"', "start: 9:00"),
     'roster.yaml:46:61: start: write the time as "HH:MM" in quotes, not 540'),
    (("{start: 2026-12-24, end: 2027-01-01}", "{start: 2027-01-24, end: 2027-01-01}"),
     "roster.yaml:48:9: end 2027-01-01 is before start 2027-01-24"),
])
def test_a_bad_roster_is_refused_where_it_is_wrong(change: tuple[str, str], error: str) -> None:
    text = ROSTER.read_text()
    assert change[0] in text
    with pytest.raises(RosterError) as raised:
        roster_from_text("roster.yaml", text.replace(*change, 1))
    assert str(raised.value.errors[0]) == error


def test_replay_with_a_roster_routes_as_live_and_plays_the_ladder_on_the_event_clock(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from app.cli import main

    events = Path(__file__).resolve().parent.parent / "examples" / "events.jsonl"
    assert main(["replay", str(events), "--roster", str(ROSTER)]) == 0
    made = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    routing = [(d["type"], d["prospect"], d["rep"], d["at"]) for d in made
               if d["type"].startswith(("lead.", "sla."))]
    # Nobody acknowledges offline: each rep is reminded and the lead moved on from each
    # assignment, until the escalation, 10 minutes after the first assignment; here marta,
    # the escalation target, holds it by then, so the escalation changes nothing.
    assert routing == [
        ("lead.routed", "ana.lopez@acme.example", "ana", "2026-01-23T11:20:00Z"),
        ("lead.routed", "carlos@globex.example", "bruno", "2026-01-09T10:03:00Z"),
        ("lead.reminded", "carlos@globex.example", "bruno", "2026-01-09T10:06:00Z"),
        ("sla.breached", "carlos@globex.example", "bruno", "2026-01-09T10:08:00Z"),
        ("lead.reassigned", "carlos@globex.example", "marta", "2026-01-09T10:08:00Z"),
        ("lead.reminded", "carlos@globex.example", "marta", "2026-01-09T10:11:00Z"),
        ("sla.breached", "ana.lopez@acme.example", "ana", "2026-01-24T11:20:00Z"),
    ]
    globex = next(d for d in made if d["type"] == "lead.routed" and "globex" in d["prospect"])
    assert globex["matched"] == "account globex.example, owned by AE ae-lucia"
    assert main(["explain", str(events), "--prospect", "carlos@globex.example",
                 "--roster", str(ROSTER)]) == 0
    shown = " ".join(capsys.readouterr().out.split())  # routing lines are wrapped
    assert "=> routed to bruno, team emea by account globex.example" in shown
    assert "The rotation's pick may differ" in " ".join(shown.split())
    assert "=> reassigned bruno -> marta: not acknowledged in time" in shown


def test_replay_refuses_a_bad_roster_with_where_it_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from app.cli import main

    bad = tmp_path / "roster.yaml"
    bad.write_text(ROSTER.read_text().replace("escalation: dana", "escalation: nobody"))
    events = Path(__file__).resolve().parent.parent / "examples" / "events.jsonl"
    assert main(["replay", str(events), "--roster", str(bad)]) == 2
    assert f"{bad}:35:17: escalation: no rep with the id 'nobody'" in capsys.readouterr().err


def test_a_reassignment_advances_the_rotation_so_the_next_lead_goes_to_the_next_rep() -> None:
    from routing.offline import Offline

    offline = Offline(load_roster(ROSTER))
    first = offline.route(promotion("a@acme.example"))
    assert [d["rep"] for d in first] == ["ana"]
    moved = offline.until(WEDNESDAY + timedelta(minutes=5, seconds=30))
    assert [(d["type"], d["rep"]) for d in moved if d["type"] == "lead.reassigned"] == [
        ("lead.reassigned", "bruno")]
    second = offline.route(promotion("b@acme.example", "standard",
                                     WEDNESDAY + timedelta(minutes=6)))
    assert [d["rep"] for d in second if d["type"] == "lead.routed"] == ["marta"]


def test_the_escalation_counts_from_the_first_assignment_however_often_the_lead_moved() -> None:
    from routing.offline import Offline

    # dana, the escalation target here, is no member of the team's rotation.
    text = ROSTER.read_text().replace("escalation: marta", "escalation: dana")
    offline = Offline(roster_from_text("roster.yaml", text))
    made = offline.route(promotion("a@acme.example"))
    made += offline.until(WEDNESDAY + timedelta(minutes=30))
    steps = [(d["type"], d["rep"], d["at"][11:16]) for d in made]
    # remind at 3m and reassign at 5m from each assignment; escalate at 10m from the first
    # (not 5 + 10m); after the escalation, the target is only reminded.
    assert steps == [
        ("lead.routed", "ana", "09:00"), ("lead.reminded", "ana", "09:03"),
        ("sla.breached", "ana", "09:05"), ("lead.reassigned", "bruno", "09:05"),
        ("lead.reminded", "bruno", "09:08"), ("lead.reassigned", "dana", "09:10"),
        ("lead.reminded", "dana", "09:13"),
    ]
    escalated = made[-2]
    assert escalated["reason"] == "escalated: not acknowledged 10m after its first assignment"
    assert escalated["routed"]["fallback"] is True


def test_a_lead_who_raises_their_hand_again_gets_their_owner_told_once_per_event(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from app.cli import main

    events = Path(__file__).resolve().parent.parent / "examples" / "events.jsonl"
    again = tmp_path / "events.jsonl"
    form = ('{"id": "%s", "type": "form.submitted", "occurred_at": "%s", "prospect": '
            '{"email": "carlos@globex.example"}, "properties": {"form": "trial_request"}}\n')
    again.write_text(events.read_text() + form % ("f-9001", "2026-01-09T10:04:00Z")
                     + form % ("f-9001", "2026-01-09T10:04:30Z")  # a repeat of the event
                     + form % ("f-9002", "2026-01-09T10:05:00Z"))
    assert main(["replay", str(again), "--roster", str(ROSTER)]) == 0
    made = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    raised = [d for d in made if d["type"] == "prospect.reengaged"]
    assert [d["trigger"]["id"] for d in raised] == ["f-9001", "f-9002"]
    told = [(d["rep"], d["trigger"]["id"]) for d in made if d["type"] == "lead.reengaged"]
    assert told == [("bruno", "f-9001"), ("bruno", "f-9002")]  # the lead's owner then


def test_a_ladder_reassignment_when_nobody_is_on_shift_leaves_the_lead_for_the_escalation(
) -> None:
    offline = Offline(load_roster(ROSTER))
    evening = datetime(2026, 3, 4, 17, 58, tzinfo=UTC)  # 18:58 in Madrid, 17:58 in Lisbon
    made = offline.route(promotion(at=evening))
    made += offline.until(evening + timedelta(hours=2))
    steps = [(d["type"], d["rep"], d["at"][11:16]) for d in made]
    # Only bruno (Lisbon) is still on shift; at 18:03 nobody else is: the lead stays with
    # him (no hand-over to tomorrow's shift), and the escalation comes at 10 minutes.
    assert steps == [
        ("lead.routed", "bruno", "17:58"), ("lead.reminded", "bruno", "18:01"),
        ("sla.breached", "bruno", "18:03"), ("lead.reassigned", "marta", "18:08"),
    ]


def test_a_rep_away_for_good_does_not_stall_the_search_for_the_next_shift() -> None:
    text = ROSTER.read_text().replace(
        "{start: 2026-12-24, end: 2027-01-01}", "{start: 2026-01-01, end: 9999-12-31}")
    roster = roster_from_text("roster.yaml", text)
    saturday = datetime(2026, 3, 7, 11, 0, tzinfo=UTC)
    routed = route(roster, Lead.of(promotion(at=saturday)), Loads(), Rotation()).routed
    assert routed["rep"] == "marta"  # ana is away for good: the next shift is marta's


def test_a_move_after_the_deadline_sets_no_new_breach() -> None:
    from routing.sla import timers

    roster = load_roster(ROSTER)
    lead = Lead.of(promotion())
    first = route(roster, lead, Loads(), Rotation()).routed
    assert [t.action for t in timers(roster, lead, first)][-1] == "breach"
    later = WEDNESDAY + timedelta(minutes=7)  # past the 5-minute deadline
    moved = {**assign(roster, lead, later, Loads(), Rotation(), tried=["ana"]).routed,
             "deadline": first["deadline"]}
    # The lead was acknowledged in time, or breached for its holder then: no breach now.
    assert "breach" not in [t.action for t in timers(roster, lead, moved, later, WEDNESDAY)]


def test_business_hours_count_elapsed_time_across_a_change_to_summer_time() -> None:
    from routing.hours import add_working_time
    from routing.roster import Hours

    always = Hours.model_validate({"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                                   "start": "00:00", "end": "00:00"})
    before = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # Madrid moves to summer time that night
    assert add_working_time(always, "Europe/Madrid", before, 86_400) == before + timedelta(
        days=1)
