"""The live scoring stage (`streams.scoring`) against `leadscore replay`, with no broker.

A small simulator plays the events topic: one FIFO queue per partition, filled by the map
stage in file order, drained in a random interleaving of partitions (as a consumer may),
with every outbox forward appended to its key's partition. Whatever the interleaving, each
prospect's decisions must be exactly replay's.
"""

from __future__ import annotations

import random
import zlib
from collections import defaultdict, deque
from typing import Any

import orjson
import pytest

from leadscore.events import Event
from leadscore.infra.sample_events import generate
from scoring_rules import RuleSet, replay_lines
from scoring_rules.state import REMEMBERED_EVENT_IDS
from streams.due_index import DueIndex
from streams.scoring import Entry, Message, event_message, handle, outbox, rebuild_index
from streams.sources import map_raw
from streams.store import Table
from tests.scoring_events import default_rules

PARTITIONS = 4


def by_prospect(decisions: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for decision in decisions:
        grouped[decision["prospect"]].append(decision)
    return dict(grouped)


def replayed(rules: RuleSet, lines: list[bytes]) -> list[dict[str, Any]]:
    """Replay's decisions, with no decay run after the last event (the live test has no
    decay timer either), and without rejections (live sends those to the dead letters)."""
    first = min(Event.model_validate_json(line).occurred_at for line in lines
                if isinstance(map_raw("canonical", line), list))
    return [item for item in replay_lines(rules, lines, now=first)
            if isinstance(item, dict) and item["type"] != "event.rejected"]


def simulate(rules: RuleSet, lines: list[bytes], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    table: dict[str, Entry] = {}
    indexes = [DueIndex() for _ in range(PARTITIONS)]
    queues: list[deque[tuple[str, Message]]] = [deque() for _ in range(PARTITIONS)]
    decisions: list[dict[str, Any]] = []

    def send(key: str, message: Message) -> None:
        queues[zlib.crc32(key.encode()) % PARTITIONS].append((key, message))

    mapped = 0
    while mapped < len(lines) or any(queues):
        # the map stage runs ahead by a random amount, in file order
        for _ in range(rng.randrange(0, 20)):
            if mapped < len(lines):
                events = map_raw("canonical", lines[mapped])
                mapped += 1
                for event in events if isinstance(events, list) else []:
                    send(event.prospect.key, event_message(event.model_dump(mode="json")))
        ready = [p for p in range(PARTITIONS) if queues[p]]
        if not ready:
            continue
        partition = rng.choice(ready)
        key, message = queues[partition].popleft()
        handle(rules, table, indexes[partition], key, orjson.loads(orjson.dumps(message)))
        for kind, target, item in outbox(table.get(key)):
            if kind == "decision":
                decisions.append(item)
            else:
                send(target, item)
    return decisions


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_live_scoring_decides_what_replay_decides_in_any_partition_interleaving(
    seed: int,
) -> None:
    rules = default_rules()
    lines = list(generate(3_000, 300, seed=seed))
    expected = by_prospect(replayed(rules, lines))
    assert any(key.startswith("anon:") for key in expected), "the stream has no visitors"
    assert any(d["rule"] == "identity.merge" for d in replayed(rules, lines) if "rule" in d)
    assert by_prospect(simulate(rules, lines, seed)) == expected


def test_the_example_story_decides_alike(example_lines: list[bytes]) -> None:
    rules = default_rules()
    assert by_prospect(simulate(rules, example_lines, 7)) == by_prospect(
        replayed(rules, example_lines))


def test_a_repeated_claim_or_answer_changes_nothing() -> None:
    rules = default_rules()
    table: dict[str, Entry] = {}
    index = DueIndex()
    visit = {"id": "v1", "type": "web.page_view", "occurred_at": "2026-01-05T09:00:00Z",
             "prospect": {"anonymous_id": "v-1"},
             "properties": {"url": "https://acme.example/pricing", "visit_id": "s1"}}
    form = {"id": "f1", "type": "form.submitted", "occurred_at": "2026-01-05T09:05:00Z",
            "prospect": {"anonymous_id": "v-1", "email": "ana@acme.example"},
            "properties": {"form": "newsletter"}}
    handle(rules, table, index, "anon:v-1", event_message(visit))
    handle(rules, table, index, "ana@acme.example", event_message(form))
    assert table["ana@acme.example"]["awaiting"] == "anon:v-1"
    claim: Message = {"kind": "claim", "into": "ana@acme.example"}
    handle(rules, table, index, "anon:v-1", claim)
    [(_, answer)] = table["anon:v-1"]["forwards"]
    handle(rules, table, index, "anon:v-1", claim)  # redelivered: the state is gone already
    [(_, repeated)] = table["anon:v-1"]["forwards"]
    handle(rules, table, index, "ana@acme.example", dict(answer))  # type: ignore[arg-type]
    merged = table["ana@acme.example"]["state"]
    assert merged is not None and merged["behavior"] == 6
    handle(rules, table, index, "ana@acme.example", dict(repeated))  # type: ignore[arg-type]
    handle(rules, table, index, "ana@acme.example", dict(answer))  # type: ignore[arg-type]
    assert table["ana@acme.example"]["state"] == merged
    later = {**visit, "id": "v2", "occurred_at": "2026-01-06T09:00:00Z"}
    handle(rules, table, index, "anon:v-1", event_message(later))
    assert [target for target, _ in table["anon:v-1"]["forwards"]] == ["ana@acme.example"]


def test_work_done_again_after_a_crash_changes_nothing_however_many_events_it_spans() -> None:
    # After a crash, a busy prospect can have more events since the last commit than the
    # engine remembers ids for: the entry's offsets must recognise them all.
    rules = default_rules()
    table: dict[str, Entry] = {}
    index = DueIndex()
    count = REMEMBERED_EVENT_IDS + 26  # 90 opens at 1 point: below the bound of 100
    opens = [event_message({
        "id": f"o{i}", "type": "email.open",
        "occurred_at": f"2026-01-05T{9 + i // 60:02d}:{i % 60:02d}:00Z",
        "prospect": {"email": "ana@acme.example"}, "properties": {"campaign_id": "c1"},
    }, ("raw.canonical/0", 100 + i)) for i in range(count)]
    for offset, message in enumerate(opens):
        handle(rules, table, index, "ana@acme.example", message, offset)
    done = table["ana@acme.example"]
    assert done["state"] is not None and done["state"]["behavior"] == count
    # `events` read again from before the first open: the same messages at the same offsets
    for offset, message in enumerate(opens):
        handle(rules, table, index, "ana@acme.example", message, offset)
    assert table["ana@acme.example"] is done  # not even written again: nothing to publish
    # the raw records mapped again: copies of the events, at new offsets
    for offset, message in enumerate(opens, start=count):
        handle(rules, table, index, "ana@acme.example", message, offset)
    assert table["ana@acme.example"]["state"] == done["state"]
    assert table["ana@acme.example"]["decisions"] == done["decisions"]
    # a new record from the same raw partition still counts
    later = event_message({**opens[0]["event"], "id": "o-new"}, ("raw.canonical/0", 100 + count))
    handle(rules, table, index, "ana@acme.example", later, 2 * count)
    state = table["ana@acme.example"]["state"]
    assert state is not None and state["behavior"] == count + 1


def test_a_forward_published_again_after_a_crash_is_recognised_by_its_changelog_position(
) -> None:
    rules = default_rules()
    table: dict[str, Entry] = {}
    index = DueIndex()
    ana, visitor = "ana@acme.example", "anon:v-1"
    visit = {"id": "v1", "type": "web.page_view", "occurred_at": "2026-01-05T09:00:00Z",
             "prospect": {"anonymous_id": "v-1"},
             "properties": {"url": "https://acme.example/pricing", "visit_id": "s1"}}
    form = {"id": "f1", "type": "form.submitted", "occurred_at": "2026-01-05T09:05:00Z",
            "prospect": {"anonymous_id": "v-1", "email": ana}, "properties": {"form": "x"}}
    handle(rules, table, index, visitor, event_message(visit))
    handle(rules, table, index, ana, event_message(form))
    handle(rules, table, index, visitor, {"kind": "claim", "into": ana})
    [(_, answer)] = table[visitor]["forwards"]
    handle(rules, table, index, ana, answer)
    # the visitor browses on anonymously: the event is forwarded to ana through the outbox
    later = {**visit, "id": "v2", "occurred_at": "2026-01-06T09:00:00Z",
             "properties": {"url": "https://acme.example/blog", "visit_id": "s2"}}
    handle(rules, table, index, visitor, event_message(later))
    [(kind, target, forward)] = outbox(table[visitor], ("changelog/1", 40))
    assert (kind, target, forward["origin"]) == ("forward", ana, ("changelog/1", [40, 0]))
    handle(rules, table, index, ana, forward)
    for i in range(REMEMBERED_EVENT_IDS + 6):  # enough for the engine to forget "v2"
        handle(rules, table, index, ana, event_message({
            "id": f"o{i}", "type": "email.open", "occurred_at": "2026-01-07T09:00:00Z",
            "prospect": {"email": ana}, "properties": {"campaign_id": "c1"}}))
    done = table[ana]
    handle(rules, table, index, ana, forward)  # the outbox crashed before its commit
    assert table[ana]["state"] == done["state"]  # v2's page view is not scored again
    assert table[ana] is done  # nor anything written, so nothing is published again


@pytest.fixture
def example_lines() -> list[bytes]:
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "examples" / "events.jsonl"
    return [line for line in path.read_bytes().splitlines() if line.strip()]



def test_a_stored_entry_that_cannot_be_read_is_left_out_of_the_index_not_fatal() -> None:
    """A changelog record that is JSON but no entry of ours must not stop a worker from
    taking its partition (at every restart, as it is restored again)."""
    rules = default_rules()
    table = Table({}, None)
    index = DueIndex()
    event = Event.model_validate(orjson.loads(page_view_line("e1", "ok@acme.example")))
    handle(rules, table, index, "ok@acme.example", event_message(event.model_dump(mode="json")))
    [(_, good)] = table.take_changes()
    table.restore("ok@acme.example", good, 0)
    table.restore("bad@acme.example", b'{"state": 5}', 1)
    rebuilt, failed = rebuild_index(rules, table, list(table))
    assert [key for key, _ in failed] == ["bad@acme.example"]
    assert len(rebuilt) == 1  # the readable prospect is due for its decay


def page_view_line(event_id: str, email: str) -> bytes:
    return orjson.dumps({
        "id": event_id, "type": "web.page_view", "occurred_at": "2026-03-02T10:00:00Z",
        "prospect": {"email": email},
        "properties": {"url": "https://acme.example/pricing", "visit_id": "s1"}})
