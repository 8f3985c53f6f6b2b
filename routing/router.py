"""The routing stage on a worker: thin adapters around the pure policy and SLA steps.

    decisions --router--> Redis (assignment, queue, timers, alert and decision outboxes)
                              |-- alerts:<channel> --dispatch--> webhook, Slack, email, stream
                              |-- sla --watchdog--> reminders, reassignments, breaches
                              '-- outbox --publisher--> decisions (lead.routed, ...)

The router reads `prospect.promoted` (and `prospect.reengaged`: a lead's new hand-raise,
told to its owner) in its own consumer group and commits its offsets once Redis holds the
assignment; a promotion read again finds its assignment there and changes nothing. While
Redis is down, routing waits and retries: it delays leads, never drops one. Beside it, the
open leads of reps who left the roster or are away are handed over (`hand_over_stranded`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from leadscore.decisions import (
    PROSPECT_PROMOTED,
    PROSPECT_REENGAGED,
    Decision,
    ProspectPromoted,
    iso,
    read_decision,
)
from leadscore.kafka.dead_letters import as_record, counted, describe, letter, send, unrecorded
from leadscore.kafka.produce import Record, produce
from leadscore.kafka.topics import Topics, fits
from leadscore.kafka.versions import follow_versions
from leadscore.kafka_security import aiokafka_security
from leadscore.settings import Settings
from routing import metrics
from routing.alerts import channel_types
from routing.dispatch import GROUP, Dispatcher, run_dispatcher
from routing.lead_states import ACKNOWLEDGED, ASSIGNED, QUEUES
from routing.persistence import redis_persistence
from routing.policy import (
    Lead,
    assign,
    cannot_hold,
    out_of_office,
    route,
    team_for,
)
from routing.roster import (
    ROSTER_KEY,
    Channel,
    CompiledRoster,
    RosterError,
    from_published,
    unset_secrets,
)
from routing.sla import (
    BREACH,
    Timer,
    announcements,
    handed_over,
    ladder_start,
    reengaged,
    states_for,
    step,
)
from routing.store import Move, Store, StreamReader, redis_down

log = logging.getLogger("leadscore.routing")

#: A new router group starts with the promotions this recent (seconds before the start).
NEW_GROUP_LOOKBACK = 300.0
#: How often the watchdog, the queue gauges and the hand-over of stranded leads look.
SLA_TICK, GAUGE_TICK, STRANDED_TICK = 0.25, 10.0, 60.0
#: Leads read at a time from the queue of a rep whose leads are handed over, and after how
#: many ticks a lead nobody else could take is looked at again.
HAND_OVER_PAGE, PASSED_TICKS = 200, 15
#: How often a worker looks whether Redis restarted, and the key of its warning in
#: `Routing.warnings`.
PERSISTENCE_TICK, PERSISTENCE = 5.0, "redis"
#: A routing task that failed starts again after this long, doubling up to the second
#: (and back to the first once it has run that long).
RESTART_FIRST, RESTART_MAX = 1.0, 60.0


@dataclass
class Routing:
    """What the routing tasks of a worker share."""

    settings: Settings
    #: The roster in force; replaced whole when a new version is accepted.
    roster: CompiledRoster
    redis: Redis
    store: Store
    producer: AIOKafkaProducer
    topics: Topics
    consumer_name: str = field(default_factory=lambda: f"{os.uname().nodename}-{os.getpid()}")
    #: Set when a new roster is put in force: its reps' leads are looked at again.
    roster_changed: asyncio.Event = field(default_factory=asyncio.Event)
    #: Each channel's delivery task, the settings it runs with, and its deliveries.
    dispatchers: dict[str, tuple[asyncio.Task[None], Channel, Dispatcher]] = field(
        default_factory=dict)
    channels_running: bool = False
    #: What the worker's `/readyz` says though it changes nothing of its answer, by topic
    #: (the worker's `Health.warnings`).
    warnings: dict[str, str] = field(default_factory=dict)


def routing_tasks(routing: Routing) -> list[Coroutine[Any, Any, None]]:
    """The coroutines of the routing stage, for the worker to run; none of them ever ends
    (see `supervised`)."""
    tasks = [route_promotions, publish_outbox, watch_sla, follow_roster, hand_over_stranded,
             gauge_queues, gauge_alerts, run_channels, watch_persistence]
    return [supervised(task.__name__, functools.partial(task, routing)) for task in tasks]


async def supervised(name: str, run: Callable[[], Awaitable[None]]) -> None:
    """Run a routing task for good. Scoring and ingest run beside routing on the worker and
    must not stop with it: a routing task that fails (a bug of ours, an answer of Redis we
    did not expect) is logged with its traceback, counted, and started again after a
    backoff, so a bug is seen and a lasting one does not spin."""
    pause = RESTART_FIRST
    while True:
        started = time.monotonic()
        try:
            await run()
            log.error("routing: a task ended; restarting it",
                      extra={"task": name, "in_seconds": pause})
        except Exception:
            log.exception("routing: a task failed; restarting it",
                          extra={"task": name, "in_seconds": pause})
        metrics.TASK_RESTARTS.labels(name).inc()
        await asyncio.sleep(pause)
        pause = RESTART_FIRST if time.monotonic() - started > RESTART_MAX + pause else \
            min(pause * 2, RESTART_MAX)


async def route_promotions(routing: Routing) -> None:
    """Assign every promotion on `decisions`, once, in the router's consumer group."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=routing.settings.kafka_bootstrap_servers,
        **aiokafka_security(routing.settings),
        group_id=f"{routing.settings.app_id}-router", enable_auto_commit=False,
        auto_offset_reset="earliest", fetch_max_wait_ms=20)
    consumer.subscribe([routing.topics.decisions],
                       listener=_NewGroupStartsRecently(consumer, time.time()))
    await consumer.start()
    try:
        while True:
            batches = await consumer.getmany(timeout_ms=200, max_records=500)
            for records in batches.values():
                for record in records:
                    await _route_record(routing, record)
            if batches:
                try:
                    await consumer.commit()
                except CommitFailedError:  # (a long Redis outage): read again, idempotent
                    log.warning("routing: the router lost its partitions; reading again")
    finally:
        await consumer.stop()


class _NewGroupStartsRecently(ConsumerRebalanceListener):  # type: ignore[misc]
    """A partition the router group never read starts at the promotions of the few minutes
    before this worker started, not at the topic's history: routing an existing deployment
    for the first time alerts nobody about last month's leads."""

    def __init__(self, consumer: AIOKafkaConsumer, started: float) -> None:
        self.consumer, self.since_ms = consumer, int((started - NEW_GROUP_LOOKBACK) * 1000)

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        pass

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        fresh = [tp for tp in assigned if await self.consumer.committed(tp) is None]
        if not fresh:
            return
        # The ends first: a promotion landing during the look-up is after them, and read.
        ends = await self.consumer.end_offsets(fresh)
        found = await self.consumer.offsets_for_times({tp: self.since_ms for tp in fresh})
        for tp in fresh:
            at = found.get(tp)
            self.consumer.seek(tp, ends[tp] if at is None else min(at.offset, ends[tp]))


async def _route_record(routing: Routing, record: Any) -> None:
    try:
        decision: Any = read_decision(record.value)  # its fields are checked below
        kind = decision["type"]
        handle: Callable[[Routing, Any, int | None], Awaitable[str]]
        if kind == PROSPECT_PROMOTED:
            Lead.of(cast(ProspectPromoted, decision))  # checks what routing reads of it
            handle = assign_promotion
        elif kind == PROSPECT_REENGAGED:
            _check_hand_raise(decision)
            handle = tell_owner
        else:
            return
    except (ValueError, KeyError, TypeError) as error:
        await _set_aside(routing, counted(letter("route", describe(error), record, "decisions")))
        return
    try:
        await _retrying_redis(lambda: handle(routing, decision, record.timestamp))
    except Exception as error:  # a bug of ours, or a roster that cannot route it: go on
        await _set_aside(routing, counted(letter("route", describe(error), record, "decisions",
                                                 error), error))


async def _set_aside(routing: Routing, dead: Any) -> None:
    await send(routing.producer, routing.topics.dead_letter, dead,
               routing.settings.message_max_bytes)


async def assign_promotion(
    routing: Routing, promotion: ProspectPromoted, received_at: int | None,
) -> str:
    """Assign one promotion; returns "ok" or "exists" (assigned before)."""
    roster, store = routing.roster, routing.store
    lead = Lead.of(promotion)
    team, _ = team_for(roster, lead)
    while True:
        snapshot = await store.snapshot(roster, team.id, lead.at)
        assignment = route(roster, lead, snapshot.loads, snapshot.rotation)
        routed = assignment.routed
        # A late router (a backlog, Redis down) starts the ladder when it assigns, so the
        # rep is reminded and the lead moved only after the whole wait.
        started = ladder_start(routed, max(lead.at, datetime.now(UTC)))
        items = announcements(roster, lead, routed, "new_lead", received_at, [routed],
                              started=started)
        origin = orjson.dumps({"promotion": promotion, "received_at": received_at,
                               "assigned_at": iso(started.timestamp())})
        outcome = await store.assign(roster, routed, snapshot.version, assignment.rotation,
                                     origin, items)
        if outcome == "conflict":
            continue  # another worker changed the team meanwhile: decide again
        if outcome == "ok":
            metrics.ASSIGNMENTS.labels(team.id, str(routed["fallback"]).lower()).inc()
            if assignment.chosen != "rotation":
                metrics.NOBODY_ELIGIBLE.labels(team.id, assignment.chosen).inc()
            log.info("routed", extra={"lead": lead.id, "team": team.id, "rep": routed["rep"],
                                      "track": lead.track, "fallback": routed["fallback"]})
        return outcome


def _check_hand_raise(raised: Decision) -> None:
    """Raises unless `raised` holds what routing reads of a `prospect.reengaged`."""
    if not all(isinstance(value, str) for value in (
            raised["prospect"], raised["at"], raised["trigger"]["id"])):
        raise TypeError("prospect, at and trigger.id must be text")


async def tell_owner(routing: Routing, raised: Decision, received_at: int | None) -> str:
    """Alert the owner of the open lead of a prospect who raised their hand again, once per
    trigger event; "ok", "done" (told before), or "none": no open lead (a hand-raise of a
    prospect whose lead is closed has nobody to tell until the lead is recycled) or a lead
    that kept moving while it was told."""
    store = routing.store
    for _ in range(3):  # a lead moved between the read and the step: read it again
        lead_id = await store.open_lead(raised["prospect"])
        lead = None if lead_id is None else await store.lead(lead_id)
        if lead_id is None or lead is None:
            return "none"
        items = reengaged(routing.roster, lead["origin"], lead["routed"], raised, received_at)
        member = Timer.once(lead_id, f"raised-{raised['trigger']['id']}", "re_engaged",
                            lead["rep"])
        told: str = await store.step(member, lead_id, (ASSIGNED, ACKNOWLEDGED), lead["rep"],
                                     items)
        if told != "moot":
            return told
    return "none"


async def publish_outbox(routing: Routing) -> None:
    """Move routing's decisions from Redis to the `decisions` topic, at least once, in order
    per lead."""
    reader = StreamReader(routing.redis, routing.store.keys.outbox, "publisher",
                          routing.consumer_name,
                          int(routing.settings.routing_takeover_seconds * 1000))
    await reader.start()
    limit = routing.settings.message_max_bytes
    while True:
        entries = await reader.read(500, block_ms=200)
        if not entries:
            continue
        records = []
        for entry, fields in entries:
            key, value = fields.get(b"key"), fields.get(b"value")
            if value is None or not fits(key, value, limit):  # none of ours: set aside
                where = unrecorded(reader.stream, 0, key, value)
                dead = counted(letter("route", f"an outbox entry ({entry}) that is no "
                                      "decision to publish", where, "decisions"))
                records.append(as_record(routing.topics.dead_letter, dead, limit))
            else:
                records.append(Record(routing.topics.decisions, key, value))
        try:
            await produce(routing.producer, records)
        except KafkaError as error:  # the entries stay pending and are published again
            log.warning("routing: Kafka did not take routing's decisions; retrying",
                        extra={"error": repr(error)})
            await asyncio.sleep(1.0)
            continue
        await reader.done(*[entry for entry, _ in entries])


async def watch_sla(routing: Routing) -> None:
    """Carry out the SLA steps as they come due: cost proportional to the steps due."""
    while True:
        try:
            due = await routing.store.take_due(time.time(),
                                               routing.settings.routing_takeover_seconds)
            for member, _ in due:  # (the score is now the lease; the member has the due time)
                try:
                    timer = Timer.parse(member)
                    await _sla_step(routing, timer, member,
                                    datetime.fromtimestamp(timer.due, UTC))
                except RedisError:
                    raise
                except Exception as error:  # a bug of ours, a roster without the lead's
                    # team or rep, or a timer no step of ours wrote: set aside, and go on
                    where = unrecorded(routing.store.keys.sla, 0, member)
                    await _set_aside(routing, counted(letter(
                        "route", f"an SLA step that failed and is dropped: {describe(error)}",
                        where, "sla", error), error))
                    await routing.store.step(member, member.partition("|")[0], (), None, [])
        except RedisError as error:
            redis_down(error)
        await asyncio.sleep(SLA_TICK)


async def _sla_step(routing: Routing, timer: Timer, member: str, when: datetime) -> None:
    """Carry out one due timer; a reassignment is decided again if the team changed."""
    roster, store = routing.roster, routing.store
    while True:
        lead = await store.lead(timer.lead)
        if lead is None:
            await store.step(member, timer.lead, (), None, [])  # unknown: drop the timer
            return
        promotion = lead["origin"]["promotion"]
        track = promotion["track"]
        reassign, version, team = None, "", ""
        if timer.action in ("reassign", "escalate") and lead["rep"] == timer.rep:
            current = Lead.of(promotion)
            team = team_for(roster, current)[0].id
            snapshot = await store.snapshot(roster, team, when)
            version = snapshot.version
            reassign = assign(roster, current, when, snapshot.loads, snapshot.rotation,
                              tried=lead["tried"])
        planned = step(roster, timer, lead["origin"], lead["routed"], when, reassign,
                       lead["tried"])
        move = None if planned.routed is None else Move.to(
            roster, planned.routed, lead["tried"], when, team, version, planned.rotation)
        # A breach stands whoever holds the lead by then; any other step is for its rep only.
        holder = None if timer.action == BREACH else timer.rep
        done = await store.step(member, timer.lead, states_for(timer, track), holder,
                                planned.announcements, move)
        if done != "conflict":
            break
    if done == "ok" and timer.action == BREACH:
        metrics.SLA_BREACHES.labels(track).inc()
    elif done == "ok" and move is not None:
        ladder = timer.action == "reassign"
        _count_move(move.routed["team"], "ladder" if ladder else "escalation",
                    reassign.chosen if ladder and reassign is not None else "rotation")


async def follow_roster(routing: Routing) -> None:
    """Put each published roster in force; a bad one is refused and the running one stays."""

    def accept(value: bytes) -> str | None:
        try:
            roster = from_published(value)
            if missing := unset_secrets(roster, os.environ):
                raise RosterError(missing)
        except (RosterError, ValueError) as error:  # (a RosterError is no ValueError)
            return str(error)
        if roster.version != routing.roster.version:
            log.info("roster in force", extra={"version": roster.version,
                                                "previous": routing.roster.version})
            for warning in roster.warnings:
                log.warning("roster warning", extra={"warning": str(warning)})
            routing.roster = roster
            routing.roster_changed.set()
            _start_dispatchers(routing)
        return None

    await follow_versions(routing.settings, routing.producer, routing.topics.roster,
                          ROSTER_KEY, "roster", routing.topics.dead_letter, accept)


async def hand_over_stranded(routing: Routing) -> None:
    """A worker task: the open leads of a rep who left the roster, no longer works the
    lead's team, or is out of office from today go to a rep who can take them, by the
    policy. Every lead is looked at with each new roster; between rosters, every
    `STRANDED_TICK`, those of reps away (an absence starts at midnight). A lead nobody else
    can take, or one set aside, is looked at again with the next roster or after
    `PASSED_TICKS` ticks, when reps may be back on shift."""

    async def set_aside(lead_id: str, error: Exception) -> None:
        where = unrecorded(routing.store.keys.lead(lead_id), 0, lead_id)
        await _set_aside(routing, counted(letter(
            "route", f"a lead that could not be handed over: {describe(error)}", where,
            "leads", error), error))

    passed: set[str] = set()
    version, ticks = "", 0
    with contextlib.suppress(RedisError):
        await routing.store.expire_closed_leads()  # closed before closed leads expired
    while True:
        every_lead = routing.roster.version != version
        if every_lead or ticks % PASSED_TICKS == 0:
            passed.clear()
        version, ticks = routing.roster.version, ticks + 1
        routing.roster_changed.clear()
        try:
            await hand_over_stranded_leads(routing.roster, routing.store, datetime.now(UTC),
                                           set_aside, passed, every_lead)
        except RedisError as error:
            redis_down(error)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(STRANDED_TICK):
                await routing.roster_changed.wait()


async def hand_over_stranded_leads(
    roster: CompiledRoster, store: Store, now: datetime,
    set_aside: Callable[[str, Exception], Awaitable[None]], passed: set[str] | None = None,
    every_lead: bool = True,
) -> int:
    """Hand over, once each, the open leads whose rep `cannot_hold` them at `now`; returns
    how many moved. `every_lead`: look at every holder's leads (a new roster), else only
    those of reps away or gone. Leads in `passed` are skipped; a lead nobody else can take,
    or one that fails (set aside, the others go on), is added to it."""
    passed = set() if passed is None else passed
    moved = 0
    for rep in await store.holders():
        member = roster.reps.get(rep)
        if not every_lead and member is not None and not out_of_office(member, now):
            continue
        for queue in QUEUES:
            page = await store.queue(rep, queue, HAND_OVER_PAGE)
            while page:
                leads = await store.leads([lead_id for lead_id, _ in page])
                for (lead_id, _), lead in zip(page, leads, strict=True):
                    reason = None if lead is None or lead_id in passed else cannot_hold(
                        roster, rep, lead["routed"]["team"], now)
                    if reason is None:
                        continue
                    try:
                        if await _hand_over(roster, store, lead_id, rep, reason, now):
                            moved += 1
                        else:
                            passed.add(lead_id)
                    except RedisError:
                        raise
                    except Exception as error:  # a bug of ours on one lead: the rest go on
                        passed.add(lead_id)
                        await set_aside(lead_id, error)
                last, due = page[-1]
                page = await store.queue(rep, queue, HAND_OVER_PAGE, (due, last))
        await store.forget_holder(rep)
    return moved


async def _hand_over(roster: CompiledRoster, store: Store, lead_id: str, rep: str,
                     reason: str, now: datetime) -> bool:
    """Reassign one lead of `rep` by the policy; the lead keeps its due time and deadline
    (the prospect's wait does not start again because a rep left)."""
    while True:
        lead = await store.lead(lead_id)
        if lead is None or lead["rep"] != rep or lead["state"] not in (ASSIGNED, ACKNOWLEDGED):
            return False
        current = Lead.of(lead["origin"]["promotion"])
        team = team_for(roster, current)[0].id
        snapshot = await store.snapshot(roster, team, now)
        choice = assign(roster, current, now, snapshot.loads, snapshot.rotation,
                        tried=lead["tried"])
        if choice.rep == rep:  # nobody else: the rep is the team's escalation target
            return False
        old = lead["routed"]
        # A lead that waits for a rep's shift is due then; else it keeps its due time.
        due = choice.routed["due"] if choice.chosen == "waits_for_shift" else old["due"]
        moved = {**choice.routed, "due": due, "deadline": old["deadline"]}
        rotation = None if moved["fallback"] else choice.rotation
        planned = handed_over(roster, lead["origin"], moved, rotation, rep, reason,
                              lead["tried"], now)
        move = Move.to(roster, moved, lead["tried"], now, team, snapshot.version, rotation)
        member = Timer.once(lead_id, f"away{len(lead['tried'])}", "reassign", rep)  # per move
        done = await store.step(member, lead_id, (ASSIGNED, ACKNOWLEDGED), rep,
                                planned.announcements, move)
        if done != "conflict":
            if done == "ok":
                _count_move(moved["team"], "rep_unavailable", choice.chosen)
                log.info("handed over", extra={"lead": lead_id, "from_rep": rep,
                                               "rep": moved["rep"], "reason": reason})
            return done == "ok"


def _count_move(team: str, reason: str, chosen: str) -> None:
    metrics.REASSIGNMENTS.labels(team, reason).inc()
    if chosen != "rotation":
        metrics.NOBODY_ELIGIBLE.labels(team, chosen).inc()


async def run_channels(routing: Routing) -> None:
    """Deliver alerts on every channel of the roster in force (and of later rosters)."""
    routing.channels_running = True
    _start_dispatchers(routing)
    try:
        await asyncio.Event().wait()
    finally:
        routing.channels_running = False
        for task, _, _ in routing.dispatchers.values():
            task.cancel()


def _start_dispatchers(routing: Routing) -> None:
    """A delivery task for each channel of the roster in force: started for a new channel,
    restarted for one whose settings changed (or whose task died), stopped for one gone."""
    if not routing.channels_running:
        return
    kinds = channel_types()
    wanted = routing.roster.roster.channels
    for name in [name for name in routing.dispatchers if name not in wanted]:
        routing.dispatchers.pop(name)[0].cancel()
    for name, config in wanted.items():
        running = routing.dispatchers.get(name)
        if running is not None and not running[0].done() and running[1] == config:
            continue
        if running is not None:
            running[0].cancel()
        if config.type not in kinds:
            log.error("alerts: no installed channel type", extra={"channel": name,
                                                                  "type": config.type})
            continue
        reader = StreamReader(routing.redis, routing.store.keys.alerts(name), GROUP,
                              routing.consumer_name,
                              int(routing.settings.routing_takeover_seconds * 1000))
        dispatcher = Dispatcher(name, config, kinds[config.type], reader, routing.store.keys.prefix,
                                functools.partial(_set_aside, routing))
        task = supervised(f"alerts:{name}", functools.partial(run_dispatcher, dispatcher))
        routing.dispatchers[name] = (asyncio.create_task(task), config, dispatcher)


async def gauge_queues(routing: Routing) -> None:
    """Queue depth by the team of the reps holding the leads: an escalation target of
    another team counts in their own team, a rep no longer in the roster under `none`."""
    while True:
        try:
            roster = routing.roster
            by_team: dict[str, list[str]] = {team: [] for team in roster.teams}
            for rep in await routing.store.holders():
                held = roster.reps.get(rep)
                by_team.setdefault(held.team if held else "none", []).append(rep)
            for team, reps in by_team.items():
                for queue in QUEUES:
                    depth = await routing.store.queue_depth(reps, queue)
                    metrics.QUEUE_DEPTH.labels(team, queue).set(depth)
        except RedisError as error:
            redis_down(error)
        await asyncio.sleep(GAUGE_TICK)


async def gauge_alerts(routing: Routing) -> None:
    """Alerts waiting on each channel, the oldest one's age, and those stuck on a channel
    this worker cannot deliver on: its type is not installed here, it is failing, or the
    roster in force no longer has it (they wait for a roster that brings it back)."""
    while True:
        try:
            kinds = channel_types()
            configured = routing.roster.roster.channels
            for name in sorted({*configured, *await routing.store.channels()}):
                config = configured.get(name)
                reader = StreamReader(routing.redis, routing.store.keys.alerts(name),
                                      GROUP, routing.consumer_name, 0)
                waiting, oldest = await reader.backlog()
                if config is None and waiting == 0:
                    await routing.store.forget_channel(name)
                metrics.ALERTS_WAITING.labels(name).set(waiting)
                metrics.OLDEST_ALERT.labels(name).set(
                    0 if oldest is None else max(0.0, time.time() - oldest / 1000))
                running = routing.dispatchers.get(name)
                stuck = "removed" if config is None else \
                    "not installed" if config.type not in kinds else \
                    "failing" if running and running[2].failing else None
                for reason in ("not installed", "failing", "removed"):
                    metrics.ALERTS_STUCK.labels(name, reason).set(
                        waiting if reason == stuck else 0)
        except RedisError as error:
            redis_down(error)
        await asyncio.sleep(GAUGE_TICK)


async def watch_persistence(routing: Routing) -> None:
    """Warn, at start and whenever Redis comes back (a reconnection, a new run id), when
    Redis would lose routing's state on a restart (`routing.persistence`); say loudly when
    one that kept nothing did restart."""
    checked: str | None = None  # the run id of the Redis checked last
    due = True  # at start, and once Redis failed us
    while True:
        try:
            run_id, warning = await redis_persistence(routing.redis)
            if due or run_id != checked:
                if warning and checked is not None and run_id != checked:
                    log.error("routing: Redis restarted without persistence: routing's state "
                              "written before is lost", extra={"warning": warning})
                elif warning:
                    log.warning("routing: Redis does not persist routing's state",
                                extra={"warning": warning})
            checked, due = run_id, False
            if warning:
                routing.warnings[PERSISTENCE] = warning
            else:
                routing.warnings.pop(PERSISTENCE, None)
        except RedisError as error:
            due = True
            redis_down(error)
        await asyncio.sleep(PERSISTENCE_TICK)


async def _retrying_redis(attempt: Any) -> Any:
    """Run `attempt()` until Redis answers: a lead is delayed, never dropped."""
    pause = 0.1
    while True:
        try:
            return await attempt()
        except RedisError as error:
            redis_down(error)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)
