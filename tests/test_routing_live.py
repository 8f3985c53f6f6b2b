"""Routing on the real servers: Apache Kafka, Redis, a webhook receiver, an SMTP server.

A contact-me form POSTed to ingest becomes an alert that a rep's webhook and mailbox
receive; leads are assigned once and fairly across workers, whatever dies meanwhile.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from leadscore.infra.broker import Broker
from leadscore.settings import Settings
from leadscore.webhook_signatures import signed_headers
from streams.topics import topics_of
from tests.live import Worker, http_post, live_settings, reading, running_worker, wait_for
from tests.receivers import Mailbox, Webhook, smtp_server, webhook_receiver

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

SECRET = "whsec_" + "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3"  # 24 bytes
INGEST = "ingest-secret-for-routing-tests"


def roster(webhook: Webhook, mailbox: Mailbox, reps: int = 3, **rep_fields: str) -> str:
    """A roster whose EMEA reps are on shift around the clock and alerted by webhook and
    email; `rep_fields` are extra YAML lines for every rep."""
    extra = "".join(f"\n    {name}: {value}" for name, value in rep_fields.items())
    members = "".join(f"""
  - id: rep{n}
    name: Rep {n}
    email: rep{n}@northwind.example
    role: MRR
    team: emea
    time_zone: Europe/Madrid
    working_hours: {{days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "00:00"}}
    alerts: [hook, mail]{extra}""" for n in range(reps))
    return f"""
teams:
  - id: emea
    territory: {{countries: [ES, FR]}}
    escalation: lead
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
  mail: {{type: email, url: "smtp://{mailbox.host}:{mailbox.port}", sender: leads@northwind.example}}
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
                         ingest_secret=INGEST, api_secret="api-secret")


def contact_form(email: str, country: str = "ES") -> bytes:
    return orjson.dumps({"form": "contact_me", "email": email,
                         "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                         "fields": {"name": "Ana López", "title": "VP Sales",
                                    "company": "Acme", "country": country}})


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
        wait_for(lambda: webhook.delivered() and mailbox.messages, 30,
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
