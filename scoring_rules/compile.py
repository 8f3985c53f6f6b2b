"""Validated rule files -> a `RuleSet` of plain evaluators, indexed by event type.

Everything the engine needs per event is decided here, once: which rules an event type
can hit, each rule's predicate over the event's properties, its frequency gate, its cap
and who owns its decay. The engine then never looks at a rule file again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scoring_rules.conditions import PatternError, Predicate, compile_condition, words_pattern
from scoring_rules.errors import RuleFileError
from scoring_rules.loader import (
    ParsedFile,
    parse_files,
    raise_errors,
    rule_file_texts,
    rules_version,
)
from scoring_rules.schema import Aging, Condition, FitRule, Group, Rule, RuleSetSettings
from scoring_rules.state import ProspectState

# Frequency gates of a behavior rule.
EVERY_TIME, ONCE_PER_VISIT, COUNT_PER_VISIT, VISITS_WITHIN = 0, 1, 2, 3


@dataclass(frozen=True, slots=True)
class Owner:
    """Who holds a rule's points for caps and owned decay: the rule, or its group."""

    id: str
    cap: int | None
    expires_after: float | None
    half_life: float | None


@dataclass(frozen=True, slots=True)
class BehaviorRule:
    id: str
    points: int
    #: The `where` tests: (property, test of its value), all of which must hold.
    where: tuple[tuple[str, Predicate], ...]
    fast_track: bool
    gate: int
    gate_count: int
    window: float
    owners: tuple[Owner, ...]


@dataclass(frozen=True, slots=True)
class FitEvaluator:
    id: str
    fact: str
    value: Callable[[Any], int]
    best: int
    worst: int


#: Scores one event of one type: (state, event id, event type, time, properties, `iso` of
#: the time or None, the list its decisions are appended to). See `scoring_rules.evaluators`.
Evaluator = Callable[["ProspectState", str, str, float, dict[str, Any], str | None,
                      list[dict[str, Any]]], None]


@dataclass(frozen=True, slots=True)
class DecayBand:
    id: str
    above: float | None
    subtract: int


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A compiled rule set. `version` is a short hash of its files; decisions carry it."""

    version: str
    files: Mapping[str, str]
    threshold: int
    min_score: int
    max_score: int
    behavior: Mapping[str, tuple[BehaviorRule, ...]]
    fit: Mapping[str, tuple[FitEvaluator, ...]]
    decay_after: float | None
    decay_every: float
    decay_bands: tuple[DecayBand, ...]
    owners: Mapping[str, Owner]
    rule_ids: tuple[str, ...]
    aging: bool = False
    summaries: Mapping[str, str] = field(default_factory=dict)
    #: The function scoring each event type (None: the types without rules), generated and
    #: compiled on first use by `engine.evaluator`.
    evaluators: dict[str | None, Evaluator] = field(default_factory=dict, compare=False,
                                                    repr=False)


def load_rules(path: Path, extra_event_types: Iterable[str] = ()) -> RuleSet:
    """Load, check and compile a rule file or a folder of `*.yaml`. Raises `RulesError`."""
    return load_rule_texts(rule_file_texts(path), extra_event_types)


def load_rule_texts(files: Mapping[str, str], extra_event_types: Iterable[str] = ()) -> RuleSet:
    """The same from texts (name -> YAML), as published on the rules topic."""
    parsed = parse_files(files, extra_event_types)
    return compile_rule_set(parsed, rules_version(files))


def compile_rule_set(parsed: list[ParsedFile], version: str) -> RuleSet:
    errors: list[RuleFileError] = []
    settings, settings_file = _settings(parsed, errors)
    brand = words_pattern(settings.brand_terms) if settings.brand_terms else None
    groups = {g.id: (file, i, g) for file in parsed if file.content
              for i, g in enumerate(file.content.groups)}
    owners = {gid: _owner(g.id, g.max_points, g) for gid, (_, _, g) in groups.items()}
    group_owners = dict(owners)
    behavior: dict[str, list[BehaviorRule]] = {}
    fit: dict[str, list[FitEvaluator]] = {}
    rule_ids: list[str] = []
    for file in parsed:
        for index, fit_rule in zip(file.positions.get("fit", []), file.content.fit, strict=True):
            evaluator = _fit(fit_rule, brand, file, ("fit", index))
            rule_ids.append(fit_rule.id)
            for event_type in fit_rule.event:
                fit.setdefault(event_type, []).append(evaluator)
        for index, rule in zip(file.positions.get("rules", []), file.content.rules, strict=True):
            compiled = _behavior(rule, brand, file=file, loc=("rules", index), groups=groups,
                                 group_owners=group_owners)
            owners.update((o.id, o) for o in compiled.owners)
            rule_ids.append(rule.id)
            for event_type in rule.event:
                behavior.setdefault(event_type, []).append(compiled)
        rule_ids.extend(g.id for g in file.content.groups)
    decay = settings.decay
    rule_set = RuleSet(
        version=version,
        files={file.name: file.text for file in parsed},
        threshold=settings.threshold,
        min_score=settings.min_score,
        max_score=settings.max_score,
        behavior={k: tuple(v) for k, v in behavior.items()},
        fit={k: tuple(v) for k, v in fit.items()},
        decay_after=decay.after if decay else None,
        decay_every=(decay.every or decay.after) if decay else 0.0,
        decay_bands=tuple(DecayBand(b.id, b.above, b.subtract) for b in decay.bands)
        if decay else (),
        owners=owners,
        rule_ids=tuple(rule_ids),
        aging=any(o.expires_after or o.half_life for o in owners.values()),
        summaries={file.name: _summary(file) for file in parsed},
    )
    if not any(file.dropped for file in parsed):
        _check_reachable(rule_set, settings_file, errors)
    raise_errors(parsed, errors)
    return rule_set


def _settings(
    parsed: list[ParsedFile], errors: list[RuleFileError]
) -> tuple[RuleSetSettings, ParsedFile | None]:
    found: tuple[RuleSetSettings, ParsedFile | None] = (RuleSetSettings(), None)
    for file in parsed:
        if file.content.settings is None:
            continue
        if found[1] is not None:
            file.error(("settings",), f"settings are already given in {found[1].name}",
                       at_key=True)
        else:
            found = (file.content.settings, file)
    return found


def _owner(owner_id: str, cap: int | None, aging: Aging) -> Owner:
    return Owner(owner_id, cap, aging.expires_after, aging.half_life)


def _predicate(
    condition: Condition, brand: Any, file: ParsedFile, loc: tuple[str | int, ...]
) -> Predicate | None:
    try:
        return compile_condition(condition, brand)
    except PatternError as error:
        file.error((*loc, error.key), str(error))
        return None


def _behavior(
    rule: Rule,
    brand: Any,
    *,
    file: ParsedFile,
    loc: tuple[str | int, ...],
    groups: Mapping[str, tuple[ParsedFile, int, Group]],
    group_owners: Mapping[str, Owner],
) -> BehaviorRule:
    tests = [(name, _predicate(c, brand, file, (*loc, "where", name)))
             for name, c in rule.where.items()]
    where = tuple((name, test) for name, test in tests if test is not None)
    owners: list[Owner] = []
    if rule.max_points or rule.expires_after or rule.half_life:
        owners.append(_owner(rule.id, rule.max_points, rule))
    if rule.group is not None:
        if rule.group not in groups:
            close = f"; groups are: {', '.join(groups)}" if groups else "; no groups are defined"
            file.error((*loc, "group"), f"unknown group {rule.group!r}{close}")
        else:
            group = group_owners[rule.group]
            if (group.expires_after or group.half_life) and (rule.expires_after or rule.half_life):
                file.error((*loc, "group"), f"both this rule and its group {rule.group!r} "
                                            "own a decay; keep one")
            owners.append(group)
    gate, count, window = EVERY_TIME, 0, 0.0
    if rule.once_per:
        gate, count = ONCE_PER_VISIT, 1
    elif rule.count:
        gate, count = COUNT_PER_VISIT, rule.count.minimum
    elif rule.visits:
        gate, count, window = VISITS_WITHIN, rule.visits.at_least, rule.visits.within
    return BehaviorRule(rule.id, rule.points, where, rule.fast_track, gate, count, window,
                        tuple(owners))


#: How many distinct text values the answers of an event type's tests on one property are
#: remembered for, before they start afresh (see `scoring_rules.evaluators`).
MATCH_MEMORY = 4096


def _fit(rule: FitRule, brand: Any, file: ParsedFile, loc: tuple[str | int, ...]) -> FitEvaluator:
    if rule.bands is None:
        test = _predicate(rule, brand, file, loc) or bool
        points = rule.points or 0

        def single(value: Any) -> int:
            return points if value is not None and test(value) else 0

        return FitEvaluator(rule.id, rule.fact, single, max(points, 0), min(points, 0))
    bands = [(_predicate(band, brand, file, (*loc, "bands", i)) or bool, band.points)
             for i, band in enumerate(rule.bands)]

    def banded(value: Any) -> int:
        if value is None:
            return 0
        for test, band_points in bands:
            if test(value):
                return band_points
        return 0

    values = [p for _, p in bands] + [0]
    return FitEvaluator(rule.id, rule.fact, banded, max(values), min(values))


def _check_reachable(
    rules: RuleSet, settings_file: ParsedFile | None, errors: list[RuleFileError]
) -> None:
    """A threshold above every score the rules can produce is a mistake worth a hard error."""
    best_fit = sum({e.id: e.best for evs in rules.fit.values() for e in evs}.values())
    capped_by: dict[str, int] = {}
    unbounded = False
    for rule in {r.id: r for rs in rules.behavior.values() for r in rs}.values():
        if rule.points <= 0:
            continue
        caps = [o for o in rule.owners if o.cap is not None]
        if not caps:
            unbounded = True
        for owner in caps[:1]:
            capped_by[owner.id] = owner.cap or 0
    best = rules.max_score if unbounded else min(
        rules.max_score, best_fit + sum(capped_by.values()))
    if rules.threshold > best:
        message = (f"threshold {rules.threshold} cannot be reached: the highest score these "
                   f"rules allow is {best}")
        if settings_file is not None:
            settings_file.error(("settings", "threshold"), message)
        else:
            name = next(iter(rules.files), "rules")
            errors.append(RuleFileError(name, 1, 1, message))


def _summary(file: ParsedFile) -> str:
    content = file.content
    parts = [f"{len(content.rules)} rules" if content.rules else "",
             f"{len(content.fit)} fit rules" if content.fit else "",
             f"{len(content.groups)} groups" if content.groups else "",
             "settings" if content.settings else ""]
    fast = sum(rule.fast_track for rule in content.rules)
    if fast:
        parts.append(f"{fast} fast-track")
    return ", ".join(p for p in parts if p) or "empty"
