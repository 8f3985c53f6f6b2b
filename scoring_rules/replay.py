"""Offline replay: past events through the engine, with identity merges, as live does it.

`replay` takes parsed events; `replay_lines` reads JSON lines itself with a fast path
(orjson plus the few checks the canonical model makes) and falls back to the pydantic
model for anything unusual, so a line is accepted or rejected exactly as `Event` would.
Both score with the engine's evaluators (what `engine.apply_event` calls) and merge with
`engine.merge`, as live does.
"""

from __future__ import annotations

import gc
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from itertools import chain, islice
from operator import itemgetter
from typing import BinaryIO, cast

import orjson
from pydantic import ValidationError

from leadscore.decisions import ANON_PREFIX, Decision, rejected
from leadscore.events import (
    Event,
    RejectedLine,
    describe_error,
    parse_event,
)
from leadscore.occurrences import Occurrence, occurrence, read_occurrence
from scoring_rules.compile import RuleSet
from scoring_rules.engine import advance, evaluator, merge
from scoring_rules.state import ProspectState

#: How many decisions a replay makes before handing them on (few enough that they are
#: still in the processor's cache when they are written).
CHUNK = 32
#: Decisions are written in batches: one write per decision would dominate a replay. A
#: small batch stays in the processor's cache while it is joined and written (orjson
#: gives each decision a buffer of about 1 kB): 32 lines made 6 fewer cache misses per
#: event than 256 (cachegrind), and 256 made 17 fewer than 4096.
WRITE_BATCH = 32


@dataclass
class ReplayEnd:
    """The last item `replay` yields: final states by prospect key, and counts."""

    states: dict[str, ProspectState]
    events: int = 0
    rejected: int = 0
    now: datetime | None = None
    #: Anonymous ids that identified, with the prospect key they merged into.
    aliases: dict[str, str] = field(default_factory=dict)


def replay(
    rules: RuleSet, events: Iterable[Event | RejectedLine], now: datetime | None = None
) -> Iterator[Decision | ReplayEnd]:
    """Decisions for `events` in order, then a `ReplayEnd`. Decays run up to `now`
    (default: the latest event time, so a replay never depends on when it is run)."""
    return chain.from_iterable(_replay(rules, (_occurrence(e) for e in events), now))


def replay_lines(
    rules: RuleSet, lines: Iterable[bytes], now: datetime | None = None
) -> Iterator[Decision | ReplayEnd]:
    """The same from raw JSON lines (1-based line numbers in rejections; blanks skipped)."""
    return chain.from_iterable(_replay(rules, read_lines(lines), now))


def read_lines(lines: Iterable[bytes]) -> Iterator[Occurrence | RejectedLine]:
    loads, read = orjson.loads, read_occurrence
    for number, raw in enumerate(lines, start=1):
        try:
            fast = read(loads(raw))
        except orjson.JSONDecodeError:
            fast = None
        if fast is not None:
            yield fast
        elif raw.strip():
            try:
                yield _occurrence(parse_event(raw))
            except ValidationError as error:
                yield RejectedLine(line=number, error=describe_error(error))


def _occurrence(event: Event | RejectedLine) -> Occurrence | RejectedLine:
    return event if isinstance(event, RejectedLine) else occurrence(event)


def _replay(
    rules: RuleSet, items: Iterable[Occurrence | RejectedLine], now: datetime | None
) -> Iterator[Sequence[Decision | ReplayEnd]]:
    """The decisions in lists of about `CHUNK` (most events make one or none: handing
    them on one by one, or event by event, costs more than making them); last, the
    `ReplayEnd`."""
    states: dict[str, ProspectState] = {}
    end = ReplayEnd(states)
    aliases = end.aliases
    evaluators = rules.evaluators
    events = 0
    latest = -math.inf
    decisions: list[Decision] = []
    for item in items:
        if type(item) is not tuple:
            assert isinstance(item, RejectedLine)
            end.rejected += 1
            decisions.append(rejected(rules.version, item.line, item.error))
            continue
        events += 1
        event_id, event_type, t, at, email, anonymous_id, props = item
        if t > latest:  # noqa: PLR1730 (`max` is a call, paid per event)
            latest = t
        if email:
            key = email.strip().lower()
            if anonymous_id and aliases.get(anonymous_id) != key:
                aliases[anonymous_id] = key
                visitor = states.pop(ANON_PREFIX + anonymous_id, None)
                if visitor is not None:
                    merged, merged_decisions = merge(rules, states.get(key), visitor, key,
                                                     datetime.fromtimestamp(t, UTC))
                    states[key] = merged
                    decisions += merged_decisions
        else:
            key = aliases.get(anonymous_id or "") or ANON_PREFIX + (anonymous_id or "")
        state = states.get(key)
        if state is None:
            state = states[key] = ProspectState.new(key)
        # `apply_event`, with its look-up of the event type's evaluator written out
        evaluate = evaluators.get(event_type) or evaluator(rules, event_type)
        evaluate(state, event_id, event_type, t, props, at, decisions)
        if len(decisions) >= CHUNK:
            yield decisions
            decisions = []
    end.events = events
    if now is None and events:
        now = datetime.fromtimestamp(latest, UTC)
    end.now = now
    if now is not None:
        # Anonymous visitors are left as they are, as the live decay timer leaves them: their
        # points count once they identify, and the merge decays them up to that moment.
        for key, state in states.items():
            if not key.startswith(ANON_PREFIX):
                decisions += advance(rules, state, now)[1]
    yield decisions
    yield [end]


def write_decisions(
    items: Iterable[Decision | ReplayEnd], out: BinaryIO
) -> tuple[ReplayEnd, Counter[str]]:
    """Write decisions as JSON lines to `out`; returns the `ReplayEnd` (which a replay
    yields last) and counts by type.

    Decisions are taken, counted and written `WRITE_BATCH` at a time by C loops
    (`islice`, `Counter.update`, `map`), not one Python step per decision.

    Python's cycle collector is paused meanwhile: a replay builds a state for every
    prospect, and the collector would walk all of them again and again (a million events
    paid over a second for it) to find no cycles, as states hold none. Memory is still
    freed as usual, by reference counting.
    """
    kinds: Counter[str] = Counter()
    end = ReplayEnd({})
    pending = iter(items)
    collecting = gc.isenabled()
    gc.disable()
    try:
        while batch := list(islice(pending, WRITE_BATCH)):
            last = batch[-1]
            if isinstance(last, ReplayEnd):
                end = last
                batch.pop()
            decisions = cast(list[Decision], batch)
            kinds.update(map(_kind, decisions))
            out.write(b"".join(map(_json_line, decisions)))
    finally:
        if collecting:
            gc.enable()
    return end, kinds


_kind = itemgetter("type")
_json_line = partial(orjson.dumps, option=orjson.OPT_APPEND_NEWLINE)
