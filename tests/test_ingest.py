"""The ingest API's decisions: status codes, bodies and what is produced."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

import orjson
import pytest
from pydantic import SecretStr, ValidationError

from leadscore.settings import Settings
from streams.ingest import ingest
from streams.sources import discover_sources

SECRET = "s3cret-token"
SETTINGS = Settings(ingest_secret=SecretStr(SECRET), ingest_max_bytes=4096)
BEARER = {"Authorization": f"Bearer {SECRET}"}
NOW = 1_796_000_000


def sendgrid(event_id: str, email: str = "ana@acme.example", **fields: Any) -> dict[str, Any]:
    return {
        "email": email,
        "timestamp": 1767605400,
        "event": "open",
        "sg_event_id": event_id,
        "sg_message_id": "m-1",
        **fields,
    }


def test_a_valid_batch_is_accepted_whole_and_keyed_by_prospect() -> None:
    batch = [
        sendgrid("e1", "Ana@Acme.example"),
        sendgrid("e2", "bo@beta.example", event="delivered"),
    ]
    result = ingest("email", orjson.dumps(batch), BEARER, SETTINGS, now=NOW)
    assert (result.status, result.body) == (202, {"accepted": 2})
    assert result.topic == "leadscore.raw.email"
    assert [orjson.loads(r.value) for r in result.records] == batch
    # Prospect key where the item maps to an event; none for an event nothing scores.
    assert [r.key for r in result.records] == [b"ana@acme.example", None]


def test_a_single_object_is_a_batch_of_one() -> None:
    result = ingest("email", orjson.dumps(sendgrid("e1")), BEARER, SETTINGS, now=NOW)
    assert (result.status, result.body, len(result.records)) == (202, {"accepted": 1}, 1)


def test_any_invalid_item_rejects_the_whole_batch_with_every_reason() -> None:
    missing_id = sendgrid("e2")
    del missing_id["sg_event_id"]
    batch = [sendgrid("e1"), missing_id, "open", sendgrid("e4", timestamp="soon")]
    result = ingest("email", orjson.dumps(batch), BEARER, SETTINGS, now=NOW)
    assert result.status == 400
    assert result.records == []
    assert result.body == {
        "accepted": 0,
        "errors": [
            {"index": 1, "reason": "sg_event_id: Field required"},
            {"index": 2, "reason": "an item must be a JSON object, not str"},
            {
                "index": 3,
                "reason": "timestamp: Input should be a valid integer, "
                "unable to parse string as an integer",
            },
        ],
    }


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "the body is not JSON"),
        (b"[]", "the batch is empty"),
        (b"42", "the body must be a JSON object or array, not int"),
    ],
)
def test_a_body_that_is_no_batch_is_a_400(body: bytes, reason: str) -> None:
    result = ingest("email", body, BEARER, SETTINGS, now=NOW)
    assert result.status == 400
    [error] = result.body["errors"]
    assert error["index"] is None and error["reason"].startswith(reason)


def signed(body: bytes, message_id: str = "msg_1", at: int = NOW,
           secret: str = SECRET) -> dict[str, str]:
    """Standard Webhooks headers for `body`, as a sender computes them."""
    content = f"{message_id}.{at}.".encode() + body
    key = base64.b64decode(secret[6:]) if secret.startswith("whsec_") else secret.encode()
    signature = base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()
    return {"webhook-id": message_id, "webhook-timestamp": str(at),
            "webhook-signature": f"v1,{signature}"}


def test_a_standard_webhooks_signature_authenticates_the_body_its_id_and_its_time() -> None:
    body = orjson.dumps([sendgrid("e1")])
    headers = signed(body)
    assert ingest("email", body, headers, SETTINGS, now=NOW + 10).status == 202
    tampered = body.replace(b"e1", b"e9")
    assert ingest("email", tampered, headers, SETTINGS, now=NOW).status == 401
    other_id = {**headers, "webhook-id": "msg_2"}
    assert ingest("email", body, other_id, SETTINGS, now=NOW).status == 401
    # Several signatures may be sent (key rotation): one that matches is enough.
    rotated = {**headers, "webhook-signature": "v1,bm9wZQ== " + headers["webhook-signature"]}
    assert ingest("email", body, rotated, SETTINGS, now=NOW).status == 202


def test_a_captured_signed_request_sent_again_later_is_refused() -> None:
    body = orjson.dumps([sendgrid("e1")])
    headers = signed(body)
    result = ingest("email", body, headers, SETTINGS, now=NOW + 301)
    assert result.status == 401
    assert "more than 300 s from the server's clock" in result.body["error"]
    assert ingest("email", body, headers, SETTINGS, now=NOW - 301).status == 401


def test_a_whsec_secret_is_the_base64_key_of_the_signatures() -> None:
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef01234567").decode()
    settings = Settings(ingest_secret=SecretStr(secret))
    body = orjson.dumps(sendgrid("e1"))
    assert ingest("email", body, signed(body, secret=secret), settings, now=NOW).status == 202
    bearer = {"Authorization": f"Bearer {secret}"}
    assert ingest("email", body, bearer, settings, now=NOW).status == 202


@pytest.mark.parametrize(("secret", "why"), [
    ("", "is empty"), ("   ", "is empty"), ("whsec_", "must hold 24 to 64 bytes, not 0"),
    ("whsec_" + base64.b64encode(b"short").decode(), "must hold 24 to 64 bytes, not 5"),
    ("whsec_not base64!", "must be base64 after the prefix"),
])
def test_an_empty_or_short_secret_is_refused_at_start_up(secret: str, why: str) -> None:
    with pytest.raises(ValidationError, match=f"ingest_secret\n.*{why}"):
        Settings(ingest_secret=SecretStr(secret))


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {SECRET}"},
        {"webhook-id": "m", "webhook-timestamp": str(NOW), "webhook-signature": "v1,AAAA"},
        {"webhook-id": "m", "webhook-timestamp": "soon", "webhook-signature": "v1,AAAA"},
        {"webhook-id": "m", "webhook-signature": "v1,AAAA"},
    ],
)
def test_missing_or_wrong_credentials_are_a_401(headers: dict[str, str]) -> None:
    result = ingest("email", orjson.dumps(sendgrid("e1")), headers, SETTINGS, now=NOW)
    assert result.status == 401 and result.records == []


def test_without_a_configured_secret_the_api_is_open() -> None:
    open_settings = Settings(ingest_secret=None)
    assert ingest("email", orjson.dumps(sendgrid("e1")), {}, open_settings, now=NOW).status == 202


def test_a_body_over_the_limit_is_a_413_before_anything_else() -> None:
    body = orjson.dumps([sendgrid(f"e{i}") for i in range(60)])
    assert len(body) > 4096
    result = ingest("email", body, {}, SETTINGS, now=NOW)
    assert result.status == 413
    assert result.body == {"error": f"the body is {len(body)} bytes; the limit is 4096"}


def test_an_unknown_source_is_a_404_for_an_authenticated_caller_only() -> None:
    result = ingest("fax", b"{}", BEARER, SETTINGS, now=NOW)
    assert result.status == 404
    installed = ", ".join(sorted(discover_sources()))
    assert result.body == {"error": f"no source named 'fax'; installed: {installed}"}
    assert {"crm", "email", "forms", "web", "webinar"} <= set(discover_sources())
    assert ingest("fax", b"{}", {}, SETTINGS, now=NOW).status == 401


def test_a_worker_with_an_empty_secret_does_not_start(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from app.cli import main

    monkeypatch.setenv("LEADSCORE_INGEST_SECRET", "")
    assert main(["worker"]) == 2
    assert capsys.readouterr().err == (
        "leadscore: the settings are wrong: ingest_secret: Value error, is empty: set a real "
        "secret, or unset it to run without one (see docs/configuration.md)\n")
