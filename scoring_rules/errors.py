"""Errors in rule files, located the way an editor shows them: `file:line:col: message`."""

from __future__ import annotations

from leadscore.yaml_files import FileError, FilesError

#: One problem in a rule file.
RuleFileError = FileError


class RulesError(FilesError):
    """A rule set that does not pass the check; `errors` holds every problem found."""
