"""Routing's Redis state on a real Redis: what a lead leaves behind once it is closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from routing import queue
from routing.policy import Lead, route
from routing.roster import CompiledRoster, load_roster
from routing.sla import announcements
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
