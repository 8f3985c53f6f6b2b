"""The scoring stage, as plain functions over a table-like mapping.

Messages on the `events` topic are keyed by prospect (`Event.prospect.key`: the email, else
`anon:<anonymous id>`), so each prospect's messages reach one partition in order:

- `event`: a canonical event to score;
- `claim`: sent to an anonymous visitor's key by the prospect it identified as;
- `absorb`: the visitor's state, sent back by the anonymous key in answer to a claim.

Decays due on a partition are run by its owner between messages (`run_due_decays`).

Identification without losing order: when a prospect's event carries an anonymous id it has
not absorbed yet, the prospect parks that event (and any that follow) and claims the
visitor. The anonymous key has by then seen every earlier anonymous event, because they were
mapped before the identifying one; it hands its state over and remembers where the visitor
went (later anonymous events are forwarded there). The prospect merges the state, then
scores the parked events in order. `leadscore replay` makes the same merge at the same
point, so live and replay decide alike.

Each table entry is a key's state *and* the outbox of its last change (`decisions` and
`forwards`). The worker never publishes decisions itself; `streams.outbox` publishes them
from the table's changelog, so a change and what it decided become durable in one record.

After a crash, work since the last commit is done again, and each entry knows how far it
got, so a repeat is recognised however many events it spans:
- a message read again from `events` is at or before the entry's `offset`, the `events`
  offset of the last message applied to the key: skipped (its change, and so its decisions,
  survived in the changelog); one whose change was lost is after it, and applied again;
- a raw record mapped again, or a changelog record whose forwards the outbox publishes
  again, makes second copies of its messages, at new `events` offsets. Each copy carries the
  position of the record it came from (`origin`), and an entry remembers the last position
  applied from each raw or changelog partition: a copy at or before it is skipped.
The engine's remembered event ids (a bounded number per prospect) catch the rest: an event
that a source itself delivers twice.
No decision is lost and none is made twice.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime
from typing import Any, Literal, TypedDict

import orjson

from leadscore.decisions import ANON_PREFIX, Decision
from leadscore.occurrences import Occurrence, occurrence_of
from scoring_rules import ProspectState, RuleSet, advance, merge, next_due
from scoring_rules.engine import apply_occurrence
from streams.due_index import DueIndex

#: Anonymous ids remembered per prospect, so a repeated identify does not claim again.
MAX_LINKS = 32

class Message(TypedDict, total=False):
    kind: Literal["event", "claim", "absorb"]
    event: dict[str, Any]
    #: The record this message was made from, when it came from one: "<topic>/<partition>"
    #: of a raw topic or of the changelog, and [offset, index among the record's messages].
    origin: tuple[str, list[int]]
    into: str  # claim: the prospect claiming the visitor
    source: str  # absorb: the anonymous key the state comes from
    state: dict[str, Any] | None  # absorb


class Entry(TypedDict):
    state: dict[str, Any] | None
    links: list[str]  # anonymous keys absorbed into this prospect
    moved_to: str | None  # set on an anonymous key once its visitor identified
    awaiting: str | None  # the anonymous key claimed, while events are parked
    pending: list[dict[str, Any]]  # events parked until `awaiting` answers
    decisions: list[Decision]  # outbox: decisions of the last change
    forwards: list[tuple[str, Message]]  # outbox: messages to send on `events`
    offset: int  # the `events` offset of the last message applied (-1: none or unknown)
    #: When that message reached leadscore (its Kafka timestamp, ms): the outbox stamps the
    #: decisions it made with it, so speed to lead is measured from the trigger's arrival.
    received: int | None
    origins: dict[str, list[int]]  # by raw or changelog partition, the last position applied


Table = MutableMapping[str, Entry]
#: Where a record was read: "<topic>/<partition>" and its offset there.
Position = tuple[str, int]


def position_of(record: Any) -> Position:
    """A Kafka record's position (anything with `topic`, `partition` and `offset`)."""
    return f"{record.topic}/{record.partition}", record.offset


def _origin(position: Position, number: int) -> tuple[str, list[int]]:
    """The `origin` of the `number`th message made from the record at `position`."""
    partition, offset = position
    return partition, [offset, number]


def event_message(
    event: dict[str, Any], position: Position | None = None, number: int = 0
) -> Message:
    """An event to score; `position` is that of the raw record it was mapped from, of which
    it is the `number`th event."""
    message: Message = {"kind": "event", "event": event}
    if position is not None:
        message["origin"] = _origin(position, number)
    return message


def handle(
    rules: RuleSet, table: Table, index: DueIndex, key: str, message: Message,
    offset: int | None = None, received: int | None = None,
) -> datetime | None:
    """Apply one message of `key`, read at `offset` of its `events` partition, writing each
    changed entry to `table`; returns the event's time when the message is an event. Without
    an offset (a message that never went through Kafka) only the engine's remembered ids
    recognise a repeat. A message no stage of ours writes raises a ValueError and changes
    nothing."""
    kind = _checked_kind(key, message)
    # Checked first: a forwarded or parked event is scored later, among others, where
    # failing would leave a prospect waiting for ever. This is the only check an event
    # gets here: the map stage made it with the model, and `occurrence_of` reads such an
    # event without pydantic (and anything else with it).
    event = occurrence_of(message["event"]) if kind == "event" else None
    occurred = datetime.fromtimestamp(event[2], UTC) if event is not None else None
    entry = _fresh(table.get(key))
    if offset is not None:
        if offset <= entry["offset"]:
            return occurred  # read again after a crash: applied, and its change is durable
        entry["offset"] = offset
    entry["received"] = received
    if "origin" in message:
        partition, position = message["origin"]
        if position <= entry["origins"].get(partition, [-1]):
            return occurred  # a raw record mapped again, or a forward published again
        entry["origins"] = {**entry["origins"], partition: position}
    scored: ProspectState | None = None  # the new state, when this message made one
    if event is not None:
        scored = _on_event(rules, entry, key, message["event"], event)
    elif kind == "claim":
        _hand_over(entry, key, message["into"])
    elif kind == "absorb":
        if entry["awaiting"] != message["source"]:
            return None  # a repeat of an answer already taken
        entry["awaiting"] = None
        if message["state"] is not None:
            scored = _merge(rules, entry, key, ProspectState.from_dict(message["state"]))
        parked, entry["pending"] = entry["pending"], []
        for payload in parked:
            scored = _on_event(rules, entry, key, payload, occurrence_of(payload)) or scored
    _store(rules, table, index, key, entry, scored)
    return occurred


def _checked_kind(key: str, message: Message) -> str:
    """The message's kind, once its shape is checked; a ValueError for one that no stage
    of ours writes (the processor sets it aside), so a malformed hand-over never moves or
    parks a prospect."""
    kind = message.get("kind") if isinstance(message, dict) else None
    anonymous = key.startswith(ANON_PREFIX)
    origin = message.get("origin", ("", [0])) if isinstance(message, dict) else None
    if not (isinstance(origin, list | tuple) and len(origin) == 2 and isinstance(origin[0], str)
            and isinstance(origin[1], list) and all(type(n) is int for n in origin[1])):
        kind = None
    if kind == "event" and isinstance(message.get("event"), dict):
        return kind
    if kind == "claim" and anonymous and _is_key(message.get("into")):
        return kind
    if (kind == "absorb" and not anonymous and isinstance(message.get("state"), dict | None)
            and _is_key(message.get("source"), ANON_PREFIX)):
        return kind
    raise ValueError(f"not an events message for {'an anonymous' if anonymous else 'a'} key: "
                     f"kind {kind!r} with keys {sorted(message)[:10]}"
                     if isinstance(message, dict) else "not an events message: not an object")


def _is_key(value: Any, prefix: str = "") -> bool:
    return isinstance(value, str) and value.startswith(prefix) and len(value) > len(prefix)


def _on_event(
    rules: RuleSet, entry: Entry, key: str, payload: dict[str, Any], event: Occurrence
) -> ProspectState | None:
    """Score, park or forward one event (`payload`, validated as `event`); return the new
    state if it was scored."""
    if entry["moved_to"]:
        entry["forwards"].append((entry["moved_to"], event_message(payload)))
        return None
    if entry["awaiting"]:
        entry["pending"].append(payload)
        return None
    email, anonymous_id = event[4], event[5]
    if email and anonymous_id and ANON_PREFIX + anonymous_id not in entry["links"]:
        visitor = ANON_PREFIX + anonymous_id
        entry["links"] = [*entry["links"], visitor][-MAX_LINKS:]
        entry["awaiting"] = visitor
        entry["pending"].append(payload)
        entry["forwards"].append((visitor, {"kind": "claim", "into": key}))
        return None
    state, decisions = apply_occurrence(rules, _state(entry), event, event[2])
    entry["state"] = state.to_dict()
    entry["decisions"].extend(decisions)
    return state


def _merge(rules: RuleSet, entry: Entry, key: str, visitor: ProspectState) -> ProspectState:
    """Fold the visitor in at the time of the identifying event (the first parked one)."""
    at = datetime.fromtimestamp(occurrence_of(entry["pending"][0])[2], UTC)
    state, decisions = merge(rules, _state(entry), visitor, key, at)
    entry["state"] = state.to_dict()
    entry["decisions"].extend(decisions)
    return state


def _hand_over(entry: Entry, key: str, into: str) -> None:
    """Give an identified visitor's state to the prospect `into`; forward what comes later."""
    answer: Message = {"kind": "absorb", "source": key, "state": entry["state"]}
    entry["forwards"].append((into, answer))
    entry["state"] = None
    entry["moved_to"] = into


def run_due_decays(
    rules: RuleSet, table: Table, index: DueIndex, now: datetime
) -> list[tuple[str, Exception]]:
    """Decay every prospect of this partition that is due by `now`, and only those; returns
    the keys whose decay failed, with the error (a bug: one prospect must not stop the
    others' decays; it is not tried again until its next change reschedules it).

    A prospect waiting for a visitor's state is left for later: its parked events come
    before `now`, and decaying first would score them out of order.
    """
    failed = []
    for key in index.pop_due(now):
        try:
            _decay(rules, table, index, key, now)
        except Exception as error:
            failed.append((key, error))
    return failed


def _decay(rules: RuleSet, table: Table, index: DueIndex, key: str, now: datetime) -> None:
    entry = _fresh(table.get(key))
    state = _state(entry)
    if state is None:
        return
    if entry["awaiting"]:
        index.schedule(key, now)
        return
    state, entry["decisions"] = advance(rules, state, now)
    entry["state"] = state.to_dict()
    _store(rules, table, index, key, entry, state)


def rebuild_index(
    rules: RuleSet, table: Table, keys: list[str]
) -> tuple[DueIndex, list[tuple[str, Exception]]]:
    """Index `keys` by due time: done once per partition after a (re)assignment. Returns
    the index, and the keys whose stored entry cannot be read, with the error: they are
    left out (their events are set aside when scored), so one bad changelog record cannot
    stop a worker from taking its partition, again at every restart."""
    index = DueIndex()
    failed = []
    for key in keys:
        try:
            entry = table.get(key)
            index.schedule(key, _due(rules, key, _state(entry) if entry else None))
        except Exception as error:
            failed.append((key, error))
    return index, failed


def outbox(
    entry: Entry | None, position: Position | None = None
) -> Iterator[tuple[str, str, Any]]:
    """What a changelog entry asks to publish: ("decision", key, d) and ("forward", key, m).
    Given the entry's changelog `position`, each forward carries it as its `origin`, so a
    forward published again is recognised (`handle`)."""
    if not entry:
        return
    for decision in entry.get("decisions", ()):
        yield "decision", decision["prospect"], decision
    for number, (target, message) in enumerate(entry.get("forwards", ())):
        if position is None:
            yield "forward", target, message
        else:
            yield "forward", target, {**message, "origin": _origin(position, number)}


def _empty() -> Entry:
    """The entry of a key never seen (new lists and dicts each time: entries are changed in
    place)."""
    return {"state": None, "links": [], "moved_to": None, "awaiting": None, "pending": [],
            "decisions": [], "forwards": [], "offset": -1, "origins": {}, "received": None}


#: Fields written even when empty: a record always says the state (null: none yet) and
#: how far its key got in `events`.
_KEPT = frozenset(("state", "offset"))


def encode_entry(entry: Entry) -> bytes:
    """The entry as its changelog record (and what a table stores): JSON, without the fields
    that hold nothing (most entries have no links, parked events or forwards)."""
    return orjson.dumps({name: value for name, value in entry.items()
                         if value or name in _KEPT})


def decode_entry(value: bytes) -> Entry:
    """An entry from its changelog record (of this version or an older one)."""
    entry = _empty()
    entry.update(orjson.loads(value))
    return entry


def _fresh(entry: Entry | None) -> Entry:
    """A working copy of `entry` with an empty outbox (the last one is already durable)."""
    if entry is None:
        return _empty()
    # (An entry an older version stored in RocksDB may lack `offset`, `origins`, `received`.)
    return {**_empty(), **entry, "pending": list(entry["pending"]), "decisions": [],
            "forwards": [], "received": None}


def _state(entry: Entry) -> ProspectState | None:
    return None if entry["state"] is None else ProspectState.from_dict(entry["state"])


def _store(
    rules: RuleSet, table: Table, index: DueIndex, key: str, entry: Entry,
    scored: ProspectState | None,
) -> None:
    """Write `entry`; reschedule its decay when it has a new state or none at all (an entry
    whose events were parked or forwarded keeps its state, and so its due time)."""
    table[key] = entry
    if entry["state"] is None or scored is not None:
        index.schedule(key, _due(rules, key, scored))


def _due(rules: RuleSet, key: str, state: ProspectState | None) -> datetime | None:
    """When the timer should next decay `key`. Never for an anonymous visitor: their points
    count only once they identify, and the merge decays them up to that moment; a timer
    decaying them meanwhile could run ahead of the identifying event."""
    if state is None or key.startswith(ANON_PREFIX):
        return None
    return next_due(rules, state)
