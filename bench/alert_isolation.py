"""Alert isolation on the real servers: a healthy receiver's latency while others hang or fail.

One `leadscore worker` on Apache Kafka and a local Redis routes contact-me forms to two reps,
`good` (Spain) and `slow` (France), each alerted on four webhook channels: `hook`, `stuck0`,
`stuck1` and `broken`, each with a local receiver. In the same run, two phases of `--leads`
forms for each rep, posted at `--rate` a second:
- calm: every receiver answers 200;
- trouble: `stuck0` and `stuck1` never answer, `broken` answers 500, and `hook` never
  answers rep slow's alerts.
For rep good's alerts on `hook`: the time from the form's arrival at ingest to the alert's
arrival at the receiver; p50, p99, max in each phase, and the ratios.

Run: `python -m bench.alert_isolation` (starts its own broker and Redis; or set
KAFKA_BOOTSTRAP_SERVERS and REDIS_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import tempfile
import time
from pathlib import Path

import aiohttp

from app.worker import spawn_worker
from bench.pipeline import broker, isolated
from bench.speed_to_lead import _ready
from leadscore.infra.processes import stop
from leadscore.infra.receivers import (
    EVERY,
    SECRET,
    Webhook,
    contact_form,
    isolation_roster,
    webhook_receiver,
)
from leadscore.infra.redis_local import run_redis


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=200, help="forms per rep and phase")
    parser.add_argument("--rate", type=float, default=20.0, help="forms a second")
    args = parser.parse_args(argv)
    os.environ["TEST_WEBHOOK_SECRET"] = SECRET
    with broker() as bootstrap, run_redis() as redis_url, contextlib.ExitStack() as stack, \
            tempfile.TemporaryDirectory() as tmp:
        hook, stuck0, stuck1, broken = (stack.enter_context(webhook_receiver(SECRET))
                                        for _ in range(4))
        work = Path(tmp)
        path = work / "roster.yaml"
        path.write_text(isolation_roster({"hook": ("webhook", hook),
                                          "stuck0": ("webhook", stuck0),
                                          "stuck1": ("webhook", stuck1),
                                          "broken": ("webhook", broken)}))
        settings = isolated("worker", bootstrap, work, "isolation").model_copy(
            update={"roster_path": path, "redis_url": redis_url})
        process = spawn_worker(settings, work / "worker.log")
        base = f"http://127.0.0.1:{settings.web_port}/v1/events/forms"
        try:
            calm = asyncio.run(_phase(base, hook, "calm", args))
            hook.hanging = {"Rep slow"}
            stuck0.hanging = stuck1.hanging = {EVERY}
            broken.failing = {EVERY}
            trouble = asyncio.run(_phase(base, hook, "trouble", args))
        finally:
            stop(process)
    print(f"\n{args.leads} forms per rep and phase at {args.rate:g}/s; rep good's alerts "
          "on the healthy channel `hook`, from ingest to the receiver")
    print("| phase | delivered | p50 | p99 | max |")
    print("|---|---:|---:|---:|---:|")
    for name, latencies in (("calm", calm), ("2 hanging + 1 failing", trouble)):
        print(f"| {name} | {len(latencies)} | {_at(latencies, 0.5) * 1e3:.0f} ms "
              f"| {_at(latencies, 0.99) * 1e3:.0f} ms | {latencies[-1] * 1e3:.0f} ms |")
    for quantile in (0.5, 0.99):
        ratio = _at(trouble, quantile) / _at(calm, quantile)
        print(f"p{quantile * 100:g} trouble / calm: {ratio:.2f}")
    return 0 if len(calm) == len(trouble) == args.leads else 1


async def _phase(base: str, hook: Webhook, phase: str, args: argparse.Namespace) -> list[float]:
    """Post the phase's forms, alternating the reps; rep good's latencies on `hook`, sorted
    (after a minute at most)."""
    async with aiohttp.ClientSession() as http:
        await _ready(http, base)
        started = time.perf_counter()
        for n in range(args.leads):
            for rep, country in (("slow", "FR"), ("good", "ES")):
                body = contact_form(f"{rep}-{phase}-{n}@bench.example", country)
                async with http.post(base, data=body) as response:
                    assert response.status == 202, await response.text()
            pause = started + (n + 1) / args.rate - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
    deadline = time.monotonic() + 60
    while len(_latencies(hook, phase)) < args.leads and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    return sorted(_latencies(hook, phase))


def _latencies(hook: Webhook, phase: str) -> list[float]:
    return [item.at - item.body["received_at"] / 1000 for item in hook.delivered()
            if item.body["rep"]["id"] == "good" and f"-{phase}-" in item.body["lead"]["prospect"]]


def _at(latencies: list[float], quantile: float) -> float:
    return latencies[min(len(latencies) - 1, int(quantile * len(latencies)))]


if __name__ == "__main__":
    raise SystemExit(main())
