"""Reading a hostile YAML file: an alias bomb refused within the reader's bounds.

Every file a user gives leadscore (rules, rosters, and each version read from a topic) is
read by `leadscore.yaml_files.parse_yaml`, which counts values with aliases expanded and
nesting depth as it composes. This times reading, and the peak memory of, the shipped
roster (the baseline) and alias bombs of growing expansion, in the same process. Before the
bounds, a 573-byte bomb of 10 million values took 19.7 s and 3.1 GB (peak RSS) in `roster
check`. Run: `python -m bench.yaml_bounds`.
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

from routing.roster import RosterError, roster_from_text

SHIPPED = Path(__file__).resolve().parent.parent / "routing" / "roster.yaml"


def bomb(levels: int) -> str:
    """A "billion laughs" roster: `levels` levels of nine aliases each, 9**levels values."""
    lines = ["regions:", "  l0: &l0 [ES, FR, DE, IT, PT, GB, IE, NL, BE]"]
    lines += [f"  l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]"
              for n in range(1, levels)]
    return "\n".join([*lines, f"teams: [{{id: emea, escalation: x, territory: "
                      f"{{regions: [l{levels - 1}]}}}}]",
                      "reps: [{id: x, name: X, email: x@x.example, role: MRR, team: emea}]", ""])


def measure(text: str) -> tuple[float, int, str]:
    """Seconds (best of five, untraced), peak bytes allocated (one traced run), and the
    outcome."""
    best, outcome = float("inf"), ""
    for _ in range(5):
        started = time.perf_counter()
        outcome = _read(text)
        best = min(best, time.perf_counter() - started)
    tracemalloc.start()
    _read(text)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return best, peak, outcome


def _read(text: str) -> str:
    try:
        roster_from_text("roster.yaml", text)
    except RosterError as error:
        return str(error.errors[0])[:60]
    return "read"


def main() -> None:
    base, base_peak, _ = measure(SHIPPED.read_text())
    print(f"| file | bytes | values expanded | read | peak memory | time / shipped roster "
          f"| outcome |\n|---|---:|---:|---:|---:|---:|---|\n| shipped roster "
          f"| {len(SHIPPED.read_bytes()):,} | - | {base * 1e3:.2f} ms "
          f"| {base_peak / 2**20:.2f} MiB | 1.0 | read |")
    for levels in (5, 6, 8, 9):
        text = bomb(levels)
        seconds, peak, outcome = measure(text)
        print(f"| alias bomb | {len(text.encode()):,} | {9 ** levels:,} | {seconds * 1e3:.2f} ms "
              f"| {peak / 2**20:.2f} MiB | {seconds / base:.1f} | {outcome} |")


if __name__ == "__main__":
    main()
