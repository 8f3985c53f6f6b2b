"""Prometheus metrics of the worker, served at `/metrics`.

Labels are sources, stages and decision types only: never a prospect or an email, which
would leak personal data and explode the series count.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = CONTENT_TYPE_LATEST.split(";")[0]

EVENTS_IN = Counter("leadscore_raw_events_total", "Raw events read, by source", ["source"])
DECISIONS = Counter("leadscore_decisions_total", "Decisions published, by type", ["type"])
SCORING_SECONDS = Histogram(
    "leadscore_scoring_seconds",
    "Time to score one message and hand its decisions to the producer",
    buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5),
)
RULES_VERSION = Gauge("leadscore_rules_info", "The rules version in force (value 1)", ["version"])
RULES_REFUSED = Counter(
    "leadscore_rules_refused_total", "Published rule sets that failed the check"
)
INGESTED = Counter(
    "leadscore_ingest_requests_total", "Ingest API requests, by source and status",
    ["source", "status"],
)


def render() -> bytes:
    return generate_latest()
