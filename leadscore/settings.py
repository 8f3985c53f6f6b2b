"""Every setting leadscore reads, in one place.

Values come, highest priority first, from environment variables (`LEADSCORE_<NAME>`, plus
the conventional `KAFKA_BOOTSTRAP_SERVERS` and `REDIS_URL`), then from the TOML file named
by `LEADSCORE_SETTINGS_FILE` (if any), then the defaults below. `docs/configuration.md`
documents them; a test keeps that page in step with this model.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

DEFAULT_RULES_PATH = Path(__file__).resolve().parent.parent / "scoring_rules" / "default"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEADSCORE_", extra="forbid")

    kafka_bootstrap_servers: str = Field(
        default="localhost:9092",
        validation_alias=AliasChoices(
            "LEADSCORE_KAFKA_BOOTSTRAP_SERVERS", "KAFKA_BOOTSTRAP_SERVERS"
        ),
        description="Kafka brokers, `host:port[,host:port...]`.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description="How to reach the brokers: `PLAINTEXT`, `SSL` (TLS), `SASL_PLAINTEXT` "
        "or `SASL_SSL` (SASL over TLS, the one to use across a network you do not own).",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="SCRAM-SHA-512",
        description="SASL mechanism, with `SASL_*` protocols.",
    )
    kafka_sasl_username: str | None = Field(
        default=None, description="SASL user, required with `SASL_*` protocols.")
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="SASL password, required with `SASL_*` protocols.")
    kafka_ssl_cafile: Path | None = Field(
        default=None,
        description="CA certificates (PEM) that sign the brokers' certificates, with `SSL` "
        "and `SASL_SSL`; unset: the system's.",
    )
    kafka_ssl_certfile: Path | None = Field(
        default=None, description="Client certificate (PEM), for brokers that require one.")
    kafka_ssl_keyfile: Path | None = Field(
        default=None, description="The client certificate's private key (PEM).")
    redis_url: str = Field(
        default="redis://localhost:6379/0",
        validation_alias=AliasChoices("LEADSCORE_REDIS_URL", "REDIS_URL"),
        description="Redis (or Valkey) server for routing state, queues and alerts.",
    )
    redis_cluster: bool = Field(
        default=False,
        description="`redis_url` names a node of a Redis Cluster: the worker talks to the "
        "cluster (routing's keys all live in one slot).",
    )
    topic_prefix: str = Field(
        default="leadscore.",
        description="Prefix of every topic leadscore creates, e.g. `leadscore.decisions`.",
    )
    topic_partitions: int = Field(
        default=4, ge=1,
        description="Partitions of the events topic (and its table changelogs): how many "
        "workers can share the scoring.",
    )
    raw_topic_partitions: int = Field(
        default=1, ge=1,
        description="Partitions of each source's raw topic. One keeps a source's events in "
        "arrival order through the map stage, so an anonymous visitor's activity is always "
        "scored before the event that identifies them; raise it only for sources that never "
        "identify visitors.",
    )
    rules_path: Path = Field(
        default=DEFAULT_RULES_PATH,
        description="Rule file or folder of rule files (`*.yaml`); the shipped default set.",
    )
    roster_path: Path | None = Field(
        default=None,
        description="The roster (YAML) a worker routes with until one is published "
        "(`leadscore roster publish`); `routing/roster.yaml` is an example. Unset: the "
        "worker does not route (scoring only).",
    )
    routing_takeover_seconds: float = Field(
        default=30.0, gt=0,
        description="How long an alert, a routing decision or an SLA step that a worker "
        "took stays with it before another worker takes it over (the first one died).",
    )
    routing_closed_lead_retention_seconds: float = Field(
        default=86_400.0, ge=1,
        description="How long a closed lead (completed) stays in Redis, for late requests "
        "and lookups, before it leaves; its history stays on the decisions topic.",
    )
    api_secret: SecretStr | None = Field(
        default=None, min_length=16,
        description="Bearer token of the queue API (`/v1/leads/...`, `/v1/reps/...`), 16 "
        "characters at least. Unset: the queue API answers 403.",
    )
    app_id: str = Field(
        default="leadscore",
        description="Application id: names the consumer groups, the changelog topic and "
        "the local state directory.",
    )
    data_dir: Path = Field(
        default=Path("./.leadscore-data"),
        description="Where the worker keeps local table state.",
    )
    table_store: str = Field(
        default="memory://",
        pattern="^(memory|rocksdb)://",
        description="Where the worker keeps table state: `memory://` (rebuilt from the "
        "changelog on start) or `rocksdb://` (on disk under data_dir, for large state; "
        "needs `pip install 'leadscore[rocksdb]'`, part of the dev extra).",
    )
    decay_tick_seconds: float = Field(
        default=1.0,
        ge=0,
        description="How often each worker publishes the decays that have come due. 0 turns "
        "the timer off.",
    )
    decay_idle_seconds: float = Field(
        default=60.0,
        ge=0,
        description="The timer decays a partition's prospects up to the latest event time "
        "scored on it, so a backlog is never decayed ahead of its own events; after this many "
        "seconds without a message, up to the wall clock.",
    )
    session_timeout_seconds: float = Field(
        default=10.0, gt=0,
        description="How long a silent worker keeps its partitions before the others take "
        "them over (Kafka consumer session timeout).",
    )
    web_host: str = Field(default="127.0.0.1", description="Address of the worker's web server.")
    web_port: int = Field(default=6066, description="Port of the ingest API and `/metrics`.")
    ingest_secret: SecretStr | None = Field(
        default=None,
        description="Shared secret for the ingest API: a bearer token, or the key of Standard "
        "Webhooks signatures (`whsec_<base64>` or any other text, used as is). Unset means "
        "the API accepts unauthenticated requests (dev only); set but empty is refused.",
    )
    ingest_signature_tolerance_seconds: int = Field(
        default=300, ge=1,
        description="A signed request whose `webhook-timestamp` is further than this from the "
        "worker's clock is refused, so a captured request cannot be sent again later.",
    )
    ingest_max_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body the ingest API accepts."
    )
    ingest_read_timeout_seconds: float = Field(
        default=10.0, gt=0,
        description="A client that has not sent its whole request body by then gets 408.",
    )
    message_max_bytes: int = Field(
        default=1_048_576, ge=16_384,
        description="Largest record leadscore produces; at most the broker's "
        "`message.max.bytes`. Ingest refuses (413) a request whose records would not fit, "
        "and any single event over a quarter of it (a prospect's state may hold it).",
    )
    log_level: str = Field(
        default="info", pattern="^(crit|error|warn|info|debug)$",
        description="Log level: crit, error, warn, info or debug.",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        settings_file = os.environ.get("LEADSCORE_SETTINGS_FILE")
        if settings_file:
            if not Path(settings_file).is_file():
                raise FileNotFoundError(f"LEADSCORE_SETTINGS_FILE={settings_file}: no such file")
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(settings_file)))
        return tuple(sources)

    @model_validator(mode="after")
    def _kafka_security_is_whole(self) -> Settings:
        """A SASL protocol without its user, or a certificate without its key, would only
        fail later, at the broker, with a less helpful message."""
        if self.kafka_security_protocol.startswith("SASL_") and not (
                self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(f"kafka_security_protocol {self.kafka_security_protocol} needs "
                             "kafka_sasl_username and kafka_sasl_password")
        if (self.kafka_ssl_certfile is None) != (self.kafka_ssl_keyfile is None):
            raise ValueError("kafka_ssl_certfile and kafka_ssl_keyfile go together")
        for path in (self.kafka_ssl_cafile, self.kafka_ssl_certfile, self.kafka_ssl_keyfile):
            if path is not None and not path.is_file():
                raise ValueError(f"{path}: no such file")
        return self

    @field_validator("ingest_secret")
    @classmethod
    def _secret_not_empty(cls, value: SecretStr | None) -> SecretStr | None:
        """A secret signs and authorises: an empty one (or a `whsec_` key that decodes to
        too few bytes) would let anyone in."""
        if value is None:
            return None
        text = value.get_secret_value()
        if not text.strip():
            raise ValueError("is empty: set a real secret, or unset it to run without one")
        if text.startswith("whsec_"):
            try:
                key = base64.b64decode(text.removeprefix("whsec_"), validate=True)
            except binascii.Error:
                raise ValueError("a whsec_ secret must be base64 after the prefix") from None
            if not 24 <= len(key) <= 64:
                raise ValueError(f"a whsec_ secret must hold 24 to 64 bytes, not {len(key)}")
        return value
