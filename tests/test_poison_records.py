"""No record stops the live pipeline (a real `leadscore worker` on the session's broker).

Each consumer gets the records that once stopped every worker for good: the record is set
aside on the dead-letter topic with its stage, reason and position, counted, and the stage
goes on; a restarted worker does not stop on them again; and what was set aside can be
listed and sent back with `leadscore dead-letters` once its cause is fixed.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kafka import KafkaProducer

from app.worker import worker_env
from leadscore.infra.broker import Broker
from leadscore.settings import Settings
from streams.topics import topics_of
from tests.hostile import SOURCES, documents, dumps, events_messages, payloads
from tests.live import Worker, live_settings, read_topic, reading, running_worker

pytestmark = pytest.mark.kafka


def produce(settings: Settings, topic: str, records: list[tuple[bytes | None, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                             max_request_size=2_000_000)
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value)
        producer.flush()
    finally:
        producer.close()


def form(email: str, **changes: Any) -> bytes:
    return orjson.dumps({"form": "contact_me", "email": email,
                         "submitted_at": "2026-03-02T10:00:00Z", **changes})


def page_view(event_id: str, email: str) -> bytes:
    return orjson.dumps({
        "id": event_id, "type": "web.page_view", "occurred_at": "2026-03-02T10:00:00Z",
        "prospect": {"email": email},
        "properties": {"url": "https://acme.example/pricing", "visit_id": "s1"}})


def decisions_of(settings: Settings, worker: Worker, email: str, count: int) -> list[Any]:
    with reading(settings.kafka_bootstrap_servers, topics_of(settings).decisions) as reader:
        return reader.wait_for(count, 60, worker, where=lambda d: d.get("prospect") == email)


def letters_of(settings: Settings, worker: Worker, count: int) -> list[Any]:
    with reading(settings.kafka_bootstrap_servers, topics_of(settings).dead_letter) as reader:
        return reader.wait_for(count, 60, worker)


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=worker_env(settings),
                          capture_output=True, text=True, timeout=120, check=False)


def test_every_consumer_sets_a_poison_record_aside_and_goes_on_even_after_a_restart(
    broker: Broker, unique: str, tmp_path: Path,
) -> None:
    settings = live_settings(broker, unique, tmp_path)
    email = f"ok-{uuid.uuid4().hex[:6]}@acme.example"
    poison_events = [
        (None, b'{"kind": "event"}'),  # no key
        (b"ana@acme.example", b"\xff\xfe not json"),
        (b"ana@acme.example", b'{"kind": "claim", "into": true}'),
        (b"ana@acme.example", orjson.dumps({"kind": "event", "event": {
            **orjson.loads(page_view("y10k", "ana@acme.example")),
            "occurred_at": "9999-12-31T23:59:59-01:00"}})),
    ]
    with running_worker(settings, tmp_path / "first.log") as worker:
        assert quiet(worker), worker.log()  # a normal start on new topics logs no error
        produce(settings, topics_of(settings).raw["forms"], [
            (None, form("late@acme.example", submitted_at="9999-12-31T23:59:59-01:00")),
            (None, form("big@acme.example", fields={"title": "x" * 900_000})),
        ])
        produce(settings, topics_of(settings).events, poison_events)
        produce(settings, topics_of(settings).rules, [(b"rules", b'{"files": "notadict"}')])
        produce(settings, topics_of(settings).raw["canonical"], [(None, page_view("ok-1", email))])
        decided = decisions_of(settings, worker, email, 2)
        assert [(d["rule"], d["delta"]) for d in decided] == [
            ("page-view", 1), ("pricing-page", 5)]
        letters = letters_of(settings, worker, 7)
        assert worker.process.poll() is None
        by_stage: dict[str, list[Any]] = {}
        for letter in letters:
            by_stage.setdefault(letter["stage"], []).append(letter)
        assert sorted((stage, len(found)) for stage, found in by_stage.items()) == [
            ("map", 1), ("parse", 1), ("rules", 1), ("score", 4)]
        assert "outside 1970-01-01 to 2200-01-01" in by_stage["parse"][0]["reason"]
        assert "a quarter of message_max_bytes" in by_stage["map"][0]["reason"]
        assert by_stage["rules"][0]["raw"] == '{"files": "notadict"}'
        for letter in letters:  # each says where it was read, to find or re-drive it
            assert letter["topic"].startswith(f"{unique}.") and letter["offset"] >= 0
        scored = {(letter["partition"], letter["offset"]): letter
                  for letter in by_stage["score"]}
        assert len(scored) == 4 and all(letter["reason"] for letter in scored.values())
        with urllib.request.urlopen(f"{worker.base_url}/metrics", timeout=5) as response:
            metrics = response.read().decode()
        assert 'leadscore_dead_letters_total{source="events",stage="score"} 4.0' in metrics
        assert 'leadscore_dead_letters_total{source="forms",stage="parse"} 1.0' in metrics

    # A restart reads the uncommitted tail and the rules topic again, and restores the tables
    # from a changelog holding a record that is JSON but no entry: no crash loop.
    produce(settings, topics_of(settings).changelog, [(b"bad@acme.example", b'{"state": 5}')])
    later = f"later-{uuid.uuid4().hex[:6]}@acme.example"
    with running_worker(settings, tmp_path / "second.log") as worker:
        produce(settings, topics_of(settings).raw["canonical"],
                [(None, page_view("later-1", later))])
        assert len(decisions_of(settings, worker, later, 2)) == 2
        assert worker.process.poll() is None
        unreadable = [letter for letter in letters_of(settings, worker, 8)
                      if letter["source"] == "changelog"]
        assert [letter["key"] for letter in unreadable] == ["bad@acme.example"]
        assert "stored entry cannot be read" in unreadable[0]["reason"]
        assert "Traceback" not in worker.log().replace('"logger":"leadscore.dead_letters"', "")


def quiet(worker: Worker) -> bool:
    """Whether the worker has logged no error and no traceback (a retry warning is fine: a
    brand-new cluster makes its group coordinator as the first worker joins)."""
    return all('"level":"info"' in line or '"level":"warning"' in line
               for line in worker.log().splitlines())


@settings(max_examples=4, deadline=None, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(raw=st.lists(st.tuples(st.sampled_from(sorted(SOURCES)), st.one_of(
           st.binary(max_size=100), payloads.map(dumps))), min_size=20, max_size=20),
       events=st.lists(events_messages.map(dumps), min_size=10, max_size=10),
       rules=st.lists(st.one_of(documents.map(dumps), st.binary(max_size=50)),
                      min_size=3, max_size=3))
def test_after_any_input_on_any_topic_the_worker_is_alive_and_decides_the_next_event(
    fuzzed_worker: tuple[Settings, Worker], raw: list[tuple[str, bytes]],
    events: list[bytes], rules: list[bytes],
) -> None:
    settings_, worker = fuzzed_worker
    for source, value in raw:
        produce(settings_, topics_of(settings_).raw[source], [(None, value)])
    produce(settings_, topics_of(settings_).events,
            [(b"ana@acme.example", value) for value in events])
    produce(settings_, topics_of(settings_).rules, [(b"rules", value) for value in rules])
    email = f"next-{uuid.uuid4().hex[:8]}@acme.example"
    produce(settings_, topics_of(settings_).raw["canonical"], [(None, page_view(email, email))])
    assert len(decisions_of(settings_, worker, email, 2)) == 2
    assert worker.process.poll() is None


@pytest.fixture(scope="module")
def fuzzed_worker(
    broker: Broker, tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Settings, Worker]]:
    tmp = tmp_path_factory.mktemp("fuzzed")
    settings_ = live_settings(broker, "f" + uuid.uuid4().hex[:10], tmp)
    with running_worker(settings_, tmp / "worker.log") as worker:
        yield settings_, worker


def test_dead_letters_are_listed_and_sent_back_once_the_cause_is_fixed(
    broker: Broker, unique: str, tmp_path: Path,
) -> None:
    # An event too large for a small record limit is set aside; with the limit raised (the
    # fix), a re-drive sends it back to its raw topic and it is scored.
    small = live_settings(broker, unique, tmp_path, message_max_bytes=16_384)
    email = f"big-{uuid.uuid4().hex[:6]}@acme.example"
    big = orjson.dumps({**orjson.loads(page_view("big-1", email)),
                        "properties": {"url": "https://acme.example/pricing", "visit_id": "s1",
                                       "note": "n" * 6000}})
    with running_worker(small, tmp_path / "small.log") as worker:
        produce(small, topics_of(small).raw["canonical"], [(None, b"{not json"), (None, big)])
        letters_of(small, worker, 2)

    listed = cli(small, "dead-letters", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split(None, 3) for line in listed.stdout.splitlines()]
    assert sorted((count, source, stage) for count, source, stage, _ in rows) == [
        ("1", "canonical", "map"), ("1", "canonical", "parse")]
    assert "2 letter(s)" in listed.stderr

    fixed = small.model_copy(update={"message_max_bytes": 1_048_576})
    with running_worker(fixed, tmp_path / "fixed.log") as worker:
        sent = cli(fixed, "dead-letters", "redrive", "--stage", "map")
        assert sent.returncode == 0, sent.stderr
        assert sent.stdout.strip() == "sent back 1 of 1 letter(s)"
        decided = decisions_of(fixed, worker, email, 2)
        assert [(d["event_id"], d["rule"]) for d in decided] == [
            ("big-1", "page-view"), ("big-1", "pricing-page")]
    again = cli(fixed, "dead-letters", "list", "--full", "--stage", "parse")
    [letter] = [orjson.loads(line) for line in again.stdout.splitlines()]
    assert (letter["raw"], letter["topic"]) == ("{not json", topics_of(fixed).raw["canonical"])


def test_slow_clients_are_timed_out_and_oversized_output_is_a_413(
    broker: Broker, unique: str, tmp_path: Path,
) -> None:
    settings = live_settings(broker, unique, tmp_path, ingest_read_timeout_seconds=1)
    with running_worker(settings, tmp_path / "worker.log") as worker:
        host, port = worker.base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as body_stalled:
            body_stalled.sendall(b"POST /v1/events/forms HTTP/1.1\r\nHost: x\r\n"
                                 b"Content-Type: application/json\r\nContent-Length: 100\r\n"
                                 b"\r\n{\"form\":")
            answer = body_stalled.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408")
        with socket.create_connection((host, int(port)), timeout=10) as headers_stalled:
            headers_stalled.sendall(b"POST /v1/events/forms HTTP/1.1\r\nHost: x\r\n")
            started = time.monotonic()
            assert headers_stalled.recv(4096) == b""  # disconnected
            assert time.monotonic() - started < 8

        # A body that is not in the Content-Encoding it names: a 400, not a 500.
        mislabelled = urllib.request.Request(
            f"{worker.base_url}/v1/events/forms", data=form("gz@acme.example"), method="POST",
            headers={"Content-Encoding": "gzip"})
        with pytest.raises(urllib.error.HTTPError) as unreadable:
            urllib.request.urlopen(mislabelled, timeout=10)
        assert unreadable.value.code == 400

        # A body 200 bytes under the limit whose event would not fit: refused, not a crash.
        body = form("big@acme.example", fields={"title": "x" * 1_048_000})
        body = body.replace(b"x" * 1000, b"x" * (1000 - (len(body) - 1_048_376)), 1)
        assert len(body) == settings.ingest_max_bytes - 200
        request = urllib.request.Request(f"{worker.base_url}/v1/events/forms", data=body,
                                         method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 413
        assert worker.process.poll() is None
        assert read_topic(settings.kafka_bootstrap_servers, topics_of(settings).raw["forms"],
                          idle_seconds=1) == []
