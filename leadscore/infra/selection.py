"""Which Kafka broker and Redis server a test session (or a developer) gets.

`LEADSCORE_TEST_KAFKA` chooses the broker: `apache` (Apache Kafka from Maven Central),
`tansu` (the embedded dev broker), `docker` (testcontainers) or `external` (the broker at
`KAFKA_BOOTSTRAP_SERVERS`). Unset, the first that applies wins: `external` when
`KAFKA_BOOTSTRAP_SERVERS` is set, `docker` when a Docker engine answers, else `apache`.
Redis follows: `REDIS_URL` when set, a container on `docker`, else a local server.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping

from leadscore.infra.broker import Broker, api_level, kafka_answers
from leadscore.infra.containers import (
    KAFKA_IMAGE,
    REDIS_IMAGE,
    docker_answers,
    run_kafka_container,
    run_redis_container,
)
from leadscore.infra.kafka_apache import KAFKA_VERSION, run_apache_kafka
from leadscore.infra.kafka_tansu import run_tansu, tansu_binary
from leadscore.infra.redis_local import redis_binary, run_redis, server_version

BROKER_KINDS = ("apache", "tansu", "docker", "external")


def choose_broker_kind(
    env: Mapping[str, str] = os.environ,
    docker_available: Callable[[], bool] = docker_answers,
) -> str:
    """The broker kind for this session; see the module doc for the rules."""
    chosen = env.get("LEADSCORE_TEST_KAFKA", "").strip().lower()
    if chosen:
        if chosen not in BROKER_KINDS:
            raise ValueError(
                f"LEADSCORE_TEST_KAFKA={chosen!r}: expected one of {', '.join(BROKER_KINDS)}"
            )
        if chosen == "external" and not env.get("KAFKA_BOOTSTRAP_SERVERS"):
            raise ValueError(
                "LEADSCORE_TEST_KAFKA=external needs KAFKA_BOOTSTRAP_SERVERS=host:port"
            )
        return chosen
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        return "external"
    return "docker" if docker_available() else "apache"


@contextlib.contextmanager
def external_broker(bootstrap_servers: str) -> Iterator[Broker]:
    """A broker someone else runs: checked to answer, never started or stopped here."""
    if not kafka_answers(bootstrap_servers):
        raise RuntimeError(f"KAFKA_BOOTSTRAP_SERVERS={bootstrap_servers} does not answer")
    yield Broker("external", f"external, {api_level(bootstrap_servers)}", bootstrap_servers)


def run_broker(kind: str) -> contextlib.AbstractContextManager[Broker]:
    """Start (or, for `external`, connect to) a broker of `kind`; it stops on exit."""
    if kind == "apache":
        return run_apache_kafka()
    if kind == "tansu":
        return run_tansu()
    if kind == "docker":
        return run_kafka_container()
    if kind == "external":
        return external_broker(os.environ["KAFKA_BOOTSTRAP_SERVERS"])
    raise ValueError(f"unknown broker kind {kind!r}: expected one of {', '.join(BROKER_KINDS)}")


def run_session_redis(broker_kind: str) -> contextlib.AbstractContextManager[str]:
    """The Redis that goes with a broker of `broker_kind`; yields its URL."""
    if broker_kind == "docker" and not os.environ.get("REDIS_URL"):
        return run_redis_container()
    return run_redis()


def describe_broker(kind: str) -> str:
    """What `run_broker(kind)` will give, without starting it (for logs and headers)."""
    if kind == "apache":
        return f"Apache Kafka {KAFKA_VERSION}"
    if kind == "tansu":
        return f"Tansu {tansu_binary()[1]}"
    if kind == "docker":
        return f"container {KAFKA_IMAGE}"
    return f"KAFKA_BOOTSTRAP_SERVERS={os.environ.get('KAFKA_BOOTSTRAP_SERVERS')}"


def describe_session_redis(broker_kind: str) -> str:
    """What `run_session_redis(broker_kind)` will give, without starting it."""
    if os.environ.get("REDIS_URL"):
        return f"REDIS_URL={os.environ['REDIS_URL']}"
    if broker_kind == "docker":
        return f"container {REDIS_IMAGE}"
    binary = redis_binary()
    return f"{server_version(binary)} ({binary})"
