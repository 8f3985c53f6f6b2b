"""The queue API on the worker's web server, for reps' tools and `leadscore queue`.

    GET  /v1/reps/{rep}/queue                 the rep's fast-track inbox and 24-hour queue
    POST /v1/leads/{lead}/ack       {"rep"}   acknowledge (stops the fast-track ladder)
    POST /v1/leads/{lead}/claim     {"rep"}   take a lead of one's team, acknowledged
    POST /v1/leads/{lead}/complete  {"rep"?}  worked: off the queue, no more SLA
    POST /v1/leads/{lead}/reassign  {"to", "by"?}

`Authorization: Bearer <api_secret>`. Answers: 200 `{"status": "ok" | "already"}`, 404 for
an unknown lead, 409 when its state or holder does not allow it, 400 for a bad body, 403
without the secret, 503 while Redis is down. Every operation is idempotent.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from redis.exceptions import RedisError

from routing import queue
from routing.queue import Answer

if TYPE_CHECKING:
    from routing.router import Routing

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_STATUS = {"ok": 200, "already": 200, "missing": 404, "unknown rep": 400}


def queue_routes(routing: Routing) -> list[tuple[str, str, Handler]]:
    """(method, path, handler) of the queue API."""

    async def list_queue(request: web.Request) -> web.StreamResponse:
        return web.json_response(await queue.queue(routing.store, request.match_info["rep"]))

    async def ack(request: web.Request, body: dict[str, Any]) -> Answer:
        return await queue.acknowledge(routing.store, request.match_info["lead"],
                                       _text(body, "rep"), _now())

    async def claim(request: web.Request, body: dict[str, Any]) -> Answer:
        return await queue.claim(routing.store, routing.roster, request.match_info["lead"],
                                 _text(body, "rep"), _now())

    async def complete(request: web.Request, body: dict[str, Any]) -> Answer:
        return await queue.complete(routing.store, request.match_info["lead"],
                                    body.get("rep") if isinstance(body.get("rep"), str) else None,
                                    _now())

    async def reassign(request: web.Request, body: dict[str, Any]) -> Answer:
        who = body.get("by") if isinstance(body.get("by"), str) else "the queue API"
        return await queue.reassign(routing.store, routing.roster, request.match_info["lead"],
                                    _text(body, "to"), _now(), f"reassigned by {who}")

    def guarded(action: Any, takes_body: bool = True) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            secret = routing.settings.api_secret
            token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if secret is None or not hmac.compare_digest(
                    token.encode("utf-8", "surrogateescape"),
                    secret.get_secret_value().encode()):
                return web.json_response({"error": "send Authorization: Bearer <api_secret>"
                                          if secret else "the queue API is off: set "
                                          "LEADSCORE_API_SECRET"}, status=403)
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


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"the body needs {name!r}: a rep id")
    return value


def _now() -> datetime:
    return datetime.now(UTC)
