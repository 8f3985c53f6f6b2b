"""Dead letters: they always fit the topic, and what is sent back is processed anew."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace

import orjson

from leadscore.kafka.dead_letters import as_record, letter, raw_bytes, unrecorded
from leadscore.kafka.topics import fits
from streams.redrive import Selection, not_redrivable, summarise, without_origin


def record(value: bytes | None, key: bytes | None = b"ana@acme.example") -> SimpleNamespace:
    return SimpleNamespace(topic="p.raw.forms", partition=0, offset=7, key=key, value=value)


def test_a_letter_keeps_the_record_whole_when_it_fits_and_its_bytes_when_not_text() -> None:
    dead = letter("parse", "not JSON", record(b"\xff\xfe\x00binary"), "forms")
    _, key, value, *_ = as_record("p.dead-letters", dead, 16_384)
    assert key == b"ana@acme.example"
    assert raw_bytes(orjson.loads(value)) == b"\xff\xfe\x00binary"
    assert (dead["topic"], dead["partition"], dead["offset"]) == ("p.raw.forms", 0, 7)


def test_a_letter_too_large_for_a_record_drops_its_bytes_then_its_key_and_still_fits() -> None:
    limit = 16_384
    big_value = letter("map", "too large", record(b"x" * limit), "forms")
    _, key, value, *_ = as_record("p.dead-letters", big_value, limit)
    assert fits(key, value, limit) and orjson.loads(value)["raw"] is None
    assert orjson.loads(value)["offset"] == 7  # the original is found by its position

    huge_key = letter("score", "r" * 5000, record(b"{}", key=b"k" * limit), "events")
    _, key, value, *_ = as_record("p.dead-letters", huge_key, limit)
    assert key is None and fits(key, value, limit)
    assert orjson.loads(value)["key"] is None


def test_an_events_message_sent_back_loses_the_position_that_would_make_it_a_repeat() -> None:
    message = {"kind": "event", "event": {"id": "e1"}, "origin": ["p.raw.web/0", [5, 0]]}
    assert orjson.loads(without_origin(orjson.dumps(message))) == {
        "kind": "event", "event": {"id": "e1"}}
    assert without_origin(b"\xff not json") == b"\xff not json"


def test_letters_are_chosen_and_counted_by_source_stage_and_reason() -> None:
    letters = [letter("parse", f"submitted_at: bad {n}", record(b"{}"), "forms")
               for n in range(3)] + [letter("score", "invalid", record(b"{}"), "events")]
    for dead, at in zip(letters, ["2026-11-30T10:00:00.000Z", *["2026-12-01T09:00:00.000Z"] * 3],
                        strict=True):
        dead["at"] = at
    assert summarise(letters) == [("forms", "parse", "submitted_at: bad 0", 1),
                                  ("forms", "parse", "submitted_at: bad 1", 1),
                                  ("forms", "parse", "submitted_at: bad 2", 1),
                                  ("events", "score", "invalid", 1)]
    since = Selection(source="forms", since=datetime(2026, 12, 1, tzinfo=UTC))
    assert [d["reason"] for d in letters if since(d)] == [
        "submitted_at: bad 1", "submitted_at: bad 2"]
    assert [d["stage"] for d in letters if Selection(reason="INVALID")(d)] == ["score"]


def test_a_letter_made_from_no_kafka_record_is_never_sent_back_to_its_topic() -> None:
    """A table entry or a Redis stream entry has no topic to go back to: the changelog is
    the table's own, and a Redis stream's name is no topic at all."""
    table = letter("score", "unreadable", unrecorded("p-changelog", 2, "ana@acme.example"),
                   "changelog")
    stream = letter("route", "no alert", unrecorded("{p}:alerts:hook", 0, "1-0", b"x"), "alerts")
    for dead in (table, stream):
        assert "made from no Kafka record" in (not_redrivable(dead) or "")
    assert not_redrivable(letter("parse", "not JSON", record(b"{"), "forms")) is None
    assert "fix the files" in (not_redrivable(letter("rules", "bad", record(b"{}"), "rules"))
                               or "")
