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
import random
import resource
import sys
import tempfile
import time
import timeit
import tracemalloc
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson

from leadscore.events import RejectedLine, parse_event
from leadscore.settings import DEFAULT_RULES_PATH
from scoring_rules import ProspectState, RuleSet, load_rules
from scoring_rules.replay import ReplayEnd, read_lines, replay_lines, write_decisions

START = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
DAYS = 180
SITE = "https://northwind.example"
PAGES = ["/", "/product/forecasting", "/product/pipeline", "/blog/q2-close", "/blog/revops",
         "/customers", "/docs/start", "/integrations/salesforce", "/about"]
TITLES = ["CEO", "VP Sales", "Director of Finance", "Sales Manager", "Analyst", "CFO",
          "Head of RevOps", "Engineer", "Vice President Marketing", "Consultant"]
#: (weight, event kind) of the mix; page views dominate as they do on a real site.
MIX = [(60, "page"), (14, "email.open"), (3, "email.click"), (3, "web.search"),
       (3, "content.downloaded"), (2, "demo.watched"), (2, "webinar.registered"),
       (1, "webinar.attended"), (3, "prospect.updated"), (1, "prospect.reviewed"),
       (1, "form.submitted")]


def generate(events: int, prospects: int, seed: int) -> Iterator[bytes]:
    """The event stream in time order, as JSON lines."""
    rng = random.Random(seed)
    kinds = [kind for weight, kind in MIX for _ in range(weight)]
    # Activity is skewed: a few prospects are very active, most are not.
    weights = [1.0 / (rank + 10) for rank in range(prospects)]
    owners = rng.choices(range(prospects), weights=weights, k=events)
    times = sorted(START + rng.random() * DAYS * 86_400 for _ in range(events))
    identify_at = {p: START + rng.random() * DAYS * 86_400 for p in range(0, prospects, 4)}
    previous = b""
    for number, (owner, t) in enumerate(zip(owners, times, strict=True)):
        if number and rng.random() < 0.005:
            yield previous  # an at-least-once redelivery
            continue
        if rng.random() < 0.0005:
            yield b'{"id": "broken", "type": "web.page_view", "occurred_at": "2026-01-01"}'
            continue
        kind = rng.choice(kinds)
        email = f"p{owner}@company{owner % 9973}.example"
        prospect: dict[str, str] = {"email": email}
        if owner in identify_at:
            anonymous = {"anonymous_id": f"v-{owner}"}
            if t < identify_at[owner]:
                prospect = anonymous  # not identified yet
                kind = "page"
            elif rng.random() < 0.3:
                prospect = {**prospect, **anonymous}
        properties = _properties(rng, kind, owner, t)
        event = {
            "id": f"e{number}", "type": "web.page_view" if kind == "page" else kind,
            "occurred_at": datetime.fromtimestamp(int(t), UTC).isoformat().replace(
                "+00:00", "Z"),
            "prospect": prospect, "properties": properties,
        }
        previous = orjson.dumps(event)
        yield previous


def _properties(rng: random.Random, kind: str, owner: int, t: float) -> dict[str, object]:
    if kind == "page":
        roll = rng.random()
        path = "/pricing" if roll < 0.06 else "/careers" if roll < 0.07 else rng.choice(PAGES)
        return {"url": SITE + path, "visit_id": f"s-{owner}-{int((t - START) // 86_400)}"}
    if kind in ("email.open", "email.click"):
        return {"campaign_id": f"c{rng.randrange(40)}", "url": SITE + "/blog/revops"}
    if kind == "web.search":
        return {"query": rng.choice(["northwind pricing", "revenue forecasting tool",
                                     "crm pipeline analytics", "northwind analytics reviews"])}
    if kind == "content.downloaded":
        return {"asset_id": f"a{rng.randrange(30)}", "category": rng.choice(
            ["thought_leadership", "analyst_review", "datasheet", "case_study"])}
    if kind == "prospect.updated":
        return {"title": rng.choice(TITLES), "lead_source": rng.choice(
            ["website", "trade_show", "partner"]), "offer": rng.choice(
            ["thought_leadership", "demo", "trial"]), "country": "US"}
    if kind == "prospect.reviewed":
        return {"approved": rng.random() < 0.7}
    if kind == "form.submitted":
        return {"form": rng.choice(["contact_me", "trial_request", "newsletter", "newsletter"])}
    return {"video_id": "tour", "webinar_id": f"w{rng.randrange(12)}"}


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
