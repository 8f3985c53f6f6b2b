"""What the engine remembers about one prospect, as plain data.

Fit and behavior are kept apart (a rep reads them as stars and flames); `score` is their
sum clamped to the rule set's bounds. Times are epoch seconds (floats): the engine
compares them on every event, and floats compare far faster than datetimes. The
collections that most prospects never need stay `None` until first used, which keeps a
million prospects in memory affordable.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from leadscore.decisions import ANON_PREFIX, ANONYMOUS, PROSPECT, iso

#: How many recent event ids a prospect remembers to ignore redelivered events.
REMEMBERED_EVENT_IDS = 64
#: How many recent visits a per-visit rule remembers (visits end; older ones are dropped).
REMEMBERED_VISITS = 8



@dataclass(slots=True)
class ProspectState:
    key: str
    stage: str = PROSPECT
    track: str | None = None
    fit: int = 0
    behavior: int = 0
    #: The current value of each fit rule, by rule id: replaced when its fact changes.
    fit_parts: dict[str, int] = field(default_factory=dict)
    #: Last behavior activity, and how many global decays were applied since then.
    last_activity: float | None = None
    decays: int = 0
    #: The latest event time or `now` this state was brought up to.
    clock: float | None = None
    #: Recent event ids, oldest first (a dict keeps order and tests membership fast).
    seen: dict[str, None] = field(default_factory=dict)
    #: The same ids once there are more than the bound, so the oldest is found without
    #: walking the dict (whose front fills with the slots of ids already forgotten).
    seen_order: deque[str] | None = field(default=None, compare=False, repr=False)
    #: What the per-visit rules remember, by rule id, in one dict (a page view reads
    #: each of its gates): for a once- or count-per-visit rule, {visit id: count, -1 once
    #: fired}; for a visits-within rule, [last fired at, visit id, last seen at, ...],
    #: oldest visit first, flat.
    gates: dict[str, dict[str, int] | list[Any]] | None = None
    #: Points held by each capped or aging rule or group (its share of `behavior`).
    held: dict[str, int] | None = None
    #: Expiring points: owner id -> [[expires at, points], ...], soonest first.
    lots: dict[str, list[list[float]]] | None = None
    #: Halving points: owner id -> when its points next halve.
    halvings: dict[str, float] | None = None
    #: Profile facts a rep reads on a lead card (`PROFILE_FACTS`), the latest of each.
    profile: dict[str, Any] | None = None
    #: Points each behavior rule has added, in all: a lead card's top rule hits.
    hits: dict[str, int] | None = None

    @classmethod
    def new(cls, key: str) -> ProspectState:
        return cls(key=key, stage=ANONYMOUS if key.startswith(ANON_PREFIX) else PROSPECT)

    def score(self, low: int, high: int) -> int:
        total = self.fit + self.behavior
        return low if total < low else high if total > high else total

    def remember(self, event_id: str) -> None:
        """Add `event_id` to the ids remembered (an id already there keeps its place)."""
        seen = self.seen
        if event_id not in seen:
            seen[event_id] = None
            if len(seen) > REMEMBERED_EVENT_IDS:
                self.forget_oldest(event_id)

    def forget_oldest(self, newest: str) -> None:
        """Drop the oldest remembered id, once `newest` was added one past the bound."""
        order = self.seen_order
        if order is None:
            order = self.seen_order = deque(self.seen)
        else:
            order.append(newest)
        del self.seen[order.popleft()]

    def add_behavior(self, points: int, low: int, high: int) -> int:
        """Add `points` to behavior without pushing the total past a bound; returns the change.

        A total already out of bounds (a fit change can do that) is never pushed further
        out, and points that would cross a bound are cut at it, so a prospect at 100 who
        keeps browsing does not bank points that decay would then have to burn through.
        """
        total = self.fit + self.behavior
        if points > 0:
            target = min(total + points, high)
            change = target - total if target > total else 0
        else:
            target = max(total + points, low)
            change = target - total if target < total else 0
        self.behavior += change
        return change

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; `from_dict(to_dict())` gives back an equal state."""
        data: dict[str, Any] = {
            "key": self.key, "stage": self.stage, "track": self.track, "fit": self.fit,
            "behavior": self.behavior, "fit_parts": self.fit_parts,
            "last_activity": self.last_activity, "decays": self.decays, "clock": self.clock,
            "seen": list(self.seen),
        }
        for name in ("gates", "held", "lots", "halvings", "profile", "hits"):
            value = getattr(self, name)
            if value:
                data[name] = value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProspectState:
        return cls(
            key=data["key"], stage=data["stage"], track=data["track"], fit=data["fit"],
            behavior=data["behavior"], fit_parts=dict(data["fit_parts"]),
            last_activity=data["last_activity"], decays=data["decays"], clock=data["clock"],
            seen=dict.fromkeys(data["seen"]),
            gates=_gates(data["gates"]) if "gates" in data
            else _older_gates(data.get("visits", {}), data.get("windows", {})) or None,
            held=dict(data["held"]) if "held" in data else None,
            lots={k: [list(lot) for lot in v] for k, v in data["lots"].items()}
            if "lots" in data else None,
            halvings=dict(data["halvings"]) if "halvings" in data else None,
            profile=dict(data["profile"]) if "profile" in data else None,
            hits=dict(data["hits"]) if "hits" in data else None,
        )

    def summary(self, low: int, high: int) -> dict[str, Any]:
        """The view `leadscore replay --state` writes."""
        return {
            "score": self.score(low, high), "fit": self.fit, "behavior": self.behavior,
            "stage": self.stage, "track": self.track,
            "last_activity_at": iso(self.last_activity) if self.last_activity else None,
        }


def _gates(gates: dict[str, Any]) -> dict[str, dict[str, int] | list[Any]]:
    """A copy of `gates` as `to_dict` wrote it (the state is changed in place)."""
    return {k: dict(v) if type(v) is dict else list(v) for k, v in gates.items()}


def _older_gates(
    visits: dict[str, dict[str, int]], windows: dict[str, list[Any]]
) -> dict[str, dict[str, int] | list[Any]]:
    """`ProspectState.gates` from the `visits` and `windows` that `to_dict` wrote until
    2026-12 (changelog records of an older version)."""
    gates: dict[str, dict[str, int] | list[Any]] = {k: dict(v) for k, v in visits.items()}
    for rule_id, (fired, seen) in windows.items():
        gates[rule_id] = [fired, *(x for visit in seen.items() for x in visit)]
    return gates
