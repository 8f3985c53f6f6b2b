"""The shipped sources: real-looking provider payloads in, exact canonical events out."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from leadscore.events import EVENT_TYPES, AccountRef, Event, ProspectRef
from streams.sources import all_event_types, discover_sources, map_raw

T0 = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)


def mapped(source: str, payload: dict[str, Any]) -> list[Event]:
    result = map_raw(source, orjson.dumps(payload))
    assert isinstance(result, list), result
    return result


def rejection(source: str, payload: Any) -> str:
    result = map_raw(source, orjson.dumps(payload))
    assert isinstance(result, dict), result
    assert result["stage"] == "parse"
    return result["reason"]


def event(
    ident: str,
    kind: str,
    prospect: ProspectRef,
    properties: dict[str, Any],
    *,
    at: datetime = T0,
    account: AccountRef | None = None,
) -> Event:
    return Event(
        id=ident,
        type=kind,
        occurred_at=at,
        prospect=prospect,
        properties=properties,
        account=account,
    )


ANA = ProspectRef(email="ana@acme.example")


def test_the_shipped_sources_are_discovered_through_entry_points() -> None:
    sources = discover_sources()
    shipped = ["crm", "email", "forms", "web", "webinar"]
    assert {name: sources[name].topic for name in shipped} == {
        name: f"raw.{name}" for name in shipped
    }


def test_known_event_types_are_the_catalog_plus_what_sources_declare() -> None:
    known = all_event_types()
    assert EVENT_TYPES.items() <= known.items()
    assert "email.spam_report" in known
    assert "email.spam_report" not in EVENT_TYPES


# web: first-party tracker


def test_tracker_page_view_and_branded_search() -> None:
    page_view = {
        "type": "page_view",
        "id": "pv-1",
        "anonymous_id": "a-1",
        "visit_id": "v-9",
        "url": "https://acme.example/pricing?plan=pro",
        "occurred_at": "2026-01-05T09:30:00Z",
    }
    assert mapped("web", page_view) == [
        event(
            "web:pv-1",
            "web.page_view",
            ProspectRef(anonymous_id="a-1"),
            {"url": "https://acme.example/pricing?plan=pro", "path": "/pricing", "visit_id": "v-9"},
        )
    ]
    search = {
        "type": "search",
        "anonymous_id": "a-1",
        "query": "acme crm",
        "occurred_at": "2026-01-05T10:30:00+01:00",
    }
    [found] = mapped("web", search)
    assert (found.type, found.properties, found.occurred_at) == (
        "web.search",
        {"query": "acme crm"},
        T0,
    )
    # No id in the payload: the id is a digest, the same on every delivery.
    assert (
        found.id.startswith("web:")
        and found.id == mapped("web", dict(reversed(search.items())))[0].id
    )


def test_tracker_payload_with_unknown_field_or_bad_url_is_rejected_with_the_field() -> None:
    base = {
        "type": "page_view",
        "anonymous_id": "a-1",
        "visit_id": "v-1",
        "url": "https://acme.example/",
        "occurred_at": "2026-01-05T09:30:00Z",
    }
    assert "page_view.colour: Extra inputs are not permitted" in rejection(
        "web", {**base, "colour": 1}
    )
    assert rejection("web", {**base, "url": "acme.example"}).startswith("page_view.url:")
    assert "timezone" in rejection("web", {**base, "occurred_at": "2026-01-05T09:30:00"})
    assert "'type'" in rejection("web", {"anonymous_id": "a-1"})


# web: Segment spec


def segment(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "messageId": "ajs-1f2e",
        "anonymousId": "507f191e810c19729de860ea",
        "timestamp": "2026-01-05T09:30:00.000Z",
        "originalTimestamp": "2026-01-05T09:29:58.000Z",
        "sentAt": "2026-01-05T09:29:59.000Z",
        "receivedAt": "2026-01-05T09:30:01.000Z",
        "context": {
            "library": {"name": "analytics.js", "version": "4.1.0"},
            "page": {"url": "https://acme.example/careers", "path": "/careers"},
        },
        "integrations": {},
        **fields,
    }


VISITOR = ProspectRef(anonymous_id="507f191e810c19729de860ea")


def test_segment_page_gets_a_stateless_visit_id() -> None:
    assert mapped("web", segment("page", name="Careers", properties={})) == [
        event(
            "web:ajs-1f2e",
            "web.page_view",
            VISITOR,
            {
                "url": "https://acme.example/careers",
                "path": "/careers",
                "visit_id": "507f191e810c19729de860ea:2026-01-05",
            },
        )
    ]
    with_session = segment(
        "page", properties={"url": "https://acme.example/pricing", "session_id": "s-77"}
    )
    [found] = mapped("web", with_session)
    assert found.properties == {
        "url": "https://acme.example/pricing",
        "path": "/pricing",
        "visit_id": "s-77",
    }
    rudder = segment("page", properties={})
    rudder["context"]["sessionId"] = 1767605400000
    assert mapped("web", rudder)[0].properties["visit_id"] == "1767605400000"


def test_segment_track_events_map_by_name_and_others_map_to_nothing() -> None:
    demo = segment(
        "track", event="Demo Watched", properties={"video_id": "product-tour"}, userId="u-42"
    )
    demo["context"]["traits"] = {"email": "ana@acme.example"}
    assert mapped("web", demo) == [
        event(
            "web:ajs-1f2e",
            "demo.watched",
            ProspectRef(email="ana@acme.example", anonymous_id="507f191e810c19729de860ea"),
            {"video_id": "product-tour"},
        )
    ]
    download = segment(
        "track",
        event="Asset Downloaded",
        properties={"asset_id": "gartner-mq", "category": "analyst_review"},
    )
    assert mapped("web", download)[0].properties == {
        "asset_id": "gartner-mq",
        "category": "analyst_review",
    }
    webinar = segment("track", event="Webinar Registered", properties={"webinar_id": "81234"})
    assert mapped("web", webinar)[0].type == "webinar.registered"
    assert mapped("web", segment("track", event="Button Clicked", properties={})) == []


def test_segment_track_without_the_property_its_mapping_needs_is_rejected() -> None:
    reason = rejection(
        "web", segment("track", event="Asset Downloaded", properties={"asset_id": "x"})
    )
    assert "track 'Asset Downloaded' needs properties.category" in reason


def test_segment_identify_updates_the_profile_and_links_the_visitor_to_the_email() -> None:
    identify = segment(
        "identify",
        userId="u-42",
        traits={
            "email": "ana@acme.example",
            "title": "VP Sales",
            "firstName": "Ana",
            "company": {"name": "Acme", "employee_count": 400},
            "address": {"country": "ES"},
            "lead_source": "website",
        },
    )
    assert mapped("web", identify) == [
        event(
            "web:ajs-1f2e",
            "prospect.updated",
            ProspectRef(email="ana@acme.example", anonymous_id="507f191e810c19729de860ea"),
            {"title": "VP Sales", "company": "Acme", "country": "ES", "lead_source": "website"},
        )
    ]


def test_server_side_segment_call_with_only_a_user_id_is_known_by_it() -> None:
    call = segment("identify", userId="u-42", traits={"email": "ana@acme.example"})
    del call["anonymousId"], call["timestamp"]
    [found] = mapped("web", call)
    assert found.prospect == ProspectRef(email="ana@acme.example", anonymous_id="user:u-42")
    assert found.occurred_at == datetime(2026, 1, 5, 9, 29, 58, tzinfo=UTC)


def test_segment_call_without_identity_time_or_url_is_rejected() -> None:
    anonymous = segment("page", properties={})
    del anonymous["anonymousId"]
    assert "needs an anonymousId or a userId" in rejection("web", anonymous)
    timeless = segment("page", properties={})
    del timeless["timestamp"], timeless["originalTimestamp"]
    assert "needs a timestamp or an originalTimestamp" in rejection("web", timeless)
    no_url = segment("page", properties={})
    del no_url["context"]["page"]
    assert "needs properties.url or context.page.url" in rejection("web", no_url)


# email: SendGrid Event Webhook


def sendgrid(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "email": "Ana@Acme.example",
        "timestamp": 1767605400,
        "smtp-id": "<14c5d75ce93@ismtpd-555>",
        "event": kind,
        "category": ["nurture", "q1"],
        "sg_event_id": "rbtnWrG1DVDGGGFHFyun0A",
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.000000000000000000000",
        **fields,
    }


SG_ID = "email:rbtnWrG1DVDGGGFHFyun0A"
ANA_SG = ProspectRef(email="Ana@Acme.example")


def test_sendgrid_engagement_events() -> None:
    opened = sendgrid(
        "open",
        useragent="Mozilla/5.0",
        ip="255.255.255.255",
        sg_machine_open=False,
        marketing_campaign_id=12345,
    )
    assert mapped("email", opened) == [event(SG_ID, "email.open", ANA_SG, {"campaign_id": "12345"})]
    click = sendgrid("click", url="https://acme.example/demo", url_offset={"index": 0})
    assert mapped("email", click) == [
        event(
            SG_ID,
            "email.click",
            ANA_SG,
            {"campaign_id": "nurture", "url": "https://acme.example/demo"},
        )
    ]
    bounce = sendgrid("bounce", reason="550 5.1.1 unknown user", status="5.1.1", type="bounce")
    assert mapped("email", bounce) == [
        event(
            SG_ID,
            "email.bounce",
            ANA_SG,
            {"campaign_id": "nurture", "reason": "550 5.1.1 unknown user", "bounce_type": "bounce"},
        )
    ]
    unsubscribe = sendgrid("group_unsubscribe", asm_group_id=10, singlesend_id="ss-1")
    assert mapped("email", unsubscribe) == [
        event(SG_ID, "email.unsubscribe", ANA_SG, {"campaign_id": "ss-1"})
    ]


def test_sendgrid_delivery_events_and_machine_opens_map_to_nothing() -> None:
    for kind in ("processed", "delivered", "deferred", "dropped", "group_resubscribe"):
        assert mapped("email", sendgrid(kind)) == []
    assert mapped("email", sendgrid("open", sg_machine_open=True)) == []


def test_sendgrid_event_without_its_id_or_with_a_bad_time_is_rejected() -> None:
    missing = sendgrid("open")
    del missing["sg_event_id"]
    assert rejection("email", missing) == "sg_event_id: Field required"
    assert rejection("email", sendgrid("open", timestamp="yesterday")).startswith("timestamp:")
    assert "click event needs the url" in rejection("email", sendgrid("click"))


# webinar: Zoom webhooks


def zoom(kind: str, **object_fields: Any) -> dict[str, Any]:
    return {
        "event": kind,
        "event_ts": 1767605400000,
        "payload": {
            "account_id": "AAAAAABBBB",
            "object": {
                "uuid": "4444AAAiAAAAAiAiAiiAii==",
                "id": 81234567890,
                "host_id": "z8yCxTTTTSiw02QgCAp8uQ",
                "topic": "Scoring leads that sales trusts",
                "type": 5,
                "start_time": "2026-01-12T16:00:00Z",
                "duration": 60,
                "timezone": "Europe/Madrid",
                **object_fields,
            },
        },
    }


ABOUT = {"webinar_id": "81234567890", "topic": "Scoring leads that sales trusts"}


def test_zoom_registration_is_a_registration_and_a_profile_update() -> None:
    registered = zoom(
        "webinar.registration_created",
        registrant={
            "id": "abcdefghij",
            "first_name": "Ana",
            "last_name": "Lopez",
            "email": "ana@acme.example",
            "join_url": "https://zoom.us/w/812?tk=x",
            "job_title": "VP Sales",
            "org": "Acme",
        },
    )
    ident = "webinar:4444AAAiAAAAAiAiAiiAii==:registered:abcdefghij"
    assert mapped("webinar", registered) == [
        event(ident, "webinar.registered", ANA, ABOUT),
        event(
            f"{ident}:profile", "prospect.updated", ANA, {"title": "VP Sales", "company": "Acme"}
        ),
    ]


def test_zoom_attendance_counts_once_per_occurrence_and_needs_an_email() -> None:
    def joined(at: str, email: str = "Ana@Acme.example") -> dict[str, Any]:
        return zoom(
            "webinar.participant_joined",
            participant={
                "user_id": "16778240",
                "user_name": "Ana Lopez",
                "id": "iFxeBPYun6SAiWUzBcEkX",
                "join_time": at,
                "email": email,
                "participant_uuid": "55555AAAiAAAAAiAiAiiAii",
            },
        )

    first = mapped("webinar", joined("2026-01-12T16:02:11Z"))
    assert first == [
        event(
            "webinar:4444AAAiAAAAAiAiAiiAii==:attended:ana@acme.example",
            "webinar.attended",
            ProspectRef(email="Ana@Acme.example"),
            ABOUT,
            at=datetime(2026, 1, 12, 16, 2, 11, tzinfo=UTC),
        )
    ]
    assert mapped("webinar", joined("2026-01-12T16:30:00Z"))[0].id == first[0].id
    assert mapped("webinar", joined("2026-01-12T16:02:11Z", email="")) == []
    assert (
        mapped(
            "webinar",
            zoom(
                "webinar.participant_left",
                participant={"email": "ana@acme.example", "join_time": "2026-01-12T16:02:11Z"},
            ),
        )
        == []
    )


def test_zoom_event_missing_its_registrant_is_rejected() -> None:
    assert "needs payload.object.registrant" in rejection(
        "webinar", zoom("webinar.registration_created")
    )
    assert rejection("webinar", {**zoom("meeting.started"), "event": "meeting.started"}).startswith(
        "event:"
    )


# forms


def test_contact_me_form_is_a_submission_and_a_profile_update_linking_the_visitor() -> None:
    submission = {
        "form": "contact_me",
        "email": "ana@acme.example",
        "submitted_at": "2026-01-05T09:30:00Z",
        "submission_id": "f-123",
        "anonymous_id": "a-1",
        "page_url": "https://acme.example/contact",
        "fields": {
            "first_name": "Ana",
            "title": "VP Sales",
            "company": "Acme",
            "country": "ES",
            "phone": "+34 600 000 000",
        },
    }
    ana = ProspectRef(email="ana@acme.example", anonymous_id="a-1")
    # The profile first: the hand-raiser is promoted on the submission, facts known.
    assert mapped("forms", submission) == [
        event(
            "forms:f-123:profile",
            "prospect.updated",
            ana,
            {"title": "VP Sales", "company": "Acme", "country": "ES"},
        ),
        event(
            "forms:f-123",
            "form.submitted",
            ana,
            {"form": "contact_me", "page_url": "https://acme.example/contact"},
        ),
    ]


def test_trial_request_without_profile_fields_is_only_a_submission() -> None:
    submission = {
        "form": "trial_request",
        "email": "ana@acme.example",
        "submitted_at": "2026-01-05T09:30:00Z",
    }
    [found] = mapped("forms", submission)
    assert (found.type, found.properties, found.prospect) == (
        "form.submitted",
        {"form": "trial_request"},
        ANA,
    )


def test_form_without_a_valid_email_is_rejected() -> None:
    assert rejection(
        "forms", {"form": "contact_me", "email": "ana", "submitted_at": "2026-01-05T09:30:00Z"}
    ).startswith("email:")
    assert "fields.notes" in rejection(
        "forms",
        {
            "form": "contact_me",
            "email": "ana@acme.example",
            "submitted_at": "2026-01-05T09:30:00Z",
            "fields": {"notes": {"nested": True}},
        },
    )


# crm


def crm(kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "EventId": "00Q5e000004ZkT2EAK-7",
        "Email": "ana@acme.example",
        "LastModifiedDate": "2026-01-05T09:30:00.000+00:00",
        **fields,
    }


def test_crm_changes_map_to_profile_review_account_and_outcome_events() -> None:
    ident = "crm:00Q5e000004ZkT2EAK-7"
    assert mapped(
        "crm", crm("lead_update", Title="CEO", LeadSource="Website", Offer__c="whitepaper")
    ) == [
        event(
            ident,
            "prospect.updated",
            ANA,
            {"title": "CEO", "lead_source": "Website", "offer": "whitepaper"},
        )
    ]
    assert mapped("crm", crm("lead_review", Approved__c=True, ReviewedBy="mrr-7")) == [
        event(ident, "prospect.reviewed", ANA, {"approved": True})
    ]
    assert mapped(
        "crm",
        crm(
            "account_update",
            Website="https://www.Acme.example/about",
            Name="Acme",
            Industry="Software",
            NumberOfEmployees=400,
            BillingCountry="ES",
        ),
    ) == [
        event(
            ident,
            "account.updated",
            ANA,
            {"name": "Acme", "industry": "Software", "employees": 400, "country": "ES"},
            account=AccountRef(domain="acme.example"),
        )
    ]
    assert mapped("crm", crm("lead_outcome", Outcome="converted", OpportunityId="006Ab")) == [
        event(ident, "lead.outcome", ANA, {"outcome": "converted", "opportunity_id": "006Ab"})
    ]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (
            crm("lead_review", Approved__c="yes"),
            "lead_review.Approved__c: Input should be a valid boolean",
        ),
        (crm("lead_outcome", Outcome="won"), "lead_outcome.Outcome: Input should be 'converted'"),
        (crm("lead_update"), "needs one of Title, LeadSource, Offer__c, Company, Country"),
        (crm("lead_update", Tittle="CEO"), "lead_update.Tittle: Extra inputs are not permitted"),
        (crm("opportunity_update"), "does not match any of the expected tags"),
    ],
)
def test_crm_garbage_is_rejected_with_a_precise_reason(
    payload: dict[str, Any], reason: str
) -> None:
    assert reason in rejection("crm", payload)


# the map stage


def test_map_stage_turns_bad_messages_into_dead_letters() -> None:
    not_json = map_raw("email", b"not json {")
    assert isinstance(not_json, dict)
    assert (not_json["source"], not_json["raw"], not_json["stage"]) == (
        "email",
        "not json {",
        "parse",
    )
    assert "Invalid JSON" in not_json["reason"]
    bad = map_raw("email", b'{"event": "open"}')
    assert isinstance(bad, dict)
    assert (bad["stage"], bad["raw"]) == ("parse", '{"event": "open"}')
    assert "email: Field required" in bad["reason"]
    unknown = map_raw("fax", b"{}")
    assert isinstance(unknown, dict) and unknown["reason"] == "no installed source named 'fax'"
