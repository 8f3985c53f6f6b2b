"""What an assignment announces, and what each SLA step does: pure functions of the roster,
the lead and the time, shared by the live watchdog and `leadscore replay --roster`.

An assignment announces its `lead.routed` decision, a `new_lead` alert on each of the
rep's channels, and its SLA timers. A fast-track lead gets the team's ladder and a breach at
its deadline; a standard lead a breach at its due time. Remind and reassign count from each
assignment (each rep gets the whole wait), but escalate counts from the lead's first
assignment: `escalate: 10m` is the promise that a team lead hears of an unanswered
hand-raiser ten minutes after it was first handed out, however many reps it passed since.
Timers name the rep they were set for: once the lead moves on (acknowledged, completed,
reassigned) they are moot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import orjson

from leadscore.decisions import (
    FAST_TRACK,
    LEAD_REASSIGNED,
    LEAD_REENGAGED,
    LEAD_REMINDED,
    SLA_BREACHED,
    Decision,
    ProspectPromoted,
    iso,
    lead_event,
)
from leadscore.durations import written
from routing.alerts import Kind, alert
from routing.lead_states import ACKNOWLEDGED, ASSIGNED
from routing.policy import Assignment, Lead, Rotation, card
from routing.roster import CompiledRoster, Rep
from routing.store import Announcement

BREACH = "breach"
#: A breach's step sorts before the ladder's at the same time (Redis orders ties by member),
#: so it names the rep who held the lead at the deadline.
BREACH_STEP, FIRST_RUNG = "0", 1


@dataclass(frozen=True)
class Timer:
    """One SLA step of a lead, as stored: `<lead>|<step>|<action>|<rep>|<due>`. A breach
    names no rep: it happens once per lead, whoever holds it."""

    lead: str
    step: str  # the ladder's rung (from 1), or BREACH_STEP
    action: str  # remind, reassign, escalate or breach
    rep: str
    #: When it is due (epoch seconds): the sorted set's score also serves as a lease.
    due: float

    @property
    def member(self) -> str:
        return f"{self.lead}|{self.step}|{self.action}|{self.rep}|{self.due:.3f}"

    @staticmethod
    def once(lead: str, step: str, action: str, rep: str) -> str:
        """The member of a step no clock sets (a move by the queue API or a hand-over, an
        owner told of a hand-raise), marked done on the lead so it happens once."""
        return f"{lead}|{step}|{action}|{rep}|0"

    @classmethod
    def parse(cls, member: str) -> Timer:
        lead, step, action, rep, due = member.split("|", 4)
        return cls(lead, step, action, rep, float(due))


def announcements(
    roster: CompiledRoster, lead: Lead, routed: Decision, kind: Kind,
    received_at: int | None, decisions: list[Decision], *, with_timers: bool = True,
    started: datetime | None = None, first_assigned: datetime | None = None,
    ordinal: int | str = 0,
) -> list[Announcement]:
    """What assigning `lead` (as `routed`) announces: `decisions`, an alert of `kind` on
    each of the rep's channels (`ordinal` tells apart the same kind of alert to the same
    rep), and (`with_timers`) the rep's SLA timers, its ladder counted from `started`
    (default: the assignment's time) and its escalation from `first_assigned` (default:
    this is the first assignment)."""
    items: list[Announcement] = [
        ("decision", decision["prospect"], orjson.dumps(decision)) for decision in decisions]
    rep = roster.reps.get(routed["rep"])  # None: left the roster since (nobody to alert)
    if rep is not None:
        items += alert_items(rep, kind, card(routed, lead.promotion), received_at, ordinal)
    if with_timers:
        items += [("sla", timer.due, timer.member)
                  for timer in timers(roster, lead, routed, started, first_assigned)]
    return items


def alert_items(rep: Rep, kind: Kind, shown: dict[str, Any], received_at: int | None,
                ordinal: int | str = 0) -> list[Announcement]:
    """An alert of `kind` showing the lead card `shown`, on each of the rep's channels."""
    sent = alert(kind, rep, shown, received_at, ordinal)
    return [("alert", channel, sent["id"], orjson.dumps(sent)) for channel in rep.alerts]


def timers(
    roster: CompiledRoster, lead: Lead, routed: Decision, started: datetime | None = None,
    first_assigned: datetime | None = None,
) -> list[Timer]:
    """The SLA timers for the rep `routed` names. A fast-track ladder's reminders and
    reassignments run from `started` (the assignment; a router that is late starts it when
    it assigns, so the rep gets the whole ladder); its escalation from `first_assigned`
    (the lead's first assignment). Rungs due at or after the escalation would only delay
    it, so they are left out; once the escalation is past (it fired, or the lead was taken
    in hand before it), a new holder is only reminded. The breach comes at the lead's
    deadline (set at its first assignment and kept through moves), once per lead: a move
    after the deadline sets no breach."""
    team = roster.teams[routed["team"]]
    deadline = datetime.fromisoformat(routed["deadline"])
    breach = [Timer(lead.id, BREACH_STEP, BREACH, "", deadline.timestamp())]
    if lead.track != FAST_TRACK:
        return breach
    base = ladder_start(routed, started)
    if first_assigned is not None and deadline <= base:
        # A move after the deadline: the breach fired for the holder then, or the lead was
        # acknowledged in time; set again, it would fire at once against the new rep.
        breach = []
    first = first_assigned or base
    ladder = [(str(rung), step.action,
               (first if step.action == "escalate" else base) + timedelta(seconds=step.after))
              for rung, step in enumerate(team.sla.fast_track.ladder, start=FIRST_RUNG)]
    escalation = min((due for _, action, due in ladder if action == "escalate"), default=None)
    if escalation is not None and escalation > base:
        ladder = [rung for rung in ladder if rung[2] < escalation
                  or (rung[1] == "escalate" and rung[2] == escalation)]
    elif escalation is not None:
        ladder = [rung for rung in ladder if rung[1] == "remind"]
    return [*(Timer(lead.id, rung, action, routed["rep"], due.timestamp())
              for rung, action, due in ladder), *breach]


def reengaged(
    roster: CompiledRoster, origin: dict[str, Any], routed: Decision, raised: Decision,
    received_at: int | None,
) -> list[Announcement]:
    """What a lead's new hand-raise (`raised`, a `prospect.reengaged` decision) announces:
    `lead.reengaged`, and a `re_engaged` alert to the rep holding the lead, its card showing
    the new trigger and score. The alert's id is the trigger event's, so each hand-raise
    alerts once."""
    promotion = cast(ProspectPromoted, {**origin["promotion"], "score": raised["score"],
                                        "trigger": raised["trigger"]})
    lead = Lead.of(promotion)
    told = lead_event(LEAD_REENGAGED, lead.id, lead.prospect, routed["rep"], raised["at"],
                      trigger=raised["trigger"])
    return announcements(roster, lead, routed, "re_engaged", received_at, [told],
                         with_timers=False, ordinal=raised["trigger"]["id"])


def ladder_start(routed: Decision, started: datetime | None = None) -> datetime:
    """When a fast-track assignment's ladder starts: when it was made (`started`, default
    its time), or, for a lead that waits for a rep's shift, when that shift starts."""
    return max(started or datetime.fromisoformat(routed["at"]),
               datetime.fromisoformat(routed["due"]))


def first_assignment(origin: dict[str, Any]) -> datetime:
    """When a lead was first assigned, from its stored origin (leads stored before it was
    recorded: their promotion's time)."""
    at = origin.get("assigned_at") or origin["promotion"]["at"]
    return datetime.fromisoformat(at)


def states_for(timer: Timer, track: str) -> tuple[str, ...]:
    """The lead states in which `timer` still applies: a fast-track step until the lead is
    acknowledged; a standard lead's breach until it is completed."""
    if track == FAST_TRACK:
        return (ASSIGNED,)
    return (ASSIGNED, ACKNOWLEDGED)


@dataclass(frozen=True)
class Step:
    """What a due timer does: announce, and maybe move the lead (`routed`, its new
    routing; `rotation`, the team's rotation after it, when the rotation chose the rep)."""

    announcements: list[Announcement]
    routed: Decision | None = None
    rotation: Rotation | None = None


def step(
    roster: CompiledRoster, timer: Timer, origin: dict[str, Any], routed: Decision,
    when: datetime, reassign: Assignment | None, tried: list[str],
) -> Step:
    """The step `timer` takes, due at `when`, for a lead last routed as `routed` and held
    by the reps in `tried` so far. For a reassignment, `reassign` is the policy's choice
    among the reps not tried yet (its escalation fallback included); for an escalation,
    the team's escalation target replaces it."""
    promotion: ProspectPromoted = origin["promotion"]
    lead = Lead.of(promotion)
    at = iso(when.timestamp())
    if timer.action == BREACH:
        breached = lead_event(SLA_BREACHED, lead.id, lead.prospect, routed["rep"], at,
                              track=lead.track, deadline=at)
        return Step([("decision", lead.prospect, orjson.dumps(breached))])
    if timer.action == "remind":
        reminded = lead_event(LEAD_REMINDED, lead.id, lead.prospect, timer.rep, at)
        return Step(announcements(roster, lead, routed, "reminder", None, [reminded],
                                  with_timers=False, ordinal=int(timer.step)))
    if reassign is None or (timer.action == "reassign" and reassign.chosen == "waits_for_shift"):
        return Step([])  # nobody can take it now: it stays, and the ladder's escalation follows
    # The lead keeps its deadline: the prospect's wait does not start again with a move.
    moved = {**reassign.routed, "deadline": routed["deadline"]}
    rotation: Rotation | None = reassign.rotation
    if timer.action == "escalate":
        team = roster.teams[routed["team"]]
        moved = {**moved, "rep": team.escalation, "fallback": True,
                 "chosen_by": "the ladder's escalation"}
        rotation = None
    if moved["rep"] == timer.rep:
        return Step([])
    if timer.action == "escalate":
        after = roster.teams[routed["team"]].sla.fast_track.ladder[int(timer.step) - 1].after
        reason = f"escalated: not acknowledged {written(after)} after its first assignment"
    else:
        reason = ("not acknowledged in time; nobody else can take it: escalated"
                  if moved["fallback"] else "not acknowledged in time")
    return handed_over(roster, origin, moved, rotation, timer.rep, reason, tried, when)


def handed_over(
    roster: CompiledRoster, origin: dict[str, Any], moved: Decision,
    rotation: Rotation | None, from_rep: str, reason: str, tried: list[str], when: datetime,
) -> Step:
    """A lead handed from `from_rep` to the rep `moved` names, for `reason`: the
    `lead.reassigned` decision, the new rep's alert and SLA timers."""
    lead = Lead.of(origin["promotion"])
    reassigned = lead_event(LEAD_REASSIGNED, lead.id, lead.prospect, moved["rep"],
                            iso(when.timestamp()), from_rep=from_rep, reason=reason,
                            routed=moved)
    items = announcements(roster, lead, moved, "reassigned", None, [reassigned],
                          first_assigned=first_assignment(origin), ordinal=len(tried))
    return Step(items, moved, rotation)
