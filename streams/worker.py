"""`leadscore worker`: one production worker, configured from settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import faust

from leadscore.infra.processes import spawn
from leadscore.logs import configure_logging, logging_config
from leadscore.settings import Settings
from scoring_rules import RulesError, load_rules
from streams.app import create_app, topic_names
from streams.sources import all_event_types, discover_sources
from streams.topics import ensure_topics


def prepare_topics(settings: Settings) -> None:
    """Create every topic the pipeline reads: Faust ignores a source topic that is missing."""
    names = topic_names(settings, discover_sources())
    rules_topic = names.pop("rules")
    raw = [name for role, name in names.items() if role.startswith("raw.")]
    other = [name for role, name in names.items() if not role.startswith("raw.")]
    servers = settings.kafka_bootstrap_servers
    ensure_topics(servers, raw, settings.raw_topic_partitions)
    ensure_topics(servers, other, settings.topic_partitions)
    ensure_topics(servers, [rules_topic], 1, compacted=[rules_topic])


def run_worker(settings: Settings) -> int:
    """Start the worker; returns 2 without starting when the rules in `rules_path` are bad."""
    configure_logging(settings.log_level)
    try:
        rules = load_rules(settings.rules_path, all_event_types())
    except RulesError as error:
        print(f"leadscore worker: the rules do not pass the check:\n{error}", file=sys.stderr)
        return 2
    prepare_topics(settings)
    pipeline = create_app(settings, rules)
    worker = faust.Worker(
        pipeline.app,
        loglevel=settings.log_level,
        logging_config=logging_config(settings.log_level),
        redirect_stdouts=False,
    )
    worker.execute_from_commandline()
    return 0


def worker_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a `leadscore worker` process exactly `settings`."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("LEADSCORE_") and key not in ("KAFKA_BOOTSTRAP_SERVERS",
                                                             "REDIS_URL")}
    for name, value in settings.model_dump(exclude_none=True).items():
        secret = getattr(value, "get_secret_value", None)
        env[f"LEADSCORE_{name.upper()}"] = str(secret() if secret else value)
    return env


def spawn_worker(settings: Settings, log_path: Path) -> subprocess.Popen[bytes]:
    """Start `leadscore worker` with `settings` in a child process (dev mode, tests, bench)."""
    return spawn([sys.executable, "-m", "leadscore.cli", "worker"], log_path,
                 env=worker_env(settings))
