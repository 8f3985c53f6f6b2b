"""The roster: who takes which leads, when, how many, and how they are alerted.

Marketing ops edit it as YAML (`routing/roster.yaml` is the shipped example). These models
say what each key means; `load_roster` reads a file with every problem located at
`file:line:col`, and compiles it once into lookups the router uses per lead.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from leadscore.durations import Duration
from leadscore.kafka.topics import fits
from leadscore.yaml_files import (
    FileError,
    FilesError,
    Loc,
    YamlFile,
    parse_yaml,
    validate,
    yaml_texts,
)

ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _id(value: str) -> str:
    if not ID.fullmatch(value):
        raise ValueError(f"{value!r} is not an id: up to 80 letters, digits, '_', '.' and '-', "
                         "starting with a letter or digit")
    return value


def _email(value: str) -> str:
    if not EMAIL.fullmatch(value):
        raise ValueError(f"{value!r} is not an email address")
    return value


Id = Annotated[str, AfterValidator(_id)]
Email = Annotated[str, AfterValidator(_email)]
Day = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
DAYS: tuple[Day, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class RosterError(FilesError):
    """A roster that does not pass the check; `errors` holds every problem found."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _lower_all(values: Any) -> Any:
    """Each text of a list in lower case; anything else is left for the check to refuse."""
    return [v.lower() if isinstance(v, str) else v for v in values] \
        if isinstance(values, list) else values


def _upper_all(values: Any) -> Any:
    return [v.upper() if isinstance(v, str) else v for v in values] \
        if isinstance(values, list) else values


class Territory(Strict):
    """What a team covers: countries (ISO codes), named regions, and named accounts."""

    countries: Annotated[list[str], BeforeValidator(_upper_all)] = []
    regions: list[str] = []
    #: Account domains, e.g. `globex.example`: a lead from such a domain goes to this team.
    accounts: Annotated[list[str], BeforeValidator(_lower_all)] = []


class AccountExecutive(Strict):
    id: Id
    name: str
    email: Email
    #: The accounts this AE owns: their leads go to the AE's team, whatever the territory.
    accounts: Annotated[list[str], BeforeValidator(_lower_all)] = []


class Step(Strict):
    """One rung of the fast-track ladder: what happens when a lead is still unacknowledged
    this long after it was assigned."""

    after: Duration
    action: Literal["remind", "reassign", "escalate"]


class FastTrackSla(Strict):
    acknowledge_within: Duration = 300.0
    ladder: list[Step] = [
        Step.model_validate({"after": after, "action": action})
        for after, action in (("3m", "remind"), ("5m", "reassign"), ("10m", "escalate"))
    ]


class StandardSla(Strict):
    work_within: Duration = 86_400.0
    #: `business hours`: `work_within` counts only the team's `business_hours` (24h on
    #: 09:00-18:00 weekdays is almost three working days); `all hours`: the clock.
    counts: Literal["all hours", "business hours"] = "all hours"


class Sla(Strict):
    fast_track: FastTrackSla = FastTrackSla()
    standard: StandardSla = StandardSla()


def _clock_time(value: Any) -> Any:
    """A wall-clock time is written "09:00" (quoted: YAML reads 9:00 as 540 seconds)."""
    if not isinstance(value, str | time):
        raise ValueError(f"write the time as \"HH:MM\" in quotes, not {value!r}")
    return value


ClockTime = Annotated[time, BeforeValidator(_clock_time)]


class Hours(Strict):
    days: list[Day] = ["mon", "tue", "wed", "thu", "fri"]
    start: ClockTime = time(9, 0)
    end: ClockTime = time(18, 0)

    @field_validator("start", "end")
    @classmethod
    def _in_the_reps_zone(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("a working hour is in the rep's time_zone: give no offset")
        return value


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}; use an IANA name such as "
                         "Europe/Madrid") from None
    return value


Zone = Annotated[str, AfterValidator(_known_zone)]


class ZonedHours(Hours):
    """Hours on the clock of a time zone of their own: a team's business hours."""

    time_zone: Zone = "UTC"


class OnCall(ZonedHours):
    """A weekly on-call window: the rep takes the team's hand-raisers in it when nobody is
    on shift (default: around the clock on the days given)."""

    rep: Id
    days: list[Day] = list(DAYS)
    start: ClockTime = time(0, 0)
    end: ClockTime = time(0, 0)


class Team(Strict):
    id: Id
    name: str = ""
    territory: Territory = Territory()
    account_executives: list[AccountExecutive] = []
    #: Who gets a lead when no rep of the team can take it, and the ladder's last rung:
    #: a rep id of the roster.
    escalation: Id
    sla: Sla = Sla()
    #: When the team promises its fast-track response; outside them a hand-raiser goes to
    #: whoever is `on_call`, else waits for the first rep on shift. None: always.
    business_hours: ZonedHours | None = None
    on_call: list[OnCall] = []


class DateRange(Strict):
    start: date
    end: date

    @model_validator(mode="after")
    def _in_order(self) -> DateRange:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class Rep(Strict):
    id: Id
    name: str
    email: Email
    role: Literal["MRR", "SDR"]
    team: Id
    time_zone: Zone = "UTC"
    working_hours: Hours = Hours()
    out_of_office: list[DateRange] = []
    #: A rep's share of the team's leads, against the others' weights.
    weight: int = Field(default=1, ge=1, le=100)
    daily_cap: int | None = Field(default=None, ge=1)
    monthly_cap: int = Field(default=400, ge=1)
    #: The channels (names under `channels:`) that alert the rep of a new lead.
    alerts: list[Id] = []


class Channel(Strict):
    """An alert channel: a plugin (`leadscore.channels` entry point) and its settings."""

    type: Id
    #: Where to send: a webhook or Slack URL, an SMTP `host:port`.
    url: str | None = None
    #: The environment variable holding the channel's secret (never the secret itself).
    secret_env: str | None = None
    #: For email: the sender address.
    sender: Email | None = None


class Roster(Strict):
    #: Named sets of countries a territory may list, e.g. `emea: [ES, FR, DE]`.
    regions: dict[str, Annotated[list[str], BeforeValidator(_upper_all)]] = {}
    teams: list[Team] = Field(min_length=1)
    reps: list[Rep] = Field(min_length=1)
    channels: dict[Id, Channel] = {}
    #: The team of a lead no territory or account matches (default: the first team).
    default_team: Id | None = None


@dataclass(frozen=True)
class CompiledRoster:
    """The roster as the router reads it, built once per version."""

    roster: Roster
    version: str
    teams: dict[str, Team]
    reps: dict[str, Rep]
    #: Account domain -> (team id, AE id or None).
    accounts: dict[str, tuple[str, str | None]]
    #: Country -> team id.
    countries: dict[str, str]
    default_team: str
    #: The file it was read from, and where each of its values sits there, for checks
    #: made after it was read (`unset_secrets`).
    name: str = ""
    places: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    #: What is allowed but likely not meant (`roster check` prints them, a worker logs them).
    warnings: tuple[FileError, ...] = ()

    def members(self, team: str) -> list[Rep]:
        """The team's inbound reps (MRRs), in roster order."""
        return [rep for rep in self.reps.values() if rep.team == team and rep.role == "MRR"]


def load_roster(path: Path, max_bytes: int | None = None) -> CompiledRoster:
    """Read and check the roster at `path`; raises `RosterError` with every problem. With
    `max_bytes` (the `message_max_bytes` setting), it must also fit the roster topic."""
    try:
        texts = yaml_texts(path, "roster files")
    except FilesError as error:
        raise RosterError(error.errors) from None
    if len(texts) != 1:
        raise RosterError([FileError(str(path), 1, 1, "give one roster file, not a folder")])
    [(name, text)] = texts.items()
    if max_bytes is not None:
        _check_fits(name, text, max_bytes)
    return roster_from_text(name, text)


def _check_fits(name: str, text: str, max_bytes: int) -> None:
    """A roster is put in force as one record of the roster topic: one too large for it
    passes the check but fails to publish, so the check says so first (before reading it:
    a roster that large takes long to read)."""
    record = published(name, text)
    if not fits(ROSTER_KEY, record, max_bytes):
        raise RosterError([FileError(
            name, 1, 1, f"this roster is {len(record):,} bytes as a record of the roster "
            f"topic, which takes at most {max_bytes:,} (the message_max_bytes setting): "
            "it cannot be published; make it smaller, or raise message_max_bytes and the "
            "broker's message.max.bytes")])


def roster_from_text(name: str, text: str) -> CompiledRoster:
    """The roster in `text` (named `name` in errors); raises `RosterError`."""
    file = YamlFile(name=name, text=text)
    data = parse_yaml(file)
    roster = None
    if isinstance(data, dict):
        roster = validate(file, (), Roster, data)
    elif data is not None:
        file.error((), "a roster is a mapping with the keys " + ", ".join(Roster.model_fields))
    if isinstance(data, dict):
        _check_references(file, data)
        if isinstance(data.get("channels"), dict):
            _check_channels(file, data["channels"])
    if file.errors or roster is None:
        raise RosterError(file.errors)
    return _compile(roster, hashlib.sha256(text.encode()).hexdigest()[:12], file,
                    tuple(_warnings(file.name, roster, file.values)))


#: The URLs each shipped channel type can deliver to (an installed plugin checks its own).
URL_SCHEMES = {"webhook": ("http", "https"), "slack": ("http", "https"),
               "email": ("smtp", "smtp+starttls", "smtps")}


def _check_channels(file: YamlFile, channels: dict[Any, Any]) -> None:
    """Every channel can deliver: its type is installed, and its URL is one it sends to.
    Checked on the file's data, so these come with the other errors of the file."""
    from routing.alerts import ChannelError, channel_types  # (routing.alerts reads Channel)

    try:
        installed = sorted(channel_types())
    except ChannelError as error:
        file.error(("channels",), f"the installed alert channels do not load: {error}")
        return
    for name, config in channels.items():
        if not isinstance(config, dict) or not isinstance(config.get("type"), str):
            continue  # the models' check says what is wrong with it
        kind, url = config["type"], config.get("url")
        schemes = URL_SCHEMES.get(kind)
        if kind not in installed:
            file.error(("channels", name, "type"), f"type: no installed channel type {kind!r} "
                       f"(installed: {', '.join(installed)})")
        elif schemes and url is None:
            file.error(("channels", name), f"channel {name!r} has no url; {kind} channels "
                       f"send to {_either(schemes)} URLs", at_key=True)
        elif schemes and isinstance(url, str) and (problem := _url_problem(url, schemes)):
            file.error(("channels", name, "url"), f"url: {url!r} {problem}; {kind} channels "
                       f"send to {_either(schemes)} URLs with a host")


def _url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """What keeps `url` from being one of `schemes` with a host, if anything."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "is not a URL"
    if parts.scheme.lower() not in schemes:
        return f"uses {parts.scheme}://" if parts.scheme else "has no scheme"
    return None if host else "names no host"


def _either(schemes: tuple[str, ...]) -> str:
    named = [f"{scheme}://" for scheme in schemes]
    return f"{', '.join(named[:-1])} or {named[-1]}"


def _check_references(file: YamlFile, data: dict[Any, Any]) -> None:
    """What the models alone cannot check: every id named exists, and is named once.
    Checked on the file's data whatever else is wrong with it, so one pass shows every
    error; a value the models refuse (not an id) is left to their error."""
    teams, reps = _mappings(data.get("teams")), _mappings(data.get("reps"))
    regions, channels = _mapping(data.get("regions")), _mapping(data.get("channels"))
    team_ids = {team.get("id") for _, team in teams}
    rep_ids = {rep.get("id") for _, rep in reps}
    for kind, items, where in (("team", teams, "teams"), ("rep", reps, "reps")):
        seen: set[str] = set()
        for index, item in items:
            item_id = item.get("id")
            if isinstance(item_id, str) and item_id in seen:
                file.error((where, index, "id"), f"duplicate {kind} id {item_id!r}")
            elif isinstance(item_id, str):
                seen.add(item_id)
    owner: dict[str, Any] = {}
    for index, team in teams:
        escalation = _an_id(team.get("escalation"))
        if escalation is not None and escalation not in rep_ids:
            file.error(("teams", index, "escalation"),
                       f"escalation: no rep with the id {escalation!r}")
        territory = _mapping(team.get("territory"))
        for position, region in _texts(territory.get("regions")):
            if region not in regions:
                file.error(("teams", index, "territory", "regions", position),
                           f"no region named {region!r} under regions:")
        named: list[tuple[Loc, str]] = [(("territory", "accounts", i), account)
                                         for i, account in _texts(territory.get("accounts"))]
        named += [(("account_executives", a, "accounts", i), account)
                  for a, ae in _mappings(team.get("account_executives"))
                  for i, account in _texts(ae.get("accounts"))]
        for loc, account in named:
            first = owner.setdefault(account.lower(), team.get("id"))
            if first != team.get("id"):
                file.error(("teams", index, *loc),
                           f"the account {account!r} is already team {first!r}'s")
        for position, window in _mappings(team.get("on_call")):
            on_call = _an_id(window.get("rep"))
            if on_call is not None and on_call not in rep_ids:
                file.error(("teams", index, "on_call", position, "rep"),
                           f"on_call: no rep with the id {on_call!r}")
        standard = _mapping(_mapping(team.get("sla")).get("standard"))
        if standard.get("counts") == "business hours" and team.get("business_hours") is None:
            file.error(("teams", index, "sla", "standard", "counts"),
                       "counts: business hours needs the team's business_hours")
    for index, rep in reps:
        team_id = _an_id(rep.get("team"))
        if team_id is not None and team_id not in team_ids:
            file.error(("reps", index, "team"), f"team: no team with the id {team_id!r}")
        for position, channel in _texts(rep.get("alerts")):
            if _an_id(channel) is not None and channel not in channels:
                file.error(("reps", index, "alerts", position),
                           f"no channel named {channel!r} under channels:")
    default_team = _an_id(data.get("default_team"))
    if default_team is not None and default_team not in team_ids:
        file.error(("default_team",), f"default_team: no team with the id {default_team!r}")


def _mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def _mappings(value: Any) -> list[tuple[int, dict[Any, Any]]]:
    """The mappings of a list in the file's data, with their places in it."""
    items = value if isinstance(value, list) else []
    return [(index, item) for index, item in enumerate(items) if isinstance(item, dict)]


def _texts(value: Any) -> list[tuple[int, str]]:
    items = value if isinstance(value, list) else []
    return [(index, item) for index, item in enumerate(items) if isinstance(item, str)]


def _an_id(value: Any) -> str | None:
    return value if isinstance(value, str) and ID.fullmatch(value) else None


def _warnings(name: str, roster: Roster, places: dict[Loc, tuple[int, int]]) -> list[FileError]:
    """What a roster allows but its author likely did not mean: ladder steps out of order
    (they run by their time, whatever their order), a remind or reassign step after the
    deadline (the lead has breached by then; escalating after it is what a breach is
    for), a daily cap above the monthly one (the monthly one binds first)."""
    found: list[FileError] = []

    def warn(loc: Loc, message: str) -> None:
        while loc not in places and loc:
            loc = loc[:-1]
        found.append(FileError(name, *places.get(loc, (1, 1)), message))

    for index, team in enumerate(roster.teams):
        fast = team.sla.fast_track
        where: Loc = ("teams", index, "sla", "fast_track", "ladder")
        for rung, step in enumerate(fast.ladder):
            before = fast.ladder[rung - 1] if rung else None
            if before is not None and step.after <= before.after:
                warn((*where, rung, "after"),
                     f"ladder: {step.action} at {_spoken(step.after)} is not after the step "
                     f"before it ({before.action} at {_spoken(before.after)}): steps run by "
                     "their time, not their order")
            if step.action != "escalate" and step.after > fast.acknowledge_within:
                warn((*where, rung, "after"),
                     f"ladder: {step.action} at {_spoken(step.after)} comes after the deadline "
                     f"(acknowledge_within {_spoken(fast.acknowledge_within)}): the lead has "
                     "breached by then")
    for index, rep in enumerate(roster.reps):
        if rep.daily_cap is not None and rep.daily_cap > rep.monthly_cap:
            warn(("reps", index, "daily_cap"),
                 f"daily_cap {rep.daily_cap} is above monthly_cap {rep.monthly_cap}: the "
                 "monthly cap is reached first")
    return found


def _spoken(seconds: float) -> str:
    """A duration as a roster writes it: 90 -> 90s, 600 -> 10m, 7200 -> 2h."""
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def secrets_needed(roster: CompiledRoster) -> dict[str, list[str]]:
    """The environment variables the roster's channels read their secrets from, each with
    the channels that name it."""
    needed: dict[str, list[str]] = {}
    for name, channel in roster.roster.channels.items():
        if channel.secret_env:
            needed.setdefault(channel.secret_env, []).append(name)
    return needed


def unset_secrets(roster: CompiledRoster, environ: Mapping[str, str]) -> list[FileError]:
    """Each channel whose secret variable is unset or empty in `environ`: it would send
    without its secret (an unsigned webhook, no SMTP login), so a worker refuses such a
    roster rather than alert that way silently."""
    missing = []
    for name, channel in roster.roster.channels.items():
        if channel.secret_env and not environ.get(channel.secret_env):
            line, col = roster.places.get(("channels", name, "secret_env"), (1, 1))
            missing.append(FileError(
                roster.name, line, col,
                f"secret_env: {channel.secret_env} is not set where this runs: the channel "
                f"{name!r} would send its alerts without its secret"))
    return missing


def _compile(roster: Roster, version: str, file: YamlFile,
             warnings: tuple[FileError, ...]) -> CompiledRoster:
    accounts: dict[str, tuple[str, str | None]] = {}
    countries: dict[str, str] = {}
    for team in roster.teams:
        for account in team.territory.accounts:
            accounts.setdefault(account, (team.id, None))
        for ae in team.account_executives:
            for account in ae.accounts:
                accounts[account] = (team.id, ae.id)
        for country in team.territory.countries:
            countries.setdefault(country, team.id)
        for region in team.territory.regions:
            for country in roster.regions[region]:
                countries.setdefault(country, team.id)
    return CompiledRoster(
        roster=roster, version=version, teams={team.id: team for team in roster.teams},
        reps={rep.id: rep for rep in roster.reps}, accounts=accounts, countries=countries,
        default_team=roster.default_team or roster.teams[0].id, name=file.name,
        places=file.values, warnings=warnings,
    )


#: The key of published rosters on the roster topic; the value is `published`'s.
ROSTER_KEY = b"roster"


def published(name: str, text: str) -> bytes:
    """A roster file as a record of the roster topic."""
    return orjson.dumps({"name": name, "text": text})


def from_published(value: bytes) -> CompiledRoster:
    """The roster a record of the roster topic holds; raises `RosterError` if it fails its
    check, ValueError if it is not a published roster."""
    try:
        document = orjson.loads(value)
        name, text = document["name"], document["text"]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f'not a published roster: expected {{"name", "text"}} ({error!r})') \
            from None
    if not isinstance(name, str) or not isinstance(text, str):
        raise ValueError('not a published roster: "name" and "text" must be text')
    return roster_from_text(name, text)


def weekday(day: date) -> Day:
    return DAYS[day.weekday()]
