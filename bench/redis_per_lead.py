"""Redis memory per lead, open and closed, and the steady state it implies.

Routing keeps each open lead in Redis (its record with the lead card, its queue entry, its
SLA timers) and, for a day, the alert and decision entries its assignment announced. A
closed lead leaves after `routing_closed_lead_retention_seconds`. This assigns `LEADS`
fast-track leads on a fresh local Redis through the live code path (policy, announcements,
`Store.assign`), measures `used_memory`, completes them all, and measures again once they
have expired. Run: `python -m bench.redis_per_lead`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from redis.asyncio import Redis

from leadscore.decisions import PROSPECT_PROMOTED, iso
from leadscore.infra.redis_local import run_redis
from routing import queue
from routing.policy import Lead, route
from routing.roster import load_roster
from routing.sla import announcements
from routing.store import Store

LEADS = 5_000
ROSTER = Path(__file__).resolve().parent.parent / "routing" / "roster.yaml"
#: The busy deployment of issue 22: 13 promotions a second.
PROMOTIONS_PER_SECOND = 13


def promotion(n: int, at: datetime) -> dict[str, object]:
    """A promotion as scoring makes it: the card a rep reads (profile, top rules, trigger)."""
    return {
        "type": PROSPECT_PROMOTED, "prospect": f"prospect{n}@company{n % 97}.example",
        "score": 71, "track": "fast_track", "at": iso(at.timestamp()), "rules_version": "r1",
        "fit": 21, "behavior": 50,
        "top_rules": [{"rule": rule, "points": points} for rule, points in
                      (("contact-me", 0), ("pricing-page", 5), ("analyst-review", 12),
                       ("webinar-attended", 5), ("title-vp", 6))],
        "trigger": {"id": f"form-{n}", "type": "form.submitted",
                    "properties": {"form": "contact_me", "page": "/pricing"}},
        "profile": {"name": f"Prospect {n}", "title": "VP Sales", "company": f"Company {n}",
                    "country": "ES"},
    }


async def used_memory(redis: Redis) -> int:
    info = await redis.info("memory")
    return int(info["used_memory"])


async def measure(url: str) -> None:
    redis = Redis.from_url(url)
    store = Store(redis, "bench", closed_retention=1)
    roster = load_roster(ROSTER)
    start = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # a Wednesday, on shift in Madrid
    empty = await used_memory(redis)
    ids = []
    for n in range(LEADS):
        made = promotion(n, start + timedelta(seconds=n))
        lead = Lead.of(made)  # type: ignore[arg-type]
        snapshot = await store.snapshot(roster, "emea", lead.at)
        assignment = route(roster, lead, snapshot.loads, snapshot.rotation)
        items = announcements(roster, lead, assignment.routed, "new_lead", None,
                              [assignment.routed])
        origin = orjson.dumps({"promotion": made, "received_at": None,
                               "assigned_at": made["at"]})
        await store.assign(roster, assignment.routed, snapshot.version, assignment.rotation,
                           origin, items)
        ids.append(lead.id)
    opened = await used_memory(redis)
    record = await redis.memory_usage(store.keys.lead(ids[0])) or 0
    streams = sum([await redis.memory_usage(key) or 0 async for key in
                   redis.scan_iter(store.keys.alerts("*"))] +
                  [await redis.memory_usage(store.keys.outbox) or 0])
    for lead_id in ids:
        await queue.complete(store, lead_id, None, start)
    # Redis expires keys on its own clock: wait until it has expired every lead.
    while [key async for key in redis.scan_iter(store.keys.leads, count=1000)]:
        await asyncio.sleep(0.1)
    closed = await used_memory(redis)
    await redis.aclose()

    per_open = (opened - empty) / LEADS
    per_stream = streams / LEADS
    per_left = (closed - empty) / LEADS
    print(f"{LEADS:,} fast-track leads assigned, then completed and expired")
    print("| what | bytes per lead |")
    print("|---|---:|")
    print(f"| open lead, all in (record, queue, timers, a day of alerts and decisions) "
          f"| {per_open:,.0f} |")
    print(f"| of which the lead's record (hash) | {record:,} |")
    print(f"| of which alert and decision stream entries (trimmed after a day) "
          f"| {per_stream:,.0f} |")
    print(f"| left once closed and expired (streams until trimmed, load counters) "
          f"| {per_left:,.0f} |")
    daily = PROMOTIONS_PER_SECOND * 86_400
    steady = daily * per_open + daily * record
    print(f"\nSteady state at {PROMOTIONS_PER_SECOND} promotions/s ({daily:,} a day), every "
          "lead closed within a day, retention 1 day: at most a day of open leads (stream "
          f"entries included) and a day of closed records, {steady / 2**30:.2f} GiB, flat. "
          f"Before, every record stayed: +{daily * record / 2**30:.2f} GiB a day, for ever.")


def main() -> None:
    with run_redis() as url:
        asyncio.run(measure(url))


if __name__ == "__main__":
    main()
