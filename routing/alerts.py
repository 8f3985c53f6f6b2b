"""Alerts: what a rep is told of a lead, and the channel plugins that tell them.

An alert has one id for its lead, kind and rep, whatever the channel, the worker, or the
number of attempts: receivers drop repeats by it. A channel is data, like a source: a name
and an async `deliver` function, offered by an installed package through the
`leadscore.channels` entry point group (`webhook`, `slack`, `email` and `stream` ship).
`deliver` answers what happened; `routing.dispatch` retries and counts.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from importlib.metadata import entry_points
from typing import Any, Literal, TypedDict
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from leadscore.decisions import FAST_TRACK
from routing.roster import Channel, Rep

ENTRY_POINT_GROUP = "leadscore.channels"

#: `re_engaged`: the lead raised their hand again; `taken`: the lead was claimed or
#: reassigned away from the rep alerted.
Kind = Literal["new_lead", "reminder", "reassigned", "re_engaged", "taken"]


class Alert(TypedDict):
    """The JSON an alert carries (a webhook's body, a stream entry's `alert`)."""

    type: Literal["lead.alert"]
    id: str
    kind: Kind
    #: id, name, email and time_zone (the IANA zone its times are written in for the rep).
    rep: dict[str, str]
    #: The lead card (`routing.policy.card`): routing, score parts, top rules, trigger,
    #: profile.
    lead: dict[str, Any]
    #: When the event that made the lead reached leadscore (Unix ms); None if unknown.
    received_at: int | None


def alert_id(lead: str, kind: str, rep: str, ordinal: int | str = 0) -> str:
    """One id per lead, kind, rep and `ordinal` (which reminder, which reassignment, which
    trigger event)."""
    return "A" + hashlib.sha256(f"{lead}|{kind}|{rep}|{ordinal}".encode()).hexdigest()[:20]


def alert(kind: Kind, rep: Rep, card: dict[str, Any], received_at: int | None,
          ordinal: int | str = 0) -> Alert:
    return {
        "type": "lead.alert", "id": alert_id(card["lead"], kind, rep.id, ordinal), "kind": kind,
        "rep": {"id": rep.id, "name": rep.name, "email": rep.email,
                "time_zone": rep.time_zone}, "lead": card,
        "received_at": received_at,
    }


@dataclass(frozen=True)
class Delivered:
    pass


@dataclass(frozen=True)
class Retry:
    """Try again: after `after` seconds if the receiver said (429 Retry-After), else after
    the dispatcher's backoff."""

    reason: str
    after: float | None = None


@dataclass(frozen=True)
class Gone:
    """Stop: the receiver said it will never take it (410 Gone, a 5xx SMTP refusal). A
    channel's own settings never give an alert up: a roster fixes them, so they `Retry`."""

    reason: str


Outcome = Delivered | Retry | Gone


@dataclass(frozen=True)
class Context:
    """What a channel's `deliver` may use besides the alert."""

    #: The channel's settings from the roster.
    config: Channel
    #: Its secret, read from `config.secret_env` (None if it has none).
    secret: str | None
    #: An aiohttp ClientSession, a Redis client, and the routing keys' prefix.
    http: Any
    redis: Any
    prefix: str


@dataclass(frozen=True)
class ChannelType:
    name: str
    deliver: Callable[[Alert, Context], Awaitable[Outcome]]
    #: At most this many deliveries a second per configured channel (Slack: about 1).
    per_second: float | None = None


class ChannelError(Exception):
    """An installed channel plugin is broken or clashes with another one."""


@cache
def channel_types() -> dict[str, ChannelType]:
    """The installed channel types by name."""
    found: dict[str, ChannelType] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            channel = entry_point.load()
        except Exception as error:
            raise ChannelError(f"alert channel {entry_point.name!r} ({entry_point.value}) does "
                               f"not load: {type(error).__name__}: {error}") from error
        if not isinstance(channel, ChannelType) or channel.name != entry_point.name:
            raise ChannelError(f"alert channel {entry_point.name!r} ({entry_point.value}) is "
                               "not a routing.alerts.ChannelType of that name")
        if channel.name in found:
            raise ChannelError(f"two installed packages offer the alert channel "
                               f"{channel.name!r}; uninstall one of them")
        found[channel.name] = channel
    return found


#: What each kind of alert tells the rep, first.
HEADLINES: dict[Kind, str] = {"new_lead": "New lead",
                              "reminder": "Reminder: not acknowledged yet",
                              "reassigned": "Lead reassigned to you",
                              "re_engaged": "Your lead raised their hand again",
                              "taken": "Lead taken over"}

#: Bidirectional overrides and isolates: they reorder the text after them on screen.
_BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A)])


def clean(value: Any) -> str:
    """Prospect-supplied text as one line a rep can trust: line breaks and tabs become
    spaces and other control characters go, so a form field cannot end an email header,
    fake a line of the alert, send terminal escapes or turn the text around on screen."""
    line = " ".join(str(value).split())
    return "".join(char for char in line
                   if unicodedata.category(char) != "Cc").translate(_BIDI_CONTROLS)


def local_time(stamp: str, zone: str) -> str:
    """A card's time as the rep reads it, in their zone and to the minute: "Wed 4 Mar
    10:05 CET" (an alert queued before alerts carried the zone reads in UTC)."""
    try:
        tz = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        tz = ZoneInfo("UTC")
    moment = datetime.fromisoformat(stamp).astimezone(tz)
    return f"{moment:%a} {moment.day} {moment:%b %H:%M} {moment.tzname()}"


def _when(alert: Alert) -> tuple[str, str]:
    """What the rep must do by when: acknowledge a fast-track lead, work a standard one."""
    card, zone = alert["lead"], alert["rep"].get("time_zone", "UTC")
    if card["track"] == FAST_TRACK:
        return "Acknowledge by", local_time(card["deadline"], zone)
    return "Due", local_time(card["due"], zone)


def text(alert: Alert) -> str:
    """A one-line summary of an alert, for subjects and notifications (control characters
    removed; a channel with markup escapes it itself)."""
    card = alert["lead"]
    profile = card.get("profile") or {}
    who = clean(profile.get("name") or card["prospect"])
    company = f" ({clean(profile['company'])})" if profile.get("company") else ""
    _, when = _when(alert)
    track = f"FAST TRACK, acknowledge by {when}" if card["track"] == FAST_TRACK else \
        f"due {when}"
    what = HEADLINES[alert["kind"]]
    if alert["kind"] == "taken":
        what += f" by {clean(card['rep'])}"
    return f"{what}: {who}{company}, score {card.get('score')}, {track}"


#: The profile facts a rep looks for first, and their labels.
_PROFILE = {"name": "Name", "title": "Title", "company": "Company", "country": "Country"}


def facts(alert: Alert) -> list[tuple[str, str]]:
    """What a rep reads of the lead card, label and value, most useful first; values are
    `clean`, for a channel to escape for its markup. Emails and Slack show the same facts."""
    card = alert["lead"]
    profile = card.get("profile") or {}
    shown = [("Score", f"{card.get('score')} (fit {card.get('fit')}, "
                       f"behavior {card.get('behavior')})"), _when(alert)]
    shown += [(label, profile[name]) for name, label in _PROFILE.items() if profile.get(name)]
    shown.append(("Email", card["prospect"]))
    shown += [(name.replace("_", " ").capitalize(), value) for name, value in profile.items()
              if value and name not in _PROFILE]
    if trigger := card.get("trigger"):
        said = ", ".join(f"{name}: {value}" for name, value in
                         (trigger.get("properties") or {}).items())
        shown.append(("Trigger", f"{trigger['type']} ({said})" if said else trigger["type"]))
    if top := card.get("top_rules"):
        shown.append(("Top rules", ", ".join(f"{hit['rule']} +{hit['points']}" for hit in top)))
    shown.append(("Why you", _why(card)))
    shown.append(("Lead", card["lead"]))
    return [(label, clean(value)) for label, value in shown]


def _why(card: dict[str, Any]) -> str:
    """Why the lead came to this rep: the team's match, or the team's fallback."""
    team = f"team {card['team']}" + (f" ({card['matched']})" if card.get("matched") else "")
    if card.get("fallback"):
        return f"{team}; nobody in the team could take it, so it came to you, its escalation"
    return team
