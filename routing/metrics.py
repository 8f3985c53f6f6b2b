"""Prometheus metrics of routing, served with the worker's at `/metrics`.

Labels are tracks, channels, outcomes and teams: never a prospect.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SPEED_TO_LEAD = Histogram(
    "leadscore_speed_to_lead_seconds",
    "From the trigger event's arrival at ingest to the rep's first alert delivered (2xx)",
    ["track", "channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600),
)
ALERTS = Counter(
    "leadscore_alerts_total", "Alert deliveries by channel and outcome "
    "(delivered, retried, gone, failed)", ["channel", "outcome"],
)
ALERTS_WAITING = Gauge(
    "leadscore_alerts_waiting", "Alerts queued and not delivered (nor given up) yet, by "
    "channel", ["channel"],
)
OLDEST_ALERT = Gauge(
    "leadscore_alerts_oldest_waiting_seconds", "Age of the oldest alert waiting, by channel "
    "(0: none waits)", ["channel"],
)
ALERTS_STUCK = Gauge(
    "leadscore_alerts_stuck", "Alerts waiting for a channel that cannot deliver on this "
    "worker, by channel and reason: 'not installed' (no plugin of its type here), "
    "'failing' (its last attempt failed, and none succeeded since)", ["channel", "reason"],
)
QUEUE_DEPTH = Gauge("leadscore_queue_depth", "Leads waiting in reps' queues", ["team", "queue"])
SLA_BREACHES = Counter("leadscore_sla_breaches_total", "SLA deadlines passed", ["track"])
ASSIGNMENTS = Counter(
    "leadscore_assignments_total", "Leads assigned, by team; fallback: to the escalation "
    "target because nobody was eligible", ["team", "fallback"],
)
TASK_RESTARTS = Counter(
    "leadscore_routing_task_restarts_total", "Routing tasks that failed (or ended) and were "
    "started again, by task (alerts:<channel> for a channel's deliveries)", ["task"],
)
