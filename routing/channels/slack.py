"""A Slack incoming webhook: the alert as a Block Kit message, about one a second at most
(Slack's limit for a webhook). Retries and stops like the generic webhook."""

from __future__ import annotations

from typing import Any

import orjson

from leadscore.decisions import FAST_TRACK
from routing.alerts import (
    HEADLINES,
    Alert,
    ChannelType,
    Context,
    Outcome,
    Retry,
    clean,
    facts,
    text,
)
from routing.channels.webhook import UNSET, post

#: Slack's limits: 10 fields in a section, 10 elements in a context, 2000 characters in a
#: field (kept well under: a fact is read at a glance).
MAX_FIELDS, MAX_CONTEXT, FIELD_LENGTH = 10, 10, 500


def escape(value: Any) -> str:
    """Text for Slack's markup as Slack documents it: `&`, `<` and `>` as entities, so a
    prospect's `<!channel>`, `<@U123>` or `<https://evil.example|click here>` reads as
    typed instead of pinging everyone or hiding a link."""
    return clean(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message(alert: Alert) -> dict[str, Any]:
    """The alert as Block Kit: our headline, the summary, and the lead card's facts for
    whoever reads the channel (the rep's name first: a team may share it)."""
    card = alert["lead"]
    summary = escape(text(alert))
    # The header holds our words only: plain_text has no escape for Slack's markup.
    headline = HEADLINES[alert["kind"]] + (" · FAST TRACK" if card["track"] == FAST_TRACK
                                           else "")
    shown = [("For", clean(alert["rep"]["name"])), *facts(alert)]
    fields = [{"type": "mrkdwn", "text": f"*{label}*\n{escape(value[:FIELD_LENGTH])}"}
              for label, value in shown[:MAX_FIELDS]]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline}},
        {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
        {"type": "section", "fields": fields},
    ]
    if rest := shown[MAX_FIELDS:]:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"*{label}* {escape(value[:FIELD_LENGTH])}"}
            for label, value in rest[:MAX_CONTEXT]]})
    return {"text": summary, "blocks": blocks}


async def deliver(alert: Alert, context: Context) -> Outcome:
    if not context.config.url:
        return Retry(UNSET.format("slack"))
    return await post(context, context.config.url, orjson.dumps(message(alert)),
                      {"Content-Type": "application/json"})


channel = ChannelType("slack", deliver, per_second=1.0)
