"""Whatever arrives, it is refused where it enters or set aside, and scoring goes on.

Regression tests for the inputs that once stopped the pipeline (a year-10000 date, bodies
near the size limit, deep JSON, growing numbers), and property-based fuzzing of ingest,
every source's mapping and the scoring stage: no input raises where the stage would stop,
and a valid event sent next is still decided.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from leadscore.events import Event
from leadscore.kafka.topics import fits
from leadscore.settings import Settings
from scoring_rules import load_rules
from scoring_rules.replay import replay_lines
from streams.decay_clock import PartitionClock
from streams.due_index import DueIndex
from streams.ingest import ingest
from streams.processor import Owned, score_one
from streams.scoring import event_message
from streams.sources import map_raw
from streams.store import Table
from streams.topics import max_event_bytes
from tests.hostile import SOURCES, VALID_EVENT, documents, dumps, events_messages, payloads
from tests.scoring_events import DEFAULT_RULES

SECRET = "s3cret-token"
BEARER = {"Authorization": f"Bearer {SECRET}"}
SETTINGS = Settings(ingest_secret=SecretStr(SECRET))
RULES = load_rules(DEFAULT_RULES)


def form(**changes: Any) -> dict[str, Any]:
    return {"form": "contact_me", "email": "ana@acme.example",
            "submitted_at": "2026-03-02T10:00:00Z", **changes}


def post(body: bytes, source: str = "forms", settings_: Settings = SETTINGS) -> Any:
    return ingest(source, body, BEARER, settings_, SOURCES, now=0)


def test_a_time_past_year_9999_in_utc_is_refused_at_ingest_with_the_range() -> None:
    result = post(orjson.dumps(form(submitted_at="9999-12-31T23:59:59-01:00")))
    assert result.status == 400
    [error] = result.body["errors"]
    assert error["reason"].startswith("submitted_at: Value error, the time 9999-12-31T23:59:59")
    assert "is outside 1970-01-01 to 2200-01-01 UTC" in error["reason"]


def test_the_map_stage_sets_a_year_10000_record_aside_instead_of_failing() -> None:
    # Sent straight to the raw topic, past the ingest check.
    unmapped = map_raw("forms", orjson.dumps(form(submitted_at="9999-12-31T23:59:59-01:00")))
    assert isinstance(unmapped, dict)
    assert unmapped["stage"] == "parse" and "outside 1970-01-01" in unmapped["reason"]


def test_replay_rejects_an_out_of_range_time_and_goes_on() -> None:
    good = {"id": "e1", "type": "web.page_view", "occurred_at": "2026-03-02T10:00:00Z",
            "prospect": {"email": "ana@acme.example"}, "properties": {"url": "https://a.example/"}}
    lines = [orjson.dumps({**good, "id": "e0", "occurred_at": "9999-12-31T23:59:59-01:00"}),
             orjson.dumps({**good, "id": "e2", "occurred_at": "1969-12-31T23:59:59Z"}),
             orjson.dumps(good)]
    out = list(replay_lines(RULES, lines))
    rejected = [d for d in out if isinstance(d, dict) and d["type"] == "event.rejected"]
    assert [(r["line"], "outside 1970-01-01 to 2200-01-01" in r["error"]) for r in rejected] == [
        (1, True), (2, True)]
    assert any(isinstance(d, dict) and d.get("event_id") == "e1" for d in out)


def test_a_body_just_under_the_limit_whose_event_would_not_fit_is_a_413() -> None:
    limits = Settings(ingest_secret=SecretStr(SECRET), ingest_max_bytes=1_048_576,
                      message_max_bytes=1_048_576)
    body = orjson.dumps(form(fields={"title": "x" * 1_048_000}))
    assert 1_048_576 - 1000 < len(body) <= 1_048_576
    result = post(body, settings_=limits)
    assert result.status == 413 and result.records == []
    assert "maps to an event of" in result.body["errors"][0]["reason"]


def test_a_body_of_exactly_the_limit_is_answered_not_failed() -> None:
    limits = Settings(ingest_secret=SecretStr(SECRET), ingest_max_bytes=1_048_576)
    item = orjson.dumps(form(submission_id="s1"))
    padding = b" " * (1_048_576 - len(item) - 2)
    body = b"[" + item + padding + b"]"
    assert len(body) == 1_048_576
    assert post(body, settings_=limits).status == 202  # whitespace is not produced
    big = orjson.dumps(form(fields={"note": "y" * (1_048_576 - 200)}))[:1_048_576]
    assert post(big, settings_=limits).status in (400, 413)


def test_numbers_that_grow_when_serialised_are_measured_as_they_will_be_produced() -> None:
    limits = Settings(ingest_secret=SecretStr(SECRET), ingest_max_bytes=64_000,
                      message_max_bytes=65_536)
    # `1E2` is 3 bytes as sent and `100.0` (5 bytes) once serialised.
    body = b"[" + b",".join([orjson.dumps(form(fields={"n": 0}))
                             .replace(b'"n":0', b'"n":1E2')] * 450) + b"]"
    assert len(body) <= 64_000
    result = post(body, settings_=limits)
    assert result.status == 413
    assert "a request's records must fit one batch" in result.body["error"]


def testdocuments_nested_a_thousand_deep_is_a_400_naming_the_limit() -> None:
    deep = b'{"a":' * 1000 + b"1" + b"}" * 1000
    body = orjson.dumps(form()).replace(b'"form"', b'"fields":{"deep":' + deep + b'},"form"')
    result = post(body)
    assert result.status == 400
    assert result.body["errors"][0]["reason"] == "the JSON is nested deeper than 32 levels"


def test_an_id_too_long_to_remember_is_refused() -> None:
    result = post(orjson.dumps(form(submission_id="s" * 600)))
    assert result.status == 400
    assert "id: String should have at most 512 characters" in result.body["errors"][0]["reason"]


# Property-based fuzzing.

_FUZZ = settings(max_examples=300, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow])


@_FUZZ
@given(source=st.sampled_from(sorted(SOURCES)), body=st.one_of(
    st.binary(max_size=200), payloads.map(dumps),
    st.lists(payloads, max_size=3).map(dumps)))
def test_ingest_answers_every_body_with_a_client_status(source: str, body: bytes) -> None:
    result = post(body, source)
    assert result.status in (202, 400, 413)
    for record in result.records:  # what is accepted maps, and every event fits its topic
        mapped = map_raw(SOURCES[source], record.value)
        assert isinstance(mapped, list)
        for event in mapped:
            message = orjson.dumps(event_message(event.model_dump(mode="json"), ("r/0", 1)))
            assert fits(None, message, max_event_bytes(SETTINGS.message_max_bytes))


@_FUZZ
@given(source=st.sampled_from(sorted(SOURCES)),
       raw=st.one_of(st.binary(max_size=200), payloads.map(dumps)))
def test_the_map_stage_turns_any_raw_record_into_events_or_a_reason(
    source: str, raw: bytes
) -> None:
    mapped = map_raw(SOURCES[source], raw)
    if isinstance(mapped, dict):
        assert mapped["stage"] in ("parse", "map") and mapped["reason"]
    else:
        assert all(isinstance(event, Event) for event in mapped)


_KEYS = ["ana@acme.example", "anon:v1"]
_origins = st.one_of(documents, st.tuples(st.sampled_from(["p.raw.web/0", "c/1"]), st.lists(
    st.integers(-3, 3), min_size=2, max_size=2)).map(list))


@_FUZZ
@given(key=st.sampled_from([*_KEYS, None]), message=st.one_of(
    events_messages.map(dumps), st.binary(max_size=50),
    st.tuples(events_messages, _origins).map(
        lambda m: dumps({**m[0], "origin": m[1]} if isinstance(m[0], dict) else m[0]))))
def test_after_any_events_record_a_valid_event_for_the_same_prospect_is_decided(
    key: str | None, message: bytes,
) -> None:
    owned = Owned(Table({}, None), DueIndex(), PartitionClock(0.0))
    dead = score_one(RULES, owned, events_record(key, message, 0))
    if dead is not None:
        assert dead["stage"] == "score" and dead["reason"] and dead["offset"] == 0
    for target in _KEYS:  # then the stage decides valid events, the hand-over included
        valid = {**VALID_EVENT, "id": f"ok-{target}"}
        if target.startswith("anon:"):
            valid["prospect"] = {"anonymous_id": "v1"}
        assert score_one(RULES, owned, events_record(
            target, orjson.dumps({"kind": "event", "event": valid}), 1)) is None
    if owned.table["ana@acme.example"]["awaiting"]:
        assert score_one(RULES, owned, events_record("ana@acme.example", orjson.dumps(
            {"kind": "absorb", "source": "anon:v1", "state": None}), 2)) is None
    decided = owned.table["ana@acme.example"]["decisions"]
    assert ("pricing-page", 5) in [(d.get("rule"), d.get("delta")) for d in decided]


def events_record(key: str | None, value: bytes, offset: int) -> SimpleNamespace:
    return SimpleNamespace(topic="p.events", partition=0, offset=offset, timestamp=1_000,
                           key=None if key is None else key.encode(), value=value)


@pytest.mark.parametrize("value", [
    b'{"files": "notadict"}', b"[]", b"not json", b'{"files": {"a.yaml": 3}}',
    b'{"files": {"a.yaml": "rules: [\\u0000]"}}', orjson.dumps({"files": {}}),
])
def test_any_rules_record_is_refused_with_a_reason_and_the_running_rules_stay(
    value: bytes,
) -> None:
    from streams.rules_feed import accept

    class Running:  # the one attribute `accept` reads and replaces
        rules = RULES

    outcome = accept(Running, value)  # type: ignore[arg-type]
    assert isinstance(outcome, str) and outcome
    assert Running.rules is RULES


@_FUZZ
@given(files=st.one_of(documents, st.dictionaries(st.text(max_size=10), st.text(max_size=60),
                                              max_size=3)))
def test_the_rules_feed_refuses_or_accepts_any_record_without_raising(files: Any) -> None:
    from streams.rules_feed import accept

    class Running:
        rules = RULES

    accept(Running, dumps({"files": files}))  # type: ignore[arg-type]
