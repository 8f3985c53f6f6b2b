"""Routing's Redis state on a real Redis: what a lead leaves behind once it is closed, where
the leads of a rep who can no longer hold them go, and each script's contract with
`Store`: one test per outcome it answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from leadscore.decisions import Decision
from routing import queue
from routing.keys import Keys
from routing.lead_states import ACKNOWLEDGED, ASSIGNED, COMPLETED
from routing.policy import Lead, Loads, Rotation, route
from routing.roster import CompiledRoster, load_roster, roster_from_text
from routing.router import hand_over_stranded_leads
from routing.sla import Timer, announcements, step, timers
from routing.store import Announcement, Move, Store
from tests.test_routing_policy import promotion

pytestmark = pytest.mark.redis

ROSTER = Path(__file__).resolve().parent.parent / "routing" / "roster.yaml"


@pytest.fixture
async def store(redis_url: str, unique: str) -> AsyncIterator[Store]:
    client = Redis.from_url(redis_url)
    try:
        yield Store(client, unique, closed_retention=1)
    finally:
        keys = [key async for key in client.scan_iter(f"{{{unique}}}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@dataclass(frozen=True)
class Planned:
    """An assignment decided as the live router decides it, not applied yet."""

    routed: Decision
    version: str
    rotation: Rotation
    origin: bytes
    items: list[Announcement]

    async def apply(self, store: Store, roster: CompiledRoster) -> str:
        return await store.assign(roster, self.routed, self.version, self.rotation,
                                  self.origin, self.items)


async def plan(store: Store, roster: CompiledRoster, email: str, track: str,
               at: datetime) -> Planned:
    made = promotion(email, track, at)
    lead = Lead.of(made)
    snapshot = await store.snapshot(roster, "emea", lead.at)
    assignment = route(roster, lead, snapshot.loads, snapshot.rotation)
    items = announcements(roster, lead, assignment.routed, "new_lead", None,
                          [assignment.routed])
    origin = orjson.dumps({"promotion": made, "received_at": None})
    return Planned(assignment.routed, snapshot.version, assignment.rotation, origin, items)


async def assign(store: Store, roster: CompiledRoster, email: str, track: str,
                 at: datetime) -> str:
    """Assign a promotion as the live router does; returns the lead id."""
    planned = await plan(store, roster, email, track, at)
    assert await planned.apply(store, roster) == "ok"
    return str(planned.routed["lead"])


async def timers_of(store: Store, lead_id: str) -> list[str]:
    members: list[bytes] = await store.redis.zrange(store.keys.sla, 0, -1)  # type: ignore[assignment]
    return [member.decode() for member in members if member.decode().startswith(lead_id)]


async def test_a_completed_lead_takes_its_timers_with_it_and_leaves_redis_after_retention(
    store: Store,
) -> None:
    roster = load_roster(ROSTER)
    now = datetime.now(UTC)
    fast = await assign(store, roster, "fast@acme.example", "fast_track", now)
    standard = await assign(store, roster, "std@acme.example", "standard", now)
    assert len(await timers_of(store, fast)) == 4  # remind, reassign, escalate, breach
    assert len(await timers_of(store, standard)) == 1  # the breach at its due time
    assert (await queue.complete(store, fast, None, now)).status == "ok"
    held = (await store.lead(standard) or {})["rep"]
    assert (await queue.acknowledge(store, standard, held, now)).status == "ok"
    # Closed: its moot timers leave at once, not when due; the lead after the retention.
    assert await timers_of(store, fast) == []
    assert await store.redis.ttl(store.keys.lead(fast)) > 0
    # Still open (acknowledged): its breach timer and record stay.
    assert len(await timers_of(store, standard)) == 1
    assert await store.redis.ttl(store.keys.lead(standard)) == -1
    for _ in range(100):
        if await store.lead(fast) is None:
            break
        await asyncio.sleep(0.05)  # Redis expires the key on its own clock
    assert await store.lead(fast) is None
    assert (await queue.complete(store, fast, None, now + timedelta(days=2))).status == \
        "missing"


def without_rep(text: str, rep: str) -> str:
    """The roster text with the rep `rep`'s entry removed."""
    start = text.index(f"  - id: {rep}\n")
    return text[:start] + text[text.index("  - id: ", start + 1):]


async def set_aside_nothing(lead_id: str, error: Exception) -> None:
    raise AssertionError(f"{lead_id} set aside: {error!r}")


async def outbox(store: Store) -> list[dict[str, Any]]:
    entries: Any = await store.redis.xrange(store.keys.outbox)
    return [orjson.loads(fields[b"value"]) for _, fields in entries]


async def test_a_rep_who_leaves_the_roster_or_goes_away_has_their_open_leads_handed_over(
    store: Store,
) -> None:
    roster = load_roster(ROSTER)
    now = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # a Wednesday, everyone on shift
    leads = [await assign(store, roster, f"p{n}@acme.example", track, now)
             for n, track in enumerate(["fast_track", "standard", "standard"])]
    held = {lead_id: (await store.lead(lead_id) or {})["rep"] for lead_id in leads}
    assert sorted(held.values()) == ["ana", "bruno", "marta"]
    ana_lead = next(lead_id for lead_id, rep in held.items() if rep == "ana")
    before = (await store.lead(ana_lead) or {})["routed"]

    later = now + timedelta(hours=1)
    gone = roster_from_text("roster.yaml", without_rep(ROSTER.read_text(), "ana"))
    assert await hand_over_stranded_leads(gone, store, later, set_aside_nothing) == 1
    after = await store.lead(ana_lead) or {}
    assert after["rep"] in ("bruno", "marta") and after["state"] == "assigned"
    assert (after["routed"]["due"], after["routed"]["deadline"]) == (
        before["due"], before["deadline"])  # the prospect's wait does not start again
    assert await store.queue("ana", "fast", 10) + await store.queue("ana", "standard", 10) == []
    [moved] = [d for d in await outbox(store) if d["type"] == "lead.reassigned"]
    assert (moved["from_rep"], moved["rep"], moved["reason"]) == (
        "ana", after["rep"], "ana left the roster")
    # Once: another worker (or the next tick) finds nothing left to do.
    assert await hand_over_stranded_leads(gone, store, later, set_aside_nothing) == 0

    # Out of office from today, in a roster that keeps them: the same.
    text = ROSTER.read_text().replace(
        "  - id: bruno\n", "  - id: bruno\n    out_of_office: [{start: 2026-03-04, end: "
        "2026-03-10}]\n")
    away = roster_from_text("roster.yaml", without_rep(text, "ana"))
    assert await hand_over_stranded_leads(away, store, later, set_aside_nothing) >= 1
    assert await store.queue("bruno", "fast", 10) + await store.queue("bruno", "standard", 10) == []
    reasons = {d["reason"] for d in await outbox(store) if d["type"] == "lead.reassigned"}
    assert "bruno is out of office today" in reasons


def test_a_step_for_a_rep_who_left_the_roster_announces_no_alert_and_does_not_fail() -> None:
    roster = load_roster(ROSTER)
    made = promotion("p@acme.example")
    lead = Lead.of(made)
    routed = route(roster, lead, Loads(), Rotation()).routed
    gone = roster_from_text("roster.yaml", without_rep(ROSTER.read_text(), routed["rep"]))
    [timer] = [t for t in timers(roster, lead, routed) if t.action == "remind"]
    planned = step(gone, timer, {"promotion": made}, routed, lead.at, None, [routed["rep"]])
    assert [item[0] for item in planned.announcements] == ["decision"]  # no alert, no KeyError


async def test_a_rep_moved_to_another_team_hands_over_the_old_teams_leads_and_is_forgotten(
    store: Store,
) -> None:
    roster = load_roster(ROSTER)
    now = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    leads = [await assign(store, roster, f"m{n}@acme.example", "standard", now)
             for n in range(3)]
    [bruno_lead] = [lead_id for lead_id in leads
                    if (await store.lead(lead_id) or {})["rep"] == "bruno"]
    moved = roster_from_text("roster.yaml", ROSTER.read_text().replace(
        "    team: emea\n    time_zone: Europe/Lisbon", "    team: americas\n"
        "    time_zone: Europe/Lisbon"))
    assert await hand_over_stranded_leads(moved, store, now, set_aside_nothing) == 1
    assert (await store.lead(bruno_lead) or {})["rep"] in ("ana", "marta")
    [handed] = [d for d in await outbox(store) if d["type"] == "lead.reassigned"]
    assert handed["reason"] == "bruno is in team americas, the lead in team emea"
    assert "bruno" not in await store.holders()  # nothing left to look at


async def test_closed_leads_stored_before_they_expired_get_the_retention_once(
    store: Store,
) -> None:
    old = store.keys.lead("Lold")
    await store.redis.hset(old, mapping={"state": "completed", "routed": "{}"})
    await store.redis.hset(store.keys.lead("Lopen"), mapping={"state": "assigned"})
    assert await store.expire_closed_leads() == 1
    assert await store.redis.ttl(old) > 0
    assert await store.redis.ttl(store.keys.lead("Lopen")) == -1
    assert await store.expire_closed_leads() == 0  # marked done: not scanned again


# Each script through `Store`, one test per outcome.

NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # a Wednesday, everyone on shift


async def test_assign_ok_stores_the_lead_in_its_reps_queue_with_its_announcements(
    store: Store,
) -> None:
    roster = load_roster(ROSTER)
    planned = await plan(store, roster, "ok@acme.example", "fast_track", NOW)
    assert await planned.apply(store, roster) == "ok"
    lead_id, rep = planned.routed["lead"], planned.routed["rep"]
    lead = await store.lead(lead_id) or {}
    assert (lead["rep"], lead["state"], lead["tried"], lead["queue"]) == (
        rep, ASSIGNED, [rep], "fast")
    assert [item for item, _ in await store.queue(rep, "fast", 10)] == [lead_id]
    assert await store.open_lead(planned.routed["prospect"]) == lead_id
    assert rep in await store.holders()
    assert len(await timers_of(store, lead_id)) == 4
    assert [d["type"] for d in await outbox(store)] == ["lead.routed"]
    assert await store.channels() == sorted(roster.reps[rep].alerts)
    for channel in roster.reps[rep].alerts:
        queued: Any = await store.redis.xrange(store.keys.alerts(channel))
        assert len(queued) == 1
    assert (await store.snapshot(roster, "emea", NOW)).version == "1"


async def test_assign_exists_changes_nothing_for_a_lead_assigned_before(store: Store) -> None:
    roster = load_roster(ROSTER)
    planned = await plan(store, roster, "again@acme.example", "standard", NOW)
    assert await planned.apply(store, roster) == "ok"
    assert await planned.apply(store, roster) == "exists"
    assert len(await outbox(store)) == 1
    assert (await store.snapshot(roster, "emea", NOW)).version == "1"


async def test_assign_conflict_when_the_team_changed_since_the_snapshot(store: Store) -> None:
    roster = load_roster(ROSTER)
    stale = await plan(store, roster, "late@acme.example", "standard", NOW)
    await assign(store, roster, "first@acme.example", "standard", NOW)  # the team moves on
    assert await stale.apply(store, roster) == "conflict"
    assert await store.lead(stale.routed["lead"]) is None
    assert await store.open_lead(stale.routed["prospect"]) is None


async def test_set_state_ok_moves_the_lead_and_announces_its_decision(store: Store) -> None:
    lead_id = await assign(store, load_roster(ROSTER), "ack@acme.example", "standard", NOW)
    rep = (await store.lead(lead_id) or {})["rep"]
    assert await store.set_state(lead_id, ACKNOWLEDGED, (ASSIGNED,), rep,
                                 [("ack@acme.example", b'{"type":"lead.acknowledged"}')]) == (
        "ok", None)
    assert (await store.lead(lead_id) or {})["state"] == ACKNOWLEDGED
    assert [d["type"] for d in await outbox(store)][-1] == "lead.acknowledged"
    # Completing it closes it: off the queue, no open lead, its timers gone.
    assert await store.set_state(lead_id, COMPLETED, (ASSIGNED, ACKNOWLEDGED), None) == (
        "ok", None)
    assert await store.queue(rep, "standard", 10) == []
    assert await store.open_lead("ack@acme.example") is None
    assert await timers_of(store, lead_id) == []


async def test_set_state_already_when_the_lead_is_in_that_state(store: Store) -> None:
    lead_id = await assign(store, load_roster(ROSTER), "twice@acme.example", "standard", NOW)
    assert await store.set_state(lead_id, ASSIGNED, (ASSIGNED,), None) == ("already", None)


async def test_set_state_refused_names_the_state_that_does_not_allow_it(store: Store) -> None:
    lead_id = await assign(store, load_roster(ROSTER), "done@acme.example", "standard", NOW)
    assert (await store.set_state(lead_id, COMPLETED, (ASSIGNED,), None))[0] == "ok"
    assert await store.set_state(lead_id, ACKNOWLEDGED, (ASSIGNED,), None) == (
        "refused", COMPLETED)


async def test_set_state_not_yours_names_the_holder(store: Store) -> None:
    lead_id = await assign(store, load_roster(ROSTER), "other@acme.example", "standard", NOW)
    holder = (await store.lead(lead_id) or {})["rep"]
    assert await store.set_state(lead_id, ACKNOWLEDGED, (ASSIGNED,), "nobody") == (
        "not yours", holder)
    assert (await store.lead(lead_id) or {})["state"] == ASSIGNED


async def test_set_state_missing_for_an_unknown_lead(store: Store) -> None:
    assert await store.set_state("Lunknown", ACKNOWLEDGED, (ASSIGNED,), None) == (
        "missing", None)


async def moved(store: Store, roster: CompiledRoster, lead_id: str, to: str,
                version: str = "", rotation: Rotation | None = None) -> Move:
    """The move of the lead to the rep `to`, as a reassignment decides it."""
    lead = await store.lead(lead_id) or {}
    routed = {**lead["routed"], "rep": to}
    return Move.to(roster, routed, lead["tried"], NOW, "emea" if rotation else "", version,
                   rotation)


async def test_step_ok_moves_the_lead_to_its_new_reps_queue_once(store: Store) -> None:
    roster = load_roster(ROSTER)
    lead_id = await assign(store, roster, "step@acme.example", "fast_track", NOW)
    holder = (await store.lead(lead_id) or {})["rep"]
    to = next(rep for rep in ("ana", "bruno") if rep != holder)
    [timer] = [member for member in await timers_of(store, lead_id) if "|reassign|" in member]
    move = await moved(store, roster, lead_id, to)
    assert await store.step(timer, lead_id, (ASSIGNED,), holder, [], move) == "ok"
    lead = await store.lead(lead_id) or {}
    assert (lead["rep"], lead["state"], lead["tried"]) == (to, ASSIGNED, [holder, to])
    assert await store.queue(holder, "fast", 10) == []
    assert [item for item, _ in await store.queue(to, "fast", 10)] == [lead_id]
    assert to in await store.holders()
    assert timer not in await timers_of(store, lead_id)


async def test_step_done_when_carried_out_before(store: Store) -> None:
    roster = load_roster(ROSTER)
    lead_id = await assign(store, roster, "stepped@acme.example", "standard", NOW)
    holder = (await store.lead(lead_id) or {})["rep"]
    member = Timer.once(lead_id, "raised-1", "re_engaged", holder)
    told: list[Announcement] = [("decision", "stepped@acme.example", b'{"type":"x"}')]
    assert await store.step(member, lead_id, (ASSIGNED,), holder, told) == "ok"
    assert await store.step(member, lead_id, (ASSIGNED,), holder, told) == "done"
    assert [d["type"] for d in await outbox(store)] == ["lead.routed", "x"]


async def test_step_moot_for_a_lead_in_another_state_or_held_by_another_rep(
    store: Store,
) -> None:
    roster = load_roster(ROSTER)
    lead_id = await assign(store, roster, "moot@acme.example", "fast_track", NOW)
    holder = (await store.lead(lead_id) or {})["rep"]
    remind, *_ = await timers_of(store, lead_id)
    assert await store.step(remind, lead_id, (ACKNOWLEDGED,), holder, []) == "moot"
    assert remind not in await timers_of(store, lead_id)  # a moot timer is dropped
    [breach] = [member for member in await timers_of(store, lead_id) if "|breach|" in member]
    assert await store.step(breach, lead_id, (ASSIGNED,), "nobody", []) == "moot"
    unknown = Timer.once("Lnone", "1", "remind", "ana")
    assert await store.step(unknown, "Lnone", (), None, []) == "moot"


async def test_step_conflict_when_the_team_changed_keeps_the_timer(store: Store) -> None:
    roster = load_roster(ROSTER)
    lead_id = await assign(store, roster, "clash@acme.example", "fast_track", NOW)
    holder = (await store.lead(lead_id) or {})["rep"]
    to = next(rep for rep in ("ana", "bruno") if rep != holder)
    [timer] = [member for member in await timers_of(store, lead_id) if "|reassign|" in member]
    stale = await moved(store, roster, lead_id, to, "0", Rotation({to: 1}))
    assert await store.step(timer, lead_id, (ASSIGNED,), holder, [], stale) == "conflict"
    assert (await store.lead(lead_id) or {})["rep"] == holder
    assert timer in await timers_of(store, lead_id)  # leased, not lost
    fresh = await moved(store, roster, lead_id, to, "1", Rotation({to: 1}))
    assert await store.step(timer, lead_id, (ASSIGNED,), holder, [], fresh) == "ok"
    assert (await store.snapshot(roster, "emea", NOW)).version == "2"


async def test_take_due_leases_the_due_timers(store: Store) -> None:
    roster = load_roster(ROSTER)
    lead_id = await assign(store, roster, "due@acme.example", "fast_track", NOW)
    members = await timers_of(store, lead_id)
    soon = min(Timer.parse(member).due for member in members)
    due = await store.take_due(soon, lease=30)
    assert [(Timer.parse(member).due, at) for member, at in due] == [(soon, soon)]
    assert await store.take_due(soon + 29, lease=30) == []  # leased to its taker
    assert [member for member, _ in await store.take_due(soon + 31, lease=30)] == [
        due[0][0]]  # its taker died: due again
    later = await store.take_due(NOW.timestamp() + 86_400 * 10, lease=30, limit=2)
    assert len(later) == 2


async def test_forget_holder_only_once_their_queues_are_empty(store: Store) -> None:
    lead_id = await assign(store, load_roster(ROSTER), "held@acme.example", "standard", NOW)
    holder = (await store.lead(lead_id) or {})["rep"]
    await store.forget_holder(holder)
    assert holder in await store.holders()
    assert (await store.set_state(lead_id, COMPLETED, (ASSIGNED,), None))[0] == "ok"
    await store.forget_holder(holder)
    assert holder not in await store.holders()


def test_every_key_of_a_deployment_shares_one_cluster_slot() -> None:
    keys = Keys.of("acme")
    every = [keys.lead("L1"), keys.open("p@x.example"), keys.queue("ana", "fast"),
             keys.holders, keys.version("emea"), keys.rotation("emea"),
             keys.load("ana", "2026-03-04"), keys.sla, keys.alerts("hook"), keys.channels,
             keys.outbox, keys.live("ana"), keys.migrated("m")]
    assert {key_slot(key.encode()) for key in every} == {key_slot(b"acme")}
