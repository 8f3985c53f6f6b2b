"""A rep's work on their leads: list, acknowledge, claim, complete, reassign.

Each operation is idempotent (doing it twice answers "already" the second time) and
announces its decision (`lead.acknowledged`, `lead.completed`, `lead.reassigned`) through
the routing outbox, in the same Redis script as the change.
"""

from __future__ import annotations

import binascii
from base64 import urlsafe_b64decode, urlsafe_b64encode
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from leadscore.decisions import LEAD_ACKNOWLEDGED, LEAD_COMPLETED, iso, lead_event
from routing import metrics
from routing.lead_states import ACKNOWLEDGED, ASSIGNED, COMPLETED, QUEUES
from routing.policy import cannot_hold, card, outside
from routing.roster import CompiledRoster, Rep
from routing.sla import Timer, alert_items, handed_over
from routing.store import Move, Store

#: A queue page's size when none is asked for, and the largest one served.
PAGE, MAX_PAGE = 50, 500


@dataclass(frozen=True)
class Answer:
    #: ok, already, missing (no such lead), refused (not in a state that allows it, or a
    #: rep who cannot take it), not yours (held by another rep), unknown rep.
    status: str
    detail: str | None = None


@dataclass(frozen=True)
class Position:
    """Where a queue listing stopped: the last lead shown, by queue, due time and id. The
    next page starts after it even if leads were added or removed meanwhile."""

    queue: str
    due: float
    lead: str

    @property
    def cursor(self) -> str:
        return urlsafe_b64encode(orjson.dumps([self.queue, self.due, self.lead])).decode()

    @classmethod
    def of(cls, cursor: str) -> Position:
        """The position a cursor names; ValueError if it names none."""
        try:
            name, due, lead = orjson.loads(urlsafe_b64decode(cursor.encode()))
        except (ValueError, TypeError, binascii.Error):
            raise ValueError(f"cursor {cursor!r} is not one a queue listing gave") from None
        if name not in QUEUES or not isinstance(due, float | int) or not isinstance(lead, str):
            raise ValueError(f"cursor {cursor!r} is not one a queue listing gave")
        return cls(name, float(due), lead)


async def queue(
    store: Store, rep: str, limit: int = PAGE, after: Position | None = None,
) -> dict[str, Any]:
    """A page of the rep's fast-track inbox then 24-hour queue, as lead cards ordered by due
    time: `fast` and `standard`, the `total` in each queue, and the `next` page's cursor
    (None on the last page)."""
    start = QUEUES.index(after.queue) if after else 0
    found: list[tuple[str, str, float]] = []
    for name in QUEUES[start:]:
        # One more than the page holds tells whether there is a next page.
        room = limit + 1 - len(found)
        if room <= 0:
            break
        since = (after.due, after.lead) if after and after.queue == name else None
        found += [(name, lead_id, due) for lead_id, due in
                  await store.queue(rep, name, room, since)]
    following = None
    if len(found) > limit:
        found = found[:limit]
        name, lead_id, due = found[-1]
        following = Position(name, due, lead_id).cursor
    page: dict[str, Any] = {name: [] for name in QUEUES}
    for (name, _, _), lead in zip(found, await store.leads([item[1] for item in found]),
                                  strict=True):
        if lead is not None:
            page[name].append({**card(lead["routed"], lead["origin"]["promotion"]),
                               "state": lead["state"]})
    totals = {name: await store.queue_depth([rep], name) for name in QUEUES}
    return {**page, "total": totals, "next": following}


async def acknowledge(store: Store, lead_id: str, rep: str, now: datetime) -> Answer:
    return await _set(store, lead_id, ACKNOWLEDGED, (ASSIGNED,), rep, LEAD_ACKNOWLEDGED, now)


async def complete(store: Store, lead_id: str, rep: str | None, now: datetime) -> Answer:
    return await _set(store, lead_id, COMPLETED, (ASSIGNED, ACKNOWLEDGED), rep,
                      LEAD_COMPLETED, now)


async def reassign(
    store: Store, roster: CompiledRoster, lead_id: str, to: str, now: datetime,
    by: str | None = None, force: bool = False,
) -> Answer:
    """Give the lead to `to`, a rep of its team who can take it today; `force` gives it to
    any rep of the roster (a rep of another team takes it into their team)."""
    lead = await store.lead(lead_id)
    if lead is None:
        return Answer("missing")
    rep = roster.reps.get(to)
    if rep is None:
        return Answer("unknown rep", to)
    if lead["rep"] == to:
        return Answer("already")
    unable = cannot_hold(roster, rep.id, lead["routed"]["team"], now)
    if unable and not force:
        return Answer("refused", f"{unable}; force it to reassign anyway")
    why = f"reassigned by {by or 'the queue API'}" + (f" (forced: {unable})" if unable else "")
    return await _move(store, roster, lead, rep, now, why, "manual")


async def claim(
    store: Store, roster: CompiledRoster, lead_id: str, rep_id: str, now: datetime,
) -> Answer:
    """A rep takes a lead of their team and acknowledges it at once; its holder is told."""
    lead = await store.lead(lead_id)
    if lead is None:
        return Answer("missing")
    rep = roster.reps.get(rep_id)
    if rep is None:
        return Answer("unknown rep", rep_id)
    unable = outside(rep, lead["routed"]["team"])
    if unable:
        return Answer("refused", unable)
    if lead["rep"] != rep_id:
        moved = await _move(store, roster, lead, rep, now, f"claimed by {rep_id}", "claim")
        if moved.status != "ok":
            return moved
    return await acknowledge(store, lead_id, rep_id, now)


async def _move(store: Store, roster: CompiledRoster, lead: dict[str, Any], rep: Rep,
                now: datetime, why: str, counted_as: str) -> Answer:
    """Move the lead to `rep` with their alert and SLA timers; its holder is told it was
    taken, in the same step. Counted as a reassignment of reason `counted_as`."""
    lead_id, holder = lead["routed"]["lead"], lead["rep"]
    promotion = lead["origin"]["promotion"]
    routed = {**lead["routed"], "rep": rep.id, "team": rep.team, "fallback": False,
              "at": iso(now.timestamp())}
    moves = len(lead["tried"])
    items = handed_over(roster, lead["origin"], routed, None, holder, why, lead["tried"],
                        now).announcements
    if holder in roster.reps:
        items += alert_items(roster.reps[holder], "taken", card(routed, promotion), None, moves)
    move = Move.to(roster, routed, lead["tried"], now)
    # Once per move: the same request sent again finds it done.
    member = Timer.once(lead_id, f"move{moves}", "reassign", rep.id)
    done = await store.step(member, lead_id, (ASSIGNED, ACKNOWLEDGED), holder, items, move)
    if done == "ok":
        metrics.REASSIGNMENTS.labels(rep.team, counted_as).inc()
    return Answer({"ok": "ok", "done": "already"}.get(done, "refused"),
                  None if done in ("ok", "done") else lead["state"])


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
