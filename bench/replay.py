"""Replay throughput: JSON lines in, decisions out, against a loop that only parses them.

Generates (deterministically, from a seed) a stream of 1M canonical events over 100k
prospects with a realistic mix: mostly page views grouped in daily visits, email opens,
searches, downloads, webinars, profile facts, a few hand-raisers; a quarter of the
prospects start as anonymous visitors and identify later; some events are delivered
twice and a few lines are bad. Then measures, in this one process and on one core:

- baseline: the parse-only loop (the same line reader replay uses, nothing else);
- replay: parse, score, decay, merge, and serialise every decision to JSON lines;
- memory per prospect of the final state, with tracemalloc.

Run: `python -m bench.replay [--events N] [--prospects N] [--seed N] [--repeat N] [--cpu N]`.

Absolute rates depend on the machine, so the script also prints how long a fixed pure-Python
loop takes here (`sum(range(1000))`, as `python -m timeit` measures it): figures from two
machines compare through it, and through the replay / parse-only ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import os
import platform
import resource
import sys
import tempfile
import time
import timeit
import tracemalloc
from collections import Counter
from pathlib import Path

import orjson

from leadscore.events import RejectedLine, parse_event
from leadscore.infra.sample_events import generate
from leadscore.settings import DEFAULT_RULES_PATH
from scoring_rules import ProspectState, RuleSet, load_rules
from scoring_rules.replay import ReplayEnd, read_lines, replay_lines, write_decisions


def parse_only(path: Path) -> tuple[float, int]:
    """The baseline: read and parse every line exactly as replay does, nothing else."""
    started = time.perf_counter()
    with path.open("rb") as lines:
        parsed = sum(1 for item in read_lines(lines) if not isinstance(item, RejectedLine))
    return time.perf_counter() - started, parsed


def replay_once(rules: RuleSet, path: Path) -> tuple[float, ReplayEnd, Counter[str], int]:
    """One replay end to end into memory: seconds, its end, decisions by type, bytes out."""
    sink = io.BytesIO()
    started = time.perf_counter()
    with path.open("rb") as lines:
        end, kinds = write_decisions(replay_lines(rules, lines), sink)
    return time.perf_counter() - started, end, kinds, sink.tell()


def pydantic_only(path: Path, limit: int) -> float:
    """Seconds per line of the canonical pydantic model alone, for reference."""
    with path.open("rb") as lines:
        sample = [line for _, line in zip(range(limit), lines, strict=False)]
    started = time.perf_counter()
    for line in sample:
        with contextlib.suppress(ValueError):
            parse_event(line)
    return (time.perf_counter() - started) / len(sample)


def state_bytes(states: dict[str, ProspectState]) -> int:
    """Bytes the states take once rebuilt from their stored form, as a live worker holds them."""
    stored = [orjson.dumps(state.to_dict()) for state in states.values()]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    rebuilt = {state.key: state for state in
               (ProspectState.from_dict(orjson.loads(data)) for data in stored)}
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert len(rebuilt) == len(states)
    return used


def cpu_name() -> str:
    """The processor, as Linux names it (a VM's model name alone can hide its generation)."""
    try:
        first = Path("/proc/cpuinfo").read_text().split("\n\n")[0]
    except OSError:
        return platform.machine()
    fields = {key.strip(): value.strip() for key, value in
              (line.split(":", 1) for line in first.splitlines() if ":" in line)}
    return (f"{fields.get('model name', platform.machine())} (family "
            f"{fields.get('cpu family', '?')}, model {fields.get('model', '?')})")


def calibration() -> float:
    """Microseconds for `sum(range(1000))`, best of 5 (what `python -m timeit` reports)."""
    timer = timeit.Timer("sum(range(1000))")
    loops, _ = timer.autorange()
    return min(timer.repeat(5, loops)) / loops * 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--prospects", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of both loops; the best of each is reported")
    parser.add_argument("--cpu", type=int, help="pin the process to this one CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    rules = load_rules(DEFAULT_RULES_PATH)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "events.jsonl"
        started = time.perf_counter()
        with path.open("wb") as out:
            for line in generate(args.events, args.prospects, args.seed):
                out.write(line + b"\n")
        print(f"generated {args.events:,} events over {args.prospects:,} prospects "
              f"(seed {args.seed}, {path.stat().st_size / 1e6:.0f} MB) in "
              f"{time.perf_counter() - started:.1f} s", file=sys.stderr)

        # Best of `--repeat` rounds, as `timeit` reports: on a shared machine the slower
        # rounds measure the neighbours (this loop is bound by memory, not by the CPU).
        baselines, elapsed_runs = [], []
        for _ in range(args.repeat):
            seconds, parsed = parse_only(path)
            baselines.append(seconds)
            end = ReplayEnd({})  # frees the last round's states before this round
            seconds, end, kinds, written = replay_once(rules, path)
            elapsed_runs.append(seconds)
        print("rounds (parse only / replay, s): " + ", ".join(
            f"{b:.2f} / {r:.2f}" for b, r in zip(baselines, elapsed_runs, strict=True)),
            file=sys.stderr)
        baseline, elapsed = min(baselines), min(elapsed_runs)
        per_pydantic = pydantic_only(path, 100_000)
    lines_total = end.events + end.rejected
    memory = state_bytes(end.states)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pinned = f"pinned to CPU {args.cpu}" if args.cpu is not None else "not pinned"
    print(f"machine: {cpu_name()}, Python "
          f"{platform.python_version()}, {pinned}; sum(range(1000)) takes "
          f"{calibration():.2f} µs")
    print(f"events: {lines_total:,} lines ({end.events:,} valid, {end.rejected:,} rejected), "
          f"{len(end.states):,} prospects; decisions: {sum(kinds.values()):,} "
          f"({', '.join(f'{k} {v:,}' for k, v in sorted(kinds.items()))}); "
          f"{written / 1e6:.0f} MB of JSON out; rules {rules.version}")
    print("| loop | seconds | events/s | µs/event |")
    print("|---|---:|---:|---:|")
    for name, seconds in (("parse only (baseline)", baseline), ("replay end to end", elapsed)):
        print(f"| {name} | {seconds:.2f} | {lines_total / seconds:,.0f} | "
              f"{seconds / lines_total * 1e6:.2f} |")
    print(f"| pydantic `Event` parse alone (reference) | | {1 / per_pydantic:,.0f} | "
          f"{per_pydantic * 1e6:.2f} |")
    print(f"replay / parse-only time ratio: {elapsed / baseline:.2f}x "
          f"(scoring costs {(elapsed - baseline) / lines_total * 1e6:.2f} µs/event on top of "
          f"parsing; {parsed:,} events parsed by the baseline)")
    print(f"state: {memory / len(end.states):,.0f} bytes per prospect (tracemalloc, "
          f"{memory / 1e6:.0f} MB for {len(end.states):,}); peak RSS {rss:,.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
