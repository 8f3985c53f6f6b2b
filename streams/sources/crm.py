"""The `crm` source: profile, review, account and outcome updates from the CRM (our format).

A neutral webhook format of our own, with Salesforce's field names so that a Salesforce
Flow or outbound message (or any CRM's webhook) maps onto it field for field. One JSON object
per change, told apart by `type`; every change carries the lead's `Email`, the time of the
change `LastModifiedDate` (ISO 8601 with offset) and optionally `EventId`, the CRM's id of
the change (else the id is a digest of the payload):

- `lead_update`: `Title`, `LeadSource`, `Offer__c`, `Company`, `Country` (at least one)
  -> prospect.updated {title, lead_source, offer, company, country}
- `lead_review`: `Approved__c` (true/false), `ReviewedBy` -> prospect.reviewed {approved}
- `account_update`: `Website`, `Name`, `Industry`, `NumberOfEmployees`, `BillingCountry`
  -> account.updated {name, industry, employees, country}, with the account's domain from
  `Website`. Scoring is per prospect, so the CRM sends one account_update per lead of the
  account (a Salesforce Flow on Account that loops over its leads/contacts does this).
- `lead_outcome`: `Outcome` (converted | disqualified | recycled), `OpportunityId`
  -> lead.outcome {outcome, opportunity_id}

Unknown fields are rejected: this format is ours, and a misspelt field silently ignored
would be a profile fact silently lost.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StrictBool,
    model_validator,
)

from leadscore.events import AccountRef, Event, EventTime, ProspectRef
from streams.sources import Email, Source, Text, content_id, event_id, present

NAME = "crm"


class Change(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    EventId: Text | None = None
    Email: Email
    LastModifiedDate: EventTime


class LeadUpdate(Change):
    type: Literal["lead_update"]
    Title: str | None = None
    LeadSource: str | None = None
    Offer__c: str | None = None
    Company: str | None = None
    Country: str | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> LeadUpdate:
        if not self.profile():
            raise ValueError(
                "a lead_update needs one of Title, LeadSource, Offer__c, Company, Country"
            )
        return self

    def profile(self) -> dict[str, Any]:
        return present(
            title=self.Title,
            lead_source=self.LeadSource,
            offer=self.Offer__c,
            company=self.Company,
            country=self.Country,
        )


class LeadReview(Change):
    type: Literal["lead_review"]
    Approved__c: StrictBool
    ReviewedBy: str | None = None


class AccountUpdate(Change):
    type: Literal["account_update"]
    Website: Annotated[str, Field(pattern=r"^(https?://)?[A-Za-z0-9.-]+\.[A-Za-z]{2,}(/\S*)?$")]
    Name: str | None = None
    Industry: str | None = None
    NumberOfEmployees: Annotated[int, Field(ge=0)] | None = None
    BillingCountry: str | None = None

    @property
    def domain(self) -> str:
        """`https://www.Acme.example/about` -> `acme.example`: the account's key."""
        url = self.Website if "://" in self.Website else f"https://{self.Website}"
        host = (urlsplit(url).hostname or "").lower()
        return host.removeprefix("www.")


class LeadOutcome(Change):
    type: Literal["lead_outcome"]
    Outcome: Literal["converted", "disqualified", "recycled"]
    OpportunityId: Text | None = None


class CrmChange(RootModel[Annotated[
    LeadUpdate | LeadReview | AccountUpdate | LeadOutcome, Field(discriminator="type")
]]):
    """One CRM change, by its `type`."""


def to_events(payload: CrmChange) -> list[Event]:
    raw = payload.root
    account = None
    if isinstance(raw, LeadUpdate):
        kind, properties = "prospect.updated", raw.profile()
    elif isinstance(raw, LeadReview):
        kind, properties = "prospect.reviewed", {"approved": raw.Approved__c}
    elif isinstance(raw, AccountUpdate):
        kind, account = "account.updated", AccountRef(domain=raw.domain)
        properties = present(
            name=raw.Name,
            industry=raw.Industry,
            employees=raw.NumberOfEmployees,
            country=raw.BillingCountry,
        )
    else:
        kind = "lead.outcome"
        properties = present(outcome=raw.Outcome, opportunity_id=raw.OpportunityId)
    return [
        Event(
            id=event_id(NAME, raw.EventId) if raw.EventId else content_id(NAME, raw),
            type=kind,
            occurred_at=raw.LastModifiedDate,
            prospect=ProspectRef(email=raw.Email),
            account=account,
            properties=properties,
        )
    ]


source = Source(name=NAME, payload=CrmChange, to_events=to_events, topic="raw.crm")
