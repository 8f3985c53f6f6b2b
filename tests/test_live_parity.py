"""Live on Kafka decides exactly what `leadscore replay` decides, through crashes and failover.

Each test sends a file of canonical events to a real worker (or two), reads
`<prefix>decisions` back and compares it, prospect by prospect, with replay of the same file.
The decay timer is off so the comparison is exact (replay runs no decay after the last event
either; the timer is tested on its own below).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from leadscore.events import Event
from leadscore.infra.broker import Broker
from leadscore.infra.sample_events import generate
from leadscore.settings import Settings
from scoring_rules import ProspectState, RuleSet, load_rules, replay_lines
from streams.send import send_file
from streams.sources import discover_sources
from streams.topics import topics_of
from tests.live import (
    Worker,
    live_settings,
    reading,
    running_worker,
    wait_for,
    wait_for_records,
)

pytestmark = pytest.mark.kafka

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "events.jsonl"
Decisions = dict[str, list[dict[str, Any]]]


def by_prospect(decisions: list[dict[str, Any]]) -> Decisions:
    """Each prospect's decisions in order, an exact repeat (an at-least-once redelivery of
    the publisher) counted once."""
    grouped: Decisions = defaultdict(list)
    seen: set[bytes] = set()
    for decision in decisions:
        fingerprint = orjson.dumps(decision, option=orjson.OPT_SORT_KEYS)
        if fingerprint not in seen:
            seen.add(fingerprint)
            grouped[decision["prospect"]].append(decision)
    return dict(grouped)


def replay_of(rules: RuleSet, path: Path, now: datetime | None = None) -> tuple[
        Decisions, dict[str, dict[str, Any]]]:
    """Replay's decisions (without rejections: live sends those to the dead letters) and
    final state summaries; with no `now`, no decay runs after the last event."""
    lines = path.read_bytes().splitlines()
    first = min(Event.model_validate_json(line).occurred_at for line in lines
                if _is_event(line))
    items = list(replay_lines(rules, lines, now=now or first))
    end = items.pop()
    decisions = [d for d in items if isinstance(d, dict) and d["type"] != "event.rejected"]
    states = {key: state.summary(rules.min_score, rules.max_score)
              for key, state in end.states.items()}  # type: ignore[union-attr]
    return by_prospect(decisions), states


def _is_event(line: bytes) -> bool:
    try:
        Event.model_validate_json(line)
    except ValueError:
        return False
    return True


def live_states(settings: Settings, rules: RuleSet) -> dict[str, dict[str, Any]]:
    """The prospects table as its changelog holds it: the last entry per key."""
    from kafka import KafkaConsumer, TopicPartition

    topic = topics_of(settings).changelog
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=2000)
    try:
        consumer.assign([TopicPartition(topic, p)
                         for p in consumer.partitions_for_topic(topic) or ()])
        consumer.seek_to_beginning()
        last = {r.key.decode(): orjson.loads(r.value) for r in consumer if r.value}
    finally:
        consumer.close()
    return {key: ProspectState.from_dict(entry["state"]).summary(
        rules.min_score, rules.max_score) for key, entry in last.items() if entry["state"]}


def send(settings: Settings, path: Path) -> None:
    report = send_file(discover_sources()["canonical"], path, topics_of(settings).raw["canonical"],
                       settings.kafka_bootstrap_servers, settings.message_max_bytes)
    assert report.sent > 0


@contextlib.contextmanager
def sending(settings: Settings, path: Path, chunks: int = 20) -> Iterator[None]:
    """Send `path` in `chunks` parts, a tenth of a second apart, from a thread, and wait for
    the last on exit: a worker killed meanwhile is always in the middle of the stream (sent
    whole, the stream was done before a kill could land once the worker got faster)."""
    lines = path.read_bytes().splitlines(keepends=True)
    size = -(-len(lines) // chunks)
    parts = []
    for number in range(0, len(lines), size):
        part = path.with_name(f"{path.stem}-{number}.jsonl")
        part.write_bytes(b"".join(lines[number:number + size]))
        parts.append(part)

    def send_all() -> None:
        for part in parts:
            send(settings, part)
            time.sleep(0.1)

    sender = threading.Thread(target=send_all)
    sender.start()
    try:
        yield
    finally:
        sender.join()


def wait_for_decisions(settings: Settings, expected: Decisions, worker: Worker) -> Decisions:
    count = sum(len(items) for items in expected.values())
    topic = topics_of(settings).decisions
    return by_prospect(wait_for_records(settings.kafka_bootstrap_servers, topic, count, 180,
                                        worker, distinct=True))


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("events") / "generated.jsonl"
    path.write_bytes(b"\n".join(generate(10_000, 1_000, seed=11)) + b"\n")
    return path


@dataclass
class Case:
    """An isolated pipeline's settings, and what replay decides for the events it gets."""

    settings: Settings
    rules: RuleSet
    expected: Decisions
    states: dict[str, dict[str, Any]]

    @classmethod
    def of(cls, settings: Settings, path: Path, now: datetime | None = None) -> Case:
        rules = load_rules(settings.rules_path)
        return cls(settings, rules, *replay_of(rules, path, now))

    @property
    def total(self) -> int:
        return sum(len(items) for items in self.expected.values())


@pytest.mark.parametrize(("name", "store"), [
    ("example", "memory://"), ("example", "rocksdb://"), ("generated", "memory://")])
def test_live_decisions_equal_replay(
    broker: Broker, unique: str, tmp_path: Path, generated: Path, name: str, store: str
) -> None:
    path = EXAMPLES if name == "example" else generated
    case = Case.of(live_settings(broker, unique, tmp_path, table_store=store), path)
    settings, expected = case.settings, case.expected
    with running_worker(settings, tmp_path / "worker.log") as worker:
        send(settings, path)
        assert wait_for_decisions(settings, expected, worker) == expected
        assert live_states(settings, case.rules) == case.states


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_a_killed_worker_restarts_with_nothing_lost(
    broker: Broker, unique: str, tmp_path: Path, generated: Path, store: str
) -> None:
    case = Case.of(live_settings(broker, unique, tmp_path, table_store=store), generated)
    settings = case.settings
    with running_worker(settings, tmp_path / "first.log") as worker, \
            sending(settings, generated):
        _kill_when(settings, worker, case.total)
    with running_worker(settings, tmp_path / "second.log") as worker:
        assert wait_for_decisions(settings, case.expected, worker) == case.expected
        assert live_states(settings, case.rules) == case.states


def test_two_workers_share_the_work_and_one_takes_over_when_the_other_dies(
    broker: Broker, unique: str, tmp_path: Path, generated: Path
) -> None:
    case = Case.of(live_settings(broker, unique, tmp_path), generated)
    settings = case.settings
    other = settings.model_copy(update={"data_dir": tmp_path / "data-b"})
    with running_worker(settings, tmp_path / "a.log") as first, \
            running_worker(other, tmp_path / "b.log") as second:
        wait_for(lambda: _share(first, second, settings.topic_partitions), 60,
                 lambda: "the two workers did not split the partitions between them")
        with sending(settings, generated):
            _kill_when(settings, first, case.total)
        assert wait_for_decisions(settings, case.expected, second) == case.expected
    assert live_states(settings, case.rules) == case.states


def test_the_decay_timer_publishes_due_decays_as_replay_computes_them(
    broker: Broker, unique: str, tmp_path: Path
) -> None:
    # Prospects last active 100 days ago, at noon: decays fall due at 30, 60 and 90 days,
    # none of them near "now", so the worker's clock and replay's agree on what is due.
    start = (datetime.now(UTC) - timedelta(days=100)).replace(hour=12, minute=0, second=0)
    lines = [orjson.dumps({
        "id": f"d{i}", "type": "demo.watched", "occurred_at": start.isoformat(),
        "prospect": {"email": f"quiet{i}@acme.example"}, "properties": {"video_id": "tour"},
    }) for i in range(20)]
    path = tmp_path / "quiet.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    settings = live_settings(broker, unique, tmp_path, decay_tick_seconds=0.5,
                             decay_idle_seconds=2)
    case = Case.of(settings, path, now=datetime.now(UTC))
    assert all(d[-1]["rule"] == "decay-30-or-less" for d in case.expected.values())
    with running_worker(settings, tmp_path / "worker.log") as worker:
        send(settings, path)
        assert wait_for_decisions(settings, case.expected, worker) == case.expected
    assert live_states(settings, case.rules) == case.states


def _kill_when(settings: Settings, worker: Worker, total: int) -> None:
    """SIGKILL the worker (no chance to flush or commit) once a fiftieth of `total`
    decisions are out (a tenth was too late on a quiet machine: the workers had published
    everything by the time the kill landed); the test is void if they got to publish all."""
    topic = topics_of(settings).decisions
    first = max(1, total // 50)
    with reading(settings.kafka_bootstrap_servers, topic) as reader:
        wait_for(lambda: reader.poll() >= first, 120,
                 lambda: f"fewer than {first} decisions; log:\n{worker.log()[-3000:]}")
        os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait()
        published = reader.poll()
        while reader.poll(timeout_ms=1000) > published:
            published = len(reader.records)
        assert published < total, (
            "the worker finished before it was killed; the test proves nothing")


def _share(first: Worker, second: Worker, partitions: int) -> bool:
    """Whether the workers' latest assignments split the events partitions between them."""
    owned = [_assigned(first), _assigned(second)]
    return all(owned) and sorted(owned[0] + owned[1]) == list(range(partitions))


def _assigned(worker: Worker) -> list[int]:
    latest: list[int] = []
    for line in worker.log().splitlines():
        if '"partitions assigned"' in line:
            latest = orjson.loads(line)["partitions"]
    return latest
