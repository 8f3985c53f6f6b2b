"""Who gets a lead: a pure function of the roster, the lead, the time and the routing state.

No I/O and no clock: the time is the promotion's (event time), so a replay routes as live
did. The live router applies the answer atomically in Redis (`routing.store`);
`leadscore replay --roster` applies it in memory (`routing.offline`).

The steps: the team (the account's AE, a named account, the country's territory, else the
default team); then each of its inbound reps, excluded with a reason when out of office,
off shift (fast track only), at a cap, or already tried for this lead; then a smooth
weighted round robin among the others. Nobody eligible: the team's escalation target,
marked as a fallback; but a hand-raiser when nobody of the team is on shift goes to whoever
is on call, else to the escalation target at work within business hours, else waits for the
first rep to come on shift (`_nobody_on_shift`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from leadscore.decisions import FAST_TRACK, LEAD_ROUTED, Candidate, Decision, ProspectPromoted, iso
from routing.hours import add_working_time, next_start, within
from routing.roster import CompiledRoster, Rep, Team


@dataclass(frozen=True)
class Lead:
    """A promotion, as routing reads it."""

    id: str
    prospect: str
    track: str
    at: datetime
    promotion: ProspectPromoted

    @classmethod
    def of(cls, promotion: ProspectPromoted) -> Lead:
        at = datetime.fromisoformat(promotion["at"])
        return cls(lead_id(promotion["prospect"], promotion["at"]), promotion["prospect"],
                   promotion["track"], at, promotion)

    @property
    def country(self) -> str | None:
        country = self.promotion.get("profile", {}).get("country")
        return country.strip().upper() if isinstance(country, str) else None

    @property
    def domain(self) -> str:
        return self.prospect.rpartition("@")[2]


def lead_id(prospect: str, at: str) -> str:
    """One id per promotion: the same for every repeat of the decision, whichever worker
    reads it, so it is assigned and alerted once."""
    return "L" + hashlib.sha256(f"{prospect}|{at}".encode()).hexdigest()[:20]


@dataclass
class Rotation:
    """A team's smooth weighted round robin: each rep's current weight."""

    current: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Loads:
    """How many leads each rep got on the lead's day and in its month, in the rep's time
    zone (`load_periods` names them)."""

    day: Mapping[str, int] = field(default_factory=dict)
    month: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Assignment:
    """The policy's answer: the `lead.routed` record, and the team's rotation after it."""

    routed: Decision
    rotation: Rotation
    #: How the rep was chosen (`Choice.kind`).
    chosen: str = "rotation"

    @property
    def rep(self) -> str:
        rep: str = self.routed["rep"]
        return rep


def load_periods(rep: Rep, at: datetime) -> tuple[str, str]:
    """The day and the month a lead at `at` counts towards, in the rep's time zone."""
    local = at.astimezone(ZoneInfo(rep.time_zone))
    return local.date().isoformat(), local.strftime("%Y-%m")


def team_for(roster: CompiledRoster, lead: Lead) -> tuple[Team, str]:
    """The lead's team, and what matched."""
    owner = roster.accounts.get(lead.domain)
    if owner is not None:
        team, ae = owner
        how = f"account {lead.domain}, owned by AE {ae}" if ae else f"named account {lead.domain}"
        return roster.teams[team], how
    country = lead.country
    if country and country in roster.countries:
        return roster.teams[roster.countries[country]], f"country {country}"
    seen = f"country {country}" if country else "no country"
    return roster.teams[roster.default_team], f"no territory matched ({seen}): the default team"


def route(
    roster: CompiledRoster, lead: Lead, loads: Loads, rotation: Rotation,
    tried: Collection[str] = (),
) -> Assignment:
    """Assign `lead` at its promotion time; `tried` are reps it was taken from already."""
    return assign(roster, lead, lead.at, loads, rotation, tried)


def assign(
    roster: CompiledRoster, lead: Lead, now: datetime, loads: Loads, rotation: Rotation,
    tried: Collection[str] = (),
) -> Assignment:
    """Assign `lead` at `now` (a reassignment happens later than the promotion)."""
    team, matched = team_for(roster, lead)
    candidates: list[Candidate] = []
    eligible: list[Rep] = []
    for rep in roster.members(team.id):
        reason = _excluded(rep, lead, now, loads, tried)
        candidates.append({"rep": rep.id, "excluded": reason})
        if reason is None:
            eligible.append(rep)
    new_rotation = Rotation(dict(rotation.current))
    fast = lead.track == FAST_TRACK
    if eligible:
        chosen = Choice(_next_in_rotation(eligible, new_rotation), ROTATION, "rotation")
    elif fast and not any(_at_work(rep, now) for rep in roster.members(team.id)):
        chosen = _nobody_on_shift(roster, team, now, tried)
    else:
        chosen = Choice(team.escalation, ESCALATION_TARGET, "escalation_target", fallback=True)
    sla = team.sla
    due = chosen.waits_until or now
    if fast:
        deadline = due + timedelta(seconds=sla.fast_track.acknowledge_within)
    elif sla.standard.counts == "business hours" and team.business_hours is not None:
        hours = team.business_hours
        deadline = due = add_working_time(hours, hours.time_zone, now, sla.standard.work_within)
    else:
        deadline = due = now + timedelta(seconds=sla.standard.work_within)
    routed: Decision = {
        "type": LEAD_ROUTED, "lead": lead.id, "prospect": lead.prospect, "track": lead.track,
        "team": team.id, "matched": matched, "candidates": candidates, "rep": chosen.rep,
        "fallback": chosen.fallback, "chosen_by": chosen.how, "due": iso(due.timestamp()),
        "deadline": iso(deadline.timestamp()), "at": iso(now.timestamp()),
        "roster_version": roster.version,
    }
    return Assignment(routed, new_rotation, chosen.kind)


#: How a rep is chosen, in explanations (`chosen_by`): the usual way, and the escalation
#: target when nobody in the team can take the lead.
ROTATION = "the rotation"
ESCALATION_TARGET = "nobody in the team can take it: the escalation target"


@dataclass(frozen=True)
class Choice:
    """Who gets a lead and why (`how`, said in `lead.routed`'s `chosen_by`; `kind`, for
    counting); a lead nobody can take now `waits_until` a rep's shift, its deadline
    counted from then."""

    rep: str
    how: str
    kind: Literal["rotation", "on_call", "escalation_target", "waits_for_shift"]
    fallback: bool = False
    waits_until: datetime | None = None


def _nobody_on_shift(
    roster: CompiledRoster, team: Team, now: datetime, tried: Collection[str],
) -> Choice:
    """A hand-raiser no rep of the team can take now: whoever is on call; else, within the
    team's business hours, the escalation target if they are at work; else the first rep
    of the team (or the escalation target) to come on shift, the lead waiting for them."""
    for window in team.on_call:
        rep = roster.reps.get(window.rep)
        if rep is not None and rep.id not in tried and not out_of_office(rep, now) and \
                within(window, window.time_zone, now):
            return Choice(rep.id, f"nobody on shift: {rep.id} is on call", "on_call")
    target = roster.reps.get(team.escalation)
    open_now = team.business_hours is None or within(
        team.business_hours, team.business_hours.time_zone, now)
    if open_now and target is not None and _at_work(target, now):
        return Choice(target.id, ESCALATION_TARGET, "escalation_target", fallback=True)
    first: tuple[datetime, Rep] | None = None
    people = [rep for rep in [*roster.members(team.id), *([target] if target else [])]
              if rep.id not in tried or rep.id == team.escalation]
    for rep in people:
        start = _next_shift(rep, now)
        if start is not None and (first is None or start < first[0]):
            first = (start, rep)
    if first is None:
        return Choice(team.escalation, ESCALATION_TARGET, "escalation_target", fallback=True)
    start, rep = first
    local = start.astimezone(ZoneInfo(rep.time_zone))
    return Choice(rep.id, f"nobody on shift or on call: waits for {rep.id}'s shift, "
                          f"{local:%a %d %b %H:%M} {rep.time_zone}", "waits_for_shift",
                  fallback=rep.id == team.escalation, waits_until=start)


def _at_work(rep: Rep, now: datetime) -> bool:
    return not out_of_office(rep, now) and within(rep.working_hours, rep.time_zone, now)


def _next_shift(rep: Rep, now: datetime) -> datetime | None:
    """When the rep next starts a shift on a day they are not out of office (an absence is
    stepped over whole: it may run for years)."""
    zone = ZoneInfo(rep.time_zone)
    start = next_start(rep.working_hours, rep.time_zone, now)
    while start is not None:
        day = start.astimezone(zone).date()
        away = next((span for span in rep.out_of_office if span.start <= day <= span.end),
                    None)
        if away is None:
            return start
        try:
            back = datetime.combine(away.end + timedelta(days=1), time(0), zone)
        except OverflowError:  # away until the end of the calendar
            return None
        start = next_start(rep.working_hours, rep.time_zone, back - timedelta(microseconds=1))
    return None


def cannot_hold(roster: CompiledRoster, rep_id: str, team: str, now: datetime) -> str | None:
    """Why the rep `rep_id` cannot hold a lead of `team` at `now` (not in the roster, not an
    MRR of the team, out of office), or None. The team's escalation target and its on-call
    reps may be of another team. A roster change or an absence hands such a rep's open
    leads over; a manual reassignment to them is refused unless forced."""
    rep = roster.reps.get(rep_id)
    if rep is None:
        return f"{rep_id} left the roster"
    held = roster.teams.get(team)
    named = held is not None and (rep_id == held.escalation
                                  or any(window.rep == rep_id for window in held.on_call))
    if not named and (why := outside(rep, team)):
        return why
    if out_of_office(rep, now):
        return f"{rep_id} is out of office today"
    return None


def outside(rep: Rep, team: str) -> str | None:
    """Why `rep` does not work the inbound leads of `team`, or None if they do."""
    if rep.role != "MRR":
        return f"{rep.id} is an {rep.role}: only MRRs take inbound leads"
    if rep.team != team:
        return f"{rep.id} is in team {rep.team}, the lead in team {team}"
    return None


def _excluded(rep: Rep, lead: Lead, now: datetime, loads: Loads,
              tried: Collection[str]) -> str | None:
    if rep.id in tried:
        return "had this lead already"
    if out_of_office(rep, now):
        return "out of office"
    if lead.track == FAST_TRACK and not within(rep.working_hours, rep.time_zone, now):
        return "off shift"
    if rep.daily_cap is not None and loads.day.get(rep.id, 0) >= rep.daily_cap:
        return f"at daily cap {rep.daily_cap}"
    if loads.month.get(rep.id, 0) >= rep.monthly_cap:
        return f"at monthly cap {rep.monthly_cap}"
    return None


def out_of_office(rep: Rep, now: datetime) -> bool:
    """Whether `now` falls on one of the rep's days out of office, in their time zone."""
    today = now.astimezone(ZoneInfo(rep.time_zone)).date()
    return any(away.start <= today <= away.end for away in rep.out_of_office)


def _next_in_rotation(eligible: list[Rep], rotation: Rotation) -> str:
    """Smooth weighted round robin among `eligible` (nginx's): each gains its weight, the
    highest is chosen (the first in roster order on a tie) and gives back the total. Equal
    weights make a strict rotation; a rep who could not take a lead keeps their place."""
    current = rotation.current
    total = 0
    for rep in eligible:
        current[rep.id] = current.get(rep.id, 0) + rep.weight
        total += rep.weight
    chosen = max(eligible, key=lambda rep: current[rep.id]).id
    current[chosen] -= total
    return chosen


def card(routed: Decision, promotion: ProspectPromoted) -> dict[str, Any]:
    """What an alert and a queue item show of a lead: the routing and the lead card."""
    keep = ("score", "fit", "behavior", "top_rules", "trigger", "profile")
    return {**{name: promotion.get(name) for name in keep},
            **{name: routed[name] for name in ("lead", "prospect", "track", "team", "matched",
                                                "rep", "fallback", "due", "deadline", "at")}}
