"""A synthetic stream of canonical events, deterministic from a seed, for benchmarks and
the parity tests (which compare the live pipeline with replay on it).

A realistic mix: mostly page views grouped in daily visits, email opens, searches,
downloads, webinars, profile facts, a few hand-raisers; a quarter of the prospects start as
anonymous visitors and identify later; some events are delivered twice and a few lines are
bad. It lives here, not in `bench/`, so that tests and benchmarks share it without
importing each other.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson

START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
DAYS = 180
SITE = "https://northwind.example"
PAGES = ["/", "/product/forecasting", "/product/pipeline", "/blog/q2-close", "/blog/revops",
         "/customers", "/docs/start", "/integrations/salesforce", "/about"]
TITLES = ["CEO", "VP Sales", "Director of Finance", "Sales Manager", "Analyst", "CFO",
          "Head of RevOps", "Engineer", "Vice President Marketing", "Consultant"]
#: (weight, event kind) of the mix; page views dominate as they do on a real site.
MIX = [(60, "page"), (14, "email.open"), (3, "email.click"), (3, "web.search"),
       (3, "content.downloaded"), (2, "demo.watched"), (2, "webinar.registered"),
       (1, "webinar.attended"), (3, "prospect.updated"), (1, "prospect.reviewed"),
       (1, "form.submitted")]


def generate(events: int, prospects: int, seed: int) -> Iterator[bytes]:
    """The event stream in time order, as JSON lines."""
    rng = random.Random(seed)
    kinds = [kind for weight, kind in MIX for _ in range(weight)]
    # Activity is skewed: a few prospects are very active, most are not.
    weights = [1.0 / (rank + 10) for rank in range(prospects)]
    owners = rng.choices(range(prospects), weights=weights, k=events)
    times = sorted(START + rng.random() * DAYS * 86_400 for _ in range(events))
    identify_at = {p: START + rng.random() * DAYS * 86_400 for p in range(0, prospects, 4)}
    previous = b""
    for number, (owner, t) in enumerate(zip(owners, times, strict=True)):
        if number and rng.random() < 0.005:
            yield previous  # an at-least-once redelivery
            continue
        if rng.random() < 0.0005:
            yield b'{"id": "broken", "type": "web.page_view", "occurred_at": "2026-01-01"}'
            continue
        kind = rng.choice(kinds)
        email = f"p{owner}@company{owner % 9973}.example"
        prospect: dict[str, str] = {"email": email}
        if owner in identify_at:
            anonymous = {"anonymous_id": f"v-{owner}"}
            if t < identify_at[owner]:
                prospect = anonymous  # not identified yet
                kind = "page"
            elif rng.random() < 0.3:
                prospect = {**prospect, **anonymous}
        properties = _properties(rng, kind, owner, t)
        event = {
            "id": f"e{number}", "type": "web.page_view" if kind == "page" else kind,
            "occurred_at": datetime.fromtimestamp(int(t), UTC).isoformat().replace(
                "+00:00", "Z"),
            "prospect": prospect, "properties": properties,
        }
        previous = orjson.dumps(event)
        yield previous


def _properties(rng: random.Random, kind: str, owner: int, t: float) -> dict[str, object]:
    if kind == "page":
        roll = rng.random()
        path = "/pricing" if roll < 0.06 else "/careers" if roll < 0.07 else rng.choice(PAGES)
        return {"url": SITE + path, "visit_id": f"s-{owner}-{int((t - START) // 86_400)}"}
    if kind in ("email.open", "email.click"):
        return {"campaign_id": f"c{rng.randrange(40)}", "url": SITE + "/blog/revops"}
    if kind == "web.search":
        return {"query": rng.choice(["northwind pricing", "revenue forecasting tool",
                                     "crm pipeline analytics", "northwind analytics reviews"])}
    if kind == "content.downloaded":
        return {"asset_id": f"a{rng.randrange(30)}", "category": rng.choice(
            ["thought_leadership", "analyst_review", "datasheet", "case_study"])}
    if kind == "prospect.updated":
        return {"title": rng.choice(TITLES), "lead_source": rng.choice(
            ["website", "trade_show", "partner"]), "offer": rng.choice(
            ["thought_leadership", "demo", "trial"]), "country": "US"}
    if kind == "prospect.reviewed":
        return {"approved": rng.random() < 0.7}
    if kind == "form.submitted":
        return {"form": rng.choice(["contact_me", "trial_request", "newsletter", "newsletter"])}
    return {"video_id": "tour", "webinar_id": f"w{rng.randrange(12)}"}


