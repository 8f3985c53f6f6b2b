"""Live decay with 1M prospects in state: the due-time index against a full scan.

A decay tick runs every second on every worker. This measures what one tick costs when
`due` prospects of 1M are due, using `streams.due_index.DueIndex`, against the naive tick
that scans every prospect's due time. Run: `python -m bench.decay_index`.
"""

from __future__ import annotations

import random
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

from streams.due_index import DueIndex

PROSPECTS = 1_000_000
START = datetime(2026, 1, 1, tzinfo=UTC)
SPREAD_SECONDS = 30 * 86_400


def main() -> None:
    rng = random.Random(7)
    due = {
        f"p{i}@example.com": START + timedelta(seconds=rng.randrange(SPREAD_SECONDS))
        for i in range(PROSPECTS)
    }
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    built = time.perf_counter()
    index = DueIndex()
    for key, when in due.items():
        index.schedule(key, when)
    built = time.perf_counter() - built
    index_bytes = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()

    print(f"index of {PROSPECTS:,} prospects: built in {built:.2f} s, "
          f"{index_bytes / PROSPECTS:.0f} bytes per prospect")
    print("| due in one tick | index tick | full-scan tick | scan / index |")
    print("|---:|---:|---:|---:|")
    now = START
    for window in (1, 60, 3_600):  # one tick covering 1 s, 1 min, 1 h of due times
        now += timedelta(seconds=window)
        scan_started = time.perf_counter()
        scanned = [key for key, when in due.items() if when <= now]
        scan = time.perf_counter() - scan_started
        for key in scanned:
            del due[key]
        tick_started = time.perf_counter()
        popped = index.pop_due(now)
        tick = time.perf_counter() - tick_started
        assert sorted(popped) == sorted(scanned), "index and scan disagree"
        print(f"| {len(popped):,} | {tick * 1e3:.3f} ms | {scan * 1e3:.1f} ms | "
              f"{scan / max(tick, 1e-9):,.0f}x |")


if __name__ == "__main__":
    main()
