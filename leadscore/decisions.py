"""The decision records and the words they share: one owner for every area.

Every decision is an event: the audit trail and the integration surface. Scoring makes
them, the live pipeline publishes them on `decisions`, replay prints them, and routing
reads them; each reads the shapes and the words (stages, tracks, key prefixes) from here.
Records are plain JSON-ready dicts, built by the functions below; the `TypedDict`s say
what each type holds, for readers and type checkers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal, TypedDict

import orjson

#: The state key of an anonymous visitor: `anon:<anonymous id>`. A known prospect's key is
#: the lowercased email.
ANON_PREFIX = "anon:"

#: Funnel stages a prospect's state moves through (a rep's outcome adds the last two).
ANONYMOUS, PROSPECT, LEAD = "anonymous", "prospect", "lead"
OPPORTUNITY, DISQUALIFIED = "opportunity", "disqualified"

#: Tracks of a promotion: a hand-raiser goes to a rep at once, every other lead to the
#: 24-hour queue.
FAST_TRACK, STANDARD = "fast_track", "standard"
Track = Literal["fast_track", "standard"]

#: The rule id of the score change an identity merge makes.
MERGE_RULE = "identity.merge"

Decision = dict[str, Any]

# Every decision type, with one owner: the stages write and read these names only.
SCORE_CHANGED, PROSPECT_PROMOTED = "score.changed", "prospect.promoted"
PROSPECT_REENGAGED, EVENT_REJECTED = "prospect.reengaged", "event.rejected"
LEAD_ROUTED, LEAD_ACKNOWLEDGED, LEAD_COMPLETED = "lead.routed", "lead.acknowledged", \
    "lead.completed"
LEAD_REMINDED, LEAD_REASSIGNED, LEAD_REENGAGED = "lead.reminded", "lead.reassigned", \
    "lead.reengaged"
SLA_BREACHED = "sla.breached"


_DATES: dict[int, str] = {}


def iso(seconds: float) -> str:
    """Epoch seconds -> `2026-01-05T09:00:00Z` (microseconds only when there are some).

    Every decision carries a time, and `datetime.isoformat` costs more than scoring the
    event; whole seconds (the usual case) are formatted from a per-day cache instead.
    """
    whole = int(seconds)
    if whole != seconds or whole < 0:
        return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")
    day, rest = divmod(whole, 86_400)
    date = _DATES.get(day)
    if date is None:
        if len(_DATES) > 100_000:
            _DATES.clear()
        date = _DATES[day] = datetime.fromtimestamp(day * 86_400, UTC).strftime("%Y-%m-%d")
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{date}T{hours:02d}:{minutes:02d}:{secs:02d}Z"


class ScoreChanged(TypedDict):
    type: Literal["score.changed"]
    prospect: str
    rule: str
    delta: int
    score: int
    #: The event that made the change; None for a decay or a merge.
    event_id: str | None
    at: str
    rules_version: str


class RuleHit(TypedDict):
    rule: str
    points: int


class Trigger(TypedDict):
    """The event a promotion happened on: the hand-raise of a fast-track lead."""

    id: str
    type: str
    #: Its properties, scalars only and cut short: what a rep reads on the lead card.
    properties: dict[str, Any]


class ProspectPromoted(TypedDict):
    """A prospect became a lead, with what a rep needs to act on it at once."""

    type: Literal["prospect.promoted"]
    prospect: str
    score: int
    track: Track
    at: str
    rules_version: str
    #: The two parts of the score: how well they fit, how engaged they are.
    fit: int
    behavior: int
    #: The rules that gave the most points, most first.
    top_rules: list[RuleHit]
    #: None when a merge or a decay run promoted, not an event.
    trigger: Trigger | None
    #: Profile facts known so far: name, title, company, country, lead source.
    profile: dict[str, str]


class EventRejected(TypedDict):
    """A line `leadscore replay` could not read as an event."""

    type: Literal["event.rejected"]
    line: int
    error: str
    rules_version: str


def score_changed(
    version: str, prospect: str, rule: str, delta: int, score: int, *, event_id: str | None,
    at: str,
) -> Decision:
    return {
        "type": SCORE_CHANGED, "prospect": prospect, "rule": rule, "delta": delta,
        "score": score, "event_id": event_id, "at": at, "rules_version": version,
    }


def score_changed_source(**fields: str) -> str:
    """Python source making the `score.changed` record whose fields are the expressions in
    `fields` (every field but `type`): generated evaluators write it in line, since a call
    per decision costs more than the dict. Raises if `fields` are not the record's."""
    wanted = [name for name in ScoreChanged.__annotations__ if name != "type"]
    if sorted(fields) != sorted(wanted):
        raise ValueError(f"score.changed has the fields {wanted}, not {sorted(fields)}")
    items = ", ".join(f'"{name}": {fields[name]}' for name in wanted)
    return f'{{"type": "{SCORE_CHANGED}", {items}}}'


def promoted(
    version: str, prospect: str, score: int, track: str, at: str, *, fit: int, behavior: int,
    top_rules: list[RuleHit], trigger: Trigger | None, profile: dict[str, str],
) -> Decision:
    return {
        "type": PROSPECT_PROMOTED, "prospect": prospect, "score": score, "track": track,
        "at": at, "rules_version": version, "fit": fit, "behavior": behavior,
        "top_rules": top_rules, "trigger": trigger, "profile": profile,
    }


def reengaged(version: str, prospect: str, score: int, at: str, trigger: Trigger) -> Decision:
    """A lead raised their hand again (a second contact-me form, a trial request): routing
    tells the lead's owner, once per trigger event."""
    return {"type": PROSPECT_REENGAGED, "prospect": prospect, "score": score, "at": at,
            "rules_version": version, "trigger": trigger}


def rejected(version: str, line: int, error: str) -> Decision:
    return {"type": EVENT_REJECTED, "line": line, "error": error, "rules_version": version}


# Routing's decisions: where each lead went and what happened to it there.


class Candidate(TypedDict):
    rep: str
    #: Why the rep could not take the lead ("off shift", "out of office", "at daily cap
    #: 40", ...); None for those who could.
    excluded: str | None


class LeadRouted(TypedDict):
    """A lead was assigned to a rep: the explanation a rep or a manager reads."""

    type: Literal["lead.routed"]
    #: The lead's id: stable for one promotion, whatever the repeats.
    lead: str
    prospect: str
    track: Track
    team: str
    #: Why this team: the account, country or default that matched.
    matched: str
    candidates: list[Candidate]
    rep: str
    #: True when nobody in the team could take it and the escalation target got it.
    fallback: bool
    #: When the rep should work it, and when the SLA is breached.
    due: str
    deadline: str
    at: str
    roster_version: str


class LeadEvent(TypedDict):
    """What happened to an assigned lead: acknowledged, completed, reminded, reassigned,
    told of a new hand-raise or breached. `lead.reassigned` adds `from_rep`, `reason` and
    `routed`; `lead.reengaged` the `trigger`."""

    type: Literal["lead.acknowledged", "lead.completed", "lead.reminded", "lead.reassigned",
                  "lead.reengaged", "sla.breached"]
    lead: str
    prospect: str
    rep: str
    at: str


#: Every decision type, by the stage that makes it.
DECISION_TYPES = {
    "scoring": (SCORE_CHANGED, PROSPECT_PROMOTED, PROSPECT_REENGAGED, EVENT_REJECTED),
    "routing": (LEAD_ROUTED, LEAD_ACKNOWLEDGED, LEAD_COMPLETED, LEAD_REMINDED,
                LEAD_REASSIGNED, LEAD_REENGAGED, SLA_BREACHED),
}
_KNOWN = frozenset(kind for kinds in DECISION_TYPES.values() for kind in kinds)


def read_decision(value: bytes) -> Decision:
    """A record of the decisions topic as a decision: a JSON object whose `type` is one of
    `DECISION_TYPES`; ValueError otherwise. The one reader every consumer of decisions
    uses, so a record no stage wrote is refused the same way everywhere."""
    decision = orjson.loads(value)
    if not isinstance(decision, dict) or decision.get("type") not in _KNOWN:
        raise ValueError("not a decision: expected a JSON object with a known \"type\"")
    return decision


def lead_event(kind: str, lead: str, prospect: str, rep: str, at: str,
               **more: Any) -> Decision:
    return {"type": kind, "lead": lead, "prospect": prospect, "rep": rep, "at": at, **more}


def routing_summary(row: Decision) -> str:
    """One line for a routing decision: where the lead went and why, or what happened."""
    kind = row["type"]
    if kind == LEAD_ROUTED:
        passed = ", ".join(f"{c['rep']} ({c['excluded']})" for c in row["candidates"]
                           if c["excluded"])
        how = row.get("chosen_by") or ("fallback: nobody eligible" if row["fallback"] else "")
        shown = f" ({how})" if how and how != "the rotation" else ""
        line = (f"routed to {row['rep']}{shown}, team {row['team']} by {row['matched']}; "
                f"deadline {row['deadline']}")
        return line + (f"; passed over {passed}" if passed else "")
    if kind == LEAD_REASSIGNED:
        return f"reassigned {row['from_rep']} -> {row['rep']}: {row['reason']}"
    if kind == LEAD_REMINDED:
        return f"reminded {row['rep']}: not acknowledged yet"
    if kind == SLA_BREACHED:
        return f"SLA breached: {row['rep']} missed the deadline {row['deadline']}"
    if kind == LEAD_REENGAGED:
        return f"{row['rep']} told: the lead raised their hand again"
    if kind == LEAD_ACKNOWLEDGED:
        return f"acknowledged by {row['rep']}"
    if kind == LEAD_COMPLETED:
        return f"completed by {row['rep']}"
    return f"{kind} {row.get('rep', '')}".rstrip()
