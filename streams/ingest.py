"""The ingest API's logic, free of any web framework: request in, decision out.

`POST /v1/events/{source}` takes one raw event (a JSON object) or a batch (a JSON array) of
a source's payloads and answers what to produce to the source's raw topic. The web server
only moves bytes: it calls `ingest` and, on 202, produces `records` to `topic` as one
batch on one partition, which the broker appends whole or not at all.

A batch is all or nothing. When any item is invalid the answer is 400 with the reason of
every bad item and nothing is produced: webhook senders (SendGrid, Zoom, a CRM's outbound
messages) treat a request as one delivery, so a 400 must mean "none of it was taken" for a
fix-and-resend (or the sender's retry) to neither lose nor duplicate events.

Checks run in this order: body size (413), credentials (401; before anything that would tell
an unauthenticated caller which sources exist), source (404), then the items (400, 413 when
what they become does not fit the topics, or 202). Every input gets one of those answers:
whatever is wrong with a request, it is refused where it enters, never mid-stream.

The raw topic holds each item re-serialised (compact JSON, keys in the order sent; a number
such as `1E2` is written `100.0`), not the bytes as sent: a batch is split into its items.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import SecretStr, ValidationError

from leadscore.events import describe_error
from leadscore.kafka.topics import batch_size, fits
from leadscore.settings import Settings
from leadscore.webhook_signatures import (
    WEBHOOK_ID,
    WEBHOOK_SIGNATURE,
    WEBHOOK_TIMESTAMP,
    header_bytes,
    signature_error,
)
from streams.scoring import event_message
from streams.sources import Source, discover_sources
from streams.topics import event_too_large, topics_of

#: JSON nested deeper than this is refused: no payload needs it, and deep nesting is how
#: parsers and serialisers are made to fail.
MAX_DEPTH = 32
#: The position an event will have when mapped, at its largest: what ingest measures.
_LARGEST_POSITION = ("x" * 249 + "/2147483647", 2**63 - 1)


@dataclass(frozen=True)
class RawRecord:
    """One raw payload to produce, as the sender wrote it, keyed by prospect when known."""

    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class ItemError:
    """Why item `index` of the request was refused; `index` is None for the whole body.
    `too_large`: what the item becomes does not fit the topics (413, not 400)."""

    index: int | None
    reason: str
    too_large: bool = False


@dataclass(frozen=True)
class IngestResult:
    status: int
    topic: str | None = None
    records: list[RawRecord] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)
    error: str | None = None

    @property
    def body(self) -> dict[str, Any]:
        """The JSON response body."""
        if self.status == 202:
            return {"accepted": len(self.records)}
        if self.errors:
            return {
                "accepted": 0,
                "errors": [{"index": e.index, "reason": e.reason} for e in self.errors],
            }
        return {"error": self.error}


def ingest(
    source_name: str,
    body: bytes,
    headers: Mapping[str, str],
    settings: Settings,
    sources: Mapping[str, Source] | None = None,
    *,
    now: float,
) -> IngestResult:
    """Decide on one ingest request. `headers` may be any mapping; names are case-insensitive.
    `now` (Unix seconds) is checked against a signature's timestamp.

    `sources` defaults to the installed ones (`discover_sources()`).
    """
    limit = settings.ingest_max_bytes
    if len(body) > limit:
        return IngestResult(413, error=f"the body is {len(body)} bytes; the limit is {limit}")
    lowered = {name.lower(): value for name, value in headers.items()}
    refused = authentication_error(body, lowered, settings, now)
    if refused is not None:
        return IngestResult(401, error=refused)
    known = discover_sources() if sources is None else sources
    source = known.get(source_name)
    if source is None:
        names = ", ".join(sorted(known)) or "none"
        return IngestResult(404, error=f"no source named {source_name!r}; installed: {names}")

    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        return IngestResult(400, errors=[ItemError(None, f"the body is not JSON: {error}")])
    if _deeper_than(document, MAX_DEPTH):
        reason = f"the JSON is nested deeper than {MAX_DEPTH} levels"
        return IngestResult(400, errors=[ItemError(None, reason)])
    if isinstance(document, dict):
        items: list[Any] = [document]
    elif isinstance(document, list) and document:
        items = document
    elif document == []:
        return IngestResult(400, errors=[ItemError(None, "the batch is empty")])
    else:
        reason = f"the body must be a JSON object or array, not {type(document).__name__}"
        return IngestResult(400, errors=[ItemError(None, reason)])

    records: list[RawRecord] = []
    errors: list[ItemError] = []
    too_large: list[ItemError] = []
    for index, item in enumerate(items):
        checked = check_item(source, item, settings.message_max_bytes)
        if isinstance(checked, ItemError):
            (too_large if checked.too_large else errors).append(
                ItemError(index, checked.reason))
        else:
            records.append(checked)
    if errors:
        return IngestResult(400, errors=errors)
    if too_large:
        return IngestResult(413, errors=too_large)
    size = batch_size((r.key, r.value) for r in records)
    if size > settings.message_max_bytes:
        return IngestResult(413, error=f"the items take {size} bytes as records; a request's "
                            f"records must fit one batch of {settings.message_max_bytes} bytes "
                            "(message_max_bytes): send fewer items per request")
    return IngestResult(202, topic=topics_of(settings, known).raw[source_name], records=records)


def check_item(source: Source, item: Any, max_bytes: int) -> RawRecord | ItemError:
    """One raw item as a record to produce, or why it is refused (the caller sets the
    error's index).

    Validation runs on the serialized item, exactly as the map stage will read it, so what
    is accepted here parses and maps there, and every event it maps to fits its topic. The
    key is the prospect's (email, else anonymous id) when the item maps to an event. A
    mapping that fails with anything but a ValueError is a bug of the source plugin, not
    of the item: it is accepted, and the map stage sets it aside for a re-drive once fixed.
    """
    if not isinstance(item, dict):
        return ItemError(None, f"an item must be a JSON object, not {type(item).__name__}")
    value = orjson.dumps(item)
    if not fits(None, value, max_bytes):
        return ItemError(None, f"the item is {len(value)} bytes as JSON; a record holds at "
                               f"most {max_bytes} (message_max_bytes)", too_large=True)
    try:
        payload = source.payload.model_validate_json(value)
        events = source.to_events(payload)
    except ValueError as error:  # pydantic's ValidationError is one
        return ItemError(None, _reason(error))
    except Exception:  # a plugin bug: the map stage sets the item aside, to re-drive later
        events = []
    for number, event in enumerate(events):
        message = orjson.dumps(event_message(event.model_dump(mode="json"),
                                             _LARGEST_POSITION, number))
        too_large = event_too_large(event.prospect.key.encode(), message, max_bytes)
        if too_large:
            return ItemError(None, too_large, too_large=True)
    key = events[0].prospect.key.encode() if events else None
    return RawRecord(key=key, value=value)


def _reason(error: ValueError) -> str:
    if isinstance(error, ValidationError):
        return describe_error(error)
    return str(error) or type(error).__name__


def _deeper_than(document: Any, depth: int) -> bool:
    """Whether `document` nests lists and objects more than `depth` levels deep."""
    level = [document]
    for _ in range(depth + 1):
        level = [child for node in level if isinstance(node, dict | list)
                 for child in (node.values() if isinstance(node, dict) else node)]
        if not level:
            return False
    return True


def authentication_error(
    body: bytes, headers: Mapping[str, str], settings: Settings, now: float
) -> str | None:
    """Why the request is not authenticated, or None if it is (or no secret is set): a
    bearer token, or a Standard Webhooks signature within the tolerance. Compared in
    constant time. `headers` names are lowercase."""
    secret: SecretStr | None = settings.ingest_secret
    if secret is None:
        return None
    expected = secret.get_secret_value()
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip() and hmac.compare_digest(
            header_bytes(token.strip()), expected.encode()):
        return None
    if WEBHOOK_SIGNATURE not in headers:
        return ("missing or wrong credentials: send `Authorization: Bearer <secret>`, or sign "
                f"the request with the `{WEBHOOK_ID}`, `{WEBHOOK_TIMESTAMP}` and "
                f"`{WEBHOOK_SIGNATURE}` headers (Standard Webhooks)")
    return signature_error(body, headers, expected, now,
                           settings.ingest_signature_tolerance_seconds)
