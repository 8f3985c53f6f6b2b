"""Reading rule files: YAML with line and column marks (`leadscore.yaml_files`), validated
into `schema` models, plus the checks that span files (event types, unique ids)."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from leadscore.decisions import MERGE_RULE
from leadscore.events import EVENT_TYPES
from leadscore.yaml_files import (
    FilesError,
    Loc,
    YamlFile,
    parse_yaml,
    unknown_key,
    validate,
    yaml_texts,
)
from scoring_rules.errors import RuleFileError, RulesError
from scoring_rules.schema import FitRule, Group, Rule, RuleFile, RuleSetSettings

SECTIONS: dict[str, type[BaseModel]] = {
    "settings": RuleSetSettings, "fit": FitRule, "rules": Rule, "groups": Group,
}


@dataclass
class ParsedFile(YamlFile):
    """One rule file's validated content, with where each key and value sits in the text."""

    content: RuleFile = field(default_factory=RuleFile)
    raw: dict[str, Any] = field(default_factory=dict)
    #: For each list section, the position in the file of each item kept in `content`.
    positions: dict[str, list[int]] = field(default_factory=dict)


def rule_file_texts(path: Path) -> dict[str, str]:
    """The rule files at `path` (a file, or a folder's `*.yaml`), name -> text, in name order."""
    try:
        return yaml_texts(path, "rule files")
    except FilesError as error:
        raise RulesError(error.errors) from None


def rules_version(files: Mapping[str, str]) -> str:
    """A short hash of the files' names and contents: the same rules give the same version
    wherever they are read from (disk, the rules topic)."""
    digest = hashlib.sha256()
    for name in sorted(files, key=lambda n: Path(n).name):
        digest.update(Path(name).name.encode() + b"\0" + files[name].encode() + b"\0")
    return digest.hexdigest()[:12]


def parse_files(
    files: Mapping[str, str], extra_event_types: Iterable[str] = ()
) -> list[ParsedFile]:
    """Parse and validate every file; each `ParsedFile.errors` lists that file's problems."""
    known_types = set(EVENT_TYPES) | set(extra_event_types)
    parsed = [_parse_file(name, text) for name, text in files.items()]
    for file in parsed:
        _check_event_types(file, known_types)
    _check_unique_ids(parsed)
    return parsed


def _parse_file(name: str, text: str) -> ParsedFile:
    file = ParsedFile(name=name, text=text)
    data = parse_yaml(file)
    if data is None:
        return file
    if not isinstance(data, dict):
        file.error((), "a rule file is a mapping with the keys " + ", ".join(SECTIONS))
        file.dropped += 1
        return file
    file.raw = data
    sections: dict[str, Any] = {}
    for key, value in data.items():
        if key not in SECTIONS:
            file.error((key,), unknown_key(key, list(SECTIONS)), at_key=True)
        elif key == "settings":
            sections[key] = validate(file, (key,), RuleSetSettings, value)
        elif not isinstance(value, list):
            file.error((key,), f"{key}: expected a list of items, each starting with '- '")
            file.dropped += 1
        else:
            model = SECTIONS[key]
            items = [validate(file, (key, i), model, item) for i, item in enumerate(value)]
            sections[key] = [item for item in items if item is not None]
            file.positions[key] = [i for i, item in enumerate(items) if item is not None]
    file.content = RuleFile.model_validate(sections)
    return file


def _items(file: ParsedFile) -> Iterable[tuple[str, int, dict[str, Any]]]:
    """Every fit rule, rule and group of a file as raw data, even the invalid ones."""
    for section in ("fit", "rules", "groups"):
        items = file.raw.get(section)
        if isinstance(items, list):
            for index, item in enumerate(items):
                if isinstance(item, dict):
                    yield section, index, item


def _check_event_types(file: ParsedFile, known: set[str]) -> None:
    for section, index, item in _items(file):
        value = item.get("event")
        names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        for position, name in enumerate(names):
            if isinstance(name, str) and name not in known:
                loc: Loc = (section, index, "event") if isinstance(value, str) else (
                    section, index, "event", position)
                close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
                hint = f" (did you mean {close[0]!r}?)" if close else \
                    " (see docs/rules.md for the event catalog)"
                file.error(loc, f"unknown event type {name!r}{hint}")


def _check_unique_ids(files: list[ParsedFile]) -> None:
    """Rule, fit rule, group and decay band ids share one namespace: decisions name them."""
    seen = {MERGE_RULE: "the engine (identity merges)"}
    for file in files:
        located: list[tuple[Loc, Any]] = [
            ((section, index, "id"), item.get("id")) for section, index, item in _items(file)
        ]
        decay = file.raw.get("settings", {})
        bands = decay.get("decay", {}).get("bands") if isinstance(decay, dict) and isinstance(
            decay.get("decay"), dict) else None
        if isinstance(bands, list):
            located += [(("settings", "decay", "bands", i, "id"), band.get("id"))
                        for i, band in enumerate(bands) if isinstance(band, dict)]
        for loc, rule_id in located:
            if not isinstance(rule_id, str):
                continue
            line, _ = file.values.get(loc, (1, 1))
            if rule_id in seen:
                file.error(loc, f"duplicate rule id {rule_id!r} (first defined at {seen[rule_id]})")
            else:
                seen[rule_id] = f"{file.name}:{line}"


def raise_errors(files: list[ParsedFile], more: Iterable[RuleFileError] = ()) -> None:
    errors = [error for file in files for error in file.errors] + list(more)
    if errors:
        raise RulesError(errors)
