"""Alert delivery and routing's tasks on a real Redis of the test's own (and the session's
broker, real receivers): routing waits out a full Redis without taking scoring down."""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from redis.asyncio import Redis as AsyncRedis

from leadscore.infra.broker import Broker
from leadscore.infra.receivers import (
    EVERY,
    SECRET,
    Mailbox,
    Webhook,
    isolation_roster,
    webhook_receiver,
)
from routing.alerts import channel_types
from routing.dispatch import (
    GIVE_UP_AFTER,
    GROUP,
    PER_REP,
    Dispatcher,
    run_dispatcher,
    too_old,
)
from routing.keys import Keys
from routing.metrics import ALERTS, TASK_RESTARTS
from routing.persistence import UNKNOWN, persistence_warning
from routing.roster import Channel
from routing.router import supervised
from routing.store import StreamReader
from streams.topics import topics_of
from tests.live import persistent_redis, reading, running_worker, wait_for
from tests.test_alert_channels import the_alert
from tests.test_routing_live import (
    CALM,
    alerted_once,
    post_batches,
    post_forms,
    receivers,  # noqa: F401 (a fixture)
    roster,
    routing_settings,
    unexplained_repeats,
)

pytestmark = [pytest.mark.kafka, pytest.mark.redis]


def fill(client: redis.Redis) -> None:
    """Bring Redis to its `maxmemory` (no eviction): every write is refused with OOM."""
    client.config_set("maxmemory-policy", "noeviction")
    used = int(client.info("memory")["used_memory"])
    client.config_set("maxmemory", used + 200_000)
    with pytest.raises(redis.exceptions.OutOfMemoryError):
        for n in range(1000):
            client.set(f"ballast:{n}", b"x" * 10_000)


def test_a_worker_started_on_a_full_redis_scores_and_routes_once_redis_has_room(
    broker: Broker, unique: str, tmp_path: Path, receivers: tuple[Webhook, Mailbox],  # noqa: F811
) -> None:
    webhook, mailbox = receivers
    with persistent_redis(tmp_path / "redis") as server:
        settings = routing_settings(broker, server.url, unique, tmp_path,
                                    roster(webhook, mailbox, channels="hook", sla=CALM))
        client = redis.Redis.from_url(server.url)
        keys = Keys.of(settings.app_id)
        # The groups of an earlier run exist: XGROUP CREATE answers OOM, not BUSYGROUP.
        client.xgroup_create(keys.alerts("hook"), GROUP, id="0", mkstream=True)
        client.xgroup_create(keys.outbox, "publisher", id="0", mkstream=True)
        fill(client)
        with running_worker(settings, tmp_path / "worker.log") as worker, \
                reading(settings.kafka_bootstrap_servers, topics_of(settings).decisions) as r:
            post_forms(worker, ["full@acme.example"])  # 202: ingest needs no Redis
            r.wait_for(1, 60, worker, where=lambda d: d["type"] == "prospect.promoted")
            wait_for(lambda: "refuses writes" in worker.log(), 30, worker.log)
            assert worker.process.poll() is None
            assert not webhook.delivered()
            client.config_set("maxmemory", 0)
            wait_for(lambda: bool(webhook.delivered()), 60, lambda: worker.log()[-3000:])
            r.wait_for(1, 60, worker, where=lambda d: d["type"] == "lead.routed")
            post_forms(worker, ["after@acme.example"])
            wait_for(lambda: len(webhook.delivered()) >= 2, 60, lambda: worker.log()[-3000:])
            assert '"routing: a task failed' not in worker.log()
        client.close()


def test_a_healthy_rep_and_channel_get_their_alerts_while_other_receivers_hang_or_fail(
    broker: Broker, redis_url: str, unique: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    with contextlib.ExitStack() as stack:
        hook, stuck0, stuck1, broken = (stack.enter_context(webhook_receiver(SECRET))
                                        for _ in range(4))
        hook.hanging = {"Rep slow"}  # one rep's alerts hang on the healthy channel
        stuck0.hanging = stuck1.hanging = {EVERY}
        broken.failing = {EVERY}
        settings = routing_settings(broker, redis_url, unique, tmp_path,
                                    isolation_roster({
                                        "hook": ("webhook", hook),
                                        "stuck0": ("webhook", stuck0),
                                        "stuck1": ("webhook", stuck1),
                                        "broken": ("webhook", broken)}))
        with running_worker(settings, tmp_path / "worker.log") as worker:
            # More of rep slow's alerts than a channel has slots, hanging everywhere.
            post_batches(worker, [f"slow{n}@acme.example" for n in range(100)], country="FR")
            wait_for(lambda: hook.hung >= PER_REP and stuck0.hung >= PER_REP, 60,
                     lambda: f"{hook.hung} hung; log:\n{worker.log()[-3000:]}")
            post_batches(worker, [f"good{n}@acme.example" for n in range(10)], country="ES")
            wait_for(lambda: len(hook.delivered()) >= 10, 60,
                     lambda: f"{len(hook.delivered())} of rep good's 10 alerts delivered; "
                     f"log:\n{worker.log()[-3000:]}")
            retried = {line.split('"alert":"')[1].split('"')[0]
                       for line in worker.log().splitlines() if '"alerts: retrying"' in line
                       and '"channel":"hook"' in line}
        delivered = {item.body["id"] for item in hook.delivered()}
        assert {item.body["rep"]["id"] for item in hook.delivered()} == {"good"}
        assert not delivered & retried  # none timed out waiting behind the hanging ones


def test_a_failing_slack_message_waits_its_backoff_out_of_the_line(
    broker: Broker, redis_url: str, unique: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    with webhook_receiver(SECRET) as slack:
        slack.failing = {"Rep slow"}
        settings = routing_settings(broker, redis_url, unique, tmp_path,
                                    isolation_roster({"pings": ("slack", slack)}))
        with running_worker(settings, tmp_path / "worker.log") as worker:
            post_forms(worker, ["slow@acme.example"], country="FR")
            wait_for(lambda: slack.failed >= 1, 60, lambda: worker.log()[-3000:])
            post_forms(worker, [f"good{n}@acme.example" for n in range(3)])
            wait_for(lambda: len(slack.delivered()) >= 3, 60,
                     lambda: f"{len(slack.delivered())} of rep good's 3 messages; "
                     f"log:\n{worker.log()[-3000:]}")


def test_alerts_in_flight_through_a_redis_outage_longer_than_the_takeover_come_once(
    broker: Broker, unique: str, tmp_path: Path, receivers: tuple[Webhook, Mailbox],  # noqa: F811
) -> None:
    webhook, mailbox = receivers
    webhook.delay = 0.5  # many deliveries under way when Redis dies, to be acknowledged
    with persistent_redis(tmp_path / "redis") as server:
        settings = routing_settings(broker, server.url, unique, tmp_path,
                                    roster(webhook, mailbox, channels="hook", sla=CALM))
        settings = settings.model_copy(update={"routing_takeover_seconds": 2.0})
        emails = [f"out{n}@acme.example" for n in range(300)]
        with running_worker(settings, tmp_path / "a.log") as first, \
                running_worker(settings, tmp_path / "b.log") as second:
            post_batches(first, emails[:150], size=10)
            post_batches(second, emails[150:], size=10)
            wait_for(lambda: len(webhook.delivered()) >= 40, 60, lambda: first.log()[-2000:])
            server.kill()  # mid-stream: deliveries under way, acknowledgements to come
            time.sleep(4 * settings.routing_takeover_seconds)
            server.start()
            wait_for(lambda: len({i.body["id"] for i in webhook.delivered()}) >= 300, 120,
                     lambda: f"{len(webhook.delivered())} alerts; log:\n{first.log()[-3000:]}")
            time.sleep(3 * settings.routing_takeover_seconds)  # a repeat would come by now
            logs = [first.log(), second.log()]
    alerted_once(webhook, 300)
    assert unexplained_repeats(webhook, logs) == set()


async def test_a_reader_takes_over_an_entry_only_once_redis_has_answered_it_for_the_takeover(
    tmp_path: Path,
) -> None:
    """An entry whose holder could not acknowledge it through an outage is idle in Redis,
    but not abandoned: the holder gets a takeover time after the outage to acknowledge it."""
    with persistent_redis(tmp_path / "redis") as server:
        client = AsyncRedis.from_url(server.url)
        takeover = 1000

        def reader(consumer: str) -> StreamReader:
            return StreamReader(client, "s", "g", consumer, takeover)

        holder, other = reader("holder"), reader("other")
        await holder.start()
        await other.start()
        await client.xadd("s", {"alert": "1"})
        [(entry, _)] = await holder.read(10, block_ms=100)
        server.kill()  # the holder delivered it and is retrying its acknowledgement
        assert await other.read(10, block_ms=100) == []  # (Redis down)
        time.sleep(3 * takeover / 1000)
        server.start()
        assert await other.read(10, block_ms=100) == []  # idle for 3 s, yet not taken
        await holder.done(entry)
        await asyncio.sleep(2 * takeover / 1000)
        assert await other.read(10, block_ms=100) == []  # acknowledged meanwhile: never taken

        await client.xadd("s", {"alert": "2"})
        [(abandoned, _)] = await holder.read(10, block_ms=100)  # and the holder dies
        found: list[str] = []
        while not found:
            found = [entry for entry, _ in await other.read(10, block_ms=100)]
        assert found == [abandoned]
        await client.aclose()


def test_what_a_redis_without_persistence_is_warned_of() -> None:
    assert persistence_warning({"appendonly": "yes", "save": ""}, {}) is None
    snapshots = persistence_warning({"appendonly": "no", "save": "3600 1"}, {})
    assert snapshots and "only snapshots (save 3600 1" in snapshots
    nothing = persistence_warning({"appendonly": "no", "save": ""}, {})
    assert nothing and nothing.startswith("Redis has no persistence")
    # CONFIG refused to an ACL user: INFO persistence tells.
    assert persistence_warning(None, {"aof_enabled": 1}) is None
    assert "no append-only file" in (persistence_warning(None, {"aof_enabled": 0}) or "")
    assert persistence_warning(None, {}) == UNKNOWN


def test_a_worker_on_a_redis_without_persistence_warns_and_its_probes_say_so(
    broker: Broker, unique: str, tmp_path: Path, receivers: tuple[Webhook, Mailbox],  # noqa: F811
) -> None:
    webhook, mailbox = receivers
    with persistent_redis(tmp_path / "redis") as server:
        client = redis.Redis.from_url(server.url)
        client.config_set("appendonly", "no")
        settings = routing_settings(broker, server.url, unique, tmp_path,
                                    roster(webhook, mailbox, channels="hook", sla=CALM))
        with running_worker(settings, tmp_path / "worker.log") as worker:
            wait_for(lambda: "routing: Redis does not persist" in worker.log(), 30, worker.log)
            assert "Redis has no persistence" in worker.log()
            for probe in ("healthz", "readyz"):
                status, body = http_get_status(f"{worker.base_url}/{probe}")
                assert [w for w in body["warnings"] if "no persistence" in w], (status, body)
            client.config_set("appendonly", "yes")
            wait_for(lambda: not http_get_status(f"{worker.base_url}/readyz")[1]["warnings"],
                     30, worker.log)
        client.close()


def http_get_status(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())


def test_an_alert_is_given_up_by_its_age_since_it_was_queued() -> None:
    queued = 1_700_000_000.0
    entry = f"{int(queued * 1000)}-3"
    assert not too_old(entry, queued + GIVE_UP_AFTER - 1)
    assert too_old(entry, queued + GIVE_UP_AFTER + 1)


async def test_an_alert_queued_over_a_day_ago_is_given_up_after_its_first_failure(
    redis_url: str, unique: str,
) -> None:
    """Whoever picks it up, however recently it started: the day counts from the queueing."""
    client = AsyncRedis.from_url(redis_url)
    keys = Keys.of(unique)
    stream = keys.alerts("hook")
    old = f"{int((time.time() - GIVE_UP_AFTER - 60) * 1000)}-0"
    sent = the_alert()
    await client.xadd(stream, {"id": sent["id"], "alert": orjson.dumps(sent)}, id=old)
    with webhook_receiver(SECRET) as hook:
        hook.failing = {EVERY}
        reader = StreamReader(client, stream, GROUP, "me", 30_000)
        dispatcher = Dispatcher("hook", Channel(type="webhook", url=hook.url),
                                channel_types()["webhook"], reader, keys.prefix,
                                set_aside=_no_letters)
        failed = ALERTS.labels("hook", "failed")
        before = failed._value.get()
        await reader.start()
        task = asyncio.create_task(run_dispatcher(dispatcher))
        try:
            async with asyncio.timeout(30):  # (else still retried, for a day)
                while not hook.failed or (await client.xpending(stream, GROUP))["pending"]:
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert hook.failed == 1  # tried once, then given up: not retried for another day
    assert failed._value.get() == before + 1
    await client.aclose()


async def _no_letters(dead: Any) -> None:
    raise AssertionError(f"set aside: {dead}")


async def test_the_backlog_counts_alerts_read_or_not_and_dates_the_oldest(
    redis_url: str, unique: str,
) -> None:
    client = AsyncRedis.from_url(redis_url)
    stream = Keys.of(unique).alerts("hook")
    reader = StreamReader(client, stream, GROUP, "me", 30_000)
    assert await reader.backlog() == (0, None)
    for ms in (1000, 2000, 3000):
        await client.xadd(stream, {"alert": b"{}"}, id=f"{ms}-0")
    assert await reader.backlog() == (3, 1000)  # no group yet: nobody read any
    await reader.start()
    read: Any = await client.xreadgroup(GROUP, "me", {stream: ">"}, count=1)
    [(_, [(first, _)])] = read
    assert await reader.backlog() == (3, 1000)  # one read, not acknowledged; two unread
    await reader.done(first.decode())
    assert await reader.backlog() == (2, 2000)
    await client.xreadgroup(GROUP, "me", {stream: ">"}, count=2)
    assert await reader.backlog() == (2, 2000)
    await reader.done("2000-0", "3000-0")
    assert await reader.backlog() == (0, None)
    await client.aclose()


def test_the_metrics_show_waiting_alerts_their_age_and_a_failing_channel(
    broker: Broker, redis_url: str, unique: str, tmp_path: Path,
    receivers: tuple[Webhook, Mailbox],  # noqa: F811
) -> None:
    webhook, mailbox = receivers
    webhook.failing = {EVERY}
    settings = routing_settings(broker, redis_url, unique, tmp_path,
                                roster(webhook, mailbox, channels="hook", sla=CALM))
    with running_worker(settings, tmp_path / "worker.log") as worker:
        post_forms(worker, ["waits@acme.example"])

        def metric(line: str) -> float | None:
            text = urllib.request.urlopen(f"{worker.base_url}/metrics", timeout=5).read()
            found = [row for row in text.decode().splitlines() if row.startswith(line + " ")]
            return float(found[0].split()[-1]) if found else None

        wait_for(lambda: metric('leadscore_alerts_stuck{channel="hook",reason="failing"}')
                 == 1, 60, worker.log)
        assert metric('leadscore_alerts_waiting{channel="hook"}') == 1
        assert (metric('leadscore_alerts_oldest_waiting_seconds{channel="hook"}') or 0) > 0
        assert metric('leadscore_alerts_stuck{channel="hook",reason="not installed"}') == 0


async def test_a_routing_task_that_fails_is_logged_counted_and_started_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[int] = []
    again = asyncio.Event()

    async def task() -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise KeyError("a bug of ours")
        again.set()
        await asyncio.Event().wait()

    restarts = TASK_RESTARTS.labels("flaky")
    before = restarts._value.get()
    running = asyncio.create_task(supervised("flaky", task))
    try:
        async with asyncio.timeout(30):
            await again.wait()
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert runs == [0, 1] and restarts._value.get() == before + 1
    [record] = [r for r in caplog.records if r.getMessage().startswith("routing: a task")]
    assert record.levelname == "ERROR" and record.exc_info and "a bug of ours" in str(
        record.exc_info[1])
