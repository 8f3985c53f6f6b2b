"""The `forms` source: form submissions from the website's forms (our own format).

Format (one JSON object per submission; documented in docs/sources.md):

    {"form": "contact_me", "email": "ana@acme.example", "submitted_at": "2026-01-05T09:00:00Z",
     "submission_id": "f-123", "anonymous_id": "a-1", "page_url": "https://acme.example/contact",
     "fields": {"title": "VP Sales", "company": "Acme", "country": "ES"}}

`form` is the form's name; the hand-raiser forms that routing fast-tracks are `contact_me`
and `trial_request`. `submission_id` (the form handler's id) is the event id when present,
else a digest of the submission. A submission identifies the visitor: carrying both
`anonymous_id` and `email`, it links their earlier anonymous activity to the prospect.

Mapped: form.submitted {form, page_url}; plus prospect.updated with the profile fields the
form asked for (`title`, `company`, `country`, `lead_source`, `offer`), when any was filled.
Other fields are kept in the raw topic and not mapped: they are personal data nothing scores.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from leadscore.events import Event, EventTime, ProspectRef
from streams.sources import Email, Source, Text, content_id, event_id, present

NAME = "forms"
PROFILE_FIELDS = ("name", "title", "company", "country", "lead_source", "offer")


class FormSubmission(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    form: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    email: Email
    submitted_at: EventTime
    submission_id: Text | None = None
    anonymous_id: Text | None = None
    page_url: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None
    fields: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


def to_events(raw: FormSubmission) -> list[Event]:
    """The profile facts the form asked for first, then the submission: a hand-raiser is
    promoted on the submission, with the facts already known to the lead card."""
    ident = event_id(NAME, raw.submission_id) if raw.submission_id else content_id(NAME, raw)
    prospect = ProspectRef(email=raw.email, anonymous_id=raw.anonymous_id)
    events = []
    profile = {name: raw.fields[name] for name in PROFILE_FIELDS if raw.fields.get(name)}
    if profile:
        events.append(
            Event(
                id=f"{ident}:profile",
                type="prospect.updated",
                occurred_at=raw.submitted_at,
                prospect=prospect,
                properties=profile,
            )
        )
    events.append(
        Event(
            id=ident,
            type="form.submitted",
            occurred_at=raw.submitted_at,
            prospect=prospect,
            properties=present(form=raw.form, page_url=raw.page_url),
        )
    )
    return events


source = Source(name=NAME, payload=FormSubmission, to_events=to_events, topic="raw.forms")
