"""Restoring a table from its changelog: what a worker pays when it takes a partition over.

One changelog partition is filled with `--prospects` entries as the worker writes them
(`encode_entry` of states made by replaying generated events, each under its own key). Then,
timed: a restore into an empty memory table (a worker that starts), into an empty RocksDB
table (a new worker, or one that lost its state directory), and into a RocksDB table that
already holds all but the last 1 % (a restart: only the tail is read). Also printed: the
changelog's bytes per prospect, and the calibration loop.

Run: `python -m bench.restore [--prospects 100000 1000000]` (starts its own broker; or set
KAFKA_BOOTSTRAP_SERVERS).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaProducer

from bench.pipeline import broker
from bench.replay import calibration
from leadscore.infra.sample_events import generate
from leadscore.kafka.produce import Record, produce
from leadscore.kafka.topics import ensure_topics
from leadscore.settings import Settings
from scoring_rules import ReplayEnd, load_rules, replay_lines
from streams.scoring import Entry, encode_entry
from streams.store import Table, open_table, restore_tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prospects", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args(argv)
    values = _entries()
    print(f"calibration: sum(range(1000)) {calibration():.2f} µs", flush=True)
    print("\n| prospects | changelog bytes per prospect | memory, empty | RocksDB, empty "
          "| RocksDB, last 1 % |")
    print("|---:|---:|---:|---:|---:|")
    with broker() as bootstrap, tempfile.TemporaryDirectory() as tmp:
        for count in args.prospects:
            settings = Settings(kafka_bootstrap_servers=bootstrap, app_id=f"restore-{count}",
                                data_dir=Path(tmp) / str(count), table_store="rocksdb://")
            changelog = f"bench-restore-{time.time_ns()}"
            ensure_topics(bootstrap, [], 1, compacted=[changelog])
            size = asyncio.run(_fill(settings, changelog, values, count))
            memory = _timed(settings, changelog, Table({}, None))
            empty = _timed(settings, changelog, open_table(settings, 0))
            _keep_all_but_the_tail(settings, count)
            tail = _timed(settings, changelog, open_table(settings, 0))
            print(f"| {count:,} | {size / count:,.0f} | {_rate(memory, count)} "
                  f"| {_rate(empty, count)} | {tail:.2f} s |", flush=True)
            shutil.rmtree(settings.data_dir, ignore_errors=True)
    return 0


def _entries() -> list[bytes]:
    """Changelog values of 20,000 prospects, from replaying generated events."""
    rules = load_rules(Settings().rules_path)
    lines = list(generate(100_000, 20_000, seed=7))
    end = next(item for item in replay_lines(rules, lines) if isinstance(item, ReplayEnd))
    entries: list[Entry] = [
        {"state": state.to_dict(), "links": [], "moved_to": None, "awaiting": None,
         "pending": [], "decisions": [], "forwards": [], "offset": n, "origins": {},
         "received": None}
        for n, state in enumerate(end.states.values())]
    return [encode_entry(entry) for entry in entries]


async def _fill(settings: Settings, changelog: str, values: list[bytes], count: int) -> int:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                max_batch_size=settings.message_max_bytes)
    await producer.start()
    size = 0
    try:
        for start in range(0, count, 20_000):
            records = [Record(changelog, f"p{n}@bench.example".encode(), values[n % len(values)],
                              partition=0) for n in range(start, min(count, start + 20_000))]
            size += sum(len(r.key or b"") + len(r.value) for r in records)
            await produce(producer, records)
    finally:
        await producer.stop()
    return size


def _timed(settings: Settings, changelog: str, table: Table) -> float:
    started = time.perf_counter()
    asyncio.run(restore_tables(settings, changelog, {0: table}))
    elapsed = time.perf_counter() - started
    table.close()
    return elapsed


def _keep_all_but_the_tail(settings: Settings, count: int) -> None:
    """Make the RocksDB table's offset file say it holds all but the last 1 %."""
    offset_file = Path(settings.data_dir) / settings.app_id / "prospects-0" / "changelog.offset"
    offset_file.write_text(str(count - count // 100 - 1))


def _rate(seconds: float, count: int) -> str:
    return f"{seconds:.2f} s ({count / seconds:,.0f}/s)"


if __name__ == "__main__":
    sys.exit(main())
