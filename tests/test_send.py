"""`leadscore send`: reading raw event files, and producing them to a real broker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer

from app.cli import main
from leadscore.infra.broker import Broker
from leadscore.kafka.topics import ensure_topics
from streams.send import Unreadable, read_items


def test_items_of_a_json_array_file_are_located_by_line() -> None:
    text = '[\n  {"a": 1},\n  {"b": [1,\n 2]}, {"c": 3}\n]\n'
    assert list(read_items(text)) == [
        ("line 2, item 1", {"a": 1}),
        ("line 3, item 2", {"b": [1, 2]}),
        ("line 4, item 3", {"c": 3}),
    ]


def test_json_lines_may_hold_objects_or_captured_batches() -> None:
    text = '{"a": 1}\n\n[{"b": 2}, {"c": 3}]\n{oops\n'
    items = list(read_items(text))
    assert items[:3] == [
        ("line 1", {"a": 1}),
        ("line 3, item 1", {"b": 2}),
        ("line 3, item 2", {"c": 3}),
    ]
    where, bad = items[3]
    assert where == "line 4" and isinstance(bad, Unreadable) and bad.reason.startswith("not JSON")


def form(email: str, submission: str, anonymous_id: str | None = None) -> dict[str, Any]:
    return {
        "form": "contact_me",
        "email": email,
        "submitted_at": "2026-01-05T09:30:00Z",
        "submission_id": submission,
        **({"anonymous_id": anonymous_id} if anonymous_id else {}),
    }


def consume(broker: Broker, topic: str, count: int) -> list[tuple[bytes | None, Any]]:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=15_000,
    )
    try:
        received = []
        for message in consumer:
            received.append((message.key, orjson.loads(message.value)))
            if len(received) == count:
                break
        return received
    finally:
        consumer.close()


@pytest.mark.kafka
def test_send_produces_the_good_lines_keyed_by_prospect_and_reports_the_bad_ones(
    broker: Broker, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("LEADSCORE_KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap_servers)
    monkeypatch.setenv("LEADSCORE_TOPIC_PREFIX", f"{unique}.")
    topic = f"{unique}.raw.forms"
    ensure_topics(broker.bootstrap_servers, [topic], 2)
    good = [form("Ana@Acme.example", "f-1", "a-1"), form("bo@beta.example", "f-2")]
    lines = [json.dumps(good[0]), json.dumps({**good[1], "email": "bo"}), "{oops",
             json.dumps(good[1])]  # fmt: skip
    events = tmp_path / "forms.jsonl"
    events.write_text("\n".join(lines) + "\n")

    assert main(["send", "forms", str(events)]) == 1
    out, err = capsys.readouterr()
    assert out == f"sent 2 of 4 events to {topic}\n"
    assert f"{events}: line 2: email: String should match pattern" in err
    assert f"{events}: line 3: not JSON" in err

    # Keyed by prospect, as the events topic is: the lowercased email, else the anonymous id.
    received = consume(broker, topic, 2)
    assert sorted(received, key=lambda r: r[0] or b"") == [
        (b"ana@acme.example", good[0]),
        (b"bo@beta.example", good[1]),
    ]


@pytest.mark.kafka
def test_send_of_a_valid_array_file_to_a_chosen_topic_exits_0(
    broker: Broker, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.setenv("LEADSCORE_KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap_servers)
    topic = f"{unique}.replay"
    ensure_topics(broker.bootstrap_servers, [topic], 1)
    batch = [
        {"email": "ana@acme.example", "timestamp": 1767605400, "event": "open",
         "sg_event_id": "e1"},
        {"email": "ana@acme.example", "timestamp": 1767605401, "event": "delivered",
         "sg_event_id": "e2"},
    ]  # fmt: skip
    events = tmp_path / "sendgrid.json"
    events.write_text(json.dumps(batch, indent=2))

    assert main(["send", "email", str(events), "--topic", topic]) == 0
    assert capsys.readouterr().out == f"sent 2 of 2 events to {topic}\n"
    # An event nothing scores has no prospect key; it is still kept, in order.
    assert consume(broker, topic, 2) == [(b"ana@acme.example", batch[0]), (None, batch[1])]


def test_send_refuses_an_unknown_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["send", "fax", str(tmp_path / "x.jsonl")]) == 2
    assert "no source named 'fax'" in capsys.readouterr().err
