"""Conditions compiled into predicates on one property value.

Compiled once per rule set: patterns are precompiled and text targets lowercased here, so
evaluating a condition on an event is a few comparisons, never a parse.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Sequence
from typing import Any

import re2

from scoring_rules.schema import Condition

Predicate = Callable[[Any], bool]


class PatternError(ValueError):
    """A pattern in a condition that cannot be compiled; `key` names the condition key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


_last_url: list[str] = ["", "/"]


def url_path(value: str) -> str:
    """The lowercased path of a URL (`https://x.example/Pricing?a=1` -> `/pricing`).

    Several rules test the path of the same page view one after the other; the last
    answer is kept so the path is cut out once per event, not once per rule.
    """
    last = _last_url
    if value is last[0]:
        return last[1]
    last[0], last[1] = value, _cut_path(value)
    return last[1]


def _cut_path(value: str) -> str:
    start = value.find("://")
    if start >= 0:
        slash = value.find("/", start + 3)
        value = value[slash:] if slash >= 0 else "/"
    for mark in "?#":
        cut = value.find(mark)
        if cut >= 0:
            value = value[:cut]
    return value.lower() or "/"


def words_pattern(words: Sequence[str]) -> re.Pattern[str]:
    """A case-insensitive pattern matching any of `words` as whole words."""
    alternatives = "|".join(re.escape(word.strip()) for word in words if word.strip())
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def compile_condition(condition: Condition, brand: re.Pattern[str] | None) -> Predicate:
    """One predicate testing every key of `condition`. Raises `PatternError`."""
    checks: list[Predicate] = []
    if condition.equals is not None:
        checks.append(_equals(condition.equals))
    if condition.one_of is not None:
        checks.append(_one_of(condition.one_of))
    if condition.prefix is not None:
        prefix = condition.prefix.lower()
        checks.append(lambda v: isinstance(v, str) and v.lower().startswith(prefix))
    if condition.path is not None:
        if not condition.path.startswith(("/", "*")):
            raise PatternError("path", f"a path pattern starts with / (like /pricing*), "
                                       f"got {condition.path!r}")
        path = condition.path.lower()
        head = path[:-1]
        if path.endswith("*") and not any(c in head for c in "*?["):
            checks.append(lambda v: isinstance(v, str) and url_path(v).startswith(head))
        else:
            glob = re.compile(fnmatch.translate(path))
            checks.append(lambda v: isinstance(v, str) and glob.match(url_path(v)) is not None)
    if condition.contains is not None:
        part = condition.contains.lower()
        checks.append(lambda v: isinstance(v, str) and part in v.lower())
    if condition.words is not None:
        words = words_pattern(condition.words)
        checks.append(lambda v: isinstance(v, str) and words.search(v) is not None)
    if condition.matches is not None:
        pattern = _linear_pattern(condition.matches)
        checks.append(lambda v: isinstance(v, str) and pattern.search(v) is not None)
    for key, test in _COMPARISONS.items():
        bound = getattr(condition, key)
        if bound is not None:
            checks.append(_compare(test, bound))
    if condition.mentions_brand is not None:
        if brand is None:
            raise PatternError("mentions_brand", "mentions_brand needs brand_terms in settings")
        wanted, terms = condition.mentions_brand, brand
        checks.append(lambda v: isinstance(v, str) and (terms.search(v) is not None) == wanted)
    if not checks:
        return bool
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(check(v) for check in checks)


def _linear_pattern(text: str) -> Any:
    """A `matches:` pattern on RE2, whose matching time grows linearly with the text.

    Python's engine backtracks: `(a+)+$` takes seconds on a 26-character title, and the
    worker scores nothing meanwhile. RE2 refuses the few constructs that need backtracking
    (backreferences, lookarounds), which the rule check reports with the file and line.
    """
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # the error is raised to the checker, not printed by RE2
    try:
        return re2.compile(text, options)
    except re2.error as error:
        reason = error.args[0].decode() if isinstance(error.args[0], bytes) else error
        raise PatternError("matches", f"cannot use the pattern {text!r}: {reason} (patterns "
                           "run on RE2: no backreferences or lookarounds)") from None


def _equals(target: str | float | bool) -> Predicate:
    if isinstance(target, str):
        lowered = target.lower()
        return lambda v: isinstance(v, str) and v.lower() == lowered
    if isinstance(target, bool):
        return lambda v: v is target
    return lambda v: _is_number(v) and v == target


def _one_of(targets: list[str | int | float | bool]) -> Predicate:
    tests = [_equals(target) for target in targets]
    texts = frozenset(t.lower() for t in targets if isinstance(t, str))
    if len(texts) == len(tests):
        return lambda v: isinstance(v, str) and v.lower() in texts
    return lambda v: any(test(v) for test in tests)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "above": lambda v, b: v > b,
    "at_least": lambda v, b: v >= b,
    "below": lambda v, b: v < b,
    "at_most": lambda v, b: v <= b,
}


def _compare(test: Callable[[float, float], bool], bound: float) -> Predicate:
    return lambda v: _is_number(v) and test(v, bound)
