"""Kafka and Redis in Docker containers (testcontainers), where a Docker engine answers.

Everything Docker-related is imported inside the functions: machines without an engine
(like the project's CI) never pay for, or depend on, those imports.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from typing import Any

from leadscore.infra.broker import Broker, api_level

KAFKA_IMAGE = "confluentinc/cp-kafka:7.6.0"
REDIS_IMAGE = "redis:7-alpine"


def docker_answers(timeout_seconds: float = 2.0) -> bool:
    """True if a Docker engine answers a ping within `timeout_seconds`."""
    try:
        # By name: mypy would take the repo's own `docker/` folder for the package.
        docker = importlib.import_module("docker")
        client = docker.from_env(timeout=timeout_seconds)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:  # no client library, no socket, engine down, or a timeout
        return False


def _kafka_container_class() -> Any:
    try:
        from testcontainers.community.kafka import KafkaContainer
    except ImportError:  # testcontainers before the `community` package layout
        from testcontainers.kafka import KafkaContainer
    return KafkaContainer


def _redis_container_class() -> Any:
    try:
        from testcontainers.community.redis import RedisContainer
    except ImportError:
        from testcontainers.redis import RedisContainer
    return RedisContainer


@contextlib.contextmanager
def run_kafka_container() -> Iterator[Broker]:
    """A single node KRaft Kafka container; removed on exit."""
    with _kafka_container_class()(KAFKA_IMAGE).with_kraft() as container:
        bootstrap = str(container.get_bootstrap_server())
        yield Broker("docker", f"{api_level(bootstrap)} ({KAFKA_IMAGE})", bootstrap)


@contextlib.contextmanager
def run_redis_container() -> Iterator[str]:
    """A Redis container; yields its URL, removed on exit."""
    with _redis_container_class()(REDIS_IMAGE) as container:
        host = container.get_container_host_ip()
        port = container.get_exposed_port(6379)
        yield f"redis://{host}:{port}/0"
