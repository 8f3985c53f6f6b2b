"""How leadscore's Kafka clients encrypt and authenticate: the settings, as each library takes them.

The worker speaks to Kafka with aiokafka, the command line and the admin steps with
kafka-python; both are built from these options, so one set of settings
(`kafka_security_protocol`, the SASL ones, the TLS files) covers every connection.
Unset, they leave a client as it was: plain text.
"""

from __future__ import annotations

from typing import Any

from aiokafka.helpers import create_ssl_context

from leadscore.settings import Settings


def aiokafka_security(settings: Settings) -> dict[str, Any]:
    """Keyword options for an `AIOKafkaProducer` or `AIOKafkaConsumer`."""
    options = _protocol_and_sasl(settings)
    if settings.kafka_security_protocol.endswith("SSL"):
        options["ssl_context"] = create_ssl_context(
            cafile=_text(settings.kafka_ssl_cafile), certfile=_text(settings.kafka_ssl_certfile),
            keyfile=_text(settings.kafka_ssl_keyfile))
    return options


def kafka_python_security(settings: Settings) -> dict[str, Any]:
    """Keyword options for a kafka-python client (producer, consumer, admin)."""
    options = _protocol_and_sasl(settings)
    if settings.kafka_security_protocol.endswith("SSL"):
        options.update(ssl_cafile=_text(settings.kafka_ssl_cafile),
                       ssl_certfile=_text(settings.kafka_ssl_certfile),
                       ssl_keyfile=_text(settings.kafka_ssl_keyfile))
    return options


def _protocol_and_sasl(settings: Settings) -> dict[str, Any]:
    """What both libraries name alike."""
    options: dict[str, Any] = {"security_protocol": settings.kafka_security_protocol}
    if settings.kafka_security_protocol.startswith("SASL_"):
        password = settings.kafka_sasl_password
        options.update(sasl_mechanism=settings.kafka_sasl_mechanism,
                       sasl_plain_username=settings.kafka_sasl_username,
                       sasl_plain_password=password.get_secret_value() if password else None)
    return options


def _text(path: Any) -> str | None:
    return None if path is None else str(path)
