"""A generic webhook: the alert as JSON, signed the Standard Webhooks way.

A 2xx delivers it. 429 is retried after its `Retry-After`; 410 stops for good (the
receiver said it is gone); any other answer or a network error is retried with backoff.
A redirect is never followed: a 302 answered to a POST proves nothing arrived, and a 307
would carry the signed alert to a host the roster never named. It is retried, its
`Location` in the reason the dispatcher logs, until someone fixes the URL. Only the
receiver's own word gives an alert up; a channel the roster left without a URL is retried.
The `webhook-id` is the alert's id, so a receiver drops a repeat by it.
"""

from __future__ import annotations

import time

import aiohttp
import orjson

from leadscore.webhook_signatures import signed_headers
from routing.alerts import Alert, ChannelType, Context, Delivered, Gone, Outcome, Retry

TIMEOUT = aiohttp.ClientTimeout(total=10, connect=5)

#: A channel the roster left without a URL cannot deliver, but its alerts are not given up
#: for it: they wait for a roster that fixes the channel.
UNSET = "the {} channel has no url in the roster: the alert waits for a roster that gives one"


async def deliver(alert: Alert, context: Context) -> Outcome:
    if not context.config.url:
        return Retry(UNSET.format("webhook"))
    body = orjson.dumps(alert)
    headers = {"Content-Type": "application/json"}
    if context.secret:
        headers |= signed_headers(alert["id"], int(time.time()), body, context.secret)
    else:
        headers["webhook-id"] = alert["id"]
    return await post(context, context.config.url, body, headers)


async def post(context: Context, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    """POST `body`; what the answer means for a delivery (shared with Slack)."""
    try:
        async with context.http.post(url, data=body, headers=headers, timeout=TIMEOUT,
                                     allow_redirects=False) as response:
            status = response.status
            retry_after = response.headers.get("Retry-After")
            location = response.headers.get("Location")
    except (aiohttp.ClientError, TimeoutError) as error:
        return Retry(f"{type(error).__name__}: {error}")
    if 200 <= status < 300:
        return Delivered()
    if status == 410:
        return Gone("the receiver answered 410 Gone")
    if status == 429:
        return Retry("429 Too Many Requests", _seconds(retry_after))
    if 300 <= status < 400:
        return Retry(f"the receiver answered {status}, redirecting to {location!r}: redirects "
                     "are not followed; put the final URL in the roster")
    return Retry(f"the receiver answered {status}")


def _seconds(retry_after: str | None) -> float | None:
    try:
        return max(0.0, float(retry_after)) if retry_after else None
    except ValueError:
        return None  # an HTTP date: the backoff decides


channel = ChannelType("webhook", deliver)
