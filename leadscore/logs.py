"""Structured logs: one JSON object a line, with personal data masked.

Logs end up in shared systems; a prospect's email must never appear there in full, so
anything that logs a prospect passes it through `mask_email` first.
"""

from __future__ import annotations

import logging
import logging.config
import re
import time
from typing import Any

import orjson

_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({})))


def mask_email(value: str) -> str:
    """`ana.lopez@acme.example` -> `a***@acme.example`; anything else is kept to 3 chars."""
    local, at, domain = value.partition("@")
    if not at:
        return value[:3] + "***" if len(value) > 3 else "***"
    return f"{local[:1]}***@{domain}"


_EMAIL = re.compile(r"[^@\s'\"<>(),;:]+@[^@\s'\"<>(),;:]+")


def mask_emails(text: str) -> str:
    """`text` with every email address in it masked, for messages that may quote one (a
    mail server's refusal, say)."""
    return _EMAIL.sub(lambda found: mask_email(found.group()), text)


class JsonFormatter(logging.Formatter):
    """Renders a record and its `extra={...}` fields as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


#: The messages aiokafka logs at ERROR on every retry while a broker is unreachable (each of
#: a worker's clients retries about ten times a second): one warning per interval says it.
_RETRY_MESSAGES = frozenset({
    "Unable connect to node with id %s: %s",
    'Unable connect to "%s:%s": %s',
    "Error fetching metadata for topic %s: %s",
    "Unable to update metadata from %s",
    "Unable to request metadata from node with id %s: %r",
    'Unable to request metadata from "%s:%s": %s',
    "Failed fetch messages from %s: %s",
    "Group Coordinator Request failed: %s",
    "Heartbeat send request failed: %s. Will retry.",
    "Topic %s not found in cluster metadata",
})


class KafkaRetries(logging.Filter):
    """Folds the Kafka client's retry errors into one warning per `every` seconds, with how
    many there were and the last one. Put on the handler: the client logs them on several
    child loggers of `aiokafka`."""

    def __init__(self, every: float = 30.0) -> None:
        super().__init__()
        self.every, self.count, self.next_report = every, 0, 0.0

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("aiokafka") or record.msg not in _RETRY_MESSAGES:
            return True
        self.count += 1
        now = time.monotonic()
        if now < self.next_report:
            return False
        record.__dict__.update(retries=self.count, last_error=record.getMessage())
        record.msg, record.args = "kafka client retrying", ()
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        self.count, self.next_report = 0, now + self.every
        return True


_LEVELS = {
    "crit": "CRITICAL", "error": "ERROR", "warn": "WARNING", "info": "INFO", "debug": "DEBUG",
}


def logging_config(level: str = "info") -> dict[str, Any]:
    """A `logging.config.dictConfig` for JSON logs to stderr.

    The Kafka clients log every connection at INFO; they are held at WARNING.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "filters": {"kafka_retries": {"()": KafkaRetries}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json",
                                "filters": ["kafka_retries"]}},
        "root": {"handlers": ["stderr"], "level": _LEVELS.get(level, "INFO")},
        "loggers": {name: {"level": "WARNING"} for name in ("kafka", "aiokafka")},
    }


def configure_logging(level: str = "info") -> None:
    """JSON logs to stderr. Levels: crit, error, warn, info, debug."""
    logging.config.dictConfig(logging_config(level))
