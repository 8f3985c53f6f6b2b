"""Live pipeline on Apache Kafka: throughput and event -> decision latency.

Two measurements, in the same run, for one `leadscore worker` and the two references of
`bench.baseline_loop`: the baseline (a plain loop on the same core, none of the durability)
and the ceiling (the worker's Kafka reads and writes with no scoring), so the figure to
compare across machines is the worker's ratio to the ceiling:

1. throughput: a raw topic pre-loaded with `--events` generated events; events/s from the
   first decision to the last expected one;
2. latency: once a warm-up event has been decided, events produced at a steady `--rate` for
   `--seconds`; for each event, the time from its produce call to the arrival of its first
   decision; p50 and p99.

Run: `python -m bench.pipeline` (starts its own broker; or set KAFKA_BOOTSTRAP_SERVERS).
The calibration loop (`sum(range(1000))`, as `bench.replay` prints it) says how fast this
machine ran Python at the time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from subprocess import Popen

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from app.worker import prepare_topics, spawn_worker, worker_env
from bench.baseline_loop import json_object
from bench.replay import calibration
from leadscore.decisions import EVENT_REJECTED
from leadscore.infra.kafka_apache import run_apache_kafka
from leadscore.infra.processes import free_port, spawn, stop
from leadscore.infra.sample_events import generate
from leadscore.kafka.topics import topic_size
from leadscore.settings import Settings
from scoring_rules import load_rules, replay_lines
from streams.topics import topics_of


@dataclass
class Result:
    events_per_second: float
    cpu_us_per_event: float
    p50_ms: float
    p99_ms: float


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000,
                        help="events pre-loaded for the throughput run (0 skips it)")
    parser.add_argument("--rate", type=int, default=2_000)
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args(argv)
    with broker() as bootstrap, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lines = list(generate(args.events, args.events // 5, seed=5)) if args.events else []
        expected = {"worker": count_decisions(lines) if lines else 0,
                    "ceiling": sum(json_object(line) is not None for line in lines)}
        expected["baseline"] = expected["worker"]
        print(f"{args.events:,} events -> {expected['worker']:,} decisions (replay)",
              flush=True)
        results = {}
        for name in ("worker", "baseline", "ceiling"):
            results[name] = Result(
                *(throughput(name, bootstrap, work, lines, expected[name]) if lines
                  else (0.0, 0.0)),
                *latency(name, bootstrap, work, args.rate, args.seconds),
            )
            print(f"{name}: {results[name]}", flush=True)
    print(f"\ncalibration: sum(range(1000)) {calibration():.2f} µs")
    print(f"\n| | events/s (pre-loaded topic) | CPU per event | p50 latency at {args.rate:,}/s "
          "| p99 latency |")
    print("|---|---:|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r.events_per_second:,.0f} | {r.cpu_us_per_event:.1f} µs "
              f"| {r.p50_ms:.1f} ms | {r.p99_ms:.1f} ms |")
    ceiling = results["ceiling"]
    for name in ("worker", "baseline"):
        r = results[name]
        print(f"| {name} / ceiling | {r.events_per_second / max(ceiling.events_per_second, 1):.2f}"
              f" | {r.cpu_us_per_event / max(ceiling.cpu_us_per_event, 0.001):.2f}"
              f" | {r.p50_ms / ceiling.p50_ms:.2f} | {r.p99_ms / ceiling.p99_ms:.2f} |")
    return 0


@contextlib.contextmanager
def broker() -> Iterator[str]:
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        return
    with run_apache_kafka() as started:
        print(f"broker: {started.version} at {started.bootstrap_servers}", flush=True)
        yield started.bootstrap_servers


def count_decisions(lines: list[bytes]) -> int:
    """How many decisions live should publish: replay's, minus rejections (dead letters),
    with no decay after the last event (the benchmark's workers run no decay timer)."""
    rules = load_rules(Settings().rules_path)
    items = replay_lines(rules, lines, now=_first_time(lines))
    return sum(isinstance(item, dict) and item["type"] != EVENT_REJECTED for item in items)


def _first_time(lines: list[bytes]) -> datetime:
    return datetime.fromisoformat(orjson.loads(lines[0])["occurred_at"])


@contextlib.contextmanager
def pipeline(name: str, settings: Settings, work: Path) -> Iterator[Popen[bytes]]:
    """The worker or the baseline loop for `settings`, stopped on exit."""
    log = work / f"{settings.app_id}.log"
    if name == "worker":
        process = spawn_worker(settings, log)
    else:
        process = spawn([sys.executable, "-m", "bench.baseline_loop", name], log,
                        env=worker_env(settings))
    try:
        yield process
    finally:
        stop(process)


def isolated(name: str, bootstrap: str, work: Path, phase: str) -> Settings:
    unique = f"bench-{name}-{phase}-{os.getpid()}"
    settings = Settings(
        kafka_bootstrap_servers=bootstrap, topic_prefix=f"{unique}.", app_id=unique,
        data_dir=work / unique, decay_tick_seconds=0, web_port=free_port(), log_level="warn",
    )
    prepare_topics(settings)
    return settings


def throughput(
    name: str, bootstrap: str, work: Path, lines: list[bytes], expected: int
) -> tuple[float, float]:
    """Events/s from the first decision to the last, and the process's CPU time per event
    meanwhile (µs): on a shared machine the second varies less, and says what a core buys."""
    settings = isolated(name, bootstrap, work, "throughput")
    asyncio.run(preload(settings, lines))
    decisions = topics_of(settings).decisions
    with pipeline(name, settings, work) as process:
        while topic_size(bootstrap, decisions) == 0:
            time.sleep(0.05)
        started, cpu = time.perf_counter(), cpu_seconds(process.pid)
        while topic_size(bootstrap, decisions) < expected:
            time.sleep(0.2)
        elapsed, cpu = time.perf_counter() - started, cpu_seconds(process.pid) - cpu
    return len(lines) / elapsed, cpu / len(lines) * 1e6


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a running process (Linux: /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def preload(settings: Settings, lines: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    try:
        topic = topics_of(settings).raw["canonical"]
        for start in range(0, len(lines), 5000):
            sends = [await producer.send(topic, value=line)
                     for line in lines[start:start + 5000]]
            await asyncio.gather(*sends)
    finally:
        await producer.stop()


def latency(name: str, bootstrap: str, work: Path, rate: int, seconds: int) -> tuple[float, float]:
    settings = isolated(name, bootstrap, work, "latency")
    lines = list(generate(rate * seconds, max(rate * seconds // 5, 1), seed=9))
    with pipeline(name, settings, work):
        latencies = sorted(latency for _, latency in asyncio.run(paced(settings, lines, rate)))
    return (latencies[len(latencies) // 2] * 1e3, latencies[int(len(latencies) * 0.99)] * 1e3)


async def paced(
    settings: Settings, lines: list[bytes], rate: int,
    on_start: Callable[[], object] | None = None,
) -> list[tuple[float, float]]:
    """Produce `lines` at `rate`/s; for each event id decided, (when it was sent, seconds
    from the start; its latency until its first decision). `on_start` is called as the
    first line is sent, once the pipeline has decided a warm-up event."""
    sent: dict[str, float] = {}
    seen: dict[str, float] = {}
    consumer = AIOKafkaConsumer(topics_of(settings).decisions,
                                bootstrap_servers=settings.kafka_bootstrap_servers,
                                auto_offset_reset="earliest", fetch_max_wait_ms=5)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=0)
    await consumer.start()
    await producer.start()
    await _warm_up(settings, producer, consumer)

    async def receive() -> None:
        async for record in consumer:
            event_id = orjson.loads(record.value).get("event_id")
            if event_id and event_id not in seen:
                seen[event_id] = time.perf_counter()

    receiver = asyncio.create_task(receive())
    topic = topics_of(settings).raw["canonical"]
    step = 0.01
    per_step = max(1, int(rate * step))
    started = time.perf_counter()
    if on_start is not None:
        on_start()
    for index in range(0, len(lines), per_step):
        for line in lines[index:index + per_step]:
            event_id = orjson.loads(line).get("id")
            if event_id:
                sent.setdefault(event_id, time.perf_counter())
            await producer.send(topic, value=line)
        pause = started + (index // per_step + 1) * step - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
    await asyncio.sleep(5)
    receiver.cancel()
    await producer.stop()
    await consumer.stop()
    return [(at - started, seen[event_id] - at) for event_id, at in sent.items()
            if event_id in seen]


async def _warm_up(
    settings: Settings, producer: AIOKafkaProducer, consumer: AIOKafkaConsumer
) -> None:
    """Send one event and wait for its decision: the clock starts once the pipeline is
    running (partitions assigned, tables restored), not while it is still starting."""
    probe = {"id": "warm-up", "type": "demo.watched", "occurred_at": "2026-01-01T00:00:00Z",
             "prospect": {"email": "warm-up@bench.example"}, "properties": {"video_id": "v"}}
    await producer.send_and_wait(topics_of(settings).raw["canonical"], value=orjson.dumps(probe))
    async for record in consumer:
        if orjson.loads(record.value).get("event_id") == "warm-up":
            return


if __name__ == "__main__":
    sys.exit(main())
