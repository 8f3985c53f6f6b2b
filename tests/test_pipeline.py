"""The live pipeline on the session's real broker: a `leadscore worker` process per module.

What a user sees: decisions on `<prefix>decisions` for events sent to raw topics or posted to
the ingest API, bad input on `<prefix>dead-letter` with nothing else lost.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from leadscore.infra.broker import Broker
from leadscore.settings import Settings
from scoring_rules import load_rules
from streams.rules_feed import publish_rules
from streams.topics import topics_of
from tests.live import (
    Worker,
    http_post,
    live_settings,
    read_topic,
    reading,
    running_worker,
    wait_for,
    wait_for_records,
)

pytestmark = pytest.mark.kafka

SECRET = "s3cret-for-tests"


@pytest.fixture(scope="module")
def pipeline(
    broker: Broker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Settings, Worker]]:
    tmp = tmp_path_factory.mktemp("pipeline")
    unique = "p" + uuid.uuid4().hex[:10]
    settings = live_settings(broker, unique, tmp, ingest_secret=SECRET)
    with running_worker(settings, tmp / "worker.log") as worker:
        yield settings, worker


def produce(settings: Settings, topic: str, values: list[bytes], key: bytes | None = None) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        for value in values:
            producer.send(topic, key=key, value=value)
        producer.flush()
    finally:
        producer.close()


def canonical(event_id: str, email: str, **properties: Any) -> dict[str, Any]:
    return {
        "id": event_id, "type": "web.page_view", "occurred_at": "2026-03-02T10:00:00Z",
        "prospect": {"email": email},
        "properties": {"url": "https://acme.example/pricing", "visit_id": "s1", **properties},
    }


def test_bad_input_goes_to_the_dead_letter_topic_and_the_stream_goes_on(
    pipeline: tuple[Settings, Worker],
) -> None:
    settings, worker = pipeline
    email = f"dl-{uuid.uuid4().hex[:6]}@acme.example"
    produce(settings, topics_of(settings).raw["canonical"], [
        b"{not json",
        orjson.dumps({**canonical("dl-1", email), "occurred_at": "2026-03-02T10:00:00"}),
        orjson.dumps(canonical("dl-2", email)),
    ])
    wait_for_records(settings.kafka_bootstrap_servers, topics_of(settings).dead_letter, 2, 60,
                     worker)
    letters = read_topic(settings.kafka_bootstrap_servers, topics_of(settings).dead_letter)
    by_raw = {letter["raw"]: letter for letter in letters}
    assert by_raw["{not json"]["source"] == "canonical"
    assert by_raw["{not json"]["stage"] == "parse"
    naive = next(letter for raw, letter in by_raw.items() if "dl-1" in raw)
    assert "occurred_at" in naive["reason"] and "timezone" in naive["reason"]
    # the valid event after the bad ones was scored: page view +1, pricing page +5
    decided = _wait_for_decisions(settings, worker, email, 2)
    assert [(d["rule"], d["delta"]) for d in decided] == [("page-view", 1), ("pricing-page", 5)]


def test_ingest_endpoint_accepts_authenticated_batches_and_scores_them(
    pipeline: tuple[Settings, Worker],
) -> None:
    settings, worker = pipeline
    email = f"in-{uuid.uuid4().hex[:6]}@acme.example"
    url = f"{worker.base_url}/v1/events/canonical"
    batch = orjson.dumps([canonical("in-1", email), canonical("in-2", email, visit_id="s2")])

    assert http_post(url, batch)[0] == 401
    status, body = http_post(url, batch, {"Authorization": f"Bearer {SECRET}"})
    assert (status, body) == (202, {"accepted": 2})
    bad = orjson.dumps([canonical("in-3", email), {"id": "x"}])
    status, body = http_post(url, bad, signed(batch))
    assert status == 401  # the signature is of another body
    status, body = http_post(url, bad, signed(bad))
    assert status == 400
    assert [error["index"] for error in body["errors"]] == [1]
    too_big = b"[" + b" " * settings.ingest_max_bytes + b"]"
    assert http_post(url, too_big, {"Authorization": f"Bearer {SECRET}"})[0] == 413
    missing = f"{worker.base_url}/v1/events/no-such-source"
    assert http_post(missing, batch, {"Authorization": f"Bearer {SECRET}"})[0] == 404

    decided = _wait_for_decisions(settings, worker, email, 5)
    assert [(d["event_id"], d["rule"], d["delta"]) for d in decided] == [
        ("in-1", "page-view", 1), ("in-1", "pricing-page", 5),
        ("in-2", "page-view", 1), ("in-2", "repeat-visits", 8), ("in-2", "pricing-page", 5),
    ]
    assert decided[-1]["score"] == 20  # and the refused batch added nothing


def test_metrics_count_events_and_decisions_without_personal_data(
    pipeline: tuple[Settings, Worker],
) -> None:
    settings, worker = pipeline
    email = f"m-{uuid.uuid4().hex[:6]}@acme.example"
    produce(settings, topics_of(settings).raw["canonical"], [orjson.dumps(canonical("m-1", email))])
    _wait_for_decisions(settings, worker, email, 2)
    with urllib.request.urlopen(f"{worker.base_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    assert 'leadscore_raw_events_total{source="canonical"}' in text
    assert 'leadscore_decisions_total{type="score.changed"}' in text
    assert "@" not in text


def signed(body: bytes) -> dict[str, str]:
    """Standard Webhooks headers for `body`, signed now."""
    message_id, now = f"msg_{uuid.uuid4().hex}", int(time.time())
    digest = hmac.new(SECRET.encode(), f"{message_id}.{now}.".encode() + body, hashlib.sha256)
    return {"webhook-id": message_id, "webhook-timestamp": str(now),
            "webhook-signature": "v1," + base64.b64encode(digest.digest()).decode()}


def _wait_for_decisions(
    settings: Settings, worker: Worker, prospect: str, count: int
) -> list[dict[str, Any]]:
    """The prospect's decisions, once there are at least `count`."""
    with reading(settings.kafka_bootstrap_servers, topics_of(settings).decisions) as reader:
        return reader.wait_for(count, 60, worker, where=lambda d: d.get("prospect") == prospect)


def test_a_published_rule_change_applies_live_and_a_bad_one_is_refused(
    broker: Broker, unique: str, tmp_path: Path
) -> None:
    settings = live_settings(broker, unique, tmp_path)
    shipped = load_rules(settings.rules_path)
    changed_dir = tmp_path / "rules"
    changed_dir.mkdir()
    for path in sorted(settings.rules_path.glob("*.yaml")):
        (changed_dir / path.name).write_text(path.read_text())
    with running_worker(settings, tmp_path / "worker.log") as worker:
        produce(settings, topics_of(settings).raw["canonical"],
                [orjson.dumps(canonical("r-1", "ana@acme.example"))])
        before = _wait_for_decisions(settings, worker, "ana@acme.example", 2)
        assert {d["rules_version"] for d in before} == {shipped.version}

        behavior = changed_dir / "behavior.yaml"
        pricing_rule = "path: /pricing*\n    points: 5"
        assert pricing_rule in behavior.read_text()
        behavior.write_text(behavior.read_text().replace(pricing_rule, pricing_rule[:-1] + "9"))
        new_version = publish_rules(settings, changed_dir)
        assert new_version != shipped.version
        _wait_for_log(worker, new_version)
        produce(settings, topics_of(settings).raw["canonical"],
                [orjson.dumps(canonical("r-2", "bo@acme.example"))])
        after = _wait_for_decisions(settings, worker, "bo@acme.example", 2)
        assert {d["rules_version"] for d in after} == {new_version}
        assert ("pricing-page", 9) in [(d["rule"], d["delta"]) for d in after]

        broken = changed_dir / "zz-broken.yaml"
        broken.write_text("rules:\n  - id: oops\n    event: web.page_view\n    pointz: 3\n")
        produce(settings, topics_of(settings).rules, [orjson.dumps({"files": {
            p.name: p.read_text() for p in changed_dir.glob("*.yaml")}})], key=b"rules")
        _wait_for_log(worker, '"stage":"rules"')
        assert "zz-broken.yaml:4:5: unknown key 'pointz'" in worker.log()
        produce(settings, topics_of(settings).raw["canonical"],
                [orjson.dumps(canonical("r-3", "cy@acme.example"))])
        still = _wait_for_decisions(settings, worker, "cy@acme.example", 2)
        assert {d["rules_version"] for d in still} == {new_version}

    # A worker started later puts the last version that passes in force, quietly.
    with running_worker(settings, tmp_path / "restarted.log") as worker:
        produce(settings, topics_of(settings).raw["canonical"],
                [orjson.dumps(canonical("r-4", "di@acme.example"))])
        restarted = _wait_for_decisions(settings, worker, "di@acme.example", 2)
        assert {d["rules_version"] for d in restarted} == {new_version}
        assert '"level":"error"' not in worker.log() and "pointz" not in worker.log()


def _wait_for_log(worker: Worker, text: str) -> None:
    wait_for(lambda: text in worker.log(), 60,
             lambda: f"{text!r} not in worker log:\n{worker.log()[-3000:]}")


def test_the_probes_say_healthy_and_ready_once_the_worker_scores(
    pipeline: tuple[Settings, Worker],
) -> None:
    _, worker = pipeline
    wait_for(lambda: _probe(worker, "readyz")[0] == 200, 30,
             lambda: f"/readyz: {_probe(worker, 'readyz')}")
    for probe in ("healthz", "readyz"):
        assert _probe(worker, probe) == (200, {"healthy": True, "ready": True, "problems": [],
                                               "warnings": []})


def _probe(worker: Worker, probe: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(f"{worker.base_url}/{probe}", timeout=5) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read())
