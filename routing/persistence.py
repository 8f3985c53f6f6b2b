"""Whether the Redis routing uses keeps what it acknowledged when it restarts.

Routing's state lives in Redis only: the leads' queues and SLA timers, the alerts not yet
delivered and the routing decisions not yet published to Kafka (the outbox). A Redis that
restarts without persistence comes back empty and all of that is gone, while every worker
only sees a short outage. So a worker looks at start and whenever Redis comes back (a new
run id), warns loudly when Redis keeps nothing or only snapshots, and `/readyz` lists the
warning (`routing.router.watch_persistence`).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

#: What a worker cannot tell when its Redis user may run neither CONFIG nor INFO.
UNKNOWN = ("routing cannot tell whether Redis persists its data (CONFIG and INFO refused "
           "to its user): run it with appendonly yes")


def persistence_warning(config: dict[str, str] | None, info: dict[str, Any]) -> str | None:
    """What to warn of, given Redis's `CONFIG GET appendonly` and `save` (None when its
    user may not run CONFIG) or else its `INFO persistence`; None: it keeps every write."""
    lost = ("routing's queues, SLA timers, undelivered alerts and unpublished routing "
            "decisions")
    if config is not None:
        if config.get("appendonly") == "yes":
            return None
        if config.get("save"):
            return (f"Redis keeps only snapshots (save {config['save']}, appendonly no): a "
                    f"restart loses {lost} written since the last one")
        return f"Redis has no persistence (appendonly no, no save): a restart loses {lost}"
    if "aof_enabled" not in info:
        return UNKNOWN
    if int(info["aof_enabled"]):
        return None
    return (f"Redis has no append-only file (aof_enabled:0): a restart loses {lost} written "
            "since its last snapshot, if it takes any")


async def redis_persistence(redis: Redis) -> tuple[str | None, str | None]:
    """(the server's run id if it may be read, the warning to give)."""
    try:
        config: dict[str, str] | None = {
            _text(name): _text(value)
            for name, value in (await redis.config_get("appendonly")).items()
        } | {_text(name): _text(value) for name, value in (await redis.config_get("save")).items()}
    except ResponseError:  # refused to the user (ACL)
        config = None
    try:
        info: dict[str, Any] = await redis.info("persistence")
        run_id: str | None = _text((await redis.info("server"))["run_id"])
    except ResponseError:
        info, run_id = {}, None
    return run_id, persistence_warning(config, info)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
