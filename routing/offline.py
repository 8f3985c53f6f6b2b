"""Routing offline, for `leadscore replay --roster`: the live policy and SLA steps, with
the routing state in memory and the event clock as the only clock.

Nobody acknowledges anything offline, so every fast-track ladder plays out: reminders,
reassignments, escalations and breaches come as they would for leads nobody touched. A
roster change can be previewed like a rule change, on the same past events.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from leadscore.decisions import (
    PROSPECT_PROMOTED,
    PROSPECT_REENGAGED,
    Decision,
    ProspectPromoted,
    iso,
)
from routing.lead_states import ASSIGNED
from routing.policy import Lead, Loads, Rotation, assign, load_periods, route, team_for
from routing.roster import CompiledRoster, RosterError, load_roster
from routing.sla import (
    BREACH,
    Timer,
    announcements,
    ladder_start,
    reengaged,
    states_for,
    step,
)
from routing.store import Announcement

#: What a preview can and cannot promise, printed with every one.
PREVIEW_NOTE = (
    "Routing preview: the team, the candidates and why each was passed over, and the SLA "
    "times are what live routing does with these events. The rotation's pick may differ: "
    "live, it follows the order in which promotions reach the router across partitions "
    "and workers.")


@dataclass
class _Lead:
    origin: dict[str, Any]
    routed: Decision
    rep: str
    tried: list[str]
    state: str = ASSIGNED


@dataclass
class Offline:
    """The routing state of one offline run."""

    roster: CompiledRoster
    rotations: dict[str, Rotation] = field(default_factory=dict)
    loads: Counter[tuple[str, str]] = field(default_factory=Counter)
    leads: dict[str, _Lead] = field(default_factory=dict)
    timers: list[tuple[float, str]] = field(default_factory=list)
    #: Timers carried out (a breach timer is set again by each assignment of its lead), and
    #: hand-raises told.
    done: set[str] = field(default_factory=set)
    #: Each prospect's last lead.
    open: dict[str, str] = field(default_factory=dict)

    def route(self, promotion: ProspectPromoted) -> list[Decision]:
        """Assign a promotion (once: a repeat makes nothing), after the steps due before."""
        lead = Lead.of(promotion)
        made = self.until(lead.at)
        if lead.id in self.leads:
            return made
        team, _ = team_for(self.roster, lead)
        assignment = route(self.roster, lead, self._loads(team.id, lead.at),
                           self.rotations.get(team.id, Rotation()))
        self.rotations[team.id] = assignment.rotation
        self._count(assignment.rep, lead.at)
        self.open[lead.prospect] = lead.id
        started = iso(ladder_start(assignment.routed).timestamp())
        self.leads[lead.id] = _Lead({"promotion": promotion, "received_at": None,
                                     "assigned_at": started},
                                    assignment.routed, assignment.rep, [assignment.rep])
        return made + self._announce(announcements(
            self.roster, lead, assignment.routed, "new_lead", None, [assignment.routed]))

    def tell_owner(self, raised: Decision) -> list[Decision]:
        """A lead's new hand-raise: its owner is told, once per trigger event (nobody
        closes a lead offline, so the prospect's last lead is open)."""
        made = self.until(datetime.fromisoformat(raised["at"]))
        held = self.leads.get(self.open.get(raised["prospect"], ""))
        told = f"{raised['trigger']['id']}|{held.rep if held else ''}"
        if held is None or told in self.done:
            return made
        self.done.add(told)
        return made + self._announce(reengaged(self.roster, held.origin, held.routed, raised,
                                               None))

    def until(self, now: datetime) -> list[Decision]:
        """Carry out the SLA steps due by `now`, in order."""
        made: list[Decision] = []
        while self.timers and self.timers[0][0] <= now.timestamp():
            when, member = heapq.heappop(self.timers)
            if member in self.done:
                continue
            self.done.add(member)
            made += self._step(Timer.parse(member), datetime.fromtimestamp(when, UTC))
        return made

    def _step(self, timer: Timer, when: datetime) -> list[Decision]:
        held = self.leads.get(timer.lead)
        if held is None:
            return []
        track = held.origin["promotion"]["track"]
        if held.state not in states_for(timer, track) or (
                timer.action != BREACH and held.rep != timer.rep):
            return []
        reassign = None
        if timer.action in ("reassign", "escalate"):
            lead = Lead.of(held.origin["promotion"])
            team, _ = team_for(self.roster, lead)
            reassign = assign(self.roster, lead, when, self._loads(team.id, when),
                              self.rotations.get(team.id, Rotation()), tried=held.tried)
        planned = step(self.roster, timer, held.origin, held.routed, when, reassign,
                       held.tried)
        if planned.routed is not None:
            held.rep = planned.routed["rep"]
            held.routed = planned.routed
            held.tried.append(held.rep)
            held.state = ASSIGNED
            self._count(held.rep, when)
            if planned.rotation is not None:
                self.rotations[planned.routed["team"]] = planned.rotation
        return self._announce(planned.announcements)

    def _announce(self, items: Iterable[Announcement]) -> list[Decision]:
        made = []
        for item in items:
            if item[0] == "decision":
                made.append(orjson.loads(item[2]))
            elif item[0] == "sla":
                heapq.heappush(self.timers, (item[1], item[2]))
        return made

    def _loads(self, team: str, at: datetime) -> Loads:
        day, month = {}, {}
        for rep in self.roster.members(team):
            day_key, month_key = load_periods(rep, at)
            day[rep.id] = self.loads[(rep.id, day_key)]
            month[rep.id] = self.loads[(rep.id, month_key)]
        return Loads(day, month)

    def _count(self, rep_id: str, at: datetime) -> None:
        rep = self.roster.reps.get(rep_id)
        if rep is not None:
            for period in load_periods(rep, at):
                self.loads[(rep_id, period)] += 1


def with_routing(roster: CompiledRoster, items: Iterable[Any]) -> Iterator[Any]:
    """Replay's output (decisions, then its end) with each promotion's routing decisions
    after it, and the steps due by the end of the replay before the end."""
    offline = Offline(roster)
    for item in items:
        if not isinstance(item, dict):  # the replay's end: steps due by its time, then it
            now = getattr(item, "now", None)
            if now is not None:
                yield from offline.until(now)
            yield item
            continue
        yield item
        if item.get("type") == PROSPECT_PROMOTED:
            yield from offline.route(item)  # type: ignore[arg-type]
        elif item.get("type") == PROSPECT_REENGAGED:
            yield from offline.tell_owner(item)


def preview(path: Path) -> tuple[Callable[[Iterable[Any]], Iterator[Any]], str] | str:
    """`replay --roster` and `explain --roster`: what adds routing's decisions to a
    replay's, with the roster at `path`, and the note on what a preview promises; or the
    roster's errors."""
    try:
        roster = load_roster(path)
    except RosterError as error:
        return str(error)
    return partial(with_routing, roster), PREVIEW_NOTE
