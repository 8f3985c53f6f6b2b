"""Errors in rule files, located the way an editor shows them: `file:line:col: message`."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RuleFileError:
    """One problem in a rule file; `line` and `col` are 1-based."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class RulesError(Exception):
    """A rule set that does not pass the check; `errors` holds every problem found."""

    def __init__(self, errors: list[RuleFileError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.file, e.line, e.col))
        super().__init__("\n".join(str(error) for error in self.errors))
