from typing import Any

from leadscore.events import Event
from streams.identity import resolve, routing_key


def _event(email: str | None = None, anonymous_id: str | None = None) -> tuple[Event, dict[str, Any]]:
    payload: dict[str, Any] = {
        "id": "e1",
        "type": "web.page_view",
        "occurred_at": "2026-01-05T09:00:00Z",
        "prospect": {"email": email, "anonymous_id": anonymous_id},
        "properties": {"url": "https://acme.example/pricing", "visit_id": "v1"},
    }
    return Event.model_validate(payload), payload


def test_events_are_partitioned_by_anonymous_id_when_present() -> None:
    assert routing_key(_event("Ana@Acme.example", "v-1")[0]) == "anon:v-1"
    assert routing_key(_event("Ana@Acme.example")[0]) == "ana@acme.example"


def test_anonymous_visitor_is_scored_under_its_own_key_until_it_identifies() -> None:
    aliases: dict[str, str] = {}
    key, message = resolve(aliases, *_event(anonymous_id="v-1"))
    assert (key, message["kind"]) == ("anon:v-1", "event")
    assert aliases == {}


def test_first_event_with_both_ids_links_and_hands_the_visitor_over() -> None:
    aliases: dict[str, str] = {}
    key, message = resolve(aliases, *_event("Ana@Acme.example", "v-1"))
    assert key == "anon:v-1"
    assert message["kind"] == "link"
    assert message["into"] == "ana@acme.example"
    assert aliases == {"anon:v-1": "ana@acme.example"}


def test_after_the_link_anonymous_events_go_to_the_prospect() -> None:
    aliases = {"anon:v-1": "ana@acme.example"}
    assert resolve(aliases, *_event(anonymous_id="v-1"))[0] == "ana@acme.example"
    key, message = resolve(aliases, *_event("ana@acme.example", "v-1"))
    assert (key, message["kind"]) == ("ana@acme.example", "event")


def test_a_visitor_who_identifies_as_someone_else_is_relinked() -> None:
    aliases = {"anon:v-1": "ana@acme.example"}
    key, message = resolve(aliases, *_event("bo@acme.example", "v-1"))
    assert (key, message["kind"], message["into"]) == ("anon:v-1", "link", "bo@acme.example")
    assert aliases["anon:v-1"] == "bo@acme.example"
