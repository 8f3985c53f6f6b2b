"""What a started Kafka broker looks like to its users, and how to tell that it answers."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kafka.admin import KafkaAdminClient
from kafka.protocol.broker_version_data import infer_broker_version_from_api_versions


@dataclass(frozen=True)
class Broker:
    """A Kafka broker that answers at `bootstrap_servers` (`host:port[,host:port...]`).

    `kind` is how it was obtained: `apache`, `tansu`, `docker` or `external`; `version`
    is for people, e.g. `Apache Kafka 4.1.1`.
    """

    kind: str
    version: str
    bootstrap_servers: str
    #: A SASL_PLAINTEXT listener, where the broker has one (Apache Kafka started from its
    #: jars: `kafka_apache.SASL_USER`, PLAIN and SCRAM-SHA-512).
    sasl_bootstrap_servers: str | None = None
    #: A TLS listener and the CA file that signed its certificate, where the broker has one
    #: (the same, where `openssl` is installed).
    tls_bootstrap_servers: str | None = None
    tls_cafile: Path | None = None


@contextlib.contextmanager
def admin_client(
    bootstrap_servers: str, timeout_seconds: float = 10.0,
    security: Mapping[str, Any] | None = None,
) -> Iterator[KafkaAdminClient]:
    """A kafka-python admin client that gives up after `timeout_seconds`, closed on exit;
    `security` as `leadscore.kafka_security.kafka_python_security` makes it."""
    timeout_ms = int(timeout_seconds * 1000)
    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="leadscore-admin",
        request_timeout_ms=timeout_ms,
        bootstrap_timeout_ms=timeout_ms,
        **(security or {}),
    )
    try:
        yield admin
    finally:
        admin.close()


def kafka_answers(bootstrap_servers: str) -> bool:
    """True once the broker answers a metadata request (an open port is not enough: Kafka
    listens well before it can serve metadata)."""
    quiet = logging.getLogger("kafka")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # "connection refused" while the broker boots is expected
    try:
        with admin_client(bootstrap_servers, timeout_seconds=2.0) as admin:
            admin.describe_cluster()
        return True
    except Exception:
        return False
    finally:
        quiet.setLevel(level)


def api_level(bootstrap_servers: str) -> str:
    """The Kafka release whose protocol the broker speaks, from its ApiVersions answer,
    e.g. `Kafka API 3.9`; brokers do not report their product or exact version."""
    with admin_client(bootstrap_servers) as admin:
        level = infer_broker_version_from_api_versions(admin.api_versions())
    return "Kafka API " + ".".join(str(part) for part in level)
