"""Scoring rules: the rule-file language, its checker and compiler, and the pure engine core.

The public API, used by the CLI and by the live stream processors alike:

- `load_rules(path)` / `load_rule_texts(files)` -> `RuleSet` (raises `RulesError`)
- `apply`, `advance`, `next_due`, `merge` over a `ProspectState`
- `replay` / `replay_lines` for offline runs
"""

from leadscore.decisions import Decision
from scoring_rules.compile import RuleSet, load_rule_texts, load_rules
from scoring_rules.engine import advance, apply, merge, next_due
from scoring_rules.errors import RuleFileError, RulesError
from scoring_rules.loader import rule_file_texts
from scoring_rules.replay import ReplayEnd, replay, replay_lines
from scoring_rules.state import ProspectState

__all__ = [
    "Decision",
    "ProspectState",
    "ReplayEnd",
    "RuleFileError",
    "RuleSet",
    "RulesError",
    "advance",
    "apply",
    "load_rule_texts",
    "load_rules",
    "merge",
    "next_due",
    "replay",
    "replay_lines",
    "rule_file_texts",
]
