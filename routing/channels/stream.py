"""A Redis stream per rep (`{app_id}:live:<rep id>`, `routing.keys.Keys.live`) for live
clients, such as a rep's page: each entry holds the alert's id and JSON. Clients drop
repeats by the id."""

from __future__ import annotations

import orjson
from redis.exceptions import RedisError

from routing.alerts import Alert, ChannelType, Context, Delivered, Outcome, Retry
from routing.keys import Keys

#: Entries kept per rep (older ones are trimmed).
KEEP = 1000


async def deliver(alert: Alert, context: Context) -> Outcome:
    try:
        await context.redis.xadd(Keys(context.prefix).live(alert["rep"]["id"]),
                                 {"id": alert["id"], "alert": orjson.dumps(alert)},
                                 maxlen=KEEP, approximate=True)
    except RedisError as error:
        return Retry(f"{type(error).__name__}: {error}")
    return Delivered()


channel = ChannelType("stream", deliver)
