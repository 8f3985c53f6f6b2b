"""The worker's ingest endpoint: `POST /v1/events/{source}`, a thin shell over `streams.ingest`.

A 202 is sent only after Kafka has acknowledged every record, so an accepted event is never
lost with the worker; the sender's retry covers anything before that.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import faust

from leadscore.settings import Settings
from streams import metrics
from streams.ingest import ingest

if TYPE_CHECKING:
    from streams.app import Pipeline


def mount_ingest(pipeline: Pipeline, settings: Settings) -> None:
    limit = settings.ingest_max_bytes

    @pipeline.app.page("/v1/events/{source}")
    class IngestView(faust.web.View):
        async def post(self, request: Any, source: str) -> Any:
            body = await _read_at_most(request, limit + 1)
            result = ingest(source, body, request.headers, settings, pipeline.sources)
            if result.status == 202:
                topic = pipeline.topics[f"raw.{source}"]
                acks = [await topic.send(key=r.key, value=r.value) for r in result.records]
                await asyncio.gather(*acks)
            label = source if source in pipeline.sources else "unknown"
            metrics.INGESTED.labels(label, str(result.status)).inc()
            return self.json(result.body, status=result.status)


async def _read_at_most(request: Any, size: int) -> bytes:
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
