"""Alert delivery and routing's tasks on a real Redis of the test's own (and the session's
broker, real receivers): routing waits out a full Redis without taking scoring down."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from leadscore.infra.broker import Broker
from routing.dispatch import GROUP, alerts_stream
from routing.store import prefix
from streams.topics import topics_of
from tests.live import persistent_redis, reading, running_worker, wait_for
from tests.receivers import Mailbox, Webhook
from tests.test_routing_live import (
    CALM,
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
