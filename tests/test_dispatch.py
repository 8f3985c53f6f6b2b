"""Alert delivery and routing's tasks on a real Redis of the test's own (and the session's
broker, real receivers): routing waits out a full Redis without taking scoring down."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
import redis

from leadscore.infra.broker import Broker
from routing.dispatch import GROUP, PER_REP, alerts_stream
from routing.store import prefix
from streams.topics import topics_of
from tests.live import persistent_redis, reading, running_worker, wait_for
from tests.receivers import EVERY, Mailbox, Webhook, webhook_receiver
from tests.test_routing_live import (
    CALM,
    SECRET,
    post_batches,
    post_forms,
    receivers,  # noqa: F401 (a fixture)
    roster,
    routing_settings,
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
        p = prefix(settings.app_id)
        # The groups of an earlier run exist: XGROUP CREATE answers OOM, not BUSYGROUP.
        client.xgroup_create(alerts_stream(p, "hook"), GROUP, id="0", mkstream=True)
        client.xgroup_create(f"{p}outbox", "publisher", id="0", mkstream=True)
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


def isolation_roster(channels: dict[str, tuple[str, Webhook]]) -> str:
    """Rep `good` (Spain) and rep `slow` (France), both alerted on every channel (name:
    type, receiver)."""
    names = list(channels)
    text = "".join(f'\n  {name}: {{type: {kind}, url: "{receiver.url}", '
                   'secret_env: TEST_WEBHOOK_SECRET}'
                   for name, (kind, receiver) in channels.items())
    teams, reps = "", ""
    for rep, country in (("good", "ES"), ("slow", "FR")):
        teams += f"""
  - id: {rep}-team
    territory: {{countries: [{country}]}}
    escalation: {rep}
    sla: {{fast_track: {{acknowledge_within: 1h, ladder: [{{after: 1h, action: remind}}]}}}}"""
        reps += f"""
  - id: {rep}
    name: Rep {rep}
    email: {rep}@northwind.example
    role: MRR
    team: {rep}-team
    working_hours: {{days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "00:00"}}
    alerts: [{", ".join(names)}]"""
    return f"teams:{teams}\nreps:{reps}\nchannels:{text}\n"


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
