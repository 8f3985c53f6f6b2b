"""The ingest API's logic, free of any web framework: request in, decision out.

`POST /v1/events/{source}` takes one raw event (a JSON object) or a batch (a JSON array) of
a source's payloads and answers what to produce to the source's raw topic. The web server
only moves bytes: it calls `ingest` and, on 202, produces `records` to `topic`.

A batch is all or nothing. When any item is invalid the answer is 400 with the reason of
every bad item and nothing is produced: webhook senders (SendGrid, Zoom, a CRM's outbound
messages) treat a request as one delivery, so a 400 must mean "none of it was taken" for a
fix-and-resend (or the sender's retry) to neither lose nor duplicate events.

Checks run in this order: body size (413), credentials (401; before anything that would tell
an unauthenticated caller which sources exist), source (404), then the items (400 or 202).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from pydantic import SecretStr, ValidationError

from leadscore.events import describe_error
from leadscore.settings import Settings
from streams.sources import Source, discover_sources

SIGNATURE_HEADER = "x-leadscore-signature"


@dataclass(frozen=True)
class RawRecord:
    """One raw payload to produce, as the sender wrote it, keyed by prospect when known."""

    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class ItemError:
    """Why item `index` of the request was refused; `index` is None for the whole body."""

    index: int | None
    reason: str


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
) -> IngestResult:
    """Decide on one ingest request. `headers` may be any mapping; names are case-insensitive.

    `sources` defaults to the installed ones (`discover_sources()`).
    """
    limit = settings.ingest_max_bytes
    if len(body) > limit:
        return IngestResult(413, error=f"the body is {len(body)} bytes; the limit is {limit}")
    lowered = {name.lower(): value for name, value in headers.items()}
    if not authorized(body, lowered, settings.ingest_secret):
        return IngestResult(
            401,
            error="missing or wrong credentials: send `Authorization: Bearer <secret>` or "
            "`X-Leadscore-Signature: sha256=<HMAC-SHA256 of the body, hex>`",
        )
    known = discover_sources() if sources is None else sources
    source = known.get(source_name)
    if source is None:
        names = ", ".join(sorted(known)) or "none"
        return IngestResult(404, error=f"no source named {source_name!r}; installed: {names}")

    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        return IngestResult(400, errors=[ItemError(None, f"the body is not JSON: {error}")])
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
    for index, item in enumerate(items):
        checked = check_item(source, item)
        if isinstance(checked, str):
            errors.append(ItemError(index, checked))
        else:
            records.append(checked)
    if errors:
        return IngestResult(400, errors=errors)
    return IngestResult(202, topic=settings.topic(source.topic), records=records)


def check_item(source: Source, item: Any) -> RawRecord | str:
    """One raw item as a record to produce, or the reason it is refused.

    Validation runs on the serialized item, exactly as the map stage will read it, so what
    is accepted here parses there. The key is the prospect's (email, else anonymous id) when
    the item maps to an event; the map stage reports any mapping failure as a dead letter.
    """
    if not isinstance(item, dict):
        return f"an item must be a JSON object, not {type(item).__name__}"
    value = orjson.dumps(item)
    try:
        payload = source.payload.model_validate_json(value)
    except ValidationError as error:
        return describe_error(error)
    try:
        events = source.to_events(payload)
    except Exception:  # reported by the map stage, with the raw item, as a dead letter
        events = []
    key = events[0].prospect.key.encode() if events else None
    return RawRecord(key=key, value=value)


def authorized(body: bytes, headers: Mapping[str, str], secret: SecretStr | None) -> bool:
    """Bearer token or HMAC signature, both compared in constant time; no secret: open.

    `headers` names must be lowercase.
    """
    if secret is None:
        return True
    key = secret.get_secret_value().encode()
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key):
        return True
    algorithm, _, digest = headers.get(SIGNATURE_HEADER, "").partition("=")
    if algorithm.strip().lower() != "sha256" or not digest:
        return False
    return hmac.compare_digest(digest.strip().lower().encode(), sign(body, key).encode())


def sign(body: bytes, key: bytes) -> str:
    """The hex HMAC-SHA256 of `body`: what a sender puts after `sha256=`."""
    return hmac.new(key, body, hashlib.sha256).hexdigest()
