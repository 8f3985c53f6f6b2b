"""Routing of new leads to Market Response Reps: the roster, the pure policy, the Redis
state and its scripts, alert channels, the SLA watchdog and the queues. `docs/routing.md`
explains it; `routing.router` is the stage a worker runs."""
