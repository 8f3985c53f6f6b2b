"""Routing's Redis state on a real Redis: what a lead leaves behind once it is closed, and
where the leads of a rep who can no longer hold them go."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from routing import queue
from routing.policy import Lead, Loads, Rotation, route
from routing.roster import CompiledRoster, load_roster, roster_from_text
from routing.router import hand_over_stranded_leads
from routing.sla import announcements, step, timers
from routing.store import Store
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


async def assign(store: Store, roster: CompiledRoster, email: str, track: str,
                 at: datetime) -> str:
    """Assign a promotion as the live router does; returns the lead id."""
    made = promotion(email, track, at)
    lead = Lead.of(made)
    snapshot = await store.snapshot(roster, "emea", lead.at)
    assignment = route(roster, lead, snapshot.loads, snapshot.rotation)
    items = announcements(roster, lead, assignment.routed, "new_lead", None,
                          [assignment.routed])
    origin = orjson.dumps({"promotion": made, "received_at": None})
    assert await store.assign(roster, assignment.routed, snapshot.version, assignment.rotation,
                              origin, items) == "ok"
    return lead.id


async def timers_of(store: Store, lead_id: str) -> list[str]:
    members: list[bytes] = await store.redis.zrange(f"{store.p}sla", 0, -1)  # type: ignore[assignment]
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
    assert await store.redis.ttl(f"{store.p}lead:{fast}") > 0
    # Still open (acknowledged): its breach timer and record stay.
    assert len(await timers_of(store, standard)) == 1
    assert await store.redis.ttl(f"{store.p}lead:{standard}") == -1
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
    entries: Any = await store.redis.xrange(f"{store.p}outbox")
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
    old = f"{store.p}lead:Lold"
    await store.redis.hset(old, mapping={"state": "completed", "routed": "{}"})
    await store.redis.hset(f"{store.p}lead:Lopen", mapping={"state": "assigned"})
    assert await store.expire_closed_leads() == 1
    assert await store.redis.ttl(old) > 0
    assert await store.redis.ttl(f"{store.p}lead:Lopen") == -1
    assert await store.expire_closed_leads() == 0  # marked done: not scanned again
