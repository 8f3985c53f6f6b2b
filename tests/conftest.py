"""Shared fixtures: real servers, started by the project itself, once per session.

- `broker`: the session's Kafka `Broker` (chosen by LEADSCORE_TEST_KAFKA, see
  docs/development.md); `broker.bootstrap_servers` is what clients connect to.
- `tansu_broker`: the embedded Tansu broker, started only if a test asks for it.
- `redis_url`: the session's Redis server.
- `unique`: a short id per test; build topic names, consumer groups and Redis key
  prefixes from it so tests never see each other's data.

Servers start on first use, so a run that needs none of them starts none.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from leadscore.infra.broker import Broker
from leadscore.infra.kafka_tansu import run_tansu
from leadscore.infra.selection import (
    choose_broker_kind,
    describe_broker,
    describe_session_redis,
    run_broker,
    run_session_redis,
)

_BROKER_KIND = choose_broker_kind()


def pytest_report_header() -> list[str]:
    return [
        f"leadscore broker: {_BROKER_KIND}, {describe_broker(_BROKER_KIND)} "
        "(LEADSCORE_TEST_KAFKA); embedded: " + describe_broker("tansu"),
        f"leadscore redis: {describe_session_redis(_BROKER_KIND)}",
    ]


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    with run_broker(_BROKER_KIND) as started:
        yield started


@pytest.fixture(scope="session")
def tansu_broker() -> Iterator[Broker]:
    with run_tansu() as started:
        yield started


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    with run_session_redis(_BROKER_KIND) as url:
        yield url


@pytest.fixture
def unique() -> str:
    return "t" + uuid.uuid4().hex[:10]
