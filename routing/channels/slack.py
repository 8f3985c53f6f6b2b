"""A Slack incoming webhook: the alert as a Block Kit message, about one a second at most
(Slack's limit for a webhook). Retries and stops like the generic webhook."""

from __future__ import annotations

from typing import Any

import orjson

from leadscore.decisions import FAST_TRACK
from routing.alerts import HEADLINES, Alert, ChannelType, Context, Outcome, Retry, clean, text
from routing.channels.webhook import UNSET, post


def escape(value: Any) -> str:
    """Text for Slack's markup as Slack documents it: `&`, `<` and `>` as entities, so a
    prospect's `<!channel>`, `<@U123>` or `<https://evil.example|click here>` reads as
    typed instead of pinging everyone or hiding a link."""
    return clean(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message(alert: Alert) -> dict[str, Any]:
    card = alert["lead"]
    profile = card.get("profile") or {}
    facts = [f"*Score* {escape(card.get('score'))} (fit {escape(card.get('fit'))}, "
             f"behavior {escape(card.get('behavior'))})",
             f"*Rep* {escape(alert['rep']['name'])}", f"*Due* {escape(card['due'])}"]
    if profile.get("title"):
        facts.append(f"*Title* {escape(profile['title'])}")
    top = ", ".join(f"{escape(hit['rule'])} +{escape(hit['points'])}"
                    for hit in card.get("top_rules") or [])
    summary = escape(text(card, alert["kind"]))
    # The header holds our words only: plain_text has no escape for Slack's markup.
    headline = HEADLINES[alert["kind"]] + (" · FAST TRACK" if card["track"] == FAST_TRACK
                                           else "")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": headline}},
        {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": fact} for fact in facts]},
    ]
    if top:
        blocks.append({"type": "context", "elements": [
            {"type": "mrkdwn", "text": f"Top rules: {top}"}]})
    return {"text": summary, "blocks": blocks}


async def deliver(alert: Alert, context: Context) -> Outcome:
    if not context.config.url:
        return Retry(UNSET.format("slack"))
    return await post(context, context.config.url, orjson.dumps(message(alert)),
                      {"Content-Type": "application/json"})


channel = ChannelType("slack", deliver, per_second=1.0)
