"""Identity resolution: which prospect an event belongs to, across partitions.

A visitor is known by an anonymous id until they identify (an event carrying both the
anonymous id and an email). The link anon -> email lives in a table partitioned by the
anonymous id, so every event that carries that id meets it on one partition:

- an event with both ids records the link; the first time, it is sent to the anonymous
  key as a `link` message so the scoring stage can hand the visitor's state over to the
  prospect (the state lives on the anonymous key's partition, nowhere else);
- an anonymous event of an identified visitor goes straight to the email key;
- anything else goes to its own key.

The scoring stage then sees every event of a prospect under one key, in order.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any, Literal, TypedDict

from leadscore.events import Event

ANON_PREFIX = "anon:"


class ScoringMessage(TypedDict, total=False):
    """A message on the scoring topic (keyed by prospect key).

    kind "event": score `event`; when `absorb` is set, first fold that anonymous state in.
    kind "link": hand this key's state over to prospect `into`, then score `event` there.
    kind "tick": apply the decays due up to `now` on this partition.
    """

    kind: Literal["event", "link", "tick"]
    event: dict[str, Any]
    into: str
    absorb: dict[str, Any] | None
    absorb_key: str
    now: str


def routing_key(event: Event) -> str:
    """The key the canonical events topic is partitioned by: the anonymous id when present.

    Partitioning by anonymous id puts the link table entry and all the visitor's events on
    one partition, which is what lets `resolve` see the link without a remote lookup.
    """
    prospect = event.prospect
    if prospect.anonymous_id:
        return ANON_PREFIX + prospect.anonymous_id
    return prospect.key


def resolve(
    aliases: MutableMapping[str, str], event: Event, payload: dict[str, Any]
) -> tuple[str, ScoringMessage]:
    """The scoring key and message for a canonical event; records new links in `aliases`.

    `payload` is the event as a JSON-ready dict (it is forwarded, not re-validated).
    """
    prospect = event.prospect
    if not prospect.anonymous_id:
        return prospect.key, {"kind": "event", "event": payload}
    anon_key = ANON_PREFIX + prospect.anonymous_id
    if prospect.email:
        email_key = prospect.key
        if aliases.get(anon_key) != email_key:
            aliases[anon_key] = email_key
            return anon_key, {"kind": "link", "into": email_key, "event": payload}
        return email_key, {"kind": "event", "event": payload}
    return aliases.get(anon_key, anon_key), {"kind": "event", "event": payload}
