"""The worker's web server: `POST /v1/events/{source}` (ingest) and `GET /metrics`.

Ingest is a thin shell over `streams.ingest`. A 202 is sent only after Kafka has
acknowledged every record, so an accepted event is never lost with the worker; the
sender's retry covers anything before that.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from aiohttp import web

from streams import metrics
from streams.ingest import ingest

if TYPE_CHECKING:
    from streams.processor import Pipeline


async def start_web(pipeline: Pipeline) -> web.AppRunner:
    """Serve on `web_host:web_port` until the returned runner is cleaned up."""
    settings = pipeline.settings
    limit = settings.ingest_max_bytes

    async def post_events(request: web.Request) -> web.Response:
        source = request.match_info["source"]
        body = await _read_at_most(request, limit + 1)
        result = ingest(source, body, request.headers, settings, pipeline.sources)
        if result.status == 202:
            topic = pipeline.topics[f"raw.{source}"]
            acks = [await pipeline.producer.send(topic, key=r.key, value=r.value)
                    for r in result.records]
            await asyncio.gather(*acks)
        label = source if source in pipeline.sources else "unknown"
        metrics.INGESTED.labels(label, str(result.status)).inc()
        return web.json_response(result.body, status=result.status)

    async def get_metrics(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": metrics.CONTENT_TYPE})

    app = web.Application()
    app.router.add_post("/v1/events/{source}", post_events)
    app.router.add_get("/metrics", get_metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.web_host, settings.web_port).start()
    return runner


async def _read_at_most(request: web.Request, size: int) -> bytes:
    """Read the body, stopping past `size` bytes, so an oversized upload is never buffered."""
    chunks: list[bytes] = []
    total = 0
    while total < size:
        chunk = await request.content.read(min(65536, size - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)
