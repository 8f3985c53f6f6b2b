"""What `/healthz` and `/readyz` answer: the processor's own account of itself.

An orchestrator restarts a worker that is not healthy and sends traffic only to one that is
ready, so each answer must be true exactly when it should:
- healthy: the processor's loop came round recently (it polls at least every few hundred
  milliseconds; a loop stuck on a record or waiting for acknowledgements stops). Only that:
  a restart cures a stuck loop, but not a broker outage, and a liveness probe that failed
  while the broker is away would restart every worker that is waiting for it;
- ready: healthy, a member of its consumer group, the broker answers a metadata request,
  and every table it owns is restored (a worker restoring a large table is alive but not
  yet scoring).
The processor writes these fields (through its rebalance listener: public API only); the web
server asks the broker, then calls `status` with the time and the answer passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Health:
    #: Monotonic time of the processor loop's last turn (None: not started yet).
    polled_at: float | None = None
    #: Whether the consumer holds an assignment from its group (between an assignment and
    #: the next revocation).
    member: bool = False
    #: Partitions whose tables are being restored; None until the first assignment.
    restoring: int | None = None
    #: What the probes' answers list though it changes neither (a Redis that does not
    #: persist routing's state), by topic; other stages write them.
    warnings: dict[str, str] = field(default_factory=dict)


def status(
    health: Health, now: float, stall_seconds: float, broker_answers: bool
) -> tuple[bool, bool, list[str]]:
    """(healthy, ready, what is wrong) at monotonic time `now`; the loop counts as stalled
    once it has not turned for `stall_seconds`."""
    problems = []
    if health.polled_at is None:
        problems.append("the processor has not polled yet")
    elif now - health.polled_at > stall_seconds:
        problems.append(f"the processor has not polled for {now - health.polled_at:.0f} s")
    healthy = not problems
    if not health.member:
        problems.append("not a member of the consumer group")
    if not broker_answers:
        problems.append("the broker does not answer")
    if health.restoring is None:
        problems.append("no partitions assigned yet")
    elif health.restoring:
        problems.append(f"restoring the tables of {health.restoring} partitions")
    return healthy, not problems, problems
