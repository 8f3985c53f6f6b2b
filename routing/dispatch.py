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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from redis.exceptions import RedisError

from leadscore.logs import mask_emails
from routing import metrics
from routing.alerts import Alert, ChannelType, Context, Delivered, Gone, Retry
from routing.roster import Channel
from routing.store import StreamReader
from streams.dead_letters import DeadLetter, counted, letter, unrecorded

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
    reader: StreamReader
    prefix: str
    http: Any
    #: Sends a dead letter (an entry that holds no alert) to the dead-letter topic.
    set_aside: Callable[[DeadLetter], Awaitable[None]]
    in_flight: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    last_sent: float = 0.0

    def context(self) -> Context:
        secret = os.environ.get(self.config.secret_env) if self.config.secret_env else None
        return Context(self.config, secret, self.http, self.reader.redis, self.prefix)


def alerts_stream(prefix: str, channel: str) -> str:
    return f"{prefix}alerts:{channel}"


async def run_dispatcher(dispatcher: Dispatcher) -> None:
    """A worker task: deliver the channel's alerts until cancelled."""
    reader = dispatcher.reader
    await reader.start()
    # A paced channel (Slack) takes one at a time: an alert waiting for its turn would
    # otherwise sit unclaimed until another worker took it over.
    limit = 1 if dispatcher.kind.per_second else IN_FLIGHT
    try:
        while True:
            for entry, fields in await reader.read(limit, block_ms=500):
                if entry in dispatcher.in_flight:
                    continue
                alert = _alert(fields)
                if alert is None:  # not an alert of ours: set aside, and go on
                    where = unrecorded(reader.stream, 0, entry, fields.get(b"alert"))
                    await dispatcher.set_aside(counted(letter(
                        "route", f"an entry ({entry}) of the {dispatcher.name} channel's "
                        "stream that holds no alert", where, "alerts")))
                    await reader.done(entry)
                    continue
                dispatcher.in_flight[entry] = asyncio.create_task(
                    _deliver(dispatcher, entry, alert))
            while len(dispatcher.in_flight) >= limit:
                await asyncio.wait(list(dispatcher.in_flight.values()),
                                   return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in dispatcher.in_flight.values():
            task.cancel()


def _alert(fields: dict[bytes, bytes]) -> Alert | None:
    """The alert an entry holds, if it holds one that can be delivered and counted."""
    try:
        alert: Alert = orjson.loads(fields[b"alert"])
        readable = all(isinstance(alert.get(name), str) for name in ("id", "kind")) and \
            isinstance(alert["lead"]["track"], str) and "received_at" in alert
    except (KeyError, TypeError, AttributeError, orjson.JSONDecodeError):
        return None
    return alert if readable else None


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
                await dispatcher.reader.done(entry)
                return
            if isinstance(outcome, Gone) or time.monotonic() - first > GIVE_UP_AFTER:
                reason = outcome.reason
                metrics.ALERTS.labels(dispatcher.name, "gone" if isinstance(outcome, Gone)
                                      else "failed").inc()
                log.error("alerts: given up", extra={"channel": dispatcher.name,
                                                     "alert": alert["id"],
                                                     "reason": mask_emails(reason)})
                await dispatcher.reader.done(entry)
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
    """Wait for a paced channel's turn (it delivers one alert at a time)."""
    if dispatcher.kind.per_second is None:
        return
    gap = 1 / dispatcher.kind.per_second - (time.monotonic() - dispatcher.last_sent)
    if gap > 0:
        await asyncio.sleep(gap)
    dispatcher.last_sent = time.monotonic()


async def _wait_claimed(dispatcher: Dispatcher, entry: str, seconds: float) -> None:
    """Sleep, claiming the entry again often enough that no other worker takes it."""
    reader = dispatcher.reader
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        await asyncio.sleep(min(left, reader.takeover_ms / 4000))
        with contextlib.suppress(RedisError):
            await reader.redis.xclaim(reader.stream, reader.group, reader.consumer, 0, [entry],
                                      justid=True)
