"""Reading rule files: YAML with line and column marks, validated into `schema` models.

Every problem of every file is collected before anything is raised, so marketing ops fix
a file in one pass instead of one error per run.
"""

from __future__ import annotations

import difflib
import hashlib
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from leadscore.decisions import MERGE_RULE
from leadscore.events import EVENT_TYPES
from scoring_rules.errors import RuleFileError, RulesError
from scoring_rules.schema import FitRule, Group, Rule, RuleFile, RuleSetSettings

Loc = tuple[str | int, ...]
SECTIONS: dict[str, type[BaseModel]] = {
    "settings": RuleSetSettings, "fit": FitRule, "rules": Rule, "groups": Group,
}


@dataclass
class ParsedFile:
    """One file's validated content, plus where each key and value sits in the text."""

    name: str
    text: str
    content: RuleFile
    values: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    errors: list[RuleFileError] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    #: How many items (rules, fit rules, groups, settings) failed validation and are left
    #: out of `content`; checks about the whole set are only meaningful when it is 0.
    dropped: int = 0
    #: For each list section, the position in the file of each item kept in `content`.
    positions: dict[str, list[int]] = field(default_factory=dict)

    def error(self, loc: Loc, message: str, *, at_key: bool = False) -> None:
        marks = self.keys if at_key else self.values
        while loc not in marks and loc:
            loc = loc[:-1]
        line, col = marks.get(loc, (1, 1))
        self.errors.append(RuleFileError(self.name, line, col, message))


def rule_file_texts(path: Path) -> dict[str, str]:
    """The rule files at `path` (a file, or a folder's `*.yaml`), name -> text, in name order."""
    if path.is_dir():
        files = sorted(path.glob("*.yaml"))
        if not files:
            raise RulesError([RuleFileError(str(path), 1, 1, "no *.yaml rule files here")])
    elif path.is_file():
        files = [path]
    else:
        raise RulesError([RuleFileError(str(path), 1, 1, "no such file or folder")])
    return {str(file): _read_text(file) for file in files}


def _read_text(file: Path) -> str:
    """A rule file's text; a file that cannot be read or is not UTF-8 is a located error."""
    try:
        data = file.read_bytes()
    except OSError as error:
        raise RulesError([RuleFileError(str(file), 1, 1, f"cannot read: {error.strerror}")]) \
            from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[:error.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        raise RulesError([RuleFileError(
            str(file), line, col,
            f"not UTF-8 text (byte 0x{data[error.start]:02x}); save the file as UTF-8")]) \
            from None


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
    file = ParsedFile(name=name, text=text, content=RuleFile())
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = _to_python(node, (), file, loader) if node is not None else {}
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = error.problem or error.context or "not valid YAML"
        file.errors.append(RuleFileError(name, line, col, f"not valid YAML: {problem}"))
        file.dropped += 1
        return file
    except yaml.reader.ReaderError as error:  # a character YAML does not allow
        before = text[:error.position]
        line, col = before.count("\n") + 1, error.position - before.rfind("\n")
        file.errors.append(RuleFileError(
            name, line, col, f"not valid YAML: the character #x{error.character:04x} is not "
                             "allowed"))
        file.dropped += 1
        return file
    except RecursionError:
        file.errors.append(RuleFileError(name, 1, 1, "not valid YAML: an alias (*name) "
                                                     "refers to the node that holds it"))
        file.dropped += 1
        return file
    if not isinstance(data, dict):
        file.error((), "a rule file is a mapping with the keys " + ", ".join(SECTIONS))
        file.dropped += 1
        return file
    file.raw = data
    sections: dict[str, Any] = {}
    for key, value in data.items():
        if key not in SECTIONS:
            file.error((key,), _unknown_key(key, list(SECTIONS)), at_key=True)
        elif key == "settings":
            sections[key] = _validate(file, (key,), RuleSetSettings, value)
        elif not isinstance(value, list):
            file.error((key,), f"{key}: expected a list of items, each starting with '- '")
            file.dropped += 1
        else:
            model = SECTIONS[key]
            items = [_validate(file, (key, i), model, item) for i, item in enumerate(value)]
            sections[key] = [item for item in items if item is not None]
            file.positions[key] = [i for i, item in enumerate(items) if item is not None]
    file.content = RuleFile.model_validate(sections)
    return file


def _to_python(node: yaml.Node, loc: Loc, file: ParsedFile, loader: yaml.SafeLoader) -> Any:
    """Plain data from a YAML node, recording each value's and key's position."""
    file.values[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if isinstance(key, list | dict):
                key = str(key)
            if key in result:
                file.keys[(*loc, key)] = (key_node.start_mark.line + 1,
                                          key_node.start_mark.column + 1)
                file.error((*loc, key), f"duplicate key {key!r}", at_key=True)
                continue
            file.keys[(*loc, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = _to_python(value_node, (*loc, key), file, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*loc, i), file, loader) for i, item in enumerate(node.value)]
    return loader.construct_object(node)


def _validate(file: ParsedFile, loc: Loc, model: type[BaseModel], value: Any) -> Any:
    try:
        return model.model_validate(value)
    except ValidationError as error:
        file.dropped += 1
        for item in error.errors(include_url=False):
            where: Loc = (*loc, *item["loc"])
            kind = item["type"]
            name = str(where[-1]) if where else ""
            if kind == "extra_forbidden":
                known = list(_fields_at(model, item["loc"][:-1]))
                file.error(where, _unknown_key(name, known), at_key=True)
            elif kind == "missing":
                file.error(where[:-1], f"missing key {name!r}")
            else:
                file.error(where, _describe(kind, item["msg"], name, item.get("input")))
    return None


def _describe(kind: str, message: str, name: str, value: Any) -> str:
    expected = {
        "int_parsing": "a whole number", "int_type": "a whole number",
        "int_from_float": "a whole number", "float_parsing": "a number",
        "float_type": "a number", "string_type": "text", "bool_parsing": "true or false",
        "bool_type": "true or false", "list_type": "a list", "dict_type": "a mapping",
        "model_type": "a mapping (key: value lines)", "model_attributes_type": "a mapping",
    }.get(kind)
    prefix = f"{name}: " if name and not name.isdigit() else ""
    if expected:
        return f"{prefix}wrong type: expected {expected}, got {value!r}"
    if kind == "literal_error":
        return f"{prefix}{message[0].lower()}{message[1:]}, got {value!r}"
    message = message.removeprefix("Value error, ")
    return f"{prefix}{message[0].lower()}{message[1:]}" if message else prefix


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> Iterable[str]:
    """The keys allowed at `loc` inside `model`, for "did you mean" suggestions."""
    current: Any = model
    parts = [part for part in loc if not isinstance(part, int)]  # list items: unwrapped below
    while parts:
        part = parts.pop(0)
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        field_info = current.model_fields.get(str(part))
        if field_info is None:
            return []
        annotation = field_info.annotation
        if typing.get_origin(annotation) is dict and parts:
            parts.pop(0)  # a key of a mapping such as `where` (a property name)
        current = _unwrap(annotation)
    return current.model_fields if isinstance(current, type) and issubclass(
        current, BaseModel) else []


def _unwrap(annotation: Any) -> Any:
    """The model inside `list[X]`, `dict[str, X]`, `X | None`, `Annotated[X, ...]`."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is None:
            return annotation
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if origin in (types.UnionType, typing.Union) or origin is typing.Annotated:
            annotation = args[0]
        elif origin in (list, dict):
            annotation = args[-1]
        else:
            return annotation


def _unknown_key(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; expected one of: {', '.join(known)}"
    return f"unknown key {key!r}{hint}"


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
