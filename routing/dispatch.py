"""Delivering alerts: each channel from its own Redis stream, at least once, by its id.

Every worker reads each channel's stream in one consumer group, so an alert goes to one
worker at a time. An alert stays pending until delivered (or given up); while it is
retried (exponential backoff with full jitter, or the receiver's `Retry-After`) its worker
keeps claiming it, and if that worker dies another claims it after the takeover time
(`routing_takeover_seconds`) and delivers it with the same id.

A failing receiver delays no other one. Channels never wait on each other: each has its own
stream, reader, deliveries in flight and HTTP connection pool (with its own connection
limits and timeouts). Within a channel, an attempt holds one of the channel's slots and one
of its rep's, so a rep whose receiver hangs takes at most `PER_REP` of them; an alert waiting
for its next attempt holds no slot (it stays claimed meanwhile, so no other worker takes
it), so on a paced channel (Slack) a failing message waits its backoff out of the line.
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

import aiohttp
import orjson
from redis.exceptions import RedisError

from leadscore.kafka.dead_letters import DeadLetter, counted, letter, unrecorded
from leadscore.logs import mask_emails
from routing import metrics
from routing.alerts import Alert, ChannelType, Context, Delivered, Gone, Outcome, Retry
from routing.roster import Channel
from routing.store import StreamReader

log = logging.getLogger("leadscore.alerts")

GROUP = "dispatch"
#: Backoff: the first retry waits up to this long, doubling up to `MAX_BACKOFF`.
FIRST_BACKOFF, MAX_BACKOFF = 1.0, 300.0
#: An alert not delivered this long after it was queued is given up (and counted).
GIVE_UP_AFTER = 24 * 3600.0
#: Attempts under way at once: per channel, and per rep of a channel.
IN_FLIGHT, PER_REP = 64, 8
#: Alerts a channel holds on a worker at most: attempting, or waiting for their next attempt.
HELD = 1000
#: Timeouts of a channel's HTTP requests (a plugin may pass shorter ones).
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=30, connect=5)


@dataclass
class Dispatcher:
    """The deliveries of one configured channel on this worker."""

    name: str
    config: Channel
    kind: ChannelType
    reader: StreamReader
    prefix: str
    #: Sends a dead letter (an entry that holds no alert) to the dead-letter topic.
    set_aside: Callable[[DeadLetter], Awaitable[None]]
    #: The channel's own HTTP client (`run_dispatcher` opens it).
    http: Any = None
    #: Every alert held, by entry: attempting, or waiting for its slot or next attempt.
    in_flight: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    #: The channel's attempt slots (a paced channel has one), and each rep's.
    slots: asyncio.Semaphore = field(init=False)
    rep_slots: dict[str, asyncio.Semaphore] = field(default_factory=dict)
    attempting: int = 0
    last_sent: float = 0.0
    #: Whether its last attempt failed (and none succeeded since).
    failing: bool = False

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.width)

    @property
    def width(self) -> int:
        """Attempts at once. A paced channel (Slack) takes one at a time."""
        return 1 if self.kind.per_second else IN_FLIGHT

    def context(self) -> Context:
        secret = os.environ.get(self.config.secret_env) if self.config.secret_env else None
        return Context(self.config, secret, self.http, self.reader.redis, self.prefix)


async def run_dispatcher(dispatcher: Dispatcher) -> None:
    """A worker task: deliver the channel's alerts until cancelled."""
    reader = dispatcher.reader
    await reader.start()
    connector = aiohttp.TCPConnector(limit=IN_FLIGHT, limit_per_host=IN_FLIGHT)
    async with aiohttp.ClientSession(connector=connector, timeout=HTTP_TIMEOUT) as http:
        dispatcher.http = http
        claiming = asyncio.create_task(_keep_claimed(dispatcher))
        try:
            await _read_and_deliver(dispatcher)
        finally:
            claiming.cancel()
            for task in dispatcher.in_flight.values():
                task.cancel()


async def _read_and_deliver(dispatcher: Dispatcher) -> None:
    reader = dispatcher.reader
    while True:
        # Read once a slot is free, as many as are free; alerts already read that wait
        # for a rep's slot or their next attempt do not stop the others.
        async with dispatcher.slots:
            pass
        while len(dispatcher.in_flight) >= HELD:
            await asyncio.wait(list(dispatcher.in_flight.values()),
                               return_when=asyncio.FIRST_COMPLETED)
        free = max(1, dispatcher.width - dispatcher.attempting)
        for entry, fields in await reader.read(free, block_ms=500):
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
        await asyncio.sleep(0)  # the new deliveries take their slots before the next read


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
    """Try until delivered, gone or too old."""
    attempt = 0
    try:
        while True:
            outcome = await _attempt(dispatcher, alert)
            dispatcher.failing = not isinstance(outcome, Delivered)
            if isinstance(outcome, Delivered):
                metrics.ALERTS.labels(dispatcher.name, "delivered").inc()
                if alert["kind"] == "new_lead" and alert["received_at"]:
                    metrics.SPEED_TO_LEAD.labels(alert["lead"]["track"], dispatcher.name).observe(
                        max(0.0, time.time() - alert["received_at"] / 1000))
                await dispatcher.reader.done(entry)
                return
            if isinstance(outcome, Gone) or too_old(entry, time.time()):
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
            await asyncio.sleep(wait)  # holding no slot; `_keep_claimed` keeps it ours
    finally:
        dispatcher.in_flight.pop(entry, None)


async def _attempt(dispatcher: Dispatcher, alert: Alert) -> Outcome:
    """One delivery attempt, in a slot of the rep's and one of the channel's."""
    rep = dispatcher.rep_slots.setdefault(alert["rep"]["id"], asyncio.Semaphore(PER_REP))
    async with rep, dispatcher.slots:
        dispatcher.attempting += 1
        try:
            await _pace(dispatcher)
            return await dispatcher.kind.deliver(alert, dispatcher.context())
        except Exception as error:  # a bug of a channel plugin: retried, logged
            log.exception("alerts: the channel failed", extra={"channel": dispatcher.name})
            return Retry(f"{type(error).__name__}: {error}")
        finally:
            dispatcher.attempting -= 1


def too_old(entry: str, now: float) -> bool:
    """Whether an alert that failed is given up at `now` (epoch seconds): its age counts
    from when it was queued, the millisecond time of its stream entry id, whichever worker
    tries it and however often workers restarted."""
    queued_ms = int(entry.partition("-")[0])
    return now * 1000 - queued_ms > GIVE_UP_AFTER * 1000


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


async def _keep_claimed(dispatcher: Dispatcher) -> None:
    """Claim the alerts this worker holds again, every quarter of the takeover time, so
    that no other worker takes over one that waits here (for a slot, or its next attempt)."""
    reader = dispatcher.reader
    while True:
        await asyncio.sleep(reader.takeover_ms / 4000)
        held: list[Any] = list(dispatcher.in_flight)
        if held:
            with contextlib.suppress(RedisError):
                await reader.redis.xclaim(reader.stream, reader.group, reader.consumer, 0,
                                          held, justid=True)
