"""A minimal Faust app for the stack smoke test, run as a worker subprocess:

    python -m tests.wordcount_app worker -l info --without-web

It counts words per message key in a table and publishes every new count. Everything
that must differ between test runs (broker, app id, topics, data dir) comes from the
environment, so concurrent runs never share a consumer group or a topic.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import faust

app = faust.App(
    os.environ["WORDCOUNT_APP_ID"],
    broker=f"kafka://{os.environ['WORDCOUNT_BROKER']}",
    store="memory://",
    datadir=os.environ["WORDCOUNT_DATADIR"],
    topic_partitions=int(os.environ["WORDCOUNT_PARTITIONS"]),
    # Short group timeouts: Tansu holds a group join open for a share of them.
    broker_session_timeout=6.0,
    broker_heartbeat_interval=1.0,
    broker_max_poll_interval=10.0,
)
lines = app.topic(os.environ["WORDCOUNT_SOURCE"], key_type=str, value_type=str)
counts_out = app.topic(os.environ["WORDCOUNT_OUTPUT"], key_type=str)  # JSON values
counts = app.Table("counts", default=int)


@app.agent(lines)
async def count_words(stream: faust.StreamT[str]) -> AsyncIterator[None]:
    # The table key includes the message key, so each count stays in the partition of
    # its source message, as Faust tables require without a repartition.
    async for key, text in stream.items():
        for word in text.split():
            table_key = f"{key}:{word}"
            counts[table_key] += 1
            await counts_out.send(key=table_key, value=counts[table_key])
        yield None


if __name__ == "__main__":
    app.main()
