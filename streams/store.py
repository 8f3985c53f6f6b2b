"""The prospect table of one `events` partition, and how a worker gets it back.

The durable copy of every table is its changelog topic (`<app_id>-prospects-changelog`,
compacted, partition for partition with `events`): each change is written there before the
event that made it is committed. A worker that takes a partition over restores its table
from the changelog: all of it with the memory store; with RocksDB, only what came after the
changelog offset the store recorded last.

Writes are staged while a batch is processed and reach the store only once the changelog
has acknowledged them (`Table.flush`). A local store is thus never ahead of the changelog:
if it were, a crash could leave it holding a change whose decisions were never published,
and the re-delivered event would then be skipped as already applied.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any, cast

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from leadscore.kafka_security import aiokafka_security
from leadscore.settings import Settings
from streams.scoring import Entry, decode_entry, encode_entry

log = logging.getLogger("leadscore.worker")

class Table(MutableMapping[str, Entry]):
    """One partition's entries: a store of their changelog records, plus the changes of the
    batch being processed.

    The store holds each entry as its changelog record's bytes (`encode_entry`): nothing
    is serialised twice, a restore copies records without reading them into objects, and a
    million stored entries are a million bytes objects, which the cycle collector never
    walks (as dicts, its passes over them cost a third of the scoring time)."""

    def __init__(self, store: MutableMapping[str, Any], offset_file: Path | None) -> None:
        self._store = store
        self._staged: dict[str, Entry] = {}
        self._changes: list[tuple[str, Entry]] = []
        #: The changelog record of each staged key's last change: what `flush` stores.
        self._written: dict[str, bytes] = {}
        self._offset_file = offset_file
        #: The last changelog offset the store holds (-1: none).
        self.offset = _read_offset(offset_file)

    def __getitem__(self, key: str) -> Entry:
        entry: Entry | None = self.get(key)
        if entry is None:
            raise KeyError(key)
        return entry

    def get(self, key: str, default: Any = None) -> Any:
        """`__getitem__` without raising for a key never seen (most keys, at first)."""
        staged = self._staged.get(key)
        if staged is not None:
            return staged
        value = self._store.get(key)
        if value is None:
            return default
        # A RocksDB store of an older version holds entries as objects.
        return decode_entry(value) if type(value) is bytes else value

    def __setitem__(self, key: str, entry: Entry) -> None:
        self._staged[key] = entry
        self._changes.append((key, entry))

    def __delitem__(self, key: str) -> None:
        raise TypeError("prospect entries are never deleted")

    def __iter__(self) -> Iterator[str]:
        yield from self._staged
        # Rdict has no __iter__ (iterating it would index it with 0, 1, ...): ask for keys.
        keys = self._store.keys()
        yield from (key for key in keys if key not in self._staged)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def take_changes(self) -> list[tuple[str, bytes]]:
        """The changes staged since the last call, in order, as changelog records."""
        changes = [(key, encode_entry(entry)) for key, entry in self._changes]
        self._changes = []
        self._written.update(changes)
        return changes

    def discard(self, key: str) -> None:
        """Drop the staged changes of `key`: it reads as the store holds it again."""
        self._staged.pop(key, None)
        self._written.pop(key, None)

    def flush(self, offset: int) -> None:
        """Store the staged changes, now in the changelog up to `offset`."""
        for key in self._staged:
            self._store[key] = self._written[key]
        self._staged.clear()
        self._written.clear()
        self._record_offset(offset)

    def restore(self, key: str, value: bytes | None, offset: int) -> None:
        """Apply one changelog record read back at restore time (a ValueError if it is not
        an entry's record)."""
        if value is not None:
            if type(orjson.loads(value)) is not dict:
                raise ValueError("not a JSON object")
            self._store[key] = value
        self.offset = offset

    def restored(self) -> None:
        """Remember on disk how far a restore read: a worker restarted before it has
        processed anything then reads only what came after, not the whole changelog again."""
        self._write_offset()

    def _record_offset(self, offset: int) -> None:
        if offset <= self.offset:
            return
        self.offset = offset
        self._write_offset()

    def _write_offset(self) -> None:
        if self._offset_file is not None:
            partial = self._offset_file.with_suffix(".partial")
            partial.write_text(str(self.offset))
            os.replace(partial, self._offset_file)

    def close(self) -> None:
        close = getattr(self._store, "close", None)
        if close is not None:
            close()


def open_table(settings: Settings, partition: int) -> Table:
    """An empty memory table, or the RocksDB one this worker left on disk for `partition`."""
    if settings.table_store.startswith("memory://"):
        return Table({}, None)
    from rocksdict import Rdict  # only needed, and only installed, for RocksDB stores

    directory = Path(settings.data_dir) / settings.app_id / f"prospects-{partition}"
    directory.mkdir(parents=True, exist_ok=True)
    store = cast(MutableMapping[str, Any], Rdict(str(directory / "db")))
    return Table(store, directory / "changelog.offset")


async def restore_tables(
    settings: Settings, changelog: str, tables: dict[int, Table]
) -> int:
    """Bring each table up to the end of its changelog partition; returns records read."""
    if not tables:
        return 0
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False,
        isolation_level="read_committed", **aiokafka_security(settings),
    )
    await consumer.start()
    try:
        by_tp = {TopicPartition(changelog, p): table for p, table in tables.items()}
        consumer.assign(list(by_tp))
        ends = await consumer.end_offsets(list(by_tp))
        for tp, table in by_tp.items():
            consumer.seek(tp, table.offset + 1)
        behind = {tp for tp, table in by_tp.items() if table.offset + 1 < ends[tp]}
        read = 0
        while behind:
            batches = await consumer.getmany(*behind, timeout_ms=500, max_records=10_000)
            for tp, records in batches.items():
                for record in records:
                    try:
                        by_tp[tp].restore(record.key.decode(), record.value, record.offset)
                    except (AttributeError, ValueError) as error:  # no key, or not JSON
                        # The outbox sets the same record aside; the table goes on without it.
                        log.error("an unreadable changelog record was skipped", extra={
                            "position": f"{tp.topic}/{tp.partition}@{record.offset}",
                            "error": repr(error)})
                read += len(records)
            behind = {tp for tp in behind if await consumer.position(tp) < ends[tp]}
        for table in tables.values():
            table.restored()
        return read
    finally:
        await consumer.stop()


def _read_offset(path: Path | None) -> int:
    if path is None or not path.exists():
        return -1
    return int(path.read_text())
