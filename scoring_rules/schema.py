"""The rule-file language: what each key of a rule file means and which values it takes.

These models are the reference for `docs/rules.md`. They only describe and validate; the
compiler (`scoring_rules.compile`) turns a validated file into fast evaluators.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from leadscore.durations import Duration

RuleId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=80)]
Scalar = str | int | float | bool


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


EventTypes = Annotated[list[str], BeforeValidator(_as_list), Field(min_length=1)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(Strict):
    """Tests on one value; every key given must hold. Text comparisons ignore case."""

    equals: Scalar | None = None
    one_of: list[Scalar] | None = None
    prefix: str | None = None
    path: str | None = Field(default=None, description="glob on a URL's path, e.g. /pricing*")
    contains: str | None = None
    words: list[str] | None = Field(default=None, description="any of these whole words")
    matches: str | None = Field(default=None, description="a regular expression")
    above: float | None = None
    at_least: float | None = None
    below: float | None = None
    at_most: float | None = None
    mentions_brand: bool | None = None


def _condition_shorthand(value: Any) -> Any:
    """`form: contact_me` means equals, `form: [a, b]` means one of."""
    if isinstance(value, list):
        return {"one_of": value}
    if isinstance(value, str | int | float | bool):
        return {"equals": value}
    return value


ConditionValue = Annotated[Condition, BeforeValidator(_condition_shorthand)]


class VisitCount(Strict):
    """Count matching events per visit (`visit_id`); fire once, when the count is passed."""

    more_than: int | None = Field(default=None, ge=0)
    at_least: int | None = Field(default=None, ge=1)
    per: Literal["visit"] = "visit"

    @model_validator(mode="after")
    def _one_bound(self) -> VisitCount:
        if (self.more_than is None) == (self.at_least is None):
            raise ValueError("give exactly one of more_than or at_least")
        return self

    @property
    def minimum(self) -> int:
        return self.at_least if self.at_least is not None else (self.more_than or 0) + 1


class VisitsWithin(Strict):
    """N distinct visits within a window; fires at most once per window."""

    at_least: int = Field(ge=1)
    within: Duration


class Aging(Strict):
    """Decay owned by a rule or group: its points expire, or halve, on their own clock."""

    expires_after: Duration | None = None
    half_life: Duration | None = None

    @model_validator(mode="after")
    def _one_way_to_age(self) -> Aging:
        if self.expires_after is not None and self.half_life is not None:
            raise ValueError("give either expires_after or half_life, not both")
        return self


class Rule(Aging):
    """A behavior rule: an event that matches adds `points` (negative points subtract)."""

    id: RuleId
    description: str | None = None
    event: EventTypes
    where: dict[str, ConditionValue] = Field(default_factory=dict)
    points: int = 0
    fast_track: bool = False
    once_per: Literal["visit"] | None = None
    count: VisitCount | None = None
    visits: VisitsWithin | None = None
    max_points: int | None = Field(default=None, ge=1)
    group: str | None = None

    @model_validator(mode="after")
    def _one_frequency(self) -> Rule:
        if sum(x is not None for x in (self.once_per, self.count, self.visits)) > 1:
            raise ValueError("give only one of once_per, count or visits")
        if self.points == 0 and not self.fast_track:
            raise ValueError("a rule needs points (or fast_track: true)")
        return self


class Group(Aging):
    """Rules that share a cap (`max_points`) or a decay."""

    id: RuleId
    description: str | None = None
    max_points: int | None = Field(default=None, ge=1)


class FitBand(Condition):
    points: int


class FitRule(Condition):
    """A profile fact's worth: recomputed when the fact changes, never added up."""

    id: RuleId
    description: str | None = None
    event: EventTypes = Field(default_factory=lambda: ["prospect.updated"])
    fact: str = Field(min_length=1)
    points: int | None = None
    bands: list[FitBand] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _points_or_bands(self) -> FitRule:
        if (self.points is None) == (self.bands is None):
            raise ValueError("give either points (with a condition) or bands")
        return self


class DecayBand(Strict):
    id: RuleId
    above: int | None = None
    subtract: int = Field(ge=1)


class Decay(Strict):
    """Subtract points after `after` without behavior activity, again every `every`."""

    after: Duration
    every: Duration | None = None
    bands: list[DecayBand] = Field(min_length=1)


class RuleSetSettings(Strict):
    threshold: int = 65
    min_score: int = 0
    max_score: int = 100
    brand_terms: list[str] = Field(default_factory=list)
    decay: Decay | None = None

    @model_validator(mode="after")
    def _bounds_in_order(self) -> RuleSetSettings:
        if self.min_score >= self.max_score:
            raise ValueError("min_score must be below max_score")
        return self


class RuleFile(Strict):
    """One YAML file of a rule set; a set's files are read together."""

    settings: RuleSetSettings | None = None
    fit: list[FitRule] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    groups: list[Group] = Field(default_factory=list)
