"""The canonical event: the one shape every source is mapped to before scoring.

Sources differ (a SendGrid webhook, a Segment `track` call, a CRM update); the scoring core
only ever sees this model, so a new source never touches the rules or the engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from leadscore.decisions import ANON_PREFIX

#: The event types the shipped rules and sources use, with their properties. Sources may
#: declare more (see `streams.sources`); the rule checker accepts both.
EVENT_TYPES: dict[str, str] = {
    "web.page_view": "a page view {url, visit_id}",
    "web.search": "a search that led to the site {query}",
    "email.open": "an email opened {campaign_id}",
    "email.click": "a link clicked in an email {campaign_id, url}",
    "email.bounce": "an email bounced {campaign_id, reason}",
    "email.unsubscribe": "the prospect unsubscribed {campaign_id}",
    "demo.watched": "a demo video watched {video_id}",
    "webinar.registered": "registered for a webinar {webinar_id}",
    "webinar.attended": "attended a webinar {webinar_id, minutes}",
    "content.downloaded": "content downloaded {asset_id, category}",
    "form.submitted": "a form submitted {form: contact_me | trial_request | ...}",
    "prospect.updated": "profile facts changed {name, title, lead_source, offer, company, country}",
    "prospect.reviewed": "a rep's manual review {approved}",
    "account.updated": "account facts changed {name, industry, employees, country}",
    "lead.outcome": "a rep's outcome for a lead {outcome: converted | disqualified | recycled}",
}


#: Event times leadscore accepts, from the Unix epoch up to (not including) 2200, UTC. Every
#: later step must represent a time it takes: epoch-second floats in the state, ISO text in
#: decisions, and due dates computed years later (rule durations are at most ten years).
#: A time outside (year 10000 in UTC, say) is refused where it enters, never mid-stream.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2200, 1, 1, tzinfo=UTC)
EARLIEST_SECONDS, LATEST_SECONDS = EARLIEST_TIME.timestamp(), LATEST_TIME.timestamp()
_TIME_RANGE = f"{EARLIEST_TIME:%Y-%m-%d} to {LATEST_TIME:%Y-%m-%d} UTC"
#: Longest ids: a prospect remembers its recent event ids, which bounds its state's size.
MAX_ID_LENGTH = 512
#: Longest email address (RFC 5321) and domain name (RFC 1035).
MAX_EMAIL_LENGTH, MAX_DOMAIN_LENGTH = 320, 253


def check_time(value: datetime) -> datetime:
    """`value` if it is within the accepted range; else a ValueError saying the range."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST_TIME <= utc < LATEST_TIME:
        raise ValueError(f"the time {value.isoformat()} is outside {_TIME_RANGE}")
    return value


def check_seconds(seconds: float) -> float:
    """Unix seconds within the accepted range, else a ValueError saying the range."""
    if not EARLIEST_SECONDS <= seconds < LATEST_SECONDS:
        raise ValueError(f"the Unix time {seconds} is outside {_TIME_RANGE}")
    return seconds


#: An aware datetime within the accepted range: for events and for the payload models of
#: sources, so a bad time is refused with the field's name.
EventTime = Annotated[AwareDatetime, AfterValidator(check_time)]


class ProspectRef(BaseModel):
    """Who did it. An email identifies a known prospect, an anonymous id a tracked visitor."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    email: str | None = Field(default=None, max_length=MAX_EMAIL_LENGTH)
    anonymous_id: str | None = Field(default=None, max_length=MAX_ID_LENGTH)

    @model_validator(mode="after")
    def _needs_an_identifier(self) -> ProspectRef:
        if not self.email and not self.anonymous_id:
            raise ValueError("a prospect needs an email or an anonymous_id")
        return self

    @property
    def key(self) -> str:
        return state_key(self.email, self.anonymous_id)


def state_key(email: str | None, anonymous_id: str | None) -> str:
    """A prospect's state key: the lowercased email, else `anon:<anonymous_id>`."""
    if email:
        return email.strip().lower()
    return f"{ANON_PREFIX}{anonymous_id}"


class AccountRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    domain: str | None = Field(default=None, max_length=MAX_DOMAIN_LENGTH)


class Event(BaseModel):
    """One thing a prospect did or one fact learned about them, at `occurred_at` (event time)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    type: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    occurred_at: EventTime
    prospect: ProspectRef
    account: AccountRef | None = None
    properties: dict[str, Any] = Field(default_factory=dict)


class RejectedLine(BaseModel):
    """A line of an event file that is not a valid event: reported, never fatal."""

    line: int
    error: str


def parse_event(raw: str | bytes) -> Event:
    """Parse one JSON document into an event; raises `ValidationError` with the reason."""
    return Event.model_validate_json(raw)


def describe_error(error: ValidationError) -> str:
    """A one-line reason for a rejected event, naming the field: `occurred_at: ...`."""
    parts = []
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"]) or "event"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def read_events(path: Path) -> Iterator[Event | RejectedLine]:
    """Events of a JSON-lines file in order, with a `RejectedLine` in place of each bad line.

    Blank lines are skipped; line numbers are 1-based as editors show them.
    """
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                yield parse_event(raw)
            except ValidationError as error:
                yield RejectedLine(line=number, error=describe_error(error))
