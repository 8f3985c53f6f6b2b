"""Routing on the real servers: Apache Kafka, Redis, a webhook receiver, an SMTP server.

A contact-me form POSTed to ingest becomes an alert that a rep's webhook and mailbox
receive; leads are assigned once and fairly across workers, whatever dies meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import orjson
import pytest
import redis
from kafka import KafkaProducer

from app.worker import prepare_topics, worker_env
from leadscore.infra.broker import Broker
from leadscore.infra.receivers import (
    SECRET,
    Mailbox,
    Webhook,
    contact_form,
    smtp_server,
    webhook_receiver,
)
from leadscore.infra.redis_local import run_tls_redis
from leadscore.settings import Settings
from routing.keys import Keys
from routing.roster import ROSTER_KEY
from routing.roster import published as published_roster
from streams.topics import topics_of
from tests.live import (
    Worker,
    http_post,
    live_settings,
    persistent_redis,
    read_topic,
    reading,
    running_worker,
    wait_for,
)

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

INGEST = "ingest-secret-for-routing-tests"


def roster(webhook: Webhook, mailbox: Mailbox, reps: int = 3, channels: str = "hook, mail",
           sla: str = "", **rep_fields: str) -> str:
    """A roster whose EMEA reps are on shift around the clock and alerted on `channels`;
    `rep_fields` are extra YAML lines for every rep, `sla` the team's `sla:` block."""
    extra = "".join(f"\n    {name}: {value}" for name, value in rep_fields.items())
    members = "".join(f"""
  - id: rep{n}
    name: Rep {n}
    email: rep{n}@northwind.example
    role: MRR
    team: emea
    time_zone: Europe/Madrid
    working_hours: {{days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "00:00"}}
    alerts: [{channels}]{extra}""" for n in range(reps))
    return f"""
teams:
  - id: emea
    territory: {{countries: [ES, FR]}}
    escalation: lead{sla}
reps:{members}
  - id: lead
    name: Team Lead
    email: lead@northwind.example
    role: MRR
    team: emea
    out_of_office: [{{start: 2000-01-01, end: 2999-12-31}}]
    alerts: [hook]
channels:
  hook: {{type: webhook, url: "{webhook.url}", secret_env: TEST_WEBHOOK_SECRET}}
  mail: {{type: email, url: "smtp://{mailbox.host}:{mailbox.port}",
         sender: leads@northwind.example}}
"""


@pytest.fixture
def receivers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Webhook, Mailbox]]:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    with webhook_receiver(SECRET) as webhook, smtp_server() as mailbox:
        yield webhook, mailbox


def routing_settings(broker: Broker, redis_url: str, unique: str, tmp_path: Path,
                     roster_text: str) -> Settings:
    path = tmp_path / "roster.yaml"
    path.write_text(roster_text)
    return live_settings(broker, unique, tmp_path, redis_url=redis_url, roster_path=path,
                         ingest_secret=INGEST, api_secret="api-secret-for-the-tests")


def test_a_contact_me_form_reaches_the_reps_webhook_and_mailbox(
    broker: Broker, redis_url: str, unique: str, tmp_path: Path,
    receivers: tuple[Webhook, Mailbox],
) -> None:
    webhook, mailbox = receivers
    settings = routing_settings(broker, redis_url, unique, tmp_path, roster(webhook, mailbox))
    with running_worker(settings, tmp_path / "worker.log") as worker:
        body = contact_form("ana@acme.example")
        posted = time.time()
        status, _ = http_post(f"{worker.base_url}/v1/events/forms", body,
                              {"Authorization": f"Bearer {INGEST}"})
        assert status == 202
        wait_for(lambda: bool(webhook.delivered() and mailbox.messages), 30,
                 lambda: f"no alert; worker log:\n{worker.log()[-3000:]}")
        [hook] = webhook.delivered()
        assert hook.signature_error is None
        alert = hook.body
        assert (alert["type"], alert["kind"], alert["lead"]["track"]) == (
            "lead.alert", "new_lead", "fast_track")
        assert alert["lead"]["profile"] == {"name": "Ana López", "title": "VP Sales",
                                            "company": "Acme", "country": "ES"}
        assert alert["lead"]["trigger"]["properties"]["form"] == "contact_me"
        [(_, mail)] = mailbox.messages
        assert mail["To"] == f"{alert['rep']['id']}@northwind.example"
        assert mail["Message-ID"] == f"<{alert['id']}@leadscore>"
        print(f"form POST to webhook: {hook.at - posted:.3f} s")

        with reading(settings.kafka_bootstrap_servers, topics_of(settings).decisions) as r:
            [routed] = r.wait_for(1, 30, worker, where=lambda d: d["type"] == "lead.routed")
        assert routed["rep"] == alert["rep"]["id"] and routed["matched"] == "country ES"
        assert {c["rep"]: c["excluded"] for c in routed["candidates"]} == {
            "rep0": None, "rep1": None, "rep2": None, "lead": "out of office"}


def post_forms(worker: Worker, emails: list[str], country: str = "ES") -> None:
    for email in emails:
        status, _ = http_post(f"{worker.base_url}/v1/events/forms", contact_form(email, country),
                              {"Authorization": f"Bearer {INGEST}"})
        assert status == 202


def decisions(settings: Settings, worker: Worker, count: int, kinds: set[str]) -> list[Any]:
    with reading(settings.kafka_bootstrap_servers, topics_of(settings).decisions) as reader:
        return reader.wait_for(count, 60, worker, where=lambda d: d["type"] in kinds,
                               distinct=True)


def test_a_receiver_that_fails_three_times_gets_the_alert_once_it_answers(
    broker: Broker, redis_url: str, unique: str, tmp_path: Path,
    receivers: tuple[Webhook, Mailbox],
) -> None:
    webhook, mailbox = receivers
    webhook.answers = [500, 500, 500]
    settings = routing_settings(broker, redis_url, unique, tmp_path,
                                roster(webhook, mailbox, channels="hook"))
    with running_worker(settings, tmp_path / "worker.log") as worker:
        post_forms(worker, ["bo@acme.example"])
        wait_for(lambda: bool(webhook.delivered()), 60,
                 lambda: f"not delivered; worker log:\n{worker.log()[-3000:]}")
        tries = [item.body for item in webhook.received]
        assert [t["_status"] for t in tries] == [500, 500, 500, 200]
        assert len({t["id"] for t in tries}) == 1  # one alert, one id, every time

        def metrics_text() -> bytes:
            with urllib.request.urlopen(f"{worker.base_url}/metrics", timeout=5) as answer:
                return bytes(answer.read())

        delivered = b'leadscore_alerts_total{channel="hook",outcome="delivered"} 1.0'
        wait_for(lambda: delivered in metrics_text(), 10, lambda: metrics_text().decode())
        metrics = metrics_text()
        assert b'leadscore_alerts_total{channel="hook",outcome="retried"} 3.0' in metrics
        assert b'leadscore_alerts_total{channel="hook",outcome="delivered"} 1.0' in metrics
        assert b"leadscore_speed_to_lead_seconds_count" in metrics


LADDER = """
    sla:
      fast_track:
        acknowledge_within: 3s
        ladder:
          - {after: 2s, action: remind}
          - {after: 3s, action: reassign}
          - {after: 8s, action: escalate}"""


def test_an_unacknowledged_fast_track_lead_is_reminded_then_reassigned_and_the_queue_api_works(
    broker: Broker, redis_url: str, unique: str, tmp_path: Path,
    receivers: tuple[Webhook, Mailbox],
) -> None:
    webhook, mailbox = receivers
    settings = routing_settings(broker, redis_url, unique, tmp_path,
                                roster(webhook, mailbox, reps=2, channels="hook", sla=LADDER))
    with running_worker(settings, tmp_path / "worker.log") as worker:
        post_forms(worker, ["cy@acme.example"])
        seen = decisions(settings, worker, 4, {"lead.routed", "lead.reminded", "sla.breached",
                                               "lead.reassigned"})
        by_type = {d["type"]: d for d in seen}
        first, moved = by_type["lead.routed"], by_type["lead.reassigned"]
        assert by_type["lead.reminded"]["rep"] == first["rep"]
        assert by_type["sla.breached"]["rep"] == first["rep"]
        assert (moved["from_rep"], moved["reason"]) == (first["rep"], "not acknowledged in time")
        assert moved["rep"] != first["rep"]
        kinds = [(item.body["kind"], item.body["rep"]["id"]) for item in webhook.delivered()]
        assert kinds == [("new_lead", first["rep"]), ("reminder", first["rep"]),
                         ("reassigned", moved["rep"])]

        api = {"Authorization": "Bearer api-secret-for-the-tests"}
        lead = first["lead"]
        assert http_post(f"{worker.base_url}/v1/leads/{lead}/ack",
                         orjson.dumps({"rep": first["rep"]}), api)[0] == 409  # not theirs now
        assert http_post(f"{worker.base_url}/v1/leads/{lead}/ack",
                         orjson.dumps({"rep": moved["rep"]}), api) == (
            200, {"status": "ok", "detail": None})
        assert http_post(f"{worker.base_url}/v1/leads/{lead}/ack",
                         orjson.dumps({"rep": moved["rep"]}), api)[1]["status"] == "already"
        queue = http_get(f"{worker.base_url}/v1/reps/{moved['rep']}/queue", api)
        assert [(c["lead"], c["state"]) for c in queue["fast"]] == [(lead, "acknowledged")]
        assert http_post(f"{worker.base_url}/v1/leads/{lead}/complete", b"{}", api)[0] == 200
        assert http_get(f"{worker.base_url}/v1/reps/{moved['rep']}/queue", api)["fast"] == []
        assert http_post(f"{worker.base_url}/v1/leads/{lead}/ack", b"{}", {})[0] == 401
        done = decisions(settings, worker, 2, {"lead.acknowledged", "lead.completed"})
        assert [d["type"] for d in done] == ["lead.acknowledged", "lead.completed"]
        # Completed: its remaining steps (the escalation at 8 s) left with it, so nothing
        # more can come of them; only the ladder's one reassignment stands.
        client = redis.Redis.from_url(settings.redis_url)
        try:
            members = cast(list[bytes], client.zrange(Keys.of(unique).sla, 0, -1))
            timers = [member for member in members if member.startswith(lead.encode())]
        finally:
            client.close()
        assert timers == []
        reassigned = [d for d in decisions(settings, worker, 1, {"lead.reassigned"})
                      if d["lead"] == lead]
        assert [d["reason"] for d in reassigned] == ["not acknowledged in time"]
        assert len(webhook.delivered()) == 3
        metrics = urllib.request.urlopen(f"{worker.base_url}/metrics", timeout=5).read()
        assert b'leadscore_reassignments_total{reason="ladder",team="emea"} 1.0' in metrics


def http_get(url: str, headers: dict[str, str]) -> Any:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return orjson.loads(response.read())


def post_batches(worker: Worker, emails: list[str], size: int = 100,
                 country: str = "ES") -> None:
    for start in range(0, len(emails), size):
        body = b"[" + b",".join(contact_form(email, country)
                                for email in emails[start:start + size]) + b"]"
        status, _ = http_post(f"{worker.base_url}/v1/events/forms", body,
                              {"Authorization": f"Bearer {INGEST}"})
        assert status == 202


def alerted_once(webhook: Webhook, leads: int) -> tuple[dict[str, str], int]:
    """Each lead's one alert id, checked, and how many deliveries repeated an id."""
    ids: dict[str, set[str]] = {}
    deliveries = [item for item in webhook.delivered() if item.body["kind"] == "new_lead"]
    for item in deliveries:
        ids.setdefault(item.body["lead"]["lead"], set()).add(item.body["id"])
        assert item.signature_error is None
    assert len(ids) == leads
    assert all(len(found) == 1 for found in ids.values()), "a lead alerted with two ids"
    return {lead: found.pop() for lead, found in ids.items()}, len(deliveries) - leads


CALM = """
    sla:
      fast_track:
        acknowledge_within: 1h
        ladder: [{after: 1h, action: remind}]"""


def unexplained_repeats(webhook: Webhook, logs: list[str]) -> set[str]:
    """Alert ids delivered more than once for no reason a dispatcher logged. At least once
    means an id comes twice when the receiver's answer to an attempt never arrived (a
    timeout on a loaded machine): the dispatcher logs that it retries, and receivers drop
    the repeat by its webhook-id. Any other repeat is a bug."""
    deliveries = Counter(item.body["id"] for item in webhook.delivered())
    repeated = {alert_id for alert_id, count in deliveries.items() if count > 1}
    retried = {line.split('"alert":"')[1].split('"')[0] for log in logs
               for line in log.splitlines() if '"alerts: retrying"' in line}
    return repeated - retried


def test_two_workers_assign_1000_leads_once_and_fairly_though_one_is_killed(
    broker: Broker, redis_url: str, unique: str, tmp_path: Path,
    receivers: tuple[Webhook, Mailbox],
) -> None:
    webhook, mailbox = receivers
    settings = routing_settings(broker, redis_url, unique, tmp_path,
                                roster(webhook, mailbox, channels="hook", sla=CALM))
    settings = settings.model_copy(update={"routing_takeover_seconds": 2.0})
    emails = [f"lead{n}@acme.example" for n in range(1000)]
    with running_worker(settings, tmp_path / "a.log") as first, \
            running_worker(settings, tmp_path / "b.log") as second:
        post_batches(first, emails[:500])
        post_batches(second, emails[500:])
        started = time.monotonic()
        wait_for(lambda: len(webhook.delivered()) >= 300, 120,
                 lambda: f"{len(webhook.delivered())} alerts; log:\n{first.log()[-2000:]}")
        print(f"300 alerts after {time.monotonic() - started:.1f} s; killing a worker")
        os.killpg(first.process.pid, signal.SIGKILL)
        with running_worker(settings, tmp_path / "a-again.log"):
            wait_for(lambda: len({i.body["id"] for i in webhook.delivered()}) >= 1000, 180,
                     lambda: f"{len({i.body['id'] for i in webhook.delivered()})} of 1000")
            print(f"1000 alerts after {time.monotonic() - started:.1f} s")
            time.sleep(3)  # anything repeated would have arrived by now
    _, repeated = alerted_once(webhook, 1000)
    routed = [d for d in read_topic(settings.kafka_bootstrap_servers,
                                    topics_of(settings).decisions)
              if d["type"] == "lead.routed"]
    reps: dict[str, set[str]] = {}
    for decision in routed:
        reps.setdefault(decision["lead"], set()).add(decision["rep"])
    assert len(reps) == 1000 and all(len(rep) == 1 for rep in reps.values())
    counts = Counter(rep.pop() for rep in reps.values())
    assert max(counts.values()) - min(counts.values()) <= 1, counts
    # At least once: an alert delivered in the instant between the receiver's answer and
    # the killed worker's acknowledgement can come again, with its id (at most a few);
    # else only after a retry the surviving workers logged.
    logs = [(tmp_path / name).read_text() for name in ("b.log", "a-again.log")]
    assert len(unexplained_repeats(webhook, logs)) <= 2, f"{repeated} repeated deliveries"
    print(f"1000 leads over {dict(counts)}; {repeated} repeated deliveries after the kill")


def test_alerts_wait_for_redis_to_come_back_none_lost_none_doubled(
    broker: Broker, unique: str, tmp_path: Path, receivers: tuple[Webhook, Mailbox],
) -> None:
    webhook, mailbox = receivers
    with persistent_redis(tmp_path / "redis") as redis:
        settings = routing_settings(broker, redis.url, unique, tmp_path,
                                    roster(webhook, mailbox, channels="hook", sla=CALM))
        emails = [f"r{n}@acme.example" for n in range(200)]
        with running_worker(settings, tmp_path / "worker.log") as worker:
            post_batches(worker, emails[:100], size=20)
            wait_for(lambda: len(webhook.delivered()) >= 30, 60, lambda: worker.log()[-2000:])
            redis.kill()
            post_batches(worker, emails[100:], size=20)  # scored meanwhile; routing waits
            time.sleep(3)
            redis.start()
            wait_for(lambda: len({i.body["id"] for i in webhook.delivered()}) >= 200, 120,
                     lambda: f"{len(webhook.delivered())} alerts; log:\n{worker.log()[-3000:]}")
            time.sleep(3)
            assert worker.process.poll() is None
            log = worker.log()
            assert '"routing: Redis unavailable' in log
    alerted_once(webhook, 200)  # every lead alerted, each with one id
    assert unexplained_repeats(webhook, [log]) == set()  # none doubled by the outage


def test_a_published_roster_applies_without_a_restart_and_a_bad_one_is_refused(
    broker: Broker, redis_url: str, unique: str, tmp_path: Path,
    receivers: tuple[Webhook, Mailbox],
) -> None:
    webhook, mailbox = receivers
    settings = routing_settings(broker, redis_url, unique, tmp_path,
                                roster(webhook, mailbox, reps=1, channels="hook", sla=CALM))
    with running_worker(settings, tmp_path / "worker.log") as worker:
        post_forms(worker, ["first@acme.example"])
        [first] = decisions(settings, worker, 1, {"lead.routed"})
        assert first["rep"] == "rep0"

        # Two reps now, and rep0 away: the next lead goes to rep1, with no restart.
        changed = tmp_path / "changed.yaml"
        changed.write_text(roster(webhook, mailbox, reps=2, channels="hook", sla=CALM)
                           .replace("  - id: rep0\n", "  - id: rep0\n    out_of_office: "
                                    "[{start: 2000-01-01, end: 2999-12-31}]\n", 1))
        published = cli(settings, "roster", "publish", str(changed))
        assert published.returncode == 0, published.stderr
        wait_for(lambda: '"msg":"roster in force"' in worker.log(), 30, worker.log)
        post_forms(worker, ["second@acme.example"])
        second = [d for d in decisions(settings, worker, 2, {"lead.routed"})
                  if d["prospect"] == "second@acme.example"]
        assert [d["rep"] for d in second] == ["rep1"]
        assert second[0]["roster_version"] != first["roster_version"]

        broken = tmp_path / "broken.yaml"
        broken.write_text(changed.read_text().replace("escalation: lead", "escalation: ghost"))
        refused = cli(settings, "roster", "publish", str(broken))
        assert refused.returncode == 2 and "escalation: no rep with the id 'ghost'" in \
            refused.stderr
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
        try:  # written past the check, as a careless tool could
            producer.send(topics_of(settings).roster, key=ROSTER_KEY,
                          value=published_roster("x.yaml", broken.read_text())).get(10)
        finally:
            producer.close()
        wait_for(lambda: '"stage":"roster"' in worker.log(), 30, worker.log)
        letters = read_topic(settings.kafka_bootstrap_servers, topics_of(settings).dead_letter)
        assert [d["stage"] for d in letters] == ["roster"]
        assert "escalation: no rep with the id 'ghost'" in letters[0]["reason"]
        post_forms(worker, ["third@acme.example"])
        third = [d for d in decisions(settings, worker, 3, {"lead.routed"})
                 if d["prospect"] == "third@acme.example"]
        assert third[0]["roster_version"] == second[0]["roster_version"]


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args],
                          env=worker_env(settings), capture_output=True, text=True,
                          timeout=120, check=False)


def test_alerts_a_killed_worker_was_retrying_are_delivered_by_another_with_their_ids(
    broker: Broker, redis_url: str, unique: str, tmp_path: Path,
    receivers: tuple[Webhook, Mailbox],
) -> None:
    webhook, mailbox = receivers
    webhook.answers = [503] * 5  # every first attempt fails: all five are being retried
    settings = routing_settings(broker, redis_url, unique, tmp_path,
                                roster(webhook, mailbox, channels="hook", sla=CALM))
    settings = settings.model_copy(update={"routing_takeover_seconds": 2.0})
    with running_worker(settings, tmp_path / "a.log") as first:
        post_forms(first, [f"retried{n}@acme.example" for n in range(5)])
        wait_for(lambda: len(webhook.received) >= 5, 60, lambda: first.log()[-2000:])
        os.killpg(first.process.pid, signal.SIGKILL)
    tried = {item.body["id"] for item in webhook.received}
    # A retry that got its 2xx just before the kill was never marked done: the next worker
    # sends it again, with its id (at least once), and the receiver drops the repeat.
    done_before_kill = {item.body["id"] for item in webhook.delivered()}
    with running_worker(settings, tmp_path / "b.log") as second:
        wait_for(lambda: {item.body["id"] for item in webhook.delivered()} >= tried, 60,
                 lambda: f"{len(webhook.delivered())} delivered; log:\n{second.log()[-2000:]}")
    ids, _ = alerted_once(webhook, 5)
    assert set(ids.values()) == tried
    repeats = unexplained_repeats(webhook, [(tmp_path / "b.log").read_text()])
    assert repeats <= done_before_kill


def test_routing_runs_as_a_redis_acl_user_held_to_its_own_keys(
    broker: Broker, redis_url: str, unique: str, tmp_path: Path,
    receivers: tuple[Webhook, Mailbox],
) -> None:
    """The ACL user docs/operations.md gives routing: its keys only, no dangerous commands."""
    webhook, mailbox = receivers
    settings = routing_settings(broker, redis_url, unique, tmp_path,
                                roster(webhook, mailbox, channels="hook"))
    password = f"pw-{unique}"
    admin = redis.Redis.from_url(redis_url)
    admin.acl_setuser(unique, enabled=True, passwords=[f"+{password}"],
                      keys=[f"{{{settings.app_id}}}:*"],
                      categories=["+@read", "+@write", "+@stream", "+@scripting",
                                  "+@connection", "-@dangerous"])
    parts = urllib.parse.urlsplit(redis_url)
    url = parts._replace(netloc=f"{unique}:{password}@{parts.hostname}:{parts.port}").geturl()
    try:
        with pytest.raises(redis.exceptions.NoPermissionError):
            redis.Redis.from_url(url).get("another-apps-key")
        routes_a_form_quietly(settings.model_copy(update={"redis_url": url}), tmp_path,
                              webhook, "acl@acme.example")
    finally:
        admin.acl_deluser(unique)
        admin.close()


def test_routing_runs_over_tls_to_redis(
    broker: Broker, unique: str, tmp_path: Path, receivers: tuple[Webhook, Mailbox],
) -> None:
    """The `rediss://` URL of docs/operations.md, against a server that speaks only TLS."""
    webhook, mailbox = receivers
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(run_tls_redis())
        except RuntimeError as error:
            pytest.skip(f"no TLS Redis here: {error}")
        settings = routing_settings(broker, url, unique, tmp_path,
                                    roster(webhook, mailbox, channels="hook"))
        routes_a_form_quietly(settings, tmp_path, webhook, "tls@acme.example")


def routes_a_form_quietly(settings: Settings, tmp_path: Path, webhook: Webhook,
                          email: str) -> None:
    """A worker with `settings` alerts on `email`'s contact-me form and logs no error."""
    with running_worker(settings, tmp_path / "worker.log") as worker:
        post_forms(worker, [email])
        wait_for(lambda: bool(webhook.delivered()), 30, lambda: worker.log()[-3000:])
        assert '"level":"error"' not in worker.log()


def test_a_redis_entry_that_holds_no_alert_or_step_is_set_aside_and_routing_goes_on(
    broker: Broker, redis_url: str, unique: str, tmp_path: Path,
    receivers: tuple[Webhook, Mailbox],
) -> None:
    webhook, mailbox = receivers
    settings = routing_settings(broker, redis_url, unique, tmp_path,
                                roster(webhook, mailbox, channels="hook"))
    client = redis.Redis.from_url(redis_url)
    with running_worker(settings, tmp_path / "worker.log") as worker:
        client.xadd(Keys.of(unique).alerts("hook"), {"alert": b"\xff not an alert"})
        client.zadd(Keys.of(unique).sla, {"not|a|timer": time.time()})
        with reading(settings.kafka_bootstrap_servers, topics_of(settings).dead_letter) as dead:
            letters = dead.wait_for(2, 30, worker)
        assert sorted((d["stage"], d["source"]) for d in letters) == [
            ("route", "alerts"), ("route", "sla")]
        assert all(d["offset"] == -1 and d["reason"] for d in letters)
        post_forms(worker, ["after@acme.example"])
        wait_for(lambda: bool(webhook.delivered()), 30, lambda: worker.log()[-3000:])
    client.close()


def alias_bomb() -> str:
    """A "billion laughs" roster: nine levels of nine aliases, 387 million values."""
    lines = ["regions:", "  l0: &l0 [ES, FR, DE, IT, PT, GB, IE, NL, BE]"]
    lines += [f"  l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]" for n in range(1, 9)]
    return "\n".join([*lines, "teams: [{id: emea, escalation: x, territory: {regions: [l8]}}]",
                      "reps: [{id: x, name: X, email: x@x.example, role: MRR, team: emea}]", ""])


def test_a_published_roster_that_is_an_alias_bomb_is_set_aside_and_routing_goes_on(
    broker: Broker, redis_url: str, unique: str, tmp_path: Path,
    receivers: tuple[Webhook, Mailbox],
) -> None:
    webhook, mailbox = receivers
    settings = routing_settings(broker, redis_url, unique, tmp_path,
                                roster(webhook, mailbox, reps=1, channels="hook", sla=CALM))
    prepare_topics(settings)
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:  # written past the check, before the worker starts: it must start all the same
        producer.send(topics_of(settings).roster, key=ROSTER_KEY,
                      value=published_roster("bomb.yaml", alias_bomb())).get(10)
        with running_worker(settings, tmp_path / "worker.log") as worker:
            post_forms(worker, ["first@acme.example"])
            [first] = decisions(settings, worker, 1, {"lead.routed"})
            assert first["rep"] == "rep0"
            # And once more while it runs: set aside, and the roster in force stays.
            producer.send(topics_of(settings).roster, key=ROSTER_KEY,
                          value=published_roster("bomb.yaml", alias_bomb())).get(10)
            with reading(settings.kafka_bootstrap_servers,
                         topics_of(settings).dead_letter) as dead:
                [letter] = dead.wait_for(1, 30, worker)
            assert letter["stage"] == "roster"
            assert "bomb.yaml:7:22: the alias *l4 takes the file past 250,000 values" in \
                letter["reason"]
            post_forms(worker, ["second@acme.example"])
            second = [d for d in decisions(settings, worker, 2, {"lead.routed"})
                      if d["prospect"] == "second@acme.example"]
            assert [d["roster_version"] for d in second] == [first["roster_version"]]
            assert worker.process.poll() is None
    finally:
        producer.close()


def test_a_published_roster_whose_channels_cannot_deliver_is_set_aside_and_routing_goes_on(
    broker: Broker, redis_url: str, unique: str, tmp_path: Path,
    receivers: tuple[Webhook, Mailbox],
) -> None:
    webhook, mailbox = receivers
    good = roster(webhook, mailbox, reps=1, channels="hook", sla=CALM)
    settings = routing_settings(broker, redis_url, unique, tmp_path, good)
    unset = f"LEADSCORE_TEST_UNSET_{unique.upper().replace('-', '_')}"
    bad = {  # each with the line the worker names, and what it says there
        "secret.yaml": (good.replace("secret_env: TEST_WEBHOOK_SECRET", f"secret_env: {unset}"),
                        27, f"secret_env: {unset} is not set where this runs"),
        "file.yaml": (good.replace(webhook.url, "file:///etc/passwd"), 27,
                      "url: 'file:///etc/passwd' uses file://"),
        "type.yaml": (good.replace("type: webhook", "type: pager"), 27,
                      "type: no installed channel type 'pager'"),
        "email.yaml": (good.replace(f"smtp://{mailbox.host}", f"http://{mailbox.host}"), 28,
                       "uses http://; email channels send to smtp://"),
    }
    with running_worker(settings, tmp_path / "worker.log") as worker:
        post_forms(worker, ["first@acme.example"])
        [first] = decisions(settings, worker, 1, {"lead.routed"})
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
        try:  # written past the check, as a careless tool could
            for name, (text, _, _) in bad.items():
                producer.send(topics_of(settings).roster, key=ROSTER_KEY,
                              value=published_roster(name, text)).get(10)
        finally:
            producer.close()
        with reading(settings.kafka_bootstrap_servers, topics_of(settings).dead_letter) as dead:
            letters = dead.wait_for(len(bad), 30, worker)
        assert [d["stage"] for d in letters] == ["roster"] * len(bad)
        for letter, (name, (_, line, error)) in zip(letters, bad.items(), strict=True):
            assert letter["reason"].startswith(f"{name}:{line}:") and error in letter["reason"]
        post_forms(worker, ["second@acme.example"])
        second = [d for d in decisions(settings, worker, 2, {"lead.routed"})
                  if d["prospect"] == "second@acme.example"]
        assert [d["roster_version"] for d in second] == [first["roster_version"]]
        wait_for(lambda: len(webhook.delivered()) == 2, 30, worker.log)
        assert all(hook.signature_error is None for hook in webhook.delivered())

        # A roster that passes with a warning is put in force, and the warning logged.
        warned = tmp_path / "warned.yaml"
        warned.write_text(roster(webhook, mailbox, reps=1, channels="hook", sla=CALM,
                                 daily_cap="500"))
        published = cli(settings, "roster", "publish", str(warned))
        assert published.returncode == 0, published.stderr
        wait_for(lambda: '"msg":"roster warning"' in worker.log(), 30, worker.log)
        assert "daily_cap 500 is above monthly_cap 400" in worker.log()


def test_a_lead_who_sends_the_contact_form_again_gets_their_owner_a_re_engaged_alert(
    broker: Broker, redis_url: str, unique: str, tmp_path: Path,
    receivers: tuple[Webhook, Mailbox],
) -> None:
    webhook, mailbox = receivers
    settings = routing_settings(broker, redis_url, unique, tmp_path,
                                roster(webhook, mailbox, channels="hook", sla=CALM))
    with running_worker(settings, tmp_path / "worker.log") as worker:
        def submit(submission: str) -> None:  # its own id: each submission is one event
            body = orjson.loads(contact_form("again@acme.example"))
            status, _ = http_post(f"{worker.base_url}/v1/events/forms",
                                  orjson.dumps({**body, "submission_id": submission}),
                                  {"Authorization": f"Bearer {INGEST}"})
            assert status == 202

        submit("s-1")
        wait_for(lambda: len(webhook.delivered()) == 1, 30, lambda: worker.log()[-3000:])
        submit("s-2")
        wait_for(lambda: len(webhook.delivered()) == 2, 30, lambda: worker.log()[-3000:])
        [told] = decisions(settings, worker, 1, {"lead.reengaged"})
    first, second = (item.body for item in webhook.delivered())
    assert (first["kind"], second["kind"]) == ("new_lead", "re_engaged")
    assert second["rep"] == first["rep"] and second["lead"]["lead"] == first["lead"]["lead"]
    assert second["lead"]["trigger"]["id"] != first["lead"]["trigger"]["id"]
    assert (told["rep"], told["lead"]) == (first["rep"]["id"], first["lead"]["lead"])
