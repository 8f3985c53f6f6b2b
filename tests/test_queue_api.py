"""The queue API over real HTTP (aiohttp's test server) on the session's Redis, with leads
assigned by the router's own code: who may call it, which reps it accepts, what a
reassignment and a claim do, and paging through a long queue."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from redis.asyncio import Redis

from app.cli import main
from leadscore.decisions import iso
from leadscore.settings import Settings
from routing.policy import Lead
from routing.queue_api import queue_routes
from routing.roster import roster_from_text
from routing.router import Routing, assign_promotion
from routing.store import Store

pytestmark = pytest.mark.redis

SECRET = "queue-api-secret-for-tests"
AROUND_THE_CLOCK = '{days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "00:00"}'
ROSTER = f"""
teams:
  - id: emea
    territory: {{countries: [ES, FR]}}
    escalation: ana
  - id: americas
    territory: {{countries: [US]}}
    escalation: cy
  - id: nordics
    territory: {{countries: [SE]}}
    escalation: nia
reps:
  - {{id: ana, name: Ana, email: ana@northwind.example, role: MRR, team: emea,
     working_hours: {AROUND_THE_CLOCK}, alerts: [feed]}}
  - {{id: ari, name: Ari, email: ari@northwind.example, role: MRR, team: emea,
     working_hours: {AROUND_THE_CLOCK}, alerts: [feed]}}
  - {{id: bo, name: Bo, email: bo@northwind.example, role: MRR, team: emea,
     out_of_office: [{{start: 2000-01-01, end: 2999-12-31}}], alerts: [feed]}}
  - {{id: sid, name: Sid, email: sid@northwind.example, role: SDR, team: emea}}
  - {{id: cy, name: Cy, email: cy@northwind.example, role: MRR, team: americas,
     working_hours: {AROUND_THE_CLOCK}, alerts: [feed]}}
  - {{id: nia, name: Nia, email: nia@northwind.example, role: MRR, team: nordics,
     time_zone: Europe/Stockholm, working_hours: {AROUND_THE_CLOCK}, alerts: [feed]}}
channels:
  feed: {{type: stream}}
"""


@pytest.fixture
async def api(redis_url: str, unique: str) -> AsyncIterator[tuple[TestClient[Any, Any], Routing]]:
    """A client of the queue API of a routing with ROSTER, and the routing."""
    settings = Settings(app_id=unique, redis_url=redis_url, api_secret=SECRET)
    redis = Redis.from_url(redis_url)
    # The queue API uses no Kafka: the producer and topics are those of no worker.
    routing = Routing(settings, roster_from_text("roster.yaml", ROSTER), redis,
                      Store(redis, unique), cast(Any, None), cast(Any, None))
    app = web.Application()
    for method, path, handler in queue_routes(routing):
        app.router.add_route(method, path, handler)
    async with TestClient(TestServer(app)) as client:
        yield client, routing
    await redis.aclose()


AUTH = {"Authorization": f"Bearer {SECRET}"}


def promotion(prospect: str, country: str = "ES", track: str = "fast_track",
              at: datetime | None = None) -> Any:
    when = at or datetime.now(UTC)
    return {"type": "prospect.promoted", "prospect": prospect, "score": 70, "track": track,
            "at": iso(when.timestamp()), "rules_version": "v", "fit": 20, "behavior": 50,
            "top_rules": [], "trigger": None,
            "profile": {"country": country, "name": "Li Wei", "company": "Globex"}}


async def assigned(routing: Routing, found: Any) -> tuple[str, str]:
    """Assign a promotion as the router does: its lead id and rep."""
    assert await assign_promotion(routing, found, None) == "ok"
    lead = Lead.of(found).id
    record = await routing.store.lead(lead)
    assert record is not None
    return lead, record["rep"]


async def post(client: TestClient[Any, Any], path: str, body: Any,
               headers: dict[str, str] = AUTH) -> tuple[int, Any]:
    async with client.post(path, data=orjson.dumps(body), headers=headers) as response:
        return response.status, await response.json()


async def get(client: TestClient[Any, Any], path: str) -> tuple[int, Any]:
    async with client.get(path, headers=AUTH) as response:
        return response.status, await response.json()


async def decisions(routing: Routing) -> list[Any]:
    entries: Any = await routing.redis.xrange(routing.store.keys.outbox)
    return [orjson.loads(fields[b"value"]) for _, fields in entries]


async def alerts(routing: Routing) -> list[Any]:
    entries: Any = await routing.redis.xrange(routing.store.keys.alerts("feed"))
    return [orjson.loads(fields[b"alert"]) for _, fields in entries]


async def test_a_missing_or_wrong_token_is_401_and_the_bearer_scheme_is_required(
    api: tuple[TestClient[Any, Any], Routing],
) -> None:
    client, routing = api
    lead, rep = await assigned(routing, promotion("li@globex.example"))
    for headers in ({}, {"Authorization": "Bearer wrong-secret-of-enough-length"},
                    {"Authorization": SECRET}, {"Authorization": f"Basic {SECRET}"},
                    {"Authorization": "Bearer "}):
        status, answer = await post(client, f"/v1/leads/{lead}/ack", {"rep": rep}, headers)
        assert status == 401, headers
        assert "Authorization: Bearer <api_secret>" in answer["error"]
        async with client.get(f"/v1/reps/{rep}/queue", headers=headers) as response:
            assert response.status == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    for scheme in ("bearer", "BEARER", "Bearer"):
        async with client.get(f"/v1/reps/{rep}/queue",
                              headers={"Authorization": f"{scheme} {SECRET}"}) as response:
            assert response.status == 200, scheme
    assert (await routing.store.lead(lead) or {})["state"] == "assigned"

    routing.settings = Settings(app_id=routing.settings.app_id)  # no api_secret: API off
    status, answer = await post(client, f"/v1/leads/{lead}/ack", {"rep": rep})
    assert (status, answer["error"]) == (403, "the queue API is off: set LEADSCORE_API_SECRET")


async def test_an_unknown_rep_is_404_in_the_path_and_400_in_a_body_without_the_holder(
    api: tuple[TestClient[Any, Any], Routing],
) -> None:
    client, routing = api
    lead, rep = await assigned(routing, promotion("li@globex.example"))
    status, answer = await get(client, "/v1/reps/nobody/queue")
    assert (status, answer) == (404, {"error": "no rep 'nobody' in the roster in force"})
    assert await get(client, "/v1/reps/sid/queue") == (200, {
        "rep": "sid", "time_zone": "UTC", "fast": [], "standard": [],
        "total": {"fast": 0, "standard": 0}, "next": None})
    for action, body in (("ack", {"rep": "nobody"}), ("claim", {"rep": "nobody"}),
                         ("complete", {"rep": "nobody"}), ("reassign", {"to": "nobody"}),
                         ("reassign", {"to": rep, "by": "nobody"})):
        status, answer = await post(client, f"/v1/leads/{lead}/{action}", body)
        assert status == 400, (action, body)
        assert "no rep 'nobody' in the roster in force" in answer["error"]
        assert rep not in answer["error"]
    assert (await routing.store.lead(lead) or {})["state"] == "assigned"
    assert [d["type"] for d in await decisions(routing)] == ["lead.routed"]


async def test_reassign_keeps_the_lead_in_its_team_and_refuses_who_cannot_take_it_unless_forced(
    api: tuple[TestClient[Any, Any], Routing],
) -> None:
    client, routing = api
    lead, rep = await assigned(routing, promotion("li@globex.example"))
    other = "ari" if rep == "ana" else "ana"
    for to, why in (("cy", "cy is in team americas, the lead in team emea"),
                    ("bo", "bo is out of office today"),
                    ("sid", "sid is an SDR: only MRRs take inbound leads")):
        status, answer = await post(client, f"/v1/leads/{lead}/reassign", {"to": to})
        assert (status, answer["status"]) == (409, "refused"), to
        assert answer["detail"] == f"{why}; force it to reassign anyway"
    assert (await routing.store.lead(lead) or {})["rep"] == rep
    status, answer = await post(client, f"/v1/leads/{lead}/reassign", {"to": "cy", "force": 1})
    assert (status, answer["error"]) == (400, "'force' must be true or false")

    assert await post(client, f"/v1/leads/{lead}/reassign", {"to": other, "by": "bo"}) == (
        200, {"status": "ok", "detail": None})
    assert await post(client, f"/v1/leads/{lead}/reassign",
                      {"to": "cy", "by": other, "force": True}) == (
        200, {"status": "ok", "detail": None})
    moved = [d for d in await decisions(routing) if d["type"] == "lead.reassigned"]
    assert [(d["from_rep"], d["rep"], d["routed"]["team"], d["reason"]) for d in moved] == [
        (rep, other, "emea", "reassigned by bo"),
        (other, "cy", "americas",
         f"reassigned by {other} (forced: cy is in team americas, the lead in team emea)")]
    record = await routing.store.lead(lead)
    assert record is not None and (record["rep"], record["routed"]["team"]) == ("cy", "americas")
    status, page = await get(client, "/v1/reps/cy/queue")
    assert [card["lead"] for card in page["fast"]] == [lead]


async def test_a_claim_tells_the_previous_holder_that_the_lead_was_taken(
    api: tuple[TestClient[Any, Any], Routing],
) -> None:
    client, routing = api
    lead, holder = await assigned(routing, promotion("li@globex.example"))
    claimer = "ari" if holder == "ana" else "ana"
    status, answer = await post(client, f"/v1/leads/{lead}/claim", {"rep": "cy"})
    assert (status, answer["detail"]) == (409, "cy is in team americas, the lead in team emea")
    assert await post(client, f"/v1/leads/{lead}/claim", {"rep": claimer}) == (
        200, {"status": "ok", "detail": None})
    assert (await post(client, f"/v1/leads/{lead}/claim", {"rep": claimer}))[1]["status"] == (
        "already")
    sent = [(a["kind"], a["rep"]["id"], a["lead"]["rep"]) for a in await alerts(routing)]
    assert sent == [("new_lead", holder, holder), ("reassigned", claimer, claimer),
                    ("taken", holder, claimer)]
    assert [d["type"] for d in await decisions(routing)] == [
        "lead.routed", "lead.reassigned", "lead.acknowledged"]


async def test_a_long_queue_comes_in_pages_that_hold_while_leads_are_worked(
    api: tuple[TestClient[Any, Any], Routing],
) -> None:
    client, routing = api
    fast = [(await assigned(routing, promotion(f"f{n}@acme.example", "SE")))[0]
            for n in range(3)]
    # Promoted at the same time: due at the same time, so the queue orders them by id.
    at = datetime.now(UTC)
    standard = sorted([(await assigned(routing, promotion(f"s{n}@acme.example", "SE",
                                                          "standard", at)))[0]
                       for n in range(8)])
    status, page = await get(client, "/v1/reps/nia/queue?limit=4")
    assert status == 200
    assert (page["rep"], page["time_zone"], page["total"]) == (
        "nia", "Europe/Stockholm", {"fast": 3, "standard": 8})
    assert [c["lead"] for c in page["fast"]] == fast
    assert [c["lead"] for c in page["standard"]] == standard[:1]
    assert page["next"]
    # Worked meanwhile: one lead already shown, and one not yet shown.
    for done in (standard[0], standard[2]):
        assert (await post(client, f"/v1/leads/{done}/complete", {}))[0] == 200
    seen = []
    while page["next"]:
        status, page = await get(client, f"/v1/reps/nia/queue?limit=4&cursor={page['next']}")
        assert status == 200 and page["fast"] == []
        seen += [c["lead"] for c in page["standard"]]
    assert seen == [standard[1], *standard[3:]]
    assert page["total"] == {"fast": 3, "standard": 6}

    status, everything = await get(client, "/v1/reps/nia/queue")
    assert [len(everything["fast"]), len(everything["standard"]), everything["next"]] == [
        3, 6, None]
    for query in ("limit=0", "limit=501", "limit=x", "cursor=nonsense", "cursor=WzEsMiwzXQ"):
        status, answer = await get(client, f"/v1/reps/nia/queue?{query}")
        assert status == 400 and answer["error"], query


async def leadscore(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                    client: TestClient[Any, Any], *argv: str) -> tuple[int, str, str]:
    """`leadscore queue --url <the test server> ARGV`: its exit code, output and errors. In
    a thread: the CLI blocks on its request while this loop serves it."""
    monkeypatch.setenv("LEADSCORE_API_SECRET", SECRET)
    code = await asyncio.to_thread(main, ["queue", "--url", str(client.make_url("")), *argv])
    out, err = capsys.readouterr()
    return code, out, err


async def test_the_cli_quotes_ids_so_one_cannot_reach_another_route(
    api: tuple[TestClient[Any, Any], Routing], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, routing = api
    lead, rep = await assigned(routing, promotion("li@globex.example"))
    code, _, err = await leadscore(monkeypatch, capsys, client, "ack", f"{lead}/complete?x=",
                                   "--rep", rep)
    assert code == 1 and "404" in err
    code, _, err = await leadscore(monkeypatch, capsys, client, "list", "../leads")
    assert code == 1 and "no rep '../leads' in the roster in force" in err
    assert (await routing.store.lead(lead) or {})["state"] == "assigned"
    assert [d["type"] for d in await decisions(routing)] == ["lead.routed"]


async def test_the_cli_reassigns_by_a_rep_and_forces_with_force(
    api: tuple[TestClient[Any, Any], Routing], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, routing = api
    lead, rep = await assigned(routing, promotion("li@globex.example"))
    code, _, err = await leadscore(monkeypatch, capsys, client, "reassign", lead, "--to", "bo")
    assert code == 1 and "bo is out of office today; force it to reassign anyway" in err
    code, out, _ = await leadscore(monkeypatch, capsys, client, "reassign", lead, "--to", "bo",
                                   "--by", "cy", "--force")
    assert code == 0 and orjson.loads(out)["status"] == "ok"
    [moved] = [d for d in await decisions(routing) if d["type"] == "lead.reassigned"]
    assert (moved["from_rep"], moved["rep"], moved["reason"]) == (
        rep, "bo", "reassigned by cy (forced: bo is out of office today)")


async def test_queue_list_prints_a_table_in_the_reps_time_zone_and_json_with_json(
    api: tuple[TestClient[Any, Any], Routing], monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client, routing = api
    at = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # 10:00 in Stockholm
    fast, _ = await assigned(routing, promotion("li@globex.example", "SE", at=at))
    standard, _ = await assigned(routing, promotion("mo@initech.example", "SE", "standard", at))
    code, out, _ = await leadscore(monkeypatch, capsys, client, "list", "nia")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "Fast-track inbox of nia: 1 lead"
    assert lines[1].split() == ["lead", "prospect", "name", "company", "score", "state", "due",
                                "SLA", "left"]
    # The deadline (5 minutes after the promotion) in Stockholm, long past.
    assert lines[2].split()[:9] == [fast, "li@globex.example", "Li", "Wei", "Globex", "70",
                                    "assigned", "2026-03-04", "10:05"]
    assert lines[2].split()[9:11] == ["CET", "overdue"]
    assert lines[4] == "24-hour queue of nia: 1 lead"
    assert lines[6].split()[:9] == [standard, "mo@initech.example", "Li", "Wei", "Globex", "70",
                                    "assigned", "2026-03-05", "10:00"]
    assert all(len(line) <= 120 for line in lines)

    code, out, _ = await leadscore(monkeypatch, capsys, client, "list", "nia", "--json")
    answer = orjson.loads(out)
    assert [c["lead"] for c in answer["fast"]] == [fast]
    assert answer["total"] == {"fast": 1, "standard": 1}

    code, out, _ = await leadscore(monkeypatch, capsys, client, "list", "nia", "--limit", "1")
    cursor = out.splitlines()[-1].split("--cursor ")[1]
    code, out, _ = await leadscore(monkeypatch, capsys, client, "list", "nia", "--cursor",
                                   cursor)
    assert standard in out and fast not in out
