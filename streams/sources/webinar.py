"""The `webinar` source: Zoom Webinars webhooks.

Format: Zoom's webhook events `webinar.registration_created` and
`webinar.participant_joined` (https://developers.zoom.us/docs/api/webinars/events/ ; the
payload shapes are typed in Zoom's own SDK, @zoom/rivet, `WebinarParticipantJoinedEvent`).
Each delivery is `{"event", "event_ts" (Unix ms), "payload": {"account_id", "object": {...}}}`
where `object` is the webinar (`uuid` of the occurrence, `id`, `topic`) with a `registrant`
or a `participant`. Zoom adds fields over time, so unknown fields are ignored.

Mapped:
- `webinar.registration_created` -> webinar.registered {webinar_id, topic}, plus
  prospect.updated when the registration form asked for `job_title`, `org` or `country`.
- `webinar.participant_joined` -> webinar.attended {webinar_id, topic}, at `join_time`.
  Minutes are unknown when someone joins, so there is no `minutes` property.
  A participant without an email (a guest of an unregistered webinar) maps to no event:
  there is nobody to score.
Other webinar events (participant_left, webinar.started, ...) are accepted and not mapped.

Zoom sends no event id. The ids are the natural keys instead: webinar occurrence and
registrant, or occurrence and participant email. So a redelivery dedupes, and so does a
participant who drops and rejoins: attending counts once per occurrence.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadscore.events import Event, EventTime, ProspectRef
from streams.sources import Email, Source, Text, event_id, from_unix, present

NAME = "webinar"


class ZoomRegistrant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    id: Text | None = None
    email: Email
    job_title: str | None = None
    org: str | None = None
    country: str | None = None


class ZoomParticipant(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    email: str | None = None
    join_time: EventTime


class ZoomWebinar(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    uuid: Text
    id: int | Text
    topic: str | None = None
    registrant: ZoomRegistrant | None = None
    participant: ZoomParticipant | None = None


class ZoomPayload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    account_id: str | None = None
    object: ZoomWebinar


class ZoomWebhook(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    event: Annotated[str, Field(pattern=r"^webinar\.")]
    event_ts: Annotated[int, Field(gt=0)]
    payload: ZoomPayload

    @model_validator(mode="after")
    def _has_who(self) -> ZoomWebhook:
        webinar = self.payload.object
        if self.event == "webinar.registration_created" and webinar.registrant is None:
            raise ValueError("webinar.registration_created needs payload.object.registrant")
        if self.event == "webinar.participant_joined" and webinar.participant is None:
            raise ValueError("webinar.participant_joined needs payload.object.participant")
        return self


def to_events(raw: ZoomWebhook) -> list[Event]:
    webinar = raw.payload.object
    about = present(webinar_id=str(webinar.id), topic=webinar.topic)
    if raw.event == "webinar.registration_created" and webinar.registrant:
        registrant = webinar.registrant
        ident = event_id(NAME, webinar.uuid, "registered", registrant.id or registrant.email)
        at = from_unix(raw.event_ts / 1000)
        prospect = ProspectRef(email=registrant.email)
        events = [
            Event(id=ident, type="webinar.registered", occurred_at=at, prospect=prospect,
                  properties=about)
        ]
        profile = present(
            title=registrant.job_title, company=registrant.org, country=registrant.country
        )
        if profile:
            events.append(
                Event(id=f"{ident}:profile", type="prospect.updated", occurred_at=at,
                      prospect=prospect, properties=profile)
            )
        return events
    if raw.event == "webinar.participant_joined" and webinar.participant:
        participant = webinar.participant
        if not participant.email:
            return []
        email = participant.email.strip().lower()
        return [
            Event(
                id=event_id(NAME, webinar.uuid, "attended", email),
                type="webinar.attended",
                occurred_at=participant.join_time,
                prospect=ProspectRef(email=participant.email),
                properties=about,
            )
        ]
    return []


source = Source(name=NAME, payload=ZoomWebhook, to_events=to_events, topic="raw.webinar")
