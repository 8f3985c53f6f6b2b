"""Routing state in Redis: assignments, rotations, loads, queues, SLA timers, alert and
decision outboxes; every change applied atomically by one Lua script.

The policy (`routing.policy`) decides in Python from a snapshot; a script applies the
decision only if the team's state is still the one it was decided on (a version number),
and only once per lead. So whatever the number of workers or repeats of a promotion, a
lead is assigned once and the rotation never skips or doubles a rep; a conflict means
"decide again on the new state".

Everything a change must announce goes in the same script to a Redis stream: alerts to
each channel's stream, decisions to the outbox stream, which a publisher moves to Kafka.
A crash between the change and its announcement loses neither.

Every key starts with `{<app_id>}:`; the braces keep all of them in one cluster slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
from redis.asyncio import Redis
from redis.exceptions import OutOfMemoryError, RedisError, ResponseError

from leadscore.decisions import FAST_TRACK, Decision
from routing.policy import Loads, Rotation, load_periods
from routing.roster import CompiledRoster

log = logging.getLogger("leadscore.routing")

#: Day and month load counters expire after the period, with a margin.
DAY_TTL, MONTH_TTL = 3 * 86_400, 40 * 86_400

# Lead states.
ASSIGNED, ACKNOWLEDGED, COMPLETED = "assigned", "acknowledged", "completed"
#: Each rep's two queues: the fast-track inbox and the 24-hour queue, in the order a
#: listing pages through them.
QUEUES = ("fast", "standard")

#: A lead's record, a hash. Besides these, `timer:<member>` names each SLA timer set for
#: it (so closing the lead removes them) and `done:<member>` each step carried out (so a
#: step happens once, and the marks leave Redis with the lead).
LEAD_FIELDS = ("routed", "origin", "rep", "state", "tried", "queue")

#: Lua both change scripts share: what a change announces (SLA timers, alerts, decisions),
#: and a rep's load counters.
_SHARED = """
local function announce(p, items)
  for _, item in ipairs(cjson.decode(items)) do
    local kind, a, b, c = item[1], item[2], item[3], item[4]
    if kind == 'sla' then
      redis.call('ZADD', p .. 'sla', a, b)
      redis.call('HSET', p .. 'lead:' .. string.match(b, '^[^|]+'), 'timer:' .. b, '1')
    elseif kind == 'alert' then
      redis.call('XADD', p .. 'alerts:' .. a, '*', 'id', b, 'alert', c)
      redis.call('SADD', p .. 'channels', a)
    elseif kind == 'decision' then redis.call('XADD', p .. 'outbox', '*', 'key', a, 'value', b)
    end
  end
end
local function close(p, lead, lead_id, retention)
  local open = p .. 'open:' .. cjson.decode(redis.call('HGET', lead, 'routed'))['prospect']
  if redis.call('GET', open) == lead_id then redis.call('DEL', open) end
  for _, name in ipairs(redis.call('HKEYS', lead)) do
    if string.sub(name, 1, 6) == 'timer:' then
      redis.call('ZREM', p .. 'sla', string.sub(name, 7))
      redis.call('HDEL', lead, name)
    end
  end
  redis.call('EXPIRE', lead, retention)
end
local function count(p, rep, day, month, day_ttl, month_ttl)
  redis.call('INCR', p .. 'load:' .. rep .. ':' .. day)
  redis.call('EXPIRE', p .. 'load:' .. rep .. ':' .. day, day_ttl)
  redis.call('INCR', p .. 'load:' .. rep .. ':' .. month)
  redis.call('EXPIRE', p .. 'load:' .. rep .. ':' .. month, month_ttl)
end
"""

_ASSIGN = _SHARED + """
local p, lead_id, team, expected = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local lead = p .. 'lead:' .. lead_id
if redis.call('EXISTS', lead) == 1 then
  return {'exists'}
end
local version = redis.call('GET', p .. 'ver:' .. team) or '0'
if version ~= expected then return {'conflict', version} end
redis.call('INCR', p .. 'ver:' .. team)
local rotation = cjson.decode(ARGV[5])
for rep, current in pairs(rotation) do redis.call('HSET', p .. 'rot:' .. team, rep, current) end
local rep, day, month = ARGV[6], ARGV[7], ARGV[8]
if day ~= '' then count(p, rep, day, month, ARGV[14], ARGV[15]) end
redis.call('HSET', lead, 'routed', ARGV[9], 'origin', ARGV[10], 'rep', rep, 'state', 'assigned',
           'tried', ARGV[16], 'queue', ARGV[11])
redis.call('SET', p .. 'open:' .. ARGV[17], lead_id)
redis.call('ZADD', p .. 'q:' .. rep .. ':' .. ARGV[11], ARGV[12], lead_id)
redis.call('SADD', p .. 'holders', rep)
announce(p, ARGV[13])
return {'ok'}
"""

_SET_STATE = _SHARED + """
local p, lead_id, wanted, from_states, rep = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local lead = p .. 'lead:' .. lead_id
local state = redis.call('HGET', lead, 'state')
if not state then return {'missing'} end
if state == wanted then return {'already'} end
if not string.find(' ' .. from_states .. ' ', ' ' .. state .. ' ', 1, true) then
  return {'refused', state}
end
if rep ~= '' and redis.call('HGET', lead, 'rep') ~= rep then
  return {'not yours', redis.call('HGET', lead, 'rep')}
end
redis.call('HSET', lead, 'state', wanted)
if wanted == 'completed' then
  local holder = redis.call('HGET', lead, 'rep')
  redis.call('ZREM', p .. 'q:' .. holder .. ':' .. redis.call('HGET', lead, 'queue'), lead_id)
  close(p, lead, lead_id, ARGV[7])
end
announce(p, ARGV[6])
return {'ok'}
"""

_TAKE_DUE = """
local p, now, lease, limit = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local due = redis.call('ZRANGEBYSCORE', p .. 'sla', '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
for i = 1, #due, 2 do redis.call('ZADD', p .. 'sla', now + lease, due[i]) end
return due
"""

_STEP = _SHARED + """
local p, member, lead_id, wanted_rep = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local lead = p .. 'lead:' .. lead_id
-- The timer leaves the SLA set once the step is settled; a conflict leaves it leased, so
-- a worker that dies before deciding again does not lose the step.
local function settle()
  redis.call('ZREM', p .. 'sla', member)
  redis.call('HDEL', lead, 'timer:' .. member)
end
if redis.call('HEXISTS', lead, 'done:' .. member) == 1 then settle() return {'done'} end
local state = redis.call('HGET', lead, 'state')
if not state or not string.find(' ' .. ARGV[5] .. ' ', ' ' .. state .. ' ', 1, true) then
  settle()
  return {'moot'}
end
if wanted_rep ~= '' and redis.call('HGET', lead, 'rep') ~= wanted_rep then
  settle()
  return {'moot'}
end
local new_rep, team = ARGV[6], ARGV[15]
if team ~= '' then
  local version = redis.call('GET', p .. 'ver:' .. team) or '0'
  if version ~= ARGV[16] then return {'conflict'} end
  redis.call('INCR', p .. 'ver:' .. team)
  for rep, current in pairs(cjson.decode(ARGV[17])) do
    redis.call('HSET', p .. 'rot:' .. team, rep, current)
  end
end
settle()
redis.call('HSET', lead, 'done:' .. member, '1')
if new_rep ~= '' then
  local queue = redis.call('HGET', lead, 'queue')
  local old_rep = redis.call('HGET', lead, 'rep')
  redis.call('ZREM', p .. 'q:' .. old_rep .. ':' .. queue, lead_id)
  redis.call('ZADD', p .. 'q:' .. new_rep .. ':' .. queue, ARGV[7], lead_id)
  redis.call('SADD', p .. 'holders', new_rep)
  redis.call('HSET', lead, 'rep', new_rep, 'routed', ARGV[8], 'tried', ARGV[9],
             'state', 'assigned')
  if ARGV[10] ~= '' then count(p, new_rep, ARGV[10], ARGV[11], ARGV[13], ARGV[14]) end
end
announce(p, ARGV[12])
return {'ok'}
"""


_FORGET_HOLDER = """
local p, rep = ARGV[1], ARGV[2]
for i = 3, #ARGV do
  if redis.call('ZCARD', p .. 'q:' .. rep .. ':' .. ARGV[i]) > 0 then return 0 end
end
return redis.call('SREM', p .. 'holders', rep)
"""


#: When each kind of trouble (unavailable, full) was last said.
_said_at: dict[bool, float] = {}


def redis_down(error: Exception) -> None:
    """Say, once per 30 s, that Redis does not answer or refuses writes (it is at its
    `maxmemory`): routing waits and retries."""
    full = isinstance(error, OutOfMemoryError)
    now = time.monotonic()
    if now - _said_at.get(full, -60.0) > 30:
        _said_at[full] = now
        if full:
            log.warning("routing: Redis is full (maxmemory) and refuses writes, leads wait; "
                        "retrying", extra={"error": repr(error)})
        else:
            log.warning("routing: Redis unavailable, leads wait; retrying",
                        extra={"error": repr(error)})


#: The most entries `StreamReader.backlog` counts one by one, when Redis cannot tell.
COUNT_BOUND = 10_000
#: Entries a stream keeps once read, for looking into: a day.
KEEP_MS = 86_400_000


@dataclass
class StreamReader:
    """One consumer of a routing stream (alerts of a channel, routing's decision outbox) in
    its group. Each read returns new entries and, every quarter of the takeover time, those
    a dead consumer left pending longer than it; entries older than a day are trimmed. A
    stream Redis lost (restarted without its data) is made again.

    A reader takes nothing over until Redis has answered it for a whole takeover time (since
    it started, and since Redis last failed it). Redis counts an entry's idle time through
    an outage, while its holder can neither acknowledge it nor claim it again: taken over
    the moment Redis is back, an alert delivered just before the outage, its acknowledgement
    still being retried, was delivered again. Every worker sees the outage end at about the
    same time, and a live holder acknowledges or claims its entries again within a quarter
    of the takeover time once Redis answers (`routing.dispatch`): so after a takeover time
    only the entries of dead holders are idle enough to take."""

    redis: Redis
    stream: str
    group: str
    consumer: str
    takeover_ms: int
    next_claim: float = 0.0
    #: When Redis began answering this reader (monotonic; None: it has just failed it).
    answering_since: float | None = None

    async def start(self) -> None:
        """Make the group if missing; waits while Redis is down, or full and the group
        missing. A full Redis refuses `XGROUP CREATE` even for a group that exists, but
        reads and acknowledges in an existing group: alerts queued before still go out."""
        while True:
            self.answering_since = None
            try:
                await self.redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
                return
            except ResponseError as error:
                if "BUSYGROUP" in str(error):
                    return
                if not isinstance(error, OutOfMemoryError):
                    raise
                redis_down(error)
                with contextlib.suppress(RedisError):
                    if await self._group_exists():
                        return
            except RedisError as error:
                redis_down(error)
            await asyncio.sleep(1.0)

    async def _group_exists(self) -> bool:
        try:
            groups: Any = await self.redis.xinfo_groups(self.stream)
        except ResponseError:  # no such stream
            return False
        return any(_text(group["name"]) == self.group for group in groups)

    async def read(self, count: int, block_ms: int) -> list[tuple[str, dict[bytes, bytes]]]:
        """Entries to handle, as (id, fields); empty while Redis is down (it says so)."""
        try:
            return await self._read(count, block_ms)
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            await self.start()
        except RedisError as error:
            self.answering_since = None
            redis_down(error)
            await asyncio.sleep(1.0)
        return []

    async def _read(self, count: int, block_ms: int) -> list[tuple[str, dict[bytes, bytes]]]:
        entries: list[Any] = []
        now = time.monotonic()
        if self.answering_since is None:
            self.answering_since = now  # (reset if this read fails)
        if now >= self.next_claim and now - self.answering_since >= self.takeover_ms / 1000:
            claimed: Any = await self.redis.xautoclaim(
                self.stream, self.group, self.consumer, self.takeover_ms, "0-0", count=count)
            entries += [entry for entry in claimed[1] if entry[1]]
            self.next_claim = time.monotonic() + self.takeover_ms / 4000
            await self.redis.xtrim(self.stream, minid=str(int(time.time() * 1000) - KEEP_MS))
        read: Any = await self.redis.xreadgroup(
            self.group, self.consumer, {self.stream: ">"}, count=count, block=block_ms)
        for _, found in read or []:
            entries += found
        return [(_text(entry_id), fields) for entry_id, fields in entries]

    async def backlog(self) -> tuple[int, int | None]:
        """Entries not acknowledged yet (read or not), and when the oldest of them was
        queued (epoch ms; None: none waits)."""
        try:
            groups: Any = await self.redis.xinfo_groups(self.stream)
        except ResponseError:  # no such stream: nothing was ever queued
            return 0, None
        group = next((g for g in groups if _text(g["name"]) == self.group), None)
        if group is None:  # never read: every entry waits
            after, waiting = "-", await self.redis.xlen(self.stream)
        else:
            after = "(" + _text(group["last-delivered-id"])
            lag = group.get("lag")
            if lag is None:  # Redis cannot tell after some deletions: count (up to a bound)
                lag = len(cast(list[Any], await self.redis.xrange(
                    self.stream, min=after, count=COUNT_BOUND)))
            waiting = int(group["pending"]) + int(lag)
        first: Any = await self.redis.xrange(self.stream, min=after, count=1)
        oldest = [int(_text(entry_id).partition("-")[0]) for entry_id, _ in first]
        if group is not None and int(group["pending"]):
            summary: Any = await self.redis.xpending(self.stream, self.group)
            oldest.append(int(_text(summary["min"]).partition("-")[0]))
        return waiting, min(oldest, default=None)

    async def done(self, *entries: str) -> None:
        """Acknowledge entries; while Redis is down, keep trying (else they come again)."""
        while True:
            try:
                await self.redis.xack(self.stream, self.group, *entries)
                return
            except RedisError as error:
                self.answering_since = None
                redis_down(error)
                await asyncio.sleep(1.0)


def prefix(app_id: str) -> str:
    return "{" + app_id + "}:"


@dataclass(frozen=True)
class Snapshot:
    """A team's routing state, as the policy reads it."""

    version: str
    rotation: Rotation
    loads: Loads


@dataclass(frozen=True)
class Move:
    """A lead moving to another rep: the `lead.routed` record it now has and the reps who
    held it, this one last. When the rotation chose the rep, the team's `rotation` after
    it, and the `version` it was decided on."""

    routed: Decision
    tried: list[str]
    #: The day and month the move counts towards, in the new rep's zone (None: not a rep
    #: of the roster, such as an escalation target removed since).
    periods: tuple[str, str] | None
    team: str = ""
    version: str = ""
    rotation: Rotation | None = None

    @classmethod
    def to(cls, roster: CompiledRoster, routed: Decision, held: list[str], when: Any,
           team: str = "", version: str = "", rotation: Rotation | None = None) -> Move:
        rep = roster.reps.get(routed["rep"])
        return cls(routed, [*held, routed["rep"]], load_periods(rep, when) if rep else None,
                   team, version, rotation)


#: What a change announces, in the order given: ("sla", due epoch seconds, member),
#: ("alert", channel, alert id, alert JSON), ("decision", key, decision JSON).
Announcement = tuple[Any, ...]


class Store:
    """The routing state of one deployment in one Redis. A closed lead's record stays
    `closed_retention` seconds (for late requests and lookups), then leaves Redis; its
    history stays on the decisions topic."""

    def __init__(self, redis: Redis, app_id: str, closed_retention: float = 86_400.0) -> None:
        self.redis = redis
        self.p = prefix(app_id)
        self.closed_retention = max(1, round(closed_retention))
        self._assign = redis.register_script(_ASSIGN)
        self._set_state = redis.register_script(_SET_STATE)
        self._take_due = redis.register_script(_TAKE_DUE)
        self._step = redis.register_script(_STEP)
        self._forget_holder = redis.register_script(_FORGET_HOLDER)

    async def snapshot(self, roster: CompiledRoster, team: str, at: Any) -> Snapshot:
        """The team's version, rotation and its reps' loads for the periods of `at`."""
        members = roster.members(team)
        keys = []
        for rep in members:
            day, month = load_periods(rep, at)
            keys += [f"{self.p}load:{rep.id}:{day}", f"{self.p}load:{rep.id}:{month}"]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(f"{self.p}ver:{team}")
            pipe.hgetall(f"{self.p}rot:{team}")
            if keys:
                pipe.mget(keys)
            replies = await pipe.execute()
        version, rotation = replies[0], replies[1]
        counts = replies[2] if keys else []
        day_loads = {rep.id: int(counts[2 * i] or 0) for i, rep in enumerate(members)}
        month_loads = {rep.id: int(counts[2 * i + 1] or 0) for i, rep in enumerate(members)}
        return Snapshot(
            _text(version) or "0",
            Rotation({_text(k): int(v) for k, v in rotation.items()}),
            Loads(day_loads, month_loads),
        )

    async def assign(
        self, roster: CompiledRoster, routed: Decision, version: str, rotation: Rotation,
        origin: bytes, announcements: Iterable[Announcement],
    ) -> str:
        """Apply the assignment `routed` (with the team's `rotation` after it): "ok",
        "exists" (the lead was assigned before) or "conflict" (the team changed since
        `version` was read: decide again). `origin` is the lead's promotion and when its
        trigger arrived."""
        rep = roster.reps.get(routed["rep"])
        day, month = load_periods(rep, datetime.fromisoformat(routed["at"])) if rep else ("", "")
        queue = QUEUES[0] if routed["track"] == FAST_TRACK else QUEUES[1]
        reply = await self._assign(args=[
            self.p, routed["lead"], routed["team"], version, json.dumps(rotation.current),
            routed["rep"], day, month, orjson.dumps(routed), origin, queue,
            datetime.fromisoformat(routed["due"]).timestamp(), _json(announcements),
            DAY_TTL, MONTH_TTL, json.dumps([routed["rep"]]), routed["prospect"],
        ])
        return _text(reply[0])

    async def lead(self, lead_id: str) -> dict[str, Any] | None:
        """A lead's record: routed (the latest `lead.routed`), origin (the promotion and
        when its trigger arrived), rep, state, tried, queue (None if unknown)."""
        return _lead(await self.redis.hmget(f"{self.p}lead:{lead_id}", LEAD_FIELDS))

    async def leads(self, lead_ids: Iterable[str]) -> list[dict[str, Any] | None]:
        """The records of `lead_ids` (as `lead`), in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for lead_id in lead_ids:
                pipe.hmget(f"{self.p}lead:{lead_id}", LEAD_FIELDS)
            return [_lead(found) for found in await pipe.execute()]

    async def set_state(
        self, lead_id: str, wanted: str, from_states: Iterable[str], rep: str | None,
        decisions: Iterable[tuple[str, bytes]] = (),
    ) -> tuple[str, str | None]:
        """Move a lead to `wanted` if it is in one of `from_states` (and held by `rep`, if
        given); announce `decisions` with it. ("ok"|"already"|"refused"|"not yours"|
        "missing", detail)."""
        reply = await self._set_state(args=[
            self.p, lead_id, wanted, " ".join(from_states), rep or "",
            _json(("decision", key, value) for key, value in decisions), self.closed_retention,
        ])
        return _text(reply[0]), (_text(reply[1]) if len(reply) > 1 else None)

    async def take_due(
        self, now: float, lease: float, limit: int = 100
    ) -> list[tuple[str, float]]:
        """The SLA steps due by `now` with their due times, leased for `lease` seconds: one
        not finished by then (its worker died) comes due again."""
        reply = await self._take_due(args=[self.p, now, lease, limit])
        return [(_text(reply[i]), float(reply[i + 1])) for i in range(0, len(reply), 2)]

    async def step(
        self, member: str, lead_id: str, states: Iterable[str], expected_rep: str | None,
        announcements: Iterable[Announcement], move: Move | None = None,
    ) -> str:
        """Carry out an SLA (or queue) step once: "ok", "done" (carried out before), "moot"
        (the lead is in none of `states`, or not held by `expected_rep`), or "conflict"
        (the team changed since `move.version` was read: decide again). A moved lead is
        `assigned` to its new rep."""
        day, month = (move.periods if move else None) or ("", "")
        rotation = move.rotation if move else None
        reply = await self._step(args=[
            self.p, member, lead_id, expected_rep or "", " ".join(states),
            move.routed["rep"] if move else "",
            datetime.fromisoformat(move.routed["due"]).timestamp() if move else 0,
            orjson.dumps(move.routed) if move else b"", json.dumps(move.tried if move else []),
            day, month, _json(announcements), DAY_TTL, MONTH_TTL,
            move.team if move and rotation else "", move.version if move else "",
            json.dumps(rotation.current if rotation else {}),
        ])
        return _text(reply[0])

    async def open_lead(self, prospect: str) -> str | None:
        """The id of the prospect's open lead (assigned or acknowledged), if any."""
        found = await self.redis.get(f"{self.p}open:{prospect}")
        return None if found is None else _text(found)

    async def channels(self) -> list[str]:
        """Every channel an alert was ever queued on, in or out of the roster in force."""
        return sorted(_text(name) for name in await self.redis.smembers(f"{self.p}channels"))

    async def forget_channel(self, name: str) -> None:
        await self.redis.srem(f"{self.p}channels", name)

    async def holders(self) -> list[str]:
        """Every rep who was ever given a lead, in or out of the roster in force: the reps
        whose queues a roster change may strand."""
        return sorted(_text(rep) for rep in await self.redis.smembers(f"{self.p}holders"))

    async def queue(
        self, rep: str, queue: str, limit: int, after: tuple[float, str] | None = None,
    ) -> list[tuple[str, float]]:
        """Up to `limit` leads of a rep's queue ("fast" or "standard") as (lead id, due
        time), in the queue's order (due time, then id), from the start or `after` the
        (due time, id) of a lead: a position that holds while leads come and go."""
        key = f"{self.p}q:{rep}:{queue}"
        rank = None if after is None else cast(int | None,
                                                await self.redis.zrank(key, after[1]))
        if after is None or rank is not None:  # from the start, or right after that lead
            start = 0 if rank is None else rank + 1
            items = await self.redis.zrange(key, start, start + limit - 1, withscores=True)
        else:  # that lead left the queue: from its place by due time and id
            due, lead_id = after
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zrangebyscore(key, due, due, withscores=True)  # ties, ordered by id
                pipe.zrangebyscore(key, f"({due!r}", "+inf", start=0, num=limit,
                                   withscores=True)
                ties, later = await pipe.execute()
            items = [(member, score) for member, score in ties if _text(member) > lead_id]
            items += later
        return [(_text(member), float(score))
                for member, score in cast(list[tuple[bytes, float]], items)[:limit]]

    async def forget_holder(self, rep: str) -> None:
        """Take `rep` off the holders once both their queues are empty (an assignment to
        them puts them back), so the set does not grow with every rep there ever was."""
        await self._forget_holder(args=[self.p, rep, *QUEUES])

    async def expire_closed_leads(self) -> int:
        """Give the retention to closed leads stored before closed leads expired (they
        were kept for ever); once per deployment, then marked done. Returns how many."""
        mark = f"{self.p}migrated:closed-leads-expire"
        if await self.redis.exists(mark):
            return 0
        expired = 0
        async for key in self.redis.scan_iter(f"{self.p}lead:*", count=1000):
            if await self.redis.hget(key, "state") == COMPLETED.encode() and \
                    await self.redis.ttl(key) == -1:
                expired += await self.redis.expire(key, self.closed_retention)
        await self.redis.set(mark, "1")
        return expired

    async def queue_depth(self, reps: Iterable[str], queue: str) -> int:
        async with self.redis.pipeline(transaction=False) as pipe:
            for rep in reps:
                pipe.zcard(f"{self.p}q:{rep}:{queue}")
            return sum(await pipe.execute())


def _lead(found: list[Any]) -> dict[str, Any] | None:
    """A lead's record from its hash's `LEAD_FIELDS`; None if it has none."""
    if found[0] is None:
        return None
    lead: dict[str, Any] = {
        name: _text(value) for name, value in zip(LEAD_FIELDS, found, strict=True)}
    for name in ("routed", "origin", "tried"):
        lead[name] = orjson.loads(lead[name])
    return lead


def _json(announcements: Iterable[Any]) -> str:
    return json.dumps([
        [item.decode() if isinstance(item, bytes) else item for item in entry]
        for entry in announcements
    ])


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return cast(str, value)
