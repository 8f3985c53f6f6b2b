"""The canonical event read fast: the fields the engine needs, as one plain tuple.

Validating an event with pydantic costs more than scoring it. Replay and the live scoring
stage read each event with `read_occurrence`: orjson's output plus the few checks the
`Event` model makes, for the common well-formed event; anything unusual goes to the model
(`occurrence_of`), so an event is accepted or refused exactly as `Event` would.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from leadscore.events import (
    EARLIEST_SECONDS,
    LATEST_SECONDS,
    MAX_DOMAIN_LENGTH,
    MAX_EMAIL_LENGTH,
    MAX_ID_LENGTH,
    Event,
    state_key,
)

#: The fields of a valid event the engine reads: (id, type, time in epoch seconds, the
#: time as `iso` writes it or None, email, anonymous id, properties). A plain tuple, not a
#: dataclass: one is made per event, and building and unpacking a tuple is cheaper.
Occurrence = tuple[str, str, float, str | None, str | None, str | None, dict[str, Any]]


_ACCOUNT_KEYS = frozenset(("domain",))

#: "MM:SSZ" -> seconds into the hour, for every valid minute and second: with `_HOURS`,
#: a canonical `2026-01-05T09:00:00Z` is read with two dict lookups instead of a parse.
_MINUTES = {f"{m:02d}:{s:02d}Z": m * 60 + s for m in range(60) for s in range(60)}
#: "2026-01-05T09:" -> epoch seconds of that hour, filled by `_learn_hour` the first time
#: each hour is seen.
_HOURS: dict[str, float] = {}


def _learn_hour(when: str) -> float | None:
    """Epoch seconds of the hour a `YYYY-MM-DDTHH:...` time starts with, checked with
    `datetime.fromisoformat` and remembered; None if it is not a valid hour."""
    if when[10] != "T" or when[4] != "-":
        return None
    try:
        moment = datetime.fromisoformat(when[:14] + "00:00+00:00")
    except ValueError:
        return None
    hour = moment.timestamp()
    if not EARLIEST_SECONDS <= hour < LATEST_SECONDS:
        return None  # the model refuses it, saying the range
    if len(_HOURS) > 100_000:
        _HOURS.clear()
    _HOURS[when[:14]] = hour
    return hour


def read_occurrence(data: Any) -> Occurrence | None:
    """A parsed JSON value as an event, without pydantic, when it is the common, well-formed
    event; None means "ask the model" (`occurrence_of`)."""
    if type(data) is not dict:
        return None
    event_id, event_type, when = data.get("id"), data.get("type"), data.get("occurred_at")
    prospect, account = data.get("prospect"), data.get("account")
    props = data.get("properties", {})
    # The keys counted are those of a canonical event (the first four must be set, as
    # checked next): a quicker test than `data.keys() <= {...}`.
    if len(data) != 4 + ("account" in data) + ("properties" in data):
        return None
    if not (type(event_id) is str and 0 < len(event_id) <= MAX_ID_LENGTH
            and type(event_type) is str and 0 < len(event_type) <= MAX_ID_LENGTH
            and type(when) is str and type(prospect) is dict
            and len(prospect) == ("email" in prospect) + ("anonymous_id" in prospect)
            and type(props) is dict
            and (account is None or (type(account) is dict and account.keys() <= _ACCOUNT_KEYS
                                     and type(account.get("domain", "")) is str))):
        return None
    email, anonymous_id = prospect.get("email"), prospect.get("anonymous_id")
    if not ((email is None or (type(email) is str and len(email) <= MAX_EMAIL_LENGTH))
            and (anonymous_id is None or (type(anonymous_id) is str
                                          and len(anonymous_id) <= MAX_ID_LENGTH))
            and (email or anonymous_id)
            and (account is None or len(account.get("domain") or "") <= MAX_DOMAIN_LENGTH)):
        return None
    if len(when) == 20:  # the canonical form `2026-01-05T09:00:00Z`?
        seconds = _MINUTES.get(when[14:])
        if seconds is not None:
            hour = _HOURS.get(when[:14])
            if hour is None:
                hour = _learn_hour(when)
            if hour is not None:  # `iso(t)` would write this very string: keep it
                return event_id, event_type, hour + seconds, when, email, anonymous_id, props
    if len(when) < 20 or when[10] != "T" or when[4] != "-":
        return None
    try:
        moment = datetime.fromisoformat(when)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    t = moment.timestamp()
    if not EARLIEST_SECONDS <= t < LATEST_SECONDS:
        return None
    return event_id, event_type, t, None, email, anonymous_id, props


def occurrence(event: Event) -> Occurrence:
    return (event.id, event.type, event.occurred_at.timestamp(), None, event.prospect.email,
            event.prospect.anonymous_id, event.properties)


def occurrence_of(data: Any) -> Occurrence:
    """`data` (a parsed JSON value) as an event; a pydantic `ValidationError` (a ValueError)
    saying what is wrong when it is not one."""
    return read_occurrence(data) or occurrence(Event.model_validate(data))


def prospect_key(occurrence: Occurrence) -> str:
    """The state key of the event's prospect."""
    return state_key(occurrence[4], occurrence[5])
