"""Alerts: what a rep is told of a lead, and the channel plugins that tell them.

An alert has one id for its lead, kind and rep, whatever the channel, the worker, or the
number of attempts: receivers drop repeats by it. A channel is data, like a source: a name
and an async `deliver` function, offered by an installed package through the
`leadscore.channels` entry point group (`webhook`, `slack`, `email` and `stream` ship).
`deliver` answers what happened; `routing.dispatch` retries and counts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any, Literal, TypedDict

from routing.roster import Channel, Rep

ENTRY_POINT_GROUP = "leadscore.channels"

#: `taken`: the lead was claimed or reassigned away from the rep alerted.
Kind = Literal["new_lead", "reminder", "reassigned", "taken"]


class Alert(TypedDict):
    """The JSON an alert carries (a webhook's body, a stream entry's `alert`)."""

    type: Literal["lead.alert"]
    id: str
    kind: Kind
    rep: dict[str, str]
    #: The lead card (`routing.policy.card`): routing, score parts, top rules, trigger,
    #: profile.
    lead: dict[str, Any]
    #: When the event that made the lead reached leadscore (Unix ms); None if unknown.
    received_at: int | None


def alert_id(lead: str, kind: str, rep: str, ordinal: int = 0) -> str:
    """One id per lead, kind, rep and `ordinal` (which reminder, which reassignment)."""
    return "A" + hashlib.sha256(f"{lead}|{kind}|{rep}|{ordinal}".encode()).hexdigest()[:20]


def alert(kind: Kind, rep: Rep, card: dict[str, Any], received_at: int | None,
          ordinal: int = 0) -> Alert:
    return {
        "type": "lead.alert", "id": alert_id(card["lead"], kind, rep.id, ordinal), "kind": kind,
        "rep": {"id": rep.id, "name": rep.name, "email": rep.email}, "lead": card,
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
    """Stop: the receiver will never take it (410 Gone, a refused address)."""

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


def text(card: dict[str, Any], kind: Kind) -> str:
    """A one-line summary of an alert, for subjects and notifications."""
    profile = card.get("profile") or {}
    who = profile.get("name") or card["prospect"]
    company = f" ({profile['company']})" if profile.get("company") else ""
    what = {"new_lead": "New lead", "reminder": "Reminder: not acknowledged yet",
            "reassigned": "Lead reassigned to you",
            "taken": f"Lead taken over by {card['rep']}"}[kind]
    track = f"FAST TRACK, acknowledge by {card['deadline']}" if card["track"] == "fast_track" else \
        f"due {card['due']}"
    return f"{what}: {who}{company}, score {card.get('score')}, {track}"
