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
    "'failing' (its last attempt failed, and none succeeded since), 'removed' (the roster in "
    "force no longer has it)", ["channel", "reason"],
)
QUEUE_DEPTH = Gauge("leadscore_queue_depth", "Leads waiting in reps' queues", ["team", "queue"])
SLA_BREACHES = Counter("leadscore_sla_breaches_total", "SLA deadlines passed", ["track"])
ASSIGNMENTS = Counter(
    "leadscore_assignments_total", "Leads assigned, by team; fallback: to the escalation "
    "target because nobody was eligible", ["team", "fallback"],
)
REASSIGNMENTS = Counter(
    "leadscore_reassignments_total", "Leads moved from one rep to another, by the team they "
    "moved in and why: ladder (not acknowledged in time), escalation (the ladder's "
    "escalation), rep_unavailable (the rep left the roster or is away), manual (the queue "
    "API's reassign), claim (another rep claimed it)", ["team", "reason"],
)
NOBODY_ELIGIBLE = Counter(
    "leadscore_nobody_eligible_total", "Leads no rep of the team could take in the rotation, "
    "by whom they went to instead: escalation_target, on_call, waits_for_shift (assigned to "
    "the first rep to come on shift)", ["team", "chosen"],
)

TASK_RESTARTS = Counter(
    "leadscore_routing_task_restarts_total", "Routing tasks that failed (or ended) and were "
    "started again, by task (alerts:<channel> for a channel's deliveries)", ["task"],
)
