"""Routing on a Redis Cluster of three nodes started here (`run_redis_cluster`): every
script is routed by the keys it declares to the node of their one slot, and a worker with
`redis_cluster` routes a burst of contact-me forms, each lead assigned and alerted once."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
from redis.asyncio.cluster import RedisCluster

from leadscore.infra.broker import Broker
from leadscore.infra.receivers import Mailbox, Webhook
from leadscore.infra.redis_local import run_redis_cluster
from leadscore.settings import Settings
from routing import queue
from routing.lead_states import ACKNOWLEDGED, ASSIGNED
from routing.roster import load_roster, roster_from_text
from routing.router import hand_over_stranded_leads
from routing.store import Store, redis_client
from streams.topics import topics_of
from tests.live import read_topic, running_worker, wait_for
from tests.test_routing_live import (
    CALM,
    alerted_once,
    post_batches,
    receivers,  # noqa: F401 (a fixture)
    roster,
    routing_settings,
)
from tests.test_routing_store import (
    ROSTER,
    assign,
    outbox,
    set_aside_nothing,
    timers_of,
    without_rep,
)

pytestmark = pytest.mark.redis

NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)  # a Wednesday, everyone on shift


@pytest.fixture(scope="module")
def cluster_url() -> Iterator[str]:
    with run_redis_cluster() as url:
        yield url


@pytest.fixture
async def store(cluster_url: str, unique: str) -> AsyncIterator[Store]:
    client = redis_client(Settings(redis_url=cluster_url, redis_cluster=True))
    assert isinstance(client, RedisCluster)
    try:
        yield Store(client, unique, closed_retention=1)
    finally:
        await client.aclose()


def nodes_holding(cluster_url: str, app_id: str) -> list[int]:
    """The ports of the cluster's nodes that hold a key of `app_id`."""
    found = []
    with redis.RedisCluster.from_url(cluster_url) as cluster:
        for node in cluster.get_nodes():
            with redis.Redis(host=node.host, port=node.port) as client:
                if client.keys(f"{{{app_id}}}:*"):
                    found.append(node.port)
    return found


async def test_every_script_runs_on_the_cluster_on_the_one_node_of_the_keys(
    store: Store, cluster_url: str, unique: str,
) -> None:
    roster = load_roster(ROSTER)
    leads = [await assign(store, roster, f"c{n}@acme.example", track, NOW)
             for n, track in enumerate(["fast_track", "standard", "standard"])]
    held = {lead_id: (await store.lead(lead_id) or {})["rep"] for lead_id in leads}
    fast = leads[0]
    assert len(await timers_of(store, fast)) == 4
    assert await store.take_due(NOW.timestamp() + 86_400 * 10, lease=30, limit=1)
    assert (await queue.acknowledge(store, fast, held[fast], NOW)).status == "ok"
    assert (await queue.acknowledge(store, fast, held[fast], NOW)).status == "already"
    assert (await store.lead(fast) or {})["state"] == ACKNOWLEDGED
    # A step that moves a lead: the holder's queue, the new rep's, the team's version.
    gone = roster_from_text("roster.yaml", without_rep(ROSTER.read_text(), held[leads[1]]))
    assert await hand_over_stranded_leads(gone, store, NOW, set_aside_nothing) >= 1
    moved = await store.lead(leads[1]) or {}
    assert moved["rep"] != held[leads[1]] and moved["state"] == ASSIGNED
    assert (await queue.complete(store, leads[2], None, NOW)).status == "ok"
    await store.forget_holder(held[leads[2]])
    types = Counter(d["type"] for d in await outbox(store))
    assert types["lead.routed"] == 3 and types["lead.acknowledged"] == 1
    assert types["lead.completed"] == 1 and types["lead.reassigned"] >= 1
    assert await store.expire_closed_leads() == 0  # a scan over every node
    assert len(nodes_holding(cluster_url, unique)) == 1


@pytest.mark.kafka
def test_a_worker_on_a_redis_cluster_assigns_and_alerts_each_lead_once(
    broker: Broker, cluster_url: str, unique: str, tmp_path: Path,
    receivers: tuple[Webhook, Mailbox],  # noqa: F811
) -> None:
    webhook, mailbox = receivers
    settings = routing_settings(broker, cluster_url, unique, tmp_path,
                                roster(webhook, mailbox, channels="hook", sla=CALM))
    settings = settings.model_copy(update={"redis_cluster": True})
    emails = [f"cluster{n}@acme.example" for n in range(300)]
    with running_worker(settings, tmp_path / "worker.log") as worker:
        post_batches(worker, emails)
        wait_for(lambda: len({i.body["id"] for i in webhook.delivered()}) >= len(emails), 120,
                 lambda: f"{len(webhook.delivered())} alerts; log:\n{worker.log()[-3000:]}")
        log = worker.log()
    assert '"level":"error"' not in log and "a task failed" not in log, log[-3000:]
    alerted_once(webhook, len(emails))
    routed = Counter(d["lead"] for d in read_topic(settings.kafka_bootstrap_servers,
                                                   topics_of(settings).decisions)
                     if d["type"] == "lead.routed")
    assert len(routed) == len(emails) and set(routed.values()) == {1}
    assert len(nodes_holding(cluster_url, unique)) == 1


async def test_the_cluster_client_refuses_keys_of_two_slots_in_one_script(
    cluster_url: str,
) -> None:
    """What the hash tag spares routing: a script over keys of two slots is refused."""
    client = RedisCluster.from_url(cluster_url)
    try:
        script = client.register_script("return redis.call('GET', KEYS[2])")
        with pytest.raises(redis.RedisError):
            await script(keys=["{a}:x", "{b}:x"])
    finally:
        await client.aclose()
