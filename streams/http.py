"""The worker's web server: `POST /v1/events/{source}` (ingest), `GET /metrics`, and the
probes `GET /healthz` and `GET /readyz` (`streams.health`).

Ingest is a thin shell over `streams.ingest`. A 202 is sent only after Kafka has
acknowledged every record, so an accepted event is never lost with the worker; the
sender's retry covers anything before that. A request's records are produced as one batch
to one partition, which the broker appends whole or not at all: a request that fails is
never half written.

A client is timed out (`ingest_read_timeout_seconds`): one that does not send its request
line and headers in that time is disconnected, one that does not send its body gets 408.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from streams import metrics
from streams.health import status
from streams.ingest import IngestResult, RawRecord, ingest
from streams.pipeline import Pipeline

log = logging.getLogger("leadscore.ingest")


Route = tuple[str, str, Callable[[web.Request], Awaitable[web.StreamResponse]]]


async def start_web(pipeline: Pipeline, more: Iterable[Route] = ()) -> web.AppRunner:
    """Serve on `web_host:web_port` until the returned runner is cleaned up; `more` are
    other areas' routes (method, path, handler), such as routing's queue API."""
    settings = pipeline.settings
    limit = settings.ingest_max_bytes
    timeout = settings.ingest_read_timeout_seconds

    async def post_events(request: web.Request) -> web.Response:
        source = request.match_info["source"]
        try:
            async with asyncio.timeout(timeout):
                body = await _read_at_most(request, limit + 1)
        except TimeoutError:
            result = IngestResult(408, error=f"the body did not arrive within {timeout} s")
        except (ValueError, RequestPayloadError, HttpProcessingError) as error:
            # e.g. a Content-Encoding the body is not in, or a broken chunked encoding
            result = IngestResult(400, error=f"the body could not be read: {error}")
        else:
            result = _decide(source, body, request, pipeline)
        if result.status == 202:
            assert result.topic is not None
            try:
                await produce_whole(pipeline.producer, result.topic, result.records)
            except KafkaError as error:
                log.warning("ingest: Kafka did not take the request; the sender should retry",
                            extra={"source": source, "error": repr(error)})
                result = IngestResult(503, error="Kafka did not acknowledge the events; "
                                                 "nothing was stored: send them again")
        label = source if source in pipeline.sources else "unknown"
        metrics.INGESTED.labels(label, str(result.status)).inc()
        headers = {"Retry-After": "5"} if result.status == 503 else None
        return web.json_response(result.body, status=result.status, headers=headers)

    async def get_metrics(request: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": metrics.CONTENT_TYPE})

    async def get_health(request: web.Request) -> web.Response:
        healthy, ready, problems = status(
            pipeline.health, time.monotonic(), settings.session_timeout_seconds,
            await _broker_answers(pipeline.producer))
        ok = ready if request.path == "/readyz" else healthy
        return web.json_response({"healthy": healthy, "ready": ready, "problems": problems,
                                  "warnings": list(pipeline.health.warnings.values())},
                                 status=200 if ok else 503)

    app = web.Application()
    app.router.add_post("/v1/events/{source}", post_events)
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/healthz", get_health)
    app.router.add_get("/readyz", get_health)
    for method, path, handler in more:
        app.router.add_route(method, path, handler)
    # The keep-alive timer also runs from a connection's start: a client that has not sent
    # a whole request line and headers by then is disconnected.
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=timeout)
    await runner.setup()
    await web.TCPSite(runner, settings.web_host, settings.web_port).start()
    return runner


def _decide(source: str, body: bytes, request: web.Request, pipeline: Pipeline) -> IngestResult:
    """`ingest`'s answer. A bug of ours on one request is logged and answered 503: the
    sender retries it later, when the fix may be deployed, instead of dropping it."""
    try:
        return ingest(source, body, request.headers, pipeline.settings, pipeline.sources,
                      now=time.time())
    except Exception as error:
        log.exception("ingest: a request could not be checked", extra={"source": source})
        return IngestResult(503, error=f"the request could not be checked ({type(error).__name__}"
                                       ", a fault of ours, logged): send it again later")


async def produce_whole(producer: AIOKafkaProducer, topic: str, records: list[RawRecord]) -> None:
    """Produce `records` as one batch on one partition (the first keyed record's), and wait
    for the acknowledgement: the broker appends a batch whole or not at all. The producer's
    `max_batch_size` must hold what `ingest` accepts (`message_max_bytes`)."""
    partitions = sorted(await producer.partitions_for(topic))
    key = next((record.key for record in records if record.key), None)
    batch = producer.create_batch()
    for record in records:
        if batch.append(key=record.key, value=record.value, timestamp=None) is None:
            raise ValueError("the records do not fit one batch; ingest should have said 413")
    batch.close()
    partition = DefaultPartitioner()(key, partitions, partitions)
    await (await producer.send_batch(batch, topic, partition=partition))


async def _broker_answers(producer: AIOKafkaProducer, timeout: float = 2.0) -> bool:
    """Whether a broker answers a metadata request within `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            await producer.client.fetch_all_metadata()
            return True
    except (TimeoutError, KafkaError):
        return False


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
