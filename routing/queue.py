"""A rep's work on their leads: list, acknowledge, claim, complete, reassign.

Each operation is idempotent (doing it twice answers "already" the second time) and
announces its decision (`lead.acknowledged`, `lead.completed`, `lead.reassigned`) through
the routing outbox, in the same Redis script as the change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from leadscore.decisions import iso, lead_event
from routing.policy import Lead, card
from routing.roster import CompiledRoster
from routing.sla import announcements, first_assignment
from routing.store import ACKNOWLEDGED, ASSIGNED, COMPLETED, Move, Store


@dataclass(frozen=True)
class Answer:
    #: ok, already, missing (no such lead), refused (not in a state that allows it),
    #: not yours (held by another rep), unknown rep.
    status: str
    detail: str | None = None


async def queue(store: Store, rep: str) -> dict[str, list[dict[str, Any]]]:
    """The rep's fast-track inbox and 24-hour queue, as lead cards ordered by due time."""
    found: dict[str, list[dict[str, Any]]] = {}
    for name in ("fast", "standard"):
        cards = []
        for lead_id, _ in await store.queue(rep, name):
            lead = await store.lead(lead_id)
            if lead is not None:
                cards.append({**card(lead["routed"], lead["origin"]["promotion"]),
                              "state": lead["state"]})
        found[name] = cards
    return found


async def acknowledge(store: Store, lead_id: str, rep: str, now: datetime) -> Answer:
    return await _set(store, lead_id, ACKNOWLEDGED, (ASSIGNED,), rep, "lead.acknowledged", now)


async def complete(store: Store, lead_id: str, rep: str | None, now: datetime) -> Answer:
    return await _set(store, lead_id, COMPLETED, (ASSIGNED, ACKNOWLEDGED), rep,
                      "lead.completed", now)


async def reassign(
    store: Store, roster: CompiledRoster, lead_id: str, to: str, now: datetime, why: str,
) -> Answer:
    """Give the lead to `to` (a rep of the roster), with its alert and SLA timers."""
    lead = await store.lead(lead_id)
    if lead is None:
        return Answer("missing")
    if to not in roster.reps:
        return Answer("unknown rep", to)
    if lead["rep"] == to:
        return Answer("already")
    promotion = lead["origin"]["promotion"]
    routed = {**lead["routed"], "rep": to, "fallback": False, "at": iso(now.timestamp())}
    event = lead_event("lead.reassigned", lead_id, promotion["prospect"], to,
                       iso(now.timestamp()), from_rep=lead["rep"], reason=why, routed=routed)
    items = announcements(roster, Lead.of(promotion), routed, "reassigned", None, [event],
                          started=now, first_assigned=first_assignment(lead["origin"]),
                          ordinal=len(lead["tried"]))
    move = Move.to(roster, routed, lead["tried"], now)
    # Once per move: the same request sent again finds it done.
    member = f"{lead_id}|move{len(lead['tried'])}|reassign|{to}|0"
    done = await store.step(member, lead_id, (ASSIGNED, ACKNOWLEDGED), lead["rep"], items,
                            move)
    return Answer({"ok": "ok", "done": "already"}.get(done, "refused"),
                  None if done in ("ok", "done") else lead["state"])


async def claim(
    store: Store, roster: CompiledRoster, lead_id: str, rep: str, now: datetime,
) -> Answer:
    """A rep takes a lead of their team and acknowledges it at once."""
    lead = await store.lead(lead_id)
    if lead is None:
        return Answer("missing")
    member = roster.reps.get(rep)
    if member is None or member.team != lead["routed"]["team"]:
        return Answer("refused", f"{rep} is not a rep of team {lead['routed']['team']}")
    if lead["rep"] != rep:
        moved = await reassign(store, roster, lead_id, rep, now, f"claimed by {rep}")
        if moved.status != "ok":
            return moved
    return await acknowledge(store, lead_id, rep, now)


async def _set(store: Store, lead_id: str, wanted: str, from_states: tuple[str, ...],
               rep: str | None, kind: str, now: datetime) -> Answer:
    lead = await store.lead(lead_id)
    if lead is None:
        return Answer("missing")
    event = lead_event(kind, lead_id, lead["origin"]["promotion"]["prospect"],
                       rep or lead["rep"], iso(now.timestamp()))
    status, detail = await store.set_state(lead_id, wanted, from_states, rep,
                                           [(event["prospect"], orjson.dumps(event))])
    return Answer(status, detail)
