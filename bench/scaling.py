"""Scaling out on the real broker: one worker against two on the same partitions.

1. Throughput: a raw topic pre-loaded with `--events` generated events, consumed by one
   worker, then (a fresh copy) by two; events/s together, and each worker's CPU time per
   event (user + system), which is the figure a projection rests on: on this machine the
   workers, the broker and the bench share 2 cores.
2. The pause of a rebalance: one worker takes `--rate` events/s; a second joins at 10 s and
   leaves cleanly (SIGTERM) at 25 s. The worst event -> decision latency in the 8 s after
   each, against the steady p99 before the join.

Run: `python -m bench.scaling` (starts its own broker; or set KAFKA_BOOTSTRAP_SERVERS).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from subprocess import Popen

from app.worker import spawn_worker
from bench.pipeline import broker, count_decisions, cpu_seconds, isolated, paced, preload
from bench.replay import calibration
from leadscore.infra.processes import free_port, stop
from leadscore.infra.sample_events import generate
from leadscore.kafka.topics import topic_size
from leadscore.settings import Settings
from streams.topics import topics_of

JOIN_AT, LEAVE_AT, WINDOW = 10.0, 25.0, 8.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--rate", type=int, default=1_000)
    args = parser.parse_args(argv)
    lines = list(generate(args.events, args.events // 5, seed=5))
    expected = count_decisions(lines)
    print(f"calibration: sum(range(1000)) {calibration():.2f} µs", flush=True)
    with broker() as bootstrap, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        print("\n| workers | events/s together | CPU per event, each worker |")
        print("|---:|---:|---|")
        for count in (1, 2):
            rate, cpus = throughput(bootstrap, work, lines, expected, count)
            print(f"| {count} | {rate:,.0f} | "
                  f"{', '.join(f'{cpu:.1f} µs' for cpu in cpus)} |", flush=True)
        steady, joined, left = rebalance(bootstrap, work, args.rate)
    print(f"\nAt {args.rate:,} events/s: steady p99 {steady:.0f} ms; worst latency in the "
          f"{WINDOW:.0f} s after a second worker joins {joined:.0f} ms, after it leaves "
          f"(SIGTERM) {left:.0f} ms")
    return 0


@contextlib.contextmanager
def workers(settings: Settings, work: Path, count: int) -> Iterator[list[Popen[bytes]]]:
    processes = [_start(settings, work, n) for n in range(count)]
    try:
        yield processes
    finally:
        for process in processes:
            stop(process)


def _start(settings: Settings, work: Path, number: int) -> Popen[bytes]:
    """A worker of the deployment `settings`, with its own port and state directory."""
    own = settings.model_copy(update={"web_port": free_port(),
                                      "data_dir": work / f"{settings.app_id}-{number}"})
    return spawn_worker(own, work / f"{settings.app_id}-{number}.log")


def throughput(
    bootstrap: str, work: Path, lines: list[bytes], expected: int, count: int
) -> tuple[float, list[float]]:
    settings = isolated(f"scale{count}", bootstrap, work, "throughput")
    asyncio.run(preload(settings, lines))
    decisions = topics_of(settings).decisions
    with workers(settings, work, count) as processes:
        while topic_size(bootstrap, decisions) == 0:
            time.sleep(0.05)
        started = time.perf_counter()
        cpu = [cpu_seconds(p.pid) for p in processes]
        while topic_size(bootstrap, decisions) < expected:
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        used = [cpu_seconds(p.pid) - before for p, before in zip(processes, cpu, strict=True)]
    # Each worker's CPU per event it handled: the events split about evenly between them.
    return len(lines) / elapsed, [seconds / (len(lines) / count) * 1e6 for seconds in used]


def rebalance(bootstrap: str, work: Path, rate: int) -> tuple[float, float, float]:
    settings = isolated("rebalance", bootstrap, work, "latency")
    seconds = int(LEAVE_AT + WINDOW + 2)
    lines = list(generate(rate * seconds, max(rate * seconds // 5, 1), seed=9))
    with workers(settings, work, 1):
        second: list[Popen[bytes]] = []
        join = threading.Timer(JOIN_AT, lambda: second.append(_start(settings, work, 1)))
        leave = threading.Timer(LEAVE_AT, lambda: stop(second[0]))
        def start_clock() -> None:
            join.start()
            leave.start()

        try:
            latencies = asyncio.run(paced(settings, lines, rate, on_start=start_clock))
        finally:
            join.cancel()
            leave.cancel()
            for process in second:
                stop(process)
    def window(start: float, end: float) -> list[float]:
        return [latency * 1e3 for sent, latency in latencies if start <= sent < end]

    steady = sorted(window(2.0, JOIN_AT))
    return (steady[int(len(steady) * 0.99)], max(window(JOIN_AT, JOIN_AT + WINDOW)),
            max(window(LEAVE_AT, LEAVE_AT + WINDOW)))


if __name__ == "__main__":
    sys.exit(main())
