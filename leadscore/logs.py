"""Structured logs: one JSON object a line, with personal data masked.

Logs end up in shared systems; a prospect's email must never appear there in full, so
anything that logs a prospect passes it through `mask_email` first.
"""

from __future__ import annotations

import logging
import logging.config
from typing import Any

import orjson

_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({})))


def mask_email(value: str) -> str:
    """`ana.lopez@acme.example` -> `a***@acme.example`; anything else is kept to 3 chars."""
    local, at, domain = value.partition("@")
    if not at:
        return value[:3] + "***" if len(value) > 3 else "***"
    return f"{local[:1]}***@{domain}"


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
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"handlers": ["stderr"], "level": _LEVELS.get(level, "INFO")},
        "loggers": {name: {"level": "WARNING"} for name in ("kafka", "aiokafka")},
    }


def configure_logging(level: str = "info") -> None:
    """JSON logs to stderr. Levels: crit, error, warn, info, debug."""
    logging.config.dictConfig(logging_config(level))
