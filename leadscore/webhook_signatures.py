"""Standard Webhooks signatures (standardwebhooks.com), for requests we receive and send.

A signed request carries `webhook-id` (a unique message id), `webhook-timestamp` (Unix
seconds) and `webhook-signature`: `v1,<base64 of the HMAC-SHA256 of "id.timestamp.body">`,
several space-separated while a key is rotated. A secret `whsec_<base64>` is that key's
bytes; any other secret, its UTF-8 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

WEBHOOK_ID, WEBHOOK_TIMESTAMP, WEBHOOK_SIGNATURE = (
    "webhook-id", "webhook-timestamp", "webhook-signature")


def sign(message_id: str, timestamp: int, body: bytes, secret: str) -> str:
    """The `v1` signature, base64: what a sender puts after `v1,`."""
    key = (base64.b64decode(secret.removeprefix("whsec_")) if secret.startswith("whsec_")
           else secret.encode())
    signed = f"{message_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def signed_headers(message_id: str, timestamp: int, body: bytes, secret: str) -> dict[str, str]:
    """The three headers a sender adds to `body`."""
    return {WEBHOOK_ID: message_id, WEBHOOK_TIMESTAMP: str(timestamp),
            WEBHOOK_SIGNATURE: "v1," + sign(message_id, timestamp, body, secret)}


def signature_error(
    body: bytes, headers: Mapping[str, str], secret: str, now: float, tolerance: float,
) -> str | None:
    """Why the request's signature does not hold, or None if it does. A timestamp further
    than `tolerance` seconds from `now` is refused, so a captured request cannot be sent
    again later. `headers` names are lowercase."""
    message_id, timestamp = headers.get(WEBHOOK_ID, ""), headers.get(WEBHOOK_TIMESTAMP, "")
    signatures = headers.get(WEBHOOK_SIGNATURE, "")
    if not (message_id and timestamp and signatures):
        return (f"not signed: the `{WEBHOOK_ID}`, `{WEBHOOK_TIMESTAMP}` and "
                f"`{WEBHOOK_SIGNATURE}` headers are needed (Standard Webhooks)")
    try:
        sent_at = int(timestamp)
    except ValueError:
        return f"`{WEBHOOK_TIMESTAMP}` must be Unix seconds, not {timestamp[:40]!r}"
    if abs(now - sent_at) > tolerance:
        return (f"`{WEBHOOK_TIMESTAMP}` is more than {tolerance:g} s from the server's clock: "
                "sign each request when it is sent")
    wanted = sign(header_bytes(message_id).decode("utf-8", "replace"), sent_at, body, secret)
    for candidate in signatures.split():
        version, _, given = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(header_bytes(given), wanted.encode()):
            return None
    return f"no `{WEBHOOK_SIGNATURE}` matches the body, id and timestamp"


def header_bytes(header: str) -> bytes:
    """A header value's bytes, whatever they are (non-UTF-8 bytes arrive as surrogates)."""
    return header.encode("utf-8", "surrogateescape")
