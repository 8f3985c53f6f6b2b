"""Speed to lead on the real servers: a contact-me form's POST to the rep's webhook.

One `leadscore worker` with a roster (three reps on shift, a signed webhook channel) on
Apache Kafka and a local Redis. For `--seconds`, `--leads` contact-me forms a minute are
POSTed to ingest while `--rate` other events a second are produced to a raw topic. For
each form: the time from its POST to the alert's arrival at a local webhook receiver
(signature checked); p50, p99, max.

Run: `python -m bench.speed_to_lead` (starts its own broker and Redis; or set
KAFKA_BOOTSTRAP_SERVERS and REDIS_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson
from aiokafka import AIOKafkaProducer

from app.worker import spawn_worker
from bench.pipeline import broker, isolated
from leadscore.infra.processes import stop
from leadscore.infra.receivers import Webhook, webhook_receiver
from leadscore.infra.redis_local import run_redis
from leadscore.infra.sample_events import generate
from leadscore.settings import Settings
from streams.topics import topics_of

SECRET = "bench-webhook-secret"


def roster(url: str) -> str:
    reps = "".join(f"""
  - {{id: rep{n}, name: Rep {n}, email: rep{n}@bench.example, role: MRR, team: t,
     working_hours: {{days: [mon, tue, wed, thu, fri, sat, sun], start: "00:00", end: "00:00"}},
     alerts: [hook]}}""" for n in range(3))
    return f"""
teams:
  - id: t
    escalation: rep0
    sla: {{fast_track: {{acknowledge_within: 1h, ladder: [{{after: 1h, action: remind}}]}}}}
reps:{reps}
channels:
  hook: {{type: webhook, url: "{url}", secret_env: BENCH_WEBHOOK_SECRET}}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=500, help="contact-me forms a minute")
    parser.add_argument("--rate", type=int, default=2_000, help="other events a second")
    parser.add_argument("--seconds", type=int, default=60)
    args = parser.parse_args(argv)
    os.environ["BENCH_WEBHOOK_SECRET"] = SECRET
    with broker() as bootstrap, run_redis() as redis_url, webhook_receiver(SECRET) as hook, \
            tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        path = work / "roster.yaml"
        path.write_text(roster(hook.url))
        settings = isolated("worker", bootstrap, work, "speed").model_copy(
            update={"roster_path": path, "redis_url": redis_url})
        process = spawn_worker(settings, work / "worker.log")
        try:
            posted = asyncio.run(_run(settings, hook, args))
        finally:
            stop(process)
        arrived = {item.body["lead"]["prospect"]: item.at for item in hook.delivered()
                   if item.body["kind"] == "new_lead"}
        bad = [item for item in hook.delivered() if item.signature_error]
    latencies = sorted(arrived[email] - at for email, at in posted.items() if email in arrived)
    lost = len(posted) - len(latencies)
    print(f"\n{len(posted)} contact-me forms ({args.leads}/min) over {args.seconds} s with "
          f"{args.rate:,} other events/s; {lost} not alerted; {len(bad)} bad signatures")
    print("| speed to lead | p50 | p99 | max |")
    print("|---|---:|---:|---:|")
    print(f"| form POST -> webhook | {_ms(latencies, 0.5)} | {_ms(latencies, 0.99)} "
          f"| {latencies[-1] * 1e3:.0f} ms |")
    return 0 if not lost and not bad else 1


async def _run(settings: Settings, hook: Webhook, args: argparse.Namespace) -> dict[str, float]:
    base = f"http://127.0.0.1:{settings.web_port}/v1/events/forms"
    async with aiohttp.ClientSession() as http:
        await _ready(http, base)
        await _post(http, base, "warm-up@bench.example")  # the clock starts once it is alerted
        while not any(item.body["lead"]["prospect"] == "warm-up@bench.example"
                      for item in hook.delivered()):
            await asyncio.sleep(0.05)
        load = asyncio.create_task(_background(settings, args.rate, args.seconds))
        posted: dict[str, float] = {}
        gap = 60 / args.leads
        started = time.perf_counter()
        for n in range(int(args.seconds / gap)):
            email = f"lead{n}@bench.example"
            posted[email] = await _post(http, base, email)
            pause = started + (n + 1) * gap - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
        await load
        await asyncio.sleep(5)
    return posted


async def _ready(http: aiohttp.ClientSession, url: str) -> None:
    while True:
        try:
            async with http.post(url, data=b"{}") as response:
                if response.status in (400, 202):
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)


async def _post(http: aiohttp.ClientSession, url: str, email: str) -> float:
    form = {"form": "contact_me", "email": email,
            "submitted_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "fields": {"name": "Bench Lead", "country": "ES"}}
    at = time.time()
    async with http.post(url, data=orjson.dumps(form)) as response:
        assert response.status == 202, await response.text()
    return at


async def _background(settings: Settings, rate: int, seconds: int) -> None:
    """Other activity: generated events produced at `rate`/s."""
    lines = list(generate(rate * seconds, max(rate * seconds // 5, 1), seed=11))
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers,
                                linger_ms=5)
    await producer.start()
    try:
        topic = topics_of(settings).raw["canonical"]
        step, per_step = 0.05, max(1, rate // 20)
        started = time.perf_counter()
        for index in range(0, len(lines), per_step):
            for line in lines[index:index + per_step]:
                await producer.send(topic, value=line)
            pause = started + (index // per_step + 1) * step - time.perf_counter()
            if pause > 0:
                await asyncio.sleep(pause)
        await producer.flush()
    finally:
        await producer.stop()


def _ms(values: list[float], quantile: float) -> str:
    return f"{values[min(len(values) - 1, int(len(values) * quantile))] * 1e3:.0f} ms"


if __name__ == "__main__":
    sys.exit(main())
