"""Email over SMTP to the rep's address. The channel's `url` is `smtp://host:port`
(`smtp+starttls://` to upgrade, `smtps://` for TLS from the start); its secret, if any,
is `user:password`. A refused recipient stops; anything else is retried."""

from __future__ import annotations

from email.message import EmailMessage
from urllib.parse import urlsplit

import aiosmtplib
import orjson

from routing.alerts import Alert, ChannelType, Context, Delivered, Gone, Outcome, Retry, text


def email_message(alert: Alert, sender: str) -> EmailMessage:
    card = alert["lead"]
    mail = EmailMessage()
    mail["From"], mail["To"] = sender, alert["rep"]["email"]
    # A header is one line: a profile fact with a line break must not end the header.
    mail["Subject"] = " ".join(text(card, alert["kind"]).split())
    mail["Message-ID"] = f"<{alert['id']}@leadscore>"  # the alert id: a repeat is the same mail
    lines = [text(card, alert["kind"]), "", f"Prospect: {card['prospect']}"]
    lines += [f"{name.title()}: {value}" for name, value in (card.get("profile") or {}).items()]
    lines += ["", f"Why: {card.get('fit')} fit + {card.get('behavior')} behavior points",
              *(f"  {hit['rule']}: +{hit['points']}" for hit in card.get("top_rules") or [])]
    lines += ["", orjson.dumps(alert, option=orjson.OPT_INDENT_2).decode()]
    mail.set_content("\n".join(lines))
    return mail


async def deliver(alert: Alert, context: Context) -> Outcome:
    url = urlsplit(context.config.url or "")
    if url.scheme not in ("smtp", "smtps", "smtp+starttls") or not url.hostname:
        return Gone(f"the email channel's url {context.config.url!r} is not smtp://host:port")
    user, _, password = (context.secret or "").partition(":")
    try:
        await aiosmtplib.send(
            email_message(alert, context.config.sender or "leadscore@localhost"),
            hostname=url.hostname, port=url.port or (465 if url.scheme == "smtps" else 25),
            use_tls=url.scheme == "smtps", start_tls=url.scheme == "smtp+starttls",
            username=user or None, password=password or None, timeout=10)
    except aiosmtplib.SMTPRecipientsRefused as error:
        return Gone(f"the recipient was refused: {error}")
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
        return Retry(f"{type(error).__name__}: {error}")
    return Delivered()


channel = ChannelType("email", deliver)
