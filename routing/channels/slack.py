"""A Slack incoming webhook: the alert as a Block Kit message, about one a second at most
(Slack's limit for a webhook). Retries and stops like the generic webhook."""

from __future__ import annotations

from typing import Any

import orjson

from routing.alerts import Alert, ChannelType, Context, Outcome, Retry, text
from routing.channels.webhook import UNSET, post


def message(alert: Alert) -> dict[str, Any]:
    card = alert["lead"]
    profile = card.get("profile") or {}
    facts = [f"*Score* {card.get('score')} (fit {card.get('fit')}, "
             f"behavior {card.get('behavior')})",
             f"*Rep* {alert['rep']['name']}", f"*Due* {card['due']}"]
    if profile.get("title"):
        facts.append(f"*Title* {profile['title']}")
    top = ", ".join(f"{hit['rule']} +{hit['points']}" for hit in card.get("top_rules") or [])
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": text(card, alert["kind"])[:150]}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": fact} for fact in facts]},
    ]
    if top:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"Top rules: {top}"}]})
    return {"text": text(card, alert["kind"]), "blocks": blocks}


async def deliver(alert: Alert, context: Context) -> Outcome:
    if not context.config.url:
        return Retry(UNSET.format("slack"))
    return await post(context, context.config.url, orjson.dumps(message(alert)),
                      {"Content-Type": "application/json"})


channel = ChannelType("slack", deliver, per_second=1.0)
