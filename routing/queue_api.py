"""The queue API on the worker's web server, for reps' tools and `leadscore queue`.

    GET  /v1/reps/{rep}/queue?limit=&cursor=  a page of the rep's fast-track inbox and
                                              24-hour queue
    POST /v1/leads/{lead}/ack       {"rep"}   acknowledge (stops the fast-track ladder)
    POST /v1/leads/{lead}/claim     {"rep"}   take a lead of one's team, acknowledged
    POST /v1/leads/{lead}/complete  {"rep"?}  worked: off the queue, no more SLA
    POST /v1/leads/{lead}/reassign  {"to", "by"?, "force"?}

`Authorization: Bearer <api_secret>`. Answers: 200 `{"status": "ok" | "already"}`, 404 for
an unknown lead or rep (in the path), 409 when its state or holder does not allow it, 400
for a bad body (a rep it names not in the roster in force, too), 401 without the secret,
403 while the API is off (no secret set), 503 while Redis is down. Every operation is
idempotent.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from leadscore.webhook_signatures import header_bytes
from routing import queue
from routing.queue import Answer, Position

if TYPE_CHECKING:
    from routing.roster import CompiledRoster
    from routing.router import Routing

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_STATUS = {"ok": 200, "already": 200, "missing": 404, "unknown rep": 400}
#: What a 401 asks for (RFC 6750).
CHALLENGE = 'Bearer realm="leadscore queue API"'


def queue_routes(routing: Routing) -> list[tuple[str, str, Handler]]:
    """(method, path, handler) of the queue API."""

    async def list_queue(request: web.Request) -> web.StreamResponse:
        rep = request.match_info["rep"]
        member = routing.roster.reps.get(rep)
        if member is None:
            return web.json_response({"error": f"no rep {rep!r} in the roster in force"},
                                     status=404)
        cursor = request.query.get("cursor")
        page = await queue.queue(routing.store, rep, _limit(request.query.get("limit")),
                                 Position.of(cursor) if cursor else None)
        return web.json_response({"rep": rep, "time_zone": member.time_zone, **page})

    async def ack(request: web.Request, body: dict[str, Any]) -> Answer:
        return await queue.acknowledge(routing.store, request.match_info["lead"],
                                       _rep(body, "rep", routing.roster), _now())

    async def claim(request: web.Request, body: dict[str, Any]) -> Answer:
        return await queue.claim(routing.store, routing.roster, request.match_info["lead"],
                                 _rep(body, "rep", routing.roster), _now())

    async def complete(request: web.Request, body: dict[str, Any]) -> Answer:
        rep = _rep(body, "rep", routing.roster) if "rep" in body else None
        return await queue.complete(routing.store, request.match_info["lead"], rep, _now())

    async def reassign(request: web.Request, body: dict[str, Any]) -> Answer:
        roster = routing.roster
        by = _rep(body, "by", roster) if "by" in body else None
        force = body.get("force", False)
        if not isinstance(force, bool):
            raise ValueError("'force' must be true or false")
        return await queue.reassign(routing.store, roster, request.match_info["lead"],
                                    _rep(body, "to", roster), _now(), by, force)

    def guarded(action: Any, takes_body: bool = True) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            refused = _refused(routing, request)
            if refused is not None:
                return refused
            try:
                if not takes_body:
                    response: web.StreamResponse = await action(request)
                    return response
                body = orjson.loads(await request.read() or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
                answer = await action(request, body)
            except (ValueError, KeyError) as error:
                return web.json_response({"error": str(error)}, status=400)
            except RedisError:
                return web.json_response({"error": "Redis is unavailable; try again"},
                                         status=503, headers={"Retry-After": "1"})
            return web.json_response({"status": answer.status, "detail": answer.detail},
                                     status=_STATUS.get(answer.status, 409))
        return handle

    return [
        ("GET", "/v1/reps/{rep}/queue", guarded(list_queue, takes_body=False)),
        ("POST", "/v1/leads/{lead}/ack", guarded(ack)),
        ("POST", "/v1/leads/{lead}/claim", guarded(claim)),
        ("POST", "/v1/leads/{lead}/complete", guarded(complete)),
        ("POST", "/v1/leads/{lead}/reassign", guarded(reassign)),
    ]


def _refused(routing: Routing, request: web.Request) -> web.Response | None:
    """The answer to a request without the API secret (None: it has it). The scheme is
    required, in any case; the token is compared in constant time."""
    secret = routing.settings.api_secret
    if secret is None:
        return web.json_response({"error": "the queue API is off: set LEADSCORE_API_SECRET"},
                                 status=403)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip() and hmac.compare_digest(
            header_bytes(token.strip()), secret.get_secret_value().encode()):
        return None
    return web.json_response(
        {"error": "missing or wrong credentials: send `Authorization: Bearer <api_secret>`"},
        status=401, headers={"WWW-Authenticate": CHALLENGE})


def _rep(body: dict[str, Any], name: str, roster: CompiledRoster) -> str:
    """The rep id the body gives as `name`: a rep of the roster in force, else ValueError."""
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"the body needs {name!r}: a rep id")
    if value not in roster.reps:
        raise ValueError(f"{name!r}: no rep {value!r} in the roster in force")
    return value


def _limit(asked: str | None) -> int:
    if asked is None:
        return queue.PAGE
    if not asked.isdigit() or not 1 <= int(asked) <= queue.MAX_PAGE:
        raise ValueError(f"limit must be a whole number from 1 to {queue.MAX_PAGE}")
    return int(asked)


def _now() -> datetime:
    return datetime.now(UTC)
