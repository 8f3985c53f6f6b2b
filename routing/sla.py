"""What an assignment announces, and what each SLA step does: pure functions of the roster,
the lead and the time, shared by the live watchdog and `leadscore replay --roster`.

An assignment announces its `lead.routed` decision, a `new_lead` alert on each of the
rep's channels, and its SLA timers. A fast-track lead gets the team's ladder (remind,
reassign, escalate, each so long after the assignment) and a breach at its deadline; a
standard lead a breach at its due time. Timers name the rep they were set for: once the
lead moves on (acknowledged, completed, reassigned) they are moot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from leadscore.decisions import FAST_TRACK, Decision, ProspectPromoted, iso, lead_event
from routing.alerts import Kind, alert
from routing.policy import Assignment, Lead, card
from routing.roster import CompiledRoster
from routing.store import ACKNOWLEDGED, ASSIGNED, Announcement

BREACH = "breach"


@dataclass(frozen=True)
class Timer:
    """One SLA step of a lead, as stored: `<lead>|<step>|<action>|<rep>`."""

    lead: str
    step: str  # the ladder's index, or "breach"
    action: str  # remind, reassign, escalate or breach
    rep: str

    @property
    def member(self) -> str:
        return f"{self.lead}|{self.step}|{self.action}|{self.rep}"

    @classmethod
    def parse(cls, member: str) -> Timer:
        lead, step, action, rep = member.split("|", 3)
        return cls(lead, step, action, rep)


def announcements(
    roster: CompiledRoster, lead: Lead, routed: Decision, kind: Kind,
    received_at: int | None, decisions: list[Decision], *, with_timers: bool = True,
) -> list[Announcement]:
    """What assigning `lead` (as `routed`) announces: `decisions`, an alert of `kind` on
    each of the rep's channels, and (`with_timers`) the rep's SLA timers."""
    rep = roster.reps[routed["rep"]]
    items: list[Announcement] = [
        ("decision", decision["prospect"], orjson.dumps(decision)) for decision in decisions]
    shown = alert(kind, rep, card(routed, lead.promotion), received_at)
    items += [("alert", channel, shown["id"], orjson.dumps(shown)) for channel in rep.alerts]
    if with_timers:
        items += [("sla", when.timestamp(), timer.member)
                  for timer, when in timers(roster, lead, routed)]
    return items


def timers(roster: CompiledRoster, lead: Lead, routed: Decision) -> list[tuple[Timer, datetime]]:
    """The SLA timers of the rep `routed` names, counted from the first assignment (the
    promotion), skipping the ladder steps already behind the lead."""
    team = roster.teams[routed["team"]]
    rep = routed["rep"]
    if lead.track != FAST_TRACK:
        return [(Timer(lead.id, BREACH, BREACH, rep), datetime.fromisoformat(routed["due"]))]
    now = datetime.fromisoformat(routed["at"])
    ladder = team.sla.fast_track.ladder
    found = [(Timer(lead.id, str(index), step.action, rep),
              lead.at + timedelta(seconds=step.after))
             for index, step in enumerate(ladder)]
    deadline = lead.at + timedelta(seconds=team.sla.fast_track.acknowledge_within)
    found.append((Timer(lead.id, BREACH, BREACH, rep), deadline))
    return [(timer, when) for timer, when in found if when > now or now == lead.at]


def states_for(timer: Timer, track: str) -> tuple[str, ...]:
    """The lead states in which `timer` still applies: a fast-track step until the lead is
    acknowledged; a standard lead's breach until it is completed."""
    if track == FAST_TRACK:
        return (ASSIGNED,)
    return (ASSIGNED, ACKNOWLEDGED)


@dataclass(frozen=True)
class Step:
    """What a due timer does: announce, and maybe move the lead (`assignment`)."""

    announcements: list[Announcement]
    assignment: Assignment | None = None


def step(
    roster: CompiledRoster, timer: Timer, origin: dict[str, Any], routed: Decision,
    when: datetime, reassign: Assignment | None,
) -> Step:
    """The step `timer` takes, due at `when`, for a lead last routed as `routed`. For a
    reassignment, `reassign` is the policy's choice among the reps not tried yet (its
    escalation fallback included); for an escalation, any choice is replaced by the
    team's escalation target."""
    promotion: ProspectPromoted = origin["promotion"]
    lead = Lead.of(promotion)
    at = iso(when.timestamp())
    if timer.action == BREACH:
        breached = lead_event("sla.breached", lead.id, lead.prospect, timer.rep, at,
                              track=lead.track, deadline=at)
        return Step([("decision", lead.prospect, orjson.dumps(breached))])
    if timer.action == "remind":
        reminded = lead_event("lead.reminded", lead.id, lead.prospect, timer.rep, at)
        return Step(announcements(roster, lead, routed, "reminder", None, [reminded],
                                  with_timers=False))
    if reassign is None:
        return Step([])
    moved = reassign.routed
    if timer.action == "escalate":
        team = roster.teams[routed["team"]]
        moved = {**moved, "rep": team.escalation, "fallback": True}
    if moved["rep"] == timer.rep:
        return Step([])
    reason = ("escalated: not acknowledged" if timer.action == "escalate"
              else "not acknowledged in time")
    reassigned = lead_event("lead.reassigned", lead.id, lead.prospect, moved["rep"], at,
                            from_rep=timer.rep, reason=reason, routed=moved)
    items = announcements(roster, lead, moved, "reassigned", None, [reassigned])
    return Step(items, Assignment(moved, reassign.rotation))
