"""The `email` source: SendGrid's Event Webhook.

Format: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event
SendGrid POSTs a JSON array of events; each has `event`, `email`, `timestamp` (Unix
seconds), `sg_event_id` (unique per event: our id) and `sg_message_id`, plus per-event
fields (`url` on click, `reason`/`type`/`status` on bounce) and the sender's custom args at
top level (so unknown fields are ignored, not rejected).

Mapped: `open` -> email.open, `click` -> email.click, `bounce` (both types, "bounce" and
"blocked") -> email.bounce, `unsubscribe` and `group_unsubscribe` -> email.unsubscribe,
`spamreport` -> email.spam_report (declared below). Accepted and deliberately not mapped,
as they say nothing about the prospect's interest: `processed`, `delivered`, `deferred`,
`dropped`, `group_resubscribe`, any event name SendGrid adds later, and opens with
`sg_machine_open: true` (Apple Mail Privacy Protection prefetching, not a person reading).

The campaign id is `marketing_campaign_id`, else `singlesend_id`, else the first category.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from leadscore.events import Event, ProspectRef
from streams.sources import Email, Source, Text, event_id, from_unix, present

NAME = "email"


class SendGridEvent(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    event: Text
    email: Email
    timestamp: Annotated[int, Field(gt=0)]
    sg_event_id: Text
    sg_message_id: str | None = None
    category: str | list[str] | None = None
    marketing_campaign_id: int | str | None = None
    singlesend_id: str | None = None
    sg_machine_open: bool = False
    url: str | None = None
    reason: str | None = None
    type: str | None = None

    @model_validator(mode="after")
    def _click_needs_url(self) -> SendGridEvent:
        if self.event == "click" and not self.url:
            raise ValueError("a click event needs the url clicked")
        return self

    @property
    def campaign_id(self) -> str | None:
        if self.marketing_campaign_id is not None:
            return str(self.marketing_campaign_id)
        if self.singlesend_id:
            return self.singlesend_id
        if isinstance(self.category, list):
            return self.category[0] if self.category else None
        return self.category


def to_events(raw: SendGridEvent) -> list[Event]:
    properties: dict[str, Any] = present(campaign_id=raw.campaign_id)
    match raw.event:
        case "open" if not raw.sg_machine_open:
            kind = "email.open"
        case "click":
            kind, properties["url"] = "email.click", raw.url
        case "bounce":
            kind = "email.bounce"
            properties |= present(reason=raw.reason, bounce_type=raw.type)
        case "unsubscribe" | "group_unsubscribe":
            kind = "email.unsubscribe"
        case "spamreport":
            kind = "email.spam_report"
        case _:  # delivery events, machine opens, event names added later: not scored
            return []
    return [
        Event(
            id=event_id(NAME, raw.sg_event_id),
            type=kind,
            occurred_at=from_unix(raw.timestamp),
            prospect=ProspectRef(email=raw.email),
            properties=properties,
        )
    ]


source = Source(
    name=NAME,
    payload=SendGridEvent,
    to_events=to_events,
    topic="raw.email",
    event_types={"email.spam_report": "the prospect marked an email as spam {campaign_id}"},
)
