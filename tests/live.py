"""Running real `leadscore worker` processes in tests, and reading what they publish.

Each test gets its own topic prefix and application id (from the `unique` fixture), so many
workers share the session's broker without seeing each other's topics or consumer groups.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition

from app.worker import prepare_topics, spawn_worker
from leadscore.infra.broker import Broker
from leadscore.infra.processes import free_port, log_tail, spawn, stop, wait_until_ready
from leadscore.infra.redis_local import redis_answers, redis_binary
from leadscore.settings import Settings


def live_settings(broker: Broker, unique: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for an isolated pipeline on the session broker."""
    values: dict[str, Any] = {
        "kafka_bootstrap_servers": broker.bootstrap_servers,
        "topic_prefix": f"{unique}.",
        "app_id": unique,
        "data_dir": tmp_path / "data",
        "decay_tick_seconds": 0,
        **overrides,
    }
    return Settings(**values)


@dataclass
class Worker:
    process: Popen[bytes]
    log_path: Path
    base_url: str

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextlib.contextmanager
def running_worker(
    settings: Settings, log_path: Path, ready_timeout: float = 90
) -> Iterator[Worker]:
    """Start a worker with `settings`; yield once it has its partitions; stop it on exit."""
    settings = settings.model_copy(update={"web_port": free_port()})
    prepare_topics(settings)
    process = spawn_worker(settings, log_path)
    worker = Worker(process, log_path, f"http://127.0.0.1:{settings.web_port}")
    try:
        wait_for(lambda: '"msg":"ready"' in worker.log(), ready_timeout,
                 lambda: f"worker not ready; log tail:\n{log_tail(log_path)}",
                 process=process)
        yield worker
    finally:
        stop(process)


def wait_for(
    condition: Callable[[], bool], timeout: float, message: Callable[[], str],
    process: Popen[bytes] | None = None,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"process exited with {process.returncode}: {message()}")
        if time.monotonic() > deadline:
            raise AssertionError(message())
        time.sleep(0.2)


class TopicReader:
    """Reads a topic from its start and keeps every record read, parsed as JSON.

    Records are counted by reading them, not from end offsets: the embedded Tansu broker
    numbers offsets per batch, so offsets say nothing about how many records there are.
    """

    def __init__(self, bootstrap_servers: str, topic: str) -> None:
        self.topic = topic
        self.records: list[Any] = []
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers,
                                       auto_offset_reset="earliest", enable_auto_commit=False)
        partitions = self._consumer.partitions_for_topic(topic) or set()
        self._consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        self._consumer.seek_to_beginning()

    def poll(self, timeout_ms: int = 200) -> int:
        """Read what has arrived; return how many records have been read in all."""
        for batch in self._consumer.poll(timeout_ms=timeout_ms).values():
            self.records.extend(orjson.loads(record.value) for record in batch)
        return len(self.records)

    def wait_for(
        self, count: int, timeout: float, worker: Worker | None = None,
        where: Callable[[Any], bool] = lambda record: True, distinct: bool = False,
    ) -> list[Any]:
        """Read until at least `count` records match `where`, then what follows within a
        second; return the matching records.

        With `distinct`, exact repeats count once: after a crash a worker publishes some
        records again, and counting those would stop the wait before the last ones arrive.
        """

        def matching() -> list[Any]:
            return [record for record in self.records if where(record)]

        def counted() -> int:
            if not distinct:
                return len(matching())
            return len({orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in matching()})

        wait_for(lambda: self.poll() >= count and counted() >= count, timeout,
                 lambda: f"{self.topic} has {counted()} of {count} records"
                 + (f"; worker log tail:\n{log_tail(worker.log_path)}" if worker else ""))
        read = len(self.records)
        while self.poll(timeout_ms=1000) > read:
            read = len(self.records)
        return matching()

    def close(self) -> None:
        self._consumer.close()


@contextlib.contextmanager
def reading(bootstrap_servers: str, topic: str) -> Iterator[TopicReader]:
    reader = TopicReader(bootstrap_servers, topic)
    try:
        yield reader
    finally:
        reader.close()


def read_topic(bootstrap_servers: str, topic: str, idle_seconds: float = 2.0) -> list[Any]:
    """Every record of `topic` from the start, stopping after `idle_seconds` of nothing new."""
    with reading(bootstrap_servers, topic) as reader:
        before = -1
        while reader.poll(timeout_ms=int(idle_seconds * 1000)) != before:
            before = len(reader.records)
        return reader.records


def wait_for_records(bootstrap_servers: str, topic: str, count: int, timeout: float,
                     worker: Worker | None = None, distinct: bool = False) -> list[Any]:
    """Wait until `topic` holds at least `count` records (`distinct`: exact repeats counted
    once); return them all."""
    with reading(bootstrap_servers, topic) as reader:
        return reader.wait_for(count, timeout, worker, distinct=distinct)


def http_post(url: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, orjson.loads(error.read() or b"null")


@dataclass
class RedisServer:
    """A Redis of a test's own, persistent (every write on disk before it answers), which
    the test can kill and start again on the same port and data."""

    workdir: Path
    port: int
    process: Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = redis_binary()
        self.process = spawn(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", self.workdir],
            self.workdir / "redis.log")
        wait_until_ready(self.process, lambda: redis_answers(self.url), name=binary.name,
                         log_path=self.workdir / "redis.log", timeout=20)

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


@contextlib.contextmanager
def persistent_redis(workdir: Path) -> Iterator[RedisServer]:
    workdir.mkdir(parents=True, exist_ok=True)
    server = RedisServer(workdir, free_port())
    server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            stop(server.process)
