"""The `web` source: website activity from our first-party tracker or from Segment/RudderStack.

Two payload families share the raw topic `raw.web`, told apart by `type`:

- The first-party tracker (our own format, documented in docs/sources.md):
  `{"type": "page_view", "anonymous_id", "visit_id", "url", "occurred_at", "email"?, "id"?}`
  and `{"type": "search", "anonymous_id", "query", "occurred_at", "email"?, "id"?}` for a
  search engine query that brought the visitor (branded search).
- The Segment Spec (https://segment.com/docs/connections/spec/ : common fields, `page`,
  `track`, `identify`), which RudderStack's event spec follows field for field
  (https://www.rudderstack.com/docs/event-spec/standard-events/). Common fields used:
  `messageId` (the event id), `anonymousId`, `userId`, `timestamp` (else
  `originalTimestamp`), `context.traits.email`, `context.page.url`.

Segment has no visit id, and sessionising by inactivity needs state the map stage does not
have. The visit id is therefore taken, stateless, from the first of `properties.session_id`,
`context.session_id`, `context.sessionId` (RudderStack's SDKs set it); else it is the visitor
id plus the UTC day of the event (`<anonymousId>:2026-01-05`): one visit per visitor and day,
which undercounts two visits on the same day and never invents visits.

A visitor with only a `userId` (server-side calls) is known as anonymous id `user:<userId>`,
so an `identify` carrying that userId and an email links them like a browser's anonymousId.
Track events are mapped by their Spec name (below, `TRACKED`); other track names are
accepted and produce no event, as nothing scores them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, RootModel, model_validator

from leadscore.events import Event, EventTime, ProspectRef
from streams.sources import Email, Source, Text, content_id, event_id, present

NAME = "web"
Url = Annotated[str, Field(pattern=r"^https?://\S+$")]


class TrackerPageView(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["page_view"]
    id: Text | None = None
    anonymous_id: Text
    email: Email | None = None
    visit_id: Text
    url: Url
    occurred_at: EventTime


class TrackerSearch(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["search"]
    id: Text | None = None
    anonymous_id: Text
    email: Email | None = None
    query: Text
    occurred_at: EventTime


class SegmentPage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    url: Url | None = None


class SegmentContext(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    page: SegmentPage | None = None
    traits: dict[str, Any] = Field(default_factory=dict)
    session_id: str | None = None
    sessionId: str | int | None = None  # RudderStack


class SegmentCall(BaseModel):
    """Common fields of every Segment call. Unknown fields are ignored: the Spec grows."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    messageId: Text | None = None
    anonymousId: Text | None = None
    userId: Text | None = None
    timestamp: EventTime | None = None
    originalTimestamp: EventTime | None = None
    context: SegmentContext = SegmentContext()

    @model_validator(mode="after")
    def _needs_identity_and_time(self) -> SegmentCall:
        if not self.anonymousId and not self.userId:
            raise ValueError("a Segment call needs an anonymousId or a userId")
        if self.timestamp is None and self.originalTimestamp is None:
            raise ValueError("a Segment call needs a timestamp or an originalTimestamp")
        return self

    @property
    def occurred_at(self) -> datetime:
        """Segment's `timestamp` is the client time corrected for clock skew: prefer it."""
        moment = self.timestamp or self.originalTimestamp
        assert moment is not None  # checked by the validator
        return moment

    @property
    def visitor(self) -> str:
        return self.anonymousId or f"user:{self.userId}"


class SegmentPageCall(SegmentCall):
    type: Literal["page"]
    name: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _needs_url(self) -> SegmentPageCall:
        if not self.url:
            raise ValueError("a page call needs properties.url or context.page.url")
        return self

    @property
    def url(self) -> str | None:
        url = self.properties.get("url")
        if isinstance(url, str) and url:
            return url
        return self.context.page.url if self.context.page else None


#: Segment track event name -> (canonical type, {canonical property: Segment property}).
#: Every listed property is required of that track event.
TRACKED: dict[str, tuple[str, dict[str, str]]] = {
    "Demo Watched": ("demo.watched", {"video_id": "video_id"}),
    "Asset Downloaded": ("content.downloaded", {"asset_id": "asset_id", "category": "category"}),
    "Webinar Registered": ("webinar.registered", {"webinar_id": "webinar_id"}),
    "Products Searched": ("web.search", {"query": "query"}),
}


class SegmentTrackCall(SegmentCall):
    type: Literal["track"]
    event: Text
    properties: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _needs_the_mapped_properties(self) -> SegmentTrackCall:
        _, wanted = TRACKED.get(self.event, ("", {}))
        missing = [name for name in wanted.values() if self.properties.get(name) in (None, "")]
        if missing:
            needed = ", ".join(f"properties.{name}" for name in missing)
            raise ValueError(f"track {self.event!r} needs {needed}")
        return self


class SegmentIdentifyCall(SegmentCall):
    type: Literal["identify"]
    traits: dict[str, Any] = Field(default_factory=dict)


WebPayload = Annotated[
    TrackerPageView | TrackerSearch | SegmentPageCall | SegmentTrackCall | SegmentIdentifyCall,
    Field(discriminator="type"),
]


class WebEvent(RootModel[WebPayload]):
    """One raw web event: a tracker hit or a Segment call, by its `type`."""


def to_events(payload: WebEvent) -> list[Event]:
    raw = payload.root
    if isinstance(raw, TrackerPageView | TrackerSearch):
        return [_tracker_event(raw)]
    email = raw.traits.get("email") if isinstance(raw, SegmentIdentifyCall) else None
    email = email or raw.context.traits.get("email")
    prospect = ProspectRef(email=email or None, anonymous_id=raw.visitor)
    ident = event_id(NAME, raw.messageId) if raw.messageId else content_id(NAME, raw)

    if isinstance(raw, SegmentPageCall):
        url = raw.url or ""
        properties = {"url": url, "path": urlsplit(url).path, "visit_id": _visit_id(raw)}
        return [_event(ident, "web.page_view", raw.occurred_at, prospect, properties)]
    if isinstance(raw, SegmentTrackCall):
        if raw.event not in TRACKED:
            return []
        kind, wanted = TRACKED[raw.event]
        properties = {ours: raw.properties[theirs] for ours, theirs in wanted.items()}
        return [_event(ident, kind, raw.occurred_at, prospect, properties)]
    profile = _profile(raw.traits)
    if not profile and not email:
        return []
    return [_event(ident, "prospect.updated", raw.occurred_at, prospect, profile)]


def _tracker_event(raw: TrackerPageView | TrackerSearch) -> Event:
    prospect = ProspectRef(email=raw.email, anonymous_id=raw.anonymous_id)
    ident = event_id(NAME, raw.id) if raw.id else content_id(NAME, raw)
    if isinstance(raw, TrackerSearch):
        return _event(ident, "web.search", raw.occurred_at, prospect, {"query": raw.query})
    properties = {"url": raw.url, "path": urlsplit(raw.url).path, "visit_id": raw.visit_id}
    return _event(ident, "web.page_view", raw.occurred_at, prospect, properties)


def _event(
    ident: str, kind: str, at: datetime, prospect: ProspectRef, properties: dict[str, Any]
) -> Event:
    return Event(id=ident, type=kind, occurred_at=at, prospect=prospect, properties=properties)


def _visit_id(call: SegmentPageCall) -> str:
    for candidate in (
        call.properties.get("session_id"),
        call.context.session_id,
        call.context.sessionId,
    ):
        if candidate not in (None, ""):
            return str(candidate)
    day = call.occurred_at.astimezone(UTC).date().isoformat()
    return f"{call.visitor}:{day}"


def _profile(traits: dict[str, Any]) -> dict[str, Any]:
    """Segment's reserved traits (`title`, `company.name`, `address.country`) plus our own."""
    company = traits.get("company")
    address = traits.get("address")
    return present(
        title=traits.get("title"),
        lead_source=traits.get("lead_source"),
        offer=traits.get("offer"),
        company=company.get("name") if isinstance(company, dict) else company,
        country=address.get("country") if isinstance(address, dict) else traits.get("country"),
    )


source = Source(name=NAME, payload=WebEvent, to_events=to_events, topic="raw.web")
