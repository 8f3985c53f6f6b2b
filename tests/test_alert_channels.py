"""The alert channels against real receivers: a local HTTP server (Slack's stand-in, with
its answers) and the session's Redis (the per-rep stream)."""

from __future__ import annotations

import re
import time
import unicodedata
from email.message import EmailMessage, Message
from typing import Any

import aiohttp
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from leadscore.infra.receivers import smtp_server, webhook_receiver
from routing.alerts import Alert, Context, Delivered, Gone, Retry, alert, channel_types, text
from routing.channels.email import email_message
from routing.channels.slack import message
from routing.dispatch import backoff
from routing.keys import Keys
from routing.roster import Channel, Rep

REP = Rep(id="ana", name="Ana López", email="ana@northwind.example", role="MRR", team="emea",
          time_zone="Europe/Madrid")
CARD: dict[str, Any] = {
    "lead": "L1", "prospect": "li@globex.example", "track": "fast_track", "team": "emea",
    "matched": "country ES", "rep": "ana", "fallback": False, "due": "2026-03-04T09:00:00Z",
    "deadline": "2026-03-04T09:05:00.250000Z", "at": "2026-03-04T09:00:00Z", "score": 70, "fit": 20,
    "behavior": 50, "top_rules": [{"rule": "pricing-page", "points": 5}],
    "trigger": {"id": "f-1", "type": "form.submitted", "properties": {"form": "contact_me"}},
    "profile": {"name": "Li Wei", "title": "VP Sales", "company": "Globex"},
}


def the_alert() -> Alert:
    return alert("new_lead", REP, CARD, int(time.time() * 1000))


async def test_slack_gets_block_kit_at_most_about_once_a_second() -> None:
    kind = channel_types()["slack"]
    with webhook_receiver("unused") as receiver:
        async with aiohttp.ClientSession() as http:
            context = Context(Channel(type="slack", url=receiver.url), None, http, None, "")
            assert await kind.deliver(the_alert(), context) == Delivered()
            receiver.answers = [429, 410]
            assert isinstance(await kind.deliver(the_alert(), context), Retry)
            assert await kind.deliver(the_alert(), context) == Gone(
                "the receiver answered 410 Gone")
    message = receiver.received[0].body
    assert message["text"] == ("New lead: Li Wei (Globex), score 70, FAST TRACK, acknowledge "
                               "by Wed 4 Mar 10:05 CET")
    assert [block["type"] for block in message["blocks"]] == [
        "header", "section", "section", "context"]
    assert kind.per_second == 1.0


@pytest.mark.redis
async def test_the_stream_channel_appends_the_alert_to_the_reps_stream(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    try:
        context = Context(Channel(type="stream"), None, None, redis, Keys.of("tstream").prefix)
        sent = the_alert()
        assert await channel_types()["stream"].deliver(sent, context) == Delivered()
        entries: Any = await redis.xrange(Keys.of("tstream").live("ana"))
        [(_, fields)] = entries
        assert fields[b"id"] == sent["id"].encode()
        assert orjson.loads(fields[b"alert"]) == sent
    finally:
        await redis.delete(Keys.of("tstream").live("ana"))
        await redis.aclose()


def test_an_alert_has_one_id_for_its_lead_kind_and_rep() -> None:
    assert the_alert()["id"] == the_alert()["id"]
    assert alert("reminder", REP, CARD, None)["id"] != the_alert()["id"]


@pytest.mark.parametrize("attempt", [1, 3, 12])
def test_retries_back_off_exponentially_with_full_jitter_and_a_cap(attempt: int) -> None:
    waits = [backoff(attempt) for _ in range(200)]
    ceiling = min(300.0, 2 ** (attempt - 1))
    assert min(waits) >= 0 and max(waits) <= ceiling
    assert max(waits) > ceiling / 2  # spread over the range, not fixed


@pytest.mark.parametrize("status", [302, 307])
async def test_a_redirect_is_retried_and_never_followed(status: int) -> None:
    """A 302 once counted as delivered (the alert never arrived), and a 307 sent the signed
    alert on to whatever host the answer named."""
    kind = channel_types()["webhook"]
    with webhook_receiver("whsec_c2VjcmV0") as receiver, \
            webhook_receiver("whsec_c2VjcmV0") as elsewhere:
        receiver.answers, receiver.location = [status], elsewhere.url
        async with aiohttp.ClientSession() as http:
            context = Context(Channel(type="webhook", url=receiver.url), "whsec_c2VjcmV0",
                              http, None, "")
            outcome = await kind.deliver(the_alert(), context)
            assert isinstance(outcome, Retry) and elsewhere.url in outcome.reason
            assert str(status) in outcome.reason
            assert await kind.deliver(the_alert(), context) == Delivered()
        assert [item.body["_status"] for item in receiver.received] == [status, 200]
        assert elsewhere.received == []


async def test_a_temporary_smtp_refusal_is_retried_and_a_permanent_one_gives_up() -> None:
    """A greylisting 451 once dropped the alert as if the address did not exist."""
    kind = channel_types()["email"]
    with smtp_server() as mailbox:
        context = Context(Channel(type="email", url=f"smtp://{mailbox.host}:{mailbox.port}"),
                          None, None, None, "")
        mailbox.answers = ["451 4.7.1 Greylisted, please try again later",
                           "452 4.2.2 Mailbox full"]
        for _ in mailbox.answers[:]:
            outcome = await kind.deliver(the_alert(), context)
            assert isinstance(outcome, Retry) and "45" in outcome.reason
        assert await kind.deliver(the_alert(), context) == Delivered()
        assert len(mailbox.messages) == 1
        mailbox.answers = ["550 5.1.1 No such user"]
        outcome = await kind.deliver(the_alert(), context)
        assert isinstance(outcome, Gone) and "550" in outcome.reason
        mailbox.data_answers = ["451 4.3.0 Try again later", "554 5.7.1 Message rejected"]
        outcome = await kind.deliver(the_alert(), context)
        assert isinstance(outcome, Retry) and "451" in outcome.reason
        outcome = await kind.deliver(the_alert(), context)
        assert isinstance(outcome, Gone) and "554" in outcome.reason
        assert len(mailbox.messages) == 1


@pytest.mark.parametrize(("kind", "url"), [("webhook", None), ("slack", None), ("email", None),
                                           ("email", "http://mail.example:25")])
async def test_a_channel_the_roster_broke_keeps_its_alerts_waiting(kind: str,
                                                                 url: str | None) -> None:
    """Only a receiver's own word gives an alert up: a roster that broke the channel is
    fixed by the next roster, and the queued alerts wait for it."""
    context = Context(Channel(type=kind, url=url), None, None, None, "")
    outcome = await channel_types()[kind].deliver(the_alert(), context)
    assert isinstance(outcome, Retry) and "waits for a roster" in outcome.reason


#: What a hostile prospect types into a form: Slack mentions and a disguised link, an email
#: header break, terminal escapes, a NUL and a right-to-left override.
HOSTILE = {"name": "Li <!channel> Wei\x00\x1b[31m", "title": "<@U123> <!here>\r\nBcc: x@y.z",
           "company": "<https://evil.example|click here> & co\u202e", "country": "ES\x07"}


def hostile_alert(profile: dict[str, str] = HOSTILE) -> Alert:
    card = {**CARD, "profile": profile, "trigger": {
        "id": "f-1", "type": "form.submitted",
        "properties": {"form": "contact_me", "message": "<!everyone> call me\x1b[2J"}}}
    return alert("new_lead", REP, card, None)


def slack_mentions_or_links(body: bytes) -> list[str]:
    text = body.decode()
    return [markup for markup in ("<!", "<@", "<http", "<#") if markup in text]


def subject(mail: Message) -> str:
    """The subject unfolded (the SMTP receiver's parser keeps a long one's line breaks)."""
    return re.sub(r"\r?\n[ \t]", " ", str(mail["Subject"]))


def parts(mail: Message) -> list[str]:
    """The text parts of a mail, with `\n` line breaks."""
    payloads = [part.get_payload(decode=True) for part in mail.walk()
                if part.get_content_maintype() == "text"]
    return [payload.decode().replace("\r\n", "\n") for payload in payloads
            if isinstance(payload, bytes)]


def control_characters(mail: Message) -> list[str]:
    """The control and bidirectional characters in a mail's subject and text parts (but
    the line breaks of the parts)."""
    texts = [subject(mail), *parts(mail)]
    return [repr(char) for text in texts for char in text
            if (unicodedata.category(char) == "Cc" and char != "\n")
            or 0x202A <= ord(char) <= 0x202E or 0x2066 <= ord(char) <= 0x2069]


async def test_prospect_text_reaches_slack_escaped_and_email_without_control_characters() -> None:
    """A form's `<!channel>` pinged the whole Slack channel, its `<https://...|click here>`
    hid a link, and its NUL and ESC bytes went into email subjects."""
    with webhook_receiver("unused") as receiver, smtp_server() as mailbox:
        async with aiohttp.ClientSession() as http:
            slack = Context(Channel(type="slack", url=receiver.url), None, http, None, "")
            email = Context(Channel(type="email", url=f"smtp://{mailbox.host}:{mailbox.port}"),
                            None, None, None, "")
            assert await channel_types()["slack"].deliver(hostile_alert(), slack) == Delivered()
            assert await channel_types()["email"].deliver(hostile_alert(), email) == Delivered()
    body = orjson.dumps(receiver.received[0].body)
    assert slack_mentions_or_links(body) == []
    assert "&lt;!channel&gt;" in body.decode() and "&amp; co" in body.decode()
    [(_, mail)] = mailbox.messages
    assert control_characters(mail) == []
    assert subject(mail).startswith("New lead: Li <!channel> Wei[31m (<https://evil")
    assert mail["Bcc"] is None


@given(st.dictionaries(st.sampled_from(["name", "title", "company", "country", "source"]),
                       st.text(max_size=40)))
def test_no_prospect_text_makes_slack_markup_or_control_characters(
        profile: dict[str, str]) -> None:
    shown = hostile_alert(profile)
    assert slack_mentions_or_links(orjson.dumps(message(shown))) == []
    mail: EmailMessage = email_message(shown, "leads@northwind.example")
    assert control_characters(mail) == []


async def test_an_email_alert_is_written_for_the_rep_in_plain_text_and_html() -> None:
    """The email was a summary in UTC with microseconds, then the alert's JSON dump."""
    with smtp_server() as mailbox:
        context = Context(Channel(type="email", url=f"smtp://{mailbox.host}:{mailbox.port}"),
                          None, None, None, "")
        assert await channel_types()["email"].deliver(the_alert(), context) == Delivered()
        assert await channel_types()["email"].deliver(hostile_alert(), context) == Delivered()
    [(_, mail), (_, hostile)] = mailbox.messages
    assert subject(mail) == ("New lead: Li Wei (Globex), score 70, FAST TRACK, acknowledge by "
                               "Wed 4 Mar 10:05 CET")
    assert [part.get_content_type() for part in mail.walk()] == [
        "multipart/alternative", "text/plain", "text/html"]
    plain, html = parts(mail)
    assert plain.splitlines()[2:] == [
        "Score:          70 (fit 20, behavior 50)",
        "Acknowledge by: Wed 4 Mar 10:05 CET",
        "Name:           Li Wei",
        "Title:          VP Sales",
        "Company:        Globex",
        "Email:          li@globex.example",
        "Trigger:        form.submitted (form: contact_me)",
        "Top rules:      pricing-page +5",
        "Why you:        team emea (country ES)",
        "Lead:           L1"]
    assert "<th" in html and "VP Sales" in html and "Wed 4 Mar 10:05 CET" in html
    assert "{" not in plain + html and "2026-03-04T" not in plain + html
    _, hostile_html = parts(hostile)
    assert "&lt;!channel&gt;" in hostile_html and "&lt;https://evil" in hostile_html
    assert "<!channel" not in hostile_html and "<https" not in hostile_html


async def test_a_slack_alert_shows_the_lead_card_in_the_reps_time() -> None:
    standard = alert("reassigned", REP.model_copy(update={"time_zone": "America/New_York"}),
                     {**CARD, "track": "standard", "due": "2026-03-05T09:00:00Z",
                      "fallback": True}, None, 1)
    with webhook_receiver("unused") as receiver:
        async with aiohttp.ClientSession() as http:
            context = Context(Channel(type="slack", url=receiver.url), None, http, None, "")
            assert await channel_types()["slack"].deliver(standard, context) == Delivered()
    body = receiver.received[0].body
    assert body["text"] == ("Lead reassigned to you: Li Wei (Globex), score 70, due Thu 5 Mar "
                            "04:00 EST")
    header, summary, card, context_block = body["blocks"]
    assert header["text"] == {"type": "plain_text", "text": "Lead reassigned to you"}
    assert summary["text"]["text"] == body["text"]
    assert [field["text"] for field in card["fields"]] == [
        "*For*\nAna López", "*Score*\n70 (fit 20, behavior 50)", "*Due*\nThu 5 Mar 04:00 EST",
        "*Name*\nLi Wei", "*Title*\nVP Sales", "*Company*\nGlobex",
        "*Email*\nli@globex.example", "*Trigger*\nform.submitted (form: contact_me)",
        "*Top rules*\npricing-page +5",
        "*Why you*\nteam emea (country ES); nobody in the team could take it, so it came to "
        "you, its escalation"]
    assert [element["text"] for element in context_block["elements"]] == ["*Lead* L1"]


async def test_the_webhook_body_stays_the_alert_and_names_the_reps_time_zone() -> None:
    sent = the_alert()
    with webhook_receiver("whsec_c2VjcmV0") as receiver:
        async with aiohttp.ClientSession() as http:
            context = Context(Channel(type="webhook", url=receiver.url), "whsec_c2VjcmV0",
                              http, None, "")
            assert await channel_types()["webhook"].deliver(sent, context) == Delivered()
    [got] = receiver.delivered()
    assert got.signature_error is None
    assert {name: value for name, value in got.body.items() if name != "_status"} == sent
    assert sent["rep"] == {"id": "ana", "name": "Ana López", "email": "ana@northwind.example",
                           "time_zone": "Europe/Madrid"}
    assert sent["lead"]["deadline"] == "2026-03-04T09:05:00.250000Z"


def test_an_alert_queued_before_alerts_named_the_zone_reads_in_utc() -> None:
    queued = the_alert()
    del queued["rep"]["time_zone"]
    assert text(queued).endswith("acknowledge by Wed 4 Mar 09:05 UTC")
