"""Kafka and Redis security: settings refused when incomplete, workers over SASL and TLS."""

from __future__ import annotations

import ssl
from pathlib import Path

import orjson
import pytest
from kafka.errors import KafkaError
from pydantic import ValidationError

from app.worker import prepare_topics
from leadscore.infra.broker import Broker
from leadscore.infra.kafka_apache import SASL_PASSWORD, SASL_USER
from leadscore.kafka_security import aiokafka_security, kafka_python_security
from leadscore.settings import Settings
from streams.send import send_file
from streams.sources import discover_sources
from streams.topics import topics_of
from tests.live import live_settings, running_worker, wait_for_records


def test_incomplete_security_settings_are_refused_at_start_with_what_is_missing(
    tmp_path: Path,
) -> None:
    with pytest.raises(ValidationError, match="needs kafka_sasl_username and kafka_sasl_password"):
        Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="leadscore")
    with pytest.raises(ValidationError, match="kafka_ssl_certfile and kafka_ssl_keyfile go"):
        Settings(kafka_security_protocol="SSL", kafka_ssl_certfile=tmp_path / "client.pem")
    with pytest.raises(ValidationError, match=r"ca\.pem: no such file"):
        Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=tmp_path / "ca.pem")


def test_both_client_libraries_get_the_same_protocol_mechanism_and_credentials() -> None:
    assert aiokafka_security(Settings()) == kafka_python_security(Settings()) == {
        "security_protocol": "PLAINTEXT"}
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_mechanism="SCRAM-SHA-256",
                        kafka_sasl_username="u", kafka_sasl_password="p")
    sasl = {"sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "u",
            "sasl_plain_password": "p"}
    assert kafka_python_security(settings) == {
        "security_protocol": "SASL_SSL", **sasl,
        "ssl_cafile": None, "ssl_certfile": None, "ssl_keyfile": None}
    options = aiokafka_security(settings)
    assert isinstance(options.pop("ssl_context"), ssl.SSLContext)
    assert options == {"security_protocol": "SASL_SSL", **sasl}


def _sasl_broker(broker: Broker) -> str:
    if broker.sasl_bootstrap_servers is None:
        pytest.skip(f"the session broker ({broker.kind}) has no SASL listener: only Apache "
                    "Kafka started from its jars (the default, and CI's) has one")
    return broker.sasl_bootstrap_servers


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_a_worker_scores_over_sasl(
    broker: Broker, unique: str, tmp_path: Path, mechanism: str
) -> None:
    settings = live_settings(
        broker, unique, tmp_path, kafka_bootstrap_servers=_sasl_broker(broker),
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism=mechanism,
        kafka_sasl_username=SASL_USER, kafka_sasl_password=SASL_PASSWORD)
    _scores_one_event(broker, settings, tmp_path)


def test_a_worker_scores_over_tls_trusting_the_brokers_ca(
    broker: Broker, unique: str, tmp_path: Path
) -> None:
    if broker.tls_bootstrap_servers is None:
        pytest.skip(f"the session broker ({broker.kind}) has no TLS listener: Apache Kafka "
                    "started from its jars has one where `openssl` is installed")
    settings = live_settings(
        broker, unique, tmp_path, kafka_bootstrap_servers=broker.tls_bootstrap_servers,
        kafka_security_protocol="SSL", kafka_ssl_cafile=broker.tls_cafile)
    _scores_one_event(broker, settings, tmp_path)


def _scores_one_event(broker: Broker, settings: Settings, tmp_path: Path) -> None:
    """A worker with `settings` scores an event sent by `leadscore send`'s code with them."""
    event = {"id": "s-1", "type": "demo.watched", "occurred_at": "2026-03-02T10:00:00Z",
             "prospect": {"email": "secure@acme.example"}, "properties": {"video_id": "tour"}}
    events = tmp_path / "events.jsonl"
    events.write_bytes(orjson.dumps(event) + b"\n")
    with running_worker(settings, tmp_path / "worker.log"):
        report = send_file(discover_sources()["canonical"], events,
                           topics_of(settings).raw["canonical"], settings.kafka_bootstrap_servers,
                           settings.message_max_bytes, kafka_python_security(settings))
        assert report.sent == 1
        # read back over the plain listener of the same broker
        [decision] = wait_for_records(broker.bootstrap_servers, topics_of(settings).decisions,
                                      1, 60)
    assert decision["event_id"] == "s-1" and decision["prospect"] == "secure@acme.example"


def test_a_wrong_password_stops_the_worker_before_it_starts(
    broker: Broker, unique: str, tmp_path: Path
) -> None:
    settings = live_settings(
        broker, unique, tmp_path, kafka_bootstrap_servers=_sasl_broker(broker),
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username=SASL_USER, kafka_sasl_password="not-the-password")
    with pytest.raises(KafkaError):
        prepare_topics(settings)


def test_a_rediss_url_gives_routing_a_tls_connection_as_the_acl_user_with_its_ca() -> None:
    """What docs/operations.md tells users to write, read as redis-py reads it (a worker
    routing over TLS, and one as the ACL user, run in test_routing_live)."""
    from redis.asyncio import Redis
    from redis.asyncio.connection import SSLConnection

    client = Redis.from_url("rediss://leadscore:pw@redis.internal:6380/0"
                            "?ssl_ca_certs=/etc/ssl/redis-ca.pem")
    pool = client.connection_pool
    assert pool.connection_class is SSLConnection
    assert {k: pool.connection_kwargs[k] for k in ("username", "password", "ssl_ca_certs")} == {
        "username": "leadscore", "password": "pw", "ssl_ca_certs": "/etc/ssl/redis-ca.pem"}
