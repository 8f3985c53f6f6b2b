"""Delivering alerts: each channel from its own Redis stream, at least once, by its id.

Every worker reads each channel's stream in one consumer group, so an alert goes to one
worker at a time. An alert stays pending until delivered (or given up); while it is
retried (exponential backoff with full jitter, or the receiver's `Retry-After`) its worker
keeps claiming it, and if that worker dies another claims it after the takeover time
(`routing_takeover_seconds`) and delivers it with the same id. Channels never wait on each
other: each has its own stream, reader and deliveries in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from leadscore.logs import mask_emails
from routing import metrics
from routing.alerts import Alert, ChannelType, Context, Delivered, Gone, Retry
from routing.roster import Channel
from routing.store import redis_down

log = logging.getLogger("leadscore.alerts")

GROUP = "dispatch"
#: Backoff: the first retry waits up to this long, doubling up to `MAX_BACKOFF`.
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 300.0
#: An alert not delivered this long after its first attempt is given up (and counted).
GIVE_UP_AFTER = 24 * 3600.0
#: Deliveries in flight per channel.
IN_FLIGHT = 64


@dataclass
class Dispatcher:
    """The deliveries of one configured channel on this worker."""

    name: str
    config: Channel
    kind: ChannelType
    redis: Redis
    prefix: str
    consumer: str
    http: Any
    #: An alert pending this long without its worker claiming it again is taken over.
    takeover_ms: int
    in_flight: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    last_sent: float = 0.0
    pace: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def stream(self) -> str:
        return f"{self.prefix}alerts:{self.name}"

    def context(self) -> Context:
        secret = os.environ.get(self.config.secret_env) if self.config.secret_env else None
        return Context(self.config, secret, self.http, self.redis, self.prefix)


async def run_dispatcher(dispatcher: Dispatcher) -> None:
    """A worker task: deliver the channel's alerts until cancelled."""
    await _ensure_group(dispatcher)
    next_claim = 0.0
    try:
        while True:
            claim = time.monotonic() >= next_claim
            try:
                entries = await _read(dispatcher, claim)
            except ResponseError as error:
                if "NOGROUP" not in str(error):
                    raise
                await _ensure_group(dispatcher)  # Redis lost the stream: start it again
                continue
            except RedisError as error:
                redis_down(error)
                await asyncio.sleep(1.0)
                continue
            if claim:
                next_claim = time.monotonic() + dispatcher.takeover_ms / 4000
                with contextlib.suppress(RedisError):  # delivered alerts older than a day
                    await dispatcher.redis.xtrim(
                        dispatcher.stream, minid=str(int(time.time() * 1000) - 86_400_000))
            for entry_id, fields in entries:
                entry = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                if entry in dispatcher.in_flight or not fields:
                    continue
                try:
                    alert = orjson.loads(fields[b"alert"])
                except (KeyError, orjson.JSONDecodeError):  # not an alert of ours: drop it
                    log.error("alerts: an unreadable entry was dropped",
                              extra={"channel": dispatcher.name, "entry": entry})
                    await _done(dispatcher, entry)
                    continue
                dispatcher.in_flight[entry] = asyncio.create_task(
                    _deliver(dispatcher, entry, alert))
            # A paced channel (Slack) takes one at a time: an alert waiting for its turn
            # would otherwise sit unclaimed until another worker took it over.
            limit = 1 if dispatcher.kind.per_second else IN_FLIGHT
            while len(dispatcher.in_flight) >= limit:
                await asyncio.wait(list(dispatcher.in_flight.values()),
                                   return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in dispatcher.in_flight.values():
            task.cancel()


async def _ensure_group(dispatcher: Dispatcher) -> None:
    """The stream's consumer group, made if missing; waits while Redis is down."""
    while True:
        try:
            await dispatcher.redis.xgroup_create(dispatcher.stream, GROUP, id="0",
                                                 mkstream=True)
            return
        except ResponseError as error:
            if "BUSYGROUP" in str(error):
                return
            raise
        except RedisError as error:
            redis_down(error)
            await asyncio.sleep(1.0)


async def _read(dispatcher: Dispatcher, claim: bool) -> list[tuple[Any, dict[bytes, bytes]]]:
    """New alerts, and (`claim`) those a dead worker left pending."""
    entries: list[tuple[Any, dict[bytes, bytes]]] = []
    if claim:
        reply: Any = await dispatcher.redis.xautoclaim(
            dispatcher.stream, GROUP, dispatcher.consumer, dispatcher.takeover_ms, "0-0",
            count=100)
        entries += [entry for entry in reply[1] if entry[1]]
    count = 1 if dispatcher.kind.per_second else 100
    read: Any = await dispatcher.redis.xreadgroup(
        GROUP, dispatcher.consumer, {dispatcher.stream: ">"}, count=count, block=500)
    for _, found in read or []:
        entries += found
    return entries


async def _deliver(dispatcher: Dispatcher, entry: str, alert: Alert) -> None:
    """Try until delivered or gone; keep the entry claimed meanwhile."""
    first = time.monotonic()
    attempt = 0
    try:
        while True:
            await _pace(dispatcher)
            try:
                outcome = await dispatcher.kind.deliver(alert, dispatcher.context())
            except Exception as error:  # a bug of a channel plugin: retried, logged
                log.exception("alerts: the channel failed", extra={"channel": dispatcher.name})
                outcome = Retry(f"{type(error).__name__}: {error}")
            if isinstance(outcome, Delivered):
                metrics.ALERTS.labels(dispatcher.name, "delivered").inc()
                if alert["kind"] == "new_lead" and alert["received_at"]:
                    metrics.SPEED_TO_LEAD.labels(alert["lead"]["track"], dispatcher.name).observe(
                        max(0.0, time.time() - alert["received_at"] / 1000))
                await _done(dispatcher, entry)
                return
            if isinstance(outcome, Gone) or time.monotonic() - first > GIVE_UP_AFTER:
                reason = outcome.reason if isinstance(outcome, Gone | Retry) else ""
                metrics.ALERTS.labels(dispatcher.name, "gone" if isinstance(outcome, Gone)
                                      else "failed").inc()
                log.error("alerts: given up", extra={"channel": dispatcher.name,
                                                     "alert": alert["id"],
                                                     "reason": mask_emails(reason)})
                await _done(dispatcher, entry)
                return
            attempt += 1
            metrics.ALERTS.labels(dispatcher.name, "retried").inc()
            wait = min(outcome.after, MAX_BACKOFF) if outcome.after is not None \
                else backoff(attempt)
            log.warning("alerts: retrying", extra={"channel": dispatcher.name,
                                                   "alert": alert["id"], "attempt": attempt,
                                                   "in_seconds": round(wait, 2),
                                                   "reason": mask_emails(outcome.reason)})
            await _wait_claimed(dispatcher, entry, wait)
    finally:
        dispatcher.in_flight.pop(entry, None)


def backoff(attempt: int) -> float:
    """Full jitter: a random wait up to the doubling ceiling, so retries spread out."""
    return random.uniform(0, min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** (attempt - 1)))


async def _pace(dispatcher: Dispatcher) -> None:
    if dispatcher.kind.per_second is None:
        return
    async with dispatcher.pace:
        gap = 1 / dispatcher.kind.per_second - (time.monotonic() - dispatcher.last_sent)
        if gap > 0:
            await asyncio.sleep(gap)
        dispatcher.last_sent = time.monotonic()


async def _wait_claimed(dispatcher: Dispatcher, entry: str, seconds: float) -> None:
    """Sleep, claiming the entry again often enough that no other worker takes it."""
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(left, dispatcher.takeover_ms / 4000))
        with contextlib.suppress(RedisError):
            await dispatcher.redis.xclaim(dispatcher.stream, GROUP, dispatcher.consumer, 0,
                                          [entry], justid=True)


async def _done(dispatcher: Dispatcher, entry: str) -> None:
    """Acknowledge the entry; while Redis is down, keep trying (a repeat would follow)."""
    while True:
        try:
            await dispatcher.redis.xack(dispatcher.stream, GROUP, entry)
            return
        except RedisError:
            await asyncio.sleep(1.0)
