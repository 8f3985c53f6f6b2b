"""The replay's fast paths decide exactly as the canonical model and the plain rules do."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from leadscore.events import RejectedLine, describe_error, parse_event
from scoring_rules import ReplayEnd, replay, replay_lines
from scoring_rules.compile import MATCH_MEMORY
from tests.scoring_events import default_rules, rules_from


def _line(when: str, number: int, path: str = "/pricing") -> bytes:
    return orjson.dumps({
        "id": f"e{number}", "type": "web.page_view", "occurred_at": when,
        "prospect": {"email": f"p{number}@acme.example"},
        "properties": {"url": f"https://northwind.example{path}", "visit_id": "s-1"},
    })


def _decisions(items: Any) -> list[dict[str, Any]]:
    return [item for item in items if not isinstance(item, ReplayEnd)]


def _outcome(items: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The decisions and every prospect's full state (its clock holds the event time)."""
    listed = list(items)
    end = listed[-1]
    assert isinstance(end, ReplayEnd)
    return listed[:-1], {key: state.to_dict() for key, state in end.states.items()}


@pytest.mark.parametrize("when", [
    "2026-01-05T09:00:00Z",            # the canonical form the fast reader reads by table
    "2026-01-05T23:59:59Z",
    "2024-02-29T12:30:05Z",
    "2026-01-05T09:00:00+00:00",
    "2026-01-05T09:00:00.250000Z",
    "2026-01-05T11:00:00+02:00",
    "2026-01-05T09:00:60Z",            # not a time: rejected by both readers
    "2026-01-05T24:00:00Z",
    "2026-02-30T09:00:00Z",
    "2026-01-05T09:0a:00Z",
    "2026-01-05T09:00:00",             # no time zone
])
def test_the_line_reader_reads_times_as_the_canonical_model(when: str) -> None:
    rules = default_rules()
    line = _line(when, 1)
    from_lines = _outcome(replay_lines(rules, [line]))
    from_model = _outcome(replay(rules, [_parsed_or_rejected(line)]))
    assert from_lines == from_model
    assert from_lines[0]  # accepted and scored, or rejected with the model's message


_EVENT = {"id": "e1", "type": "web.page_view", "occurred_at": "2026-01-05T09:00:00Z",
          "prospect": {"email": "ana@acme.example"}, "properties": {"url": "/pricing"}}


@pytest.mark.parametrize("change", [
    {},
    {"properties": "left out"},
    {"properties": None},
    {"account": {"domain": "acme.example"}},
    {"account": None},
    {"account": {"name": "Acme"}},            # an unknown account key
    {"campaign": "spring"},                   # an unknown event key
    {"prospect": {"email": "ana@acme.example", "anonymous_id": "v-1"}},
    {"prospect": {"email": None, "anonymous_id": "v-1"}},
    {"prospect": {"email": "ana@acme.example", "name": "Ana"}},  # an unknown prospect key
    {"prospect": {}},
    {"id": None},
    {"type": ""},
])
def test_the_line_reader_reads_keys_as_the_canonical_model(change: dict[str, Any]) -> None:
    event = {**_EVENT, **change}
    if event["properties"] == "left out":
        del event["properties"]
    line = orjson.dumps(event)
    rules = default_rules()
    from_lines = _outcome(replay_lines(rules, [line]))
    from_model = _outcome(replay(rules, [_parsed_or_rejected(line)]))
    assert from_lines == from_model
    assert from_lines[0]  # scored, or rejected with the model's message


def _parsed_or_rejected(line: bytes) -> Any:
    try:
        return parse_event(line)
    except ValidationError as error:
        return RejectedLine(line=1, error=describe_error(error))


def test_path_rules_stay_right_past_the_values_they_remember() -> None:
    rules = rules_from("""
rules:
  - id: pricing-page
    event: web.page_view
    where:
      url:
        path: /pricing*
    points: 1
""")
    paths = [f"/pricing/{n}" if n % 3 == 0 else f"/blog/{n}" for n in range(MATCH_MEMORY + 500)]
    lines = [_line("2026-01-05T09:00:00Z", n, path) for n, path in enumerate(paths)]
    lines += lines[:100]  # seen again, from the start of a fresh memory
    hits = [d for d in _decisions(replay_lines(rules, lines)) if d["rule"] == "pricing-page"]
    expected = sum(1 for path in paths if path.startswith("/pricing/"))
    assert len(hits) == expected  # the repeats are the same ids: ignored as redeliveries


def test_a_remembered_text_answer_does_not_leak_to_other_value_types() -> None:
    rules = rules_from("""
rules:
  - id: one-hour-webinar
    event: webinar.attended
    where:
      hours:
        equals: 1
    points: 3
""")
    lines = [orjson.dumps({
        "id": f"w{n}", "type": "webinar.attended", "occurred_at": "2026-01-05T09:00:00Z",
        "prospect": {"email": "ana@acme.example"}, "properties": {"hours": hours},
    }) for n, hours in enumerate([1, True, "1", 1.0, "1"])]
    hits = [d["event_id"] for d in _decisions(replay_lines(rules, lines))
            if d["type"] == "score.changed"]
    assert hits == ["w0", "w3"]  # `true` equals 1 in Python, not in a rule
