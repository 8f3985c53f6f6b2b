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

Every key comes from `routing.keys`; each script is handed the keys it touches, so it runs
on a Redis Cluster too (they all share one slot), and answers one of a few outcomes, typed
here (`Assigned`, `StateSet`, `Stepped`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast, get_args

import orjson
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import OutOfMemoryError, RedisError, ResponseError

from leadscore.decisions import Decision
from leadscore.settings import Settings
from routing.keys import DONE_FIELD, TIMER_FIELD, Keys
from routing.lead_states import ASSIGNED, COMPLETED, QUEUES, queue_of
from routing.policy import Loads, Rotation, load_periods
from routing.roster import CompiledRoster

log = logging.getLogger("leadscore.routing")

#: Day and month load counters expire after the period, with a margin.
DAY_TTL, MONTH_TTL = 3 * 86_400, 40 * 86_400

#: A lead's record, a hash (`routing.keys.Keys.lead`; its other fields hold its SLA timers
#: and the steps carried out).
LEAD_FIELDS = ("routed", "origin", "rep", "state", "tried", "queue")

#: Lua every change script shares. Each script is handed every key it touches (`KEYS`,
#: from `routing.keys`) and its values by name (`ARGV[1]`, one JSON object); keys a script
#: finds only as it runs (an alert's channel stream, the rep's load counters) are declared
#: too, and named by their index in `KEYS`. What a change announces (SLA timers of its
#: lead, alerts, decisions) and a rep's load counters:
_SHARED = """
local function within(value, list)
  for _, item in ipairs(list) do if item == value then return true end end
  return false
end
local function announce(a, lead, sla, outbox, channels)
  for _, item in ipairs(a.announce) do
    local kind = item[1]
    if kind == 'sla' then
      redis.call('ZADD', sla, item[2], item[3])
      redis.call('HSET', lead, a.timer_field .. item[3], '1')
    elseif kind == 'alert' then
      redis.call('XADD', KEYS[item[2]], '*', 'id', item[4], 'alert', item[5])
      redis.call('SADD', channels, item[3])
    elseif kind == 'decision' then
      redis.call('XADD', outbox, '*', 'key', item[2], 'value', item[3])
    end
  end
end
local function close(a, lead, open, sla)
  if redis.call('GET', open) == a.lead then redis.call('DEL', open) end
  local n = #a.timer_field
  for _, name in ipairs(redis.call('HKEYS', lead)) do
    if string.sub(name, 1, n) == a.timer_field then
      redis.call('ZREM', sla, string.sub(name, n + 1))
      redis.call('HDEL', lead, name)
    end
  end
  redis.call('EXPIRE', lead, a.retention)
end
local function count(a)
  if not a.loads then return end
  local day, month = KEYS[a.loads], KEYS[a.loads + 1]
  redis.call('INCR', day)
  redis.call('EXPIRE', day, a.day_ttl)
  redis.call('INCR', month)
  redis.call('EXPIRE', month, a.month_ttl)
end
"""

# KEYS: the lead, the team's version and rotation, the prospect's open lead, the rep's
# queue, holders, sla, outbox, channels; then (a.loads) the rep's day and month loads.
_ASSIGN = _SHARED + """
local a = cjson.decode(ARGV[1])
local lead, version_key = KEYS[1], KEYS[2]
if redis.call('EXISTS', lead) == 1 then
  return {'exists'}
end
local version = redis.call('GET', version_key) or '0'
if version ~= a.expected then return {'conflict', version} end
redis.call('INCR', version_key)
for rep, current in pairs(a.rotation) do redis.call('HSET', KEYS[3], rep, current) end
count(a)
redis.call('HSET', lead, 'routed', a.routed, 'origin', a.origin, 'rep', a.rep,
           'state', a.state, 'tried', a.tried, 'queue', a.queue)
redis.call('SET', KEYS[4], a.lead)
redis.call('ZADD', KEYS[5], a.due, a.lead)
redis.call('SADD', KEYS[6], a.rep)
announce(a, lead, KEYS[7], KEYS[8], KEYS[9])
return {'ok'}
"""

# KEYS: the lead, its holder's queue (as read before: 'moved' when it changed since), the
# prospect's open lead, sla, outbox, channels.
_SET_STATE = _SHARED + """
local a = cjson.decode(ARGV[1])
local lead = KEYS[1]
local state = redis.call('HGET', lead, 'state')
if not state then return {'missing'} end
if state == a.wanted then return {'already'} end
if not within(state, a.from_states) then return {'refused', state} end
local holder = redis.call('HGET', lead, 'rep')
if a.rep and holder ~= a.rep then return {'not yours', holder} end
if holder ~= a.holder or redis.call('HGET', lead, 'queue') ~= a.queue then return {'moved'} end
redis.call('HSET', lead, 'state', a.wanted)
if a.wanted == a.closed then
  redis.call('ZREM', KEYS[2], a.lead)
  close(a, lead, KEYS[3], KEYS[4])
end
announce(a, lead, KEYS[4], KEYS[5], KEYS[6])
return {'ok'}
"""

# KEYS: sla.
_TAKE_DUE = """
local a = cjson.decode(ARGV[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', a.now, 'WITHSCORES', 'LIMIT', 0, a.limit)
for i = 1, #due, 2 do redis.call('ZADD', KEYS[1], a.now + a.lease, due[i]) end
return due
"""

# KEYS: the lead, sla, outbox, channels; for a move (a.move.keys) its holder's queue (as
# read before: 'moved' when it changed since), the new rep's queue and holders; when the
# rotation chose the rep (a.team) the team's version and rotation; (a.loads) the new
# rep's loads.
_STEP = _SHARED + """
local a = cjson.decode(ARGV[1])
local lead, sla, member, move = KEYS[1], KEYS[2], a.member, a.move
-- The timer leaves the SLA set once the step is settled; a conflict leaves it leased, so
-- a worker that dies before deciding again does not lose the step.
local function settle()
  redis.call('ZREM', sla, member)
  redis.call('HDEL', lead, a.timer_field .. member)
end
if redis.call('HEXISTS', lead, a.done_field .. member) == 1 then settle() return {'done'} end
local state = redis.call('HGET', lead, 'state')
if not state or not within(state, a.states) then
  settle()
  return {'moot'}
end
if a.rep and redis.call('HGET', lead, 'rep') ~= a.rep then
  settle()
  return {'moot'}
end
if move and (redis.call('HGET', lead, 'rep') ~= move.holder
             or redis.call('HGET', lead, 'queue') ~= move.queue) then
  return {'moved'}
end
if a.team then
  local version = redis.call('GET', KEYS[a.team]) or '0'
  if version ~= a.version then return {'conflict'} end
  redis.call('INCR', KEYS[a.team])
  for rep, current in pairs(a.rotation) do redis.call('HSET', KEYS[a.team + 1], rep, current) end
end
settle()
redis.call('HSET', lead, a.done_field .. member, '1')
if move then
  redis.call('ZREM', KEYS[move.keys], a.lead)
  redis.call('ZADD', KEYS[move.keys + 1], move.due, a.lead)
  redis.call('SADD', KEYS[move.keys + 2], move.rep)
  redis.call('HSET', lead, 'rep', move.rep, 'routed', move.routed, 'tried', move.tried,
             'state', move.state)
  count(a)
end
announce(a, lead, sla, KEYS[3], KEYS[4])
return {'ok'}
"""

# KEYS: holders, then the rep's queues.
_FORGET_HOLDER = """
for i = 2, #KEYS do
  if redis.call('ZCARD', KEYS[i]) > 0 then return 0 end
end
return redis.call('SREM', KEYS[1], cjson.decode(ARGV[1]).rep)
"""


def redis_client(settings: Settings) -> Redis:
    """The client of the Redis that holds routing's state: of a Redis Cluster when
    `redis_cluster` is set (it routes each command, each script by its keys, to the node
    holding them: all of one deployment's keys are in one slot, `routing.keys`)."""
    if settings.redis_cluster:
        # Not a `Redis`, but it answers every command routing sends the same way.
        return cast(Redis, RedisCluster.from_url(settings.redis_url))
    return Redis.from_url(settings.redis_url)


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


#: What a change announces, in the order given: ("sla", due epoch seconds, member) for a
#: timer of the changed lead, ("alert", channel, alert id, alert JSON), ("decision", key,
#: decision JSON).
Announcement = tuple[Any, ...]

#: What each script answers: `Store.assign`, `Store.set_state`, `Store.step`.
Assigned = Literal["ok", "exists", "conflict"]
StateSet = Literal["ok", "already", "refused", "not yours", "missing"]
Stepped = Literal["ok", "done", "moot", "conflict"]
#: A script's answer when the lead moved between the read its keys were computed from and
#: the script (its holder's queue is another key now): `Store` reads again. Never returned.
_MOVED = "moved"


def _outcome(reply: list[Any], outcomes: Any) -> tuple[Any, str | None]:
    """A script's reply as (one of the `outcomes` Literal's values, or `_MOVED`; detail)."""
    said = _text(reply[0])
    if said not in (*get_args(outcomes), _MOVED):
        raise ValueError(f"a routing script answered {said!r}, none of {get_args(outcomes)}")
    return said, (_text(reply[1]) if len(reply) > 1 else None)


@dataclass
class _Call:
    """One run of a script: the keys it touches, in order, and its named values."""

    keys: list[str]
    args: dict[str, Any] = field(default_factory=dict)

    def declare(self, *keys: str) -> int:
        """Add `keys`; the index in `KEYS` (from 1) of the first, for the script to find."""
        self.keys += keys
        return len(self.keys) - len(keys) + 1

    async def run(self, script: Any) -> Any:
        return await script(keys=self.keys, args=[orjson.dumps(self.args)])


class Store:
    """The routing state of one deployment in one Redis. A closed lead's record stays
    `closed_retention` seconds (for late requests and lookups), then leaves Redis; its
    history stays on the decisions topic."""

    def __init__(self, redis: Redis, app_id: str, closed_retention: float = 86_400.0) -> None:
        self.redis = redis
        self.keys = Keys.of(app_id)
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
            keys += [self.keys.load(rep.id, day), self.keys.load(rep.id, month)]
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.get(self.keys.version(team))
            pipe.hgetall(self.keys.rotation(team))
            for key in keys:  # (one GET each: a cluster client pipelines no MGET)
                pipe.get(key)
            version, rotation, *counts = await pipe.execute()
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
    ) -> Assigned:
        """Apply the assignment `routed` (with the team's `rotation` after it): "ok",
        "exists" (the lead was assigned before) or "conflict" (the team changed since
        `version` was read: decide again). `origin` is the lead's promotion and when its
        trigger arrived."""
        keys, rep_id, team = self.keys, routed["rep"], routed["team"]
        queue = queue_of(routed["track"])
        call = _Call([keys.lead(routed["lead"]), keys.version(team), keys.rotation(team),
                      keys.open(routed["prospect"]), keys.queue(rep_id, queue), keys.holders,
                      keys.sla, keys.outbox, keys.channels])
        call.args = {
            "lead": routed["lead"], "expected": version, "rotation": rotation.current,
            "rep": rep_id, "routed": orjson.dumps(routed).decode(), "origin": origin.decode(),
            "state": ASSIGNED, "tried": json.dumps([rep_id]), "queue": queue,
            "due": repr(datetime.fromisoformat(routed["due"]).timestamp()),
            "timer_field": TIMER_FIELD,
        }
        rep = roster.reps.get(rep_id)
        if rep is not None:
            self._count(call, rep_id, load_periods(rep, datetime.fromisoformat(routed["at"])))
        self._announce(call, announcements)
        outcome: Assigned = _outcome(await call.run(self._assign), Assigned)[0]
        return outcome

    async def lead(self, lead_id: str) -> dict[str, Any] | None:
        """A lead's record: routed (the latest `lead.routed`), origin (the promotion and
        when its trigger arrived), rep, state, tried, queue (None if unknown)."""
        return _lead(await self.redis.hmget(self.keys.lead(lead_id), LEAD_FIELDS))

    async def leads(self, lead_ids: Iterable[str]) -> list[dict[str, Any] | None]:
        """The records of `lead_ids` (as `lead`), in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for lead_id in lead_ids:
                pipe.hmget(self.keys.lead(lead_id), LEAD_FIELDS)
            return [_lead(found) for found in await pipe.execute()]

    async def set_state(
        self, lead_id: str, wanted: str, from_states: Iterable[str], rep: str | None,
        decisions: Iterable[tuple[str, bytes]] = (),
    ) -> tuple[StateSet, str | None]:
        """Move a lead to `wanted` if it is in one of `from_states` (and held by `rep`, if
        given); announce `decisions` with it. ("ok"|"already"|"refused"|"not yours"|
        "missing", detail: the lead's state when refused, its holder when not yours).
        Closing it (`completed`) takes it off its holder's queue."""
        keys = self.keys
        while True:
            holder, queue, routed = [_text(value) if value is not None else "" for value in
                                     await self.redis.hmget(keys.lead(lead_id), "rep", "queue",
                                                            "routed")]
            prospect = orjson.loads(routed)["prospect"] if routed else ""
            call = _Call([keys.lead(lead_id), keys.queue(holder, queue), keys.open(prospect),
                          keys.sla, keys.outbox, keys.channels])
            call.args = {"lead": lead_id, "wanted": wanted, "from_states": list(from_states),
                         "holder": holder, "queue": queue, "closed": COMPLETED,
                         "timer_field": TIMER_FIELD, "retention": self.closed_retention}
            if rep:
                call.args["rep"] = rep
            self._announce(call, [("decision", key, value) for key, value in decisions])
            outcome, detail = _outcome(await call.run(self._set_state), StateSet)
            if outcome != _MOVED:
                return outcome, detail

    async def take_due(
        self, now: float, lease: float, limit: int = 100
    ) -> list[tuple[str, float]]:
        """The SLA steps due by `now` with their due times, leased for `lease` seconds: one
        not finished by then (its worker died) comes due again."""
        call = _Call([self.keys.sla], {"now": now, "lease": lease, "limit": limit})
        reply = await call.run(self._take_due)
        return [(_text(reply[i]), float(reply[i + 1])) for i in range(0, len(reply), 2)]

    async def step(
        self, member: str, lead_id: str, states: Iterable[str], expected_rep: str | None,
        announcements: Iterable[Announcement], move: Move | None = None,
    ) -> Stepped:
        """Carry out an SLA (or queue) step once: "ok", "done" (carried out before), "moot"
        (the lead is in none of `states`, or not held by `expected_rep`), or "conflict"
        (the team changed since `move.version` was read: decide again). A moved lead is
        `assigned` to its new rep."""
        keys, states, announcements = self.keys, list(states), list(announcements)
        while True:
            call = _Call([keys.lead(lead_id), keys.sla, keys.outbox, keys.channels])
            call.args = {"lead": lead_id, "member": member, "states": states,
                         "timer_field": TIMER_FIELD, "done_field": DONE_FIELD}
            if expected_rep:
                call.args["rep"] = expected_rep
            if move is not None:
                await self._move(call, lead_id, move)
            self._announce(call, announcements)
            outcome: Stepped | str = _outcome(await call.run(self._step), Stepped)[0]
            if outcome != _MOVED:
                return cast(Stepped, outcome)

    async def _move(self, call: _Call, lead_id: str, move: Move) -> None:
        """Declare a move's keys and values: the queue it leaves is its holder's now."""
        keys, rep = self.keys, move.routed["rep"]
        holder, queue = [_text(value) if value is not None else "" for value in
                         await self.redis.hmget(keys.lead(lead_id), "rep", "queue")]
        call.args["move"] = {
            "keys": call.declare(keys.queue(holder, queue), keys.queue(rep, queue),
                                 keys.holders),
            "holder": holder, "queue": queue, "rep": rep, "state": ASSIGNED,
            "due": repr(datetime.fromisoformat(move.routed["due"]).timestamp()),
            "routed": orjson.dumps(move.routed).decode(), "tried": json.dumps(move.tried),
        }
        if move.periods is not None:
            self._count(call, rep, move.periods)
        if move.team and move.rotation is not None:
            call.args |= {"team": call.declare(keys.version(move.team),
                                               keys.rotation(move.team)),
                          "version": move.version, "rotation": move.rotation.current}

    def _count(self, call: _Call, rep: str, periods: tuple[str, str]) -> None:
        """Declare the rep's load counters for the day and month `periods`."""
        call.args |= {"loads": call.declare(*(self.keys.load(rep, period) for period in periods)),
                      "day_ttl": DAY_TTL, "month_ttl": MONTH_TTL}

    def _announce(self, call: _Call, announcements: Iterable[Announcement]) -> None:
        """Hand the script what the change announces, each alert stream declared."""
        streams: dict[str, int] = {}
        items: list[list[Any]] = []
        for kind, *values in announcements:
            if kind == "alert":
                channel, alert_id, alert = values
                if channel not in streams:
                    streams[channel] = call.declare(self.keys.alerts(channel))
                items.append([kind, streams[channel], channel, _str(alert_id), _str(alert)])
            elif kind == "sla":
                due, member = values
                items.append([kind, repr(float(due)), member])
            else:
                items.append([kind, *(_str(value) for value in values)])
        call.args["announce"] = items

    async def open_lead(self, prospect: str) -> str | None:
        """The id of the prospect's open lead (assigned or acknowledged), if any."""
        found = await self.redis.get(self.keys.open(prospect))
        return None if found is None else _text(found)

    async def channels(self) -> list[str]:
        """Every channel an alert was ever queued on, in or out of the roster in force."""
        return sorted(_text(name) for name in await self.redis.smembers(self.keys.channels))

    async def forget_channel(self, name: str) -> None:
        await self.redis.srem(self.keys.channels, name)

    async def holders(self) -> list[str]:
        """Every rep who was ever given a lead, in or out of the roster in force: the reps
        whose queues a roster change may strand."""
        return sorted(_text(rep) for rep in await self.redis.smembers(self.keys.holders))

    async def queue(
        self, rep: str, queue: str, limit: int, after: tuple[float, str] | None = None,
    ) -> list[tuple[str, float]]:
        """Up to `limit` leads of a rep's queue ("fast" or "standard") as (lead id, due
        time), in the queue's order (due time, then id), from the start or `after` the
        (due time, id) of a lead: a position that holds while leads come and go."""
        key = self.keys.queue(rep, queue)
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
        call = _Call([self.keys.holders, *(self.keys.queue(rep, queue) for queue in QUEUES)],
                     {"rep": rep})
        await call.run(self._forget_holder)

    async def expire_closed_leads(self) -> int:
        """Give the retention to closed leads stored before closed leads expired (they
        were kept for ever); once per deployment, then marked done. Returns how many."""
        mark = self.keys.migrated("closed-leads-expire")
        if await self.redis.exists(mark):
            return 0
        expired = 0
        async for key in self.redis.scan_iter(self.keys.leads, count=1000):
            if await self.redis.hget(key, "state") == COMPLETED.encode() and \
                    await self.redis.ttl(key) == -1:
                expired += await self.redis.expire(key, self.closed_retention)
        await self.redis.set(mark, "1")
        return expired

    async def queue_depth(self, reps: Iterable[str], queue: str) -> int:
        async with self.redis.pipeline(transaction=False) as pipe:
            for rep in reps:
                pipe.zcard(self.keys.queue(rep, queue))
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


def _str(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode()
    return cast(str, value)
