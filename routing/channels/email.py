"""Email over SMTP to the rep's address. The channel's `url` is `smtp://host:port`
(`smtp+starttls://` to upgrade, `smtps://` for TLS from the start); its secret, if any,
is `user:password`.

Only the receiving server's permanent word gives an alert up: a 5xx refusal of the
recipient or of the message. A 4xx is temporary by SMTP's definition (a greylisting 451, a
full mailbox) and is retried, like a network error or a refusal of our own settings (the
sender, the login), which an operator fixes in the roster."""

from __future__ import annotations

from email.message import EmailMessage
from html import escape
from urllib.parse import urlsplit

import aiosmtplib

from routing.alerts import (
    Alert,
    ChannelType,
    Context,
    Delivered,
    Gone,
    Outcome,
    Retry,
    facts,
    text,
)


def email_message(alert: Alert, sender: str) -> EmailMessage:
    """The alert as a rep reads it: a summary subject, and the lead card's facts as plain
    text and as HTML (every fact escaped)."""
    summary, shown = text(alert), facts(alert)
    mail = EmailMessage()
    mail["From"], mail["To"] = sender, alert["rep"]["email"]
    mail["Subject"] = summary
    mail["Message-ID"] = f"<{alert['id']}@leadscore>"  # the alert id: a repeat is the same mail
    width = max(len(label) for label, _ in shown) + 2
    mail.set_content("\n".join([summary, "", *(f"{label + ':':<{width}}{value}"
                                              for label, value in shown)]) + "\n")
    rows = "".join(f'<tr><th align="left" valign="top">{escape(label)}</th>'
                   f"<td>{escape(value)}</td></tr>" for label, value in shown)
    mail.add_alternative(f'<!doctype html><html><body style="font-family: sans-serif">'
                         f"<p><strong>{escape(summary)}</strong></p>"
                         f'<table cellpadding="4">{rows}</table></body></html>\n',
                         subtype="html")
    return mail


async def deliver(alert: Alert, context: Context) -> Outcome:
    url = urlsplit(context.config.url or "")
    if url.scheme not in ("smtp", "smtps", "smtp+starttls") or not url.hostname:
        return Retry(f"the email channel's url {context.config.url!r} is not smtp://host:port: "
                     "the alert waits for a roster that fixes it")
    user, _, password = (context.secret or "").partition(":")
    try:
        await aiosmtplib.send(
            email_message(alert, context.config.sender or "leadscore@localhost"),
            hostname=url.hostname, port=url.port or (465 if url.scheme == "smtps" else 25),
            use_tls=url.scheme == "smtps", start_tls=url.scheme == "smtp+starttls",
            username=user or None, password=password or None, timeout=10)
    except aiosmtplib.SMTPRecipientsRefused as error:
        codes = [refused.code for refused in error.recipients]
        return _refused("the recipient", min(codes, default=0),
                        "; ".join(f"{refused.code} {refused.message}"
                                  for refused in error.recipients))
    except aiosmtplib.SMTPDataError as error:
        return _refused("the message", error.code, f"{error.code} {error.message}")
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
        return Retry(f"{type(error).__name__}: {error}")
    return Delivered()


def _refused(what: str, code: int, answer: str) -> Outcome:
    if code >= 500:
        return Gone(f"the mail server refused {what} for good: {answer}")
    return Retry(f"the mail server refused {what} for now: {answer}")


channel = ChannelType("email", deliver)
