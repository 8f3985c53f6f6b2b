"""`leadscore dev`: the whole pipeline on one machine, with no JVM and no Docker.

Starts the embedded Tansu broker and a local Redis, a worker against them (routing with the
example roster, its alerts on Redis streams), sends the example events, and prints every
decision as it arrives until Ctrl-C, which stops everything.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import tempfile
import urllib.request
from pathlib import Path

import orjson
import yaml
from kafka import KafkaConsumer

from app.worker import prepare_topics, spawn_worker
from leadscore.decisions import (
    DECISION_TYPES,
    FAST_TRACK,
    PROSPECT_PROMOTED,
    SCORE_CHANGED,
    STANDARD,
    read_decision,
    routing_summary,
)
from leadscore.infra.kafka_tansu import run_tansu
from leadscore.infra.processes import free_port, stop, wait_until_ready
from leadscore.infra.redis_local import run_redis
from leadscore.settings import Settings
from streams.send import send_file
from streams.sources import discover_sources
from streams.topics import topics_of

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "events.jsonl"
EXAMPLE_ROSTER = Path(__file__).resolve().parent.parent / "routing" / "roster.yaml"


def run_dev(settings: Settings, examples: Path = EXAMPLES) -> int:
    _stop_on_signals()
    with contextlib.ExitStack() as stack:
        print("leadscore dev: starting the embedded broker and Redis...", flush=True)
        broker = stack.enter_context(run_tansu())
        redis_url = stack.enter_context(run_redis())
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="leadscore-dev-")))
        settings = settings.model_copy(update={
            "kafka_bootstrap_servers": broker.bootstrap_servers,
            "redis_url": redis_url,
            "data_dir": workdir / "data",
            "roster_path": settings.roster_path or dev_roster(workdir / "roster.yaml"),
            "web_port": free_port() if _port_taken(settings.web_port) else settings.web_port,
        })
        prepare_topics(settings)
        worker_log = workdir / "worker.log"
        worker = spawn_worker(settings, worker_log)
        stack.callback(stop, worker)
        base = f"http://{settings.web_host}:{settings.web_port}"
        wait_until_ready(worker, lambda: _answers(f"{base}/metrics"), name="the worker",
                         log_path=worker_log, timeout=60)
        print(f"""
  broker       {broker.version} at {broker.bootstrap_servers}
  redis        {redis_url}
  ingest       POST {base}/v1/events/{{source}}   sources: {", ".join(sorted(discover_sources()))}
  metrics      {base}/metrics
  worker log   {worker_log}
  rules        {settings.rules_path}
  roster       {settings.roster_path} (alerts on Redis streams {{{settings.app_id}}}:live:<rep>)
""", flush=True)
        report = send_file(discover_sources()["canonical"], examples,
                           topics_of(settings).raw["canonical"], settings.kafka_bootstrap_servers,
                           settings.message_max_bytes)
        print(f"sent {report.sent} example events from {examples} "
              f"({len(report.rejected)} refused); decisions follow. Ctrl-C stops.\n", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            print_decisions(settings)
        print("\nleadscore dev: stopping.", flush=True)
    return 0


def dev_roster(path: Path) -> Path:
    """The example roster with every rep alerted on their Redis stream, which needs no
    outside service: a webhook or mail server of the example would only be retried."""
    roster = yaml.safe_load(EXAMPLE_ROSTER.read_text())
    roster["channels"] = {"live": {"type": "stream"}}
    for rep in roster["reps"]:
        rep["alerts"] = ["live"]
    path.write_text(yaml.safe_dump(roster, sort_keys=False))
    return path


def _stop_on_signals() -> None:
    """Ctrl-C (and a SIGTERM) end the run through the normal clean-up path.

    Python only turns SIGINT into KeyboardInterrupt when SIGINT was not ignored at start,
    and a shell that starts a job in the background ignores it; so the handler is set here.
    """

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def print_decisions(settings: Settings) -> None:
    consumer = KafkaConsumer(
        topics_of(settings).decisions, bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest", enable_auto_commit=False,
    )
    try:
        for record in consumer:
            try:
                decision = read_decision(record.value)
            except ValueError:  # no decision of ours: nothing to show
                continue
            print(format_decision(decision), flush=True)
    finally:
        consumer.close()


def format_decision(decision: dict[str, object]) -> str:
    """One decision as a readable line for the terminal."""
    kind = str(decision["type"])
    who = decision.get("prospect", "")
    if kind == SCORE_CHANGED:
        delta = int(str(decision["delta"]))
        return (f"{decision['at']}  {who:<28} {delta:+4d}  {decision['rule']:<28} "
                f"score {decision['score']}")
    if kind == PROSPECT_PROMOTED:
        track = "FAST TRACK" if decision["track"] == FAST_TRACK else STANDARD
        return f"{decision['at']}  {who:<28} LEAD  {track:<28} score {decision['score']}"
    if kind in DECISION_TYPES["routing"]:
        return f"{decision['at']}  {who:<28} {routing_summary(decision)}"
    details = {k: v for k, v in decision.items() if k not in ("type", "prospect", "at")}
    return f"{decision.get('at', '')}  {who:<28} {kind}  {orjson.dumps(details).decode()}"


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0
