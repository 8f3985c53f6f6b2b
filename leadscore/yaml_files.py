"""YAML files that people edit (rules, rosters), read with every value's line and column.

Marketing ops write these files by hand. Every problem of every file is collected before
anything is raised, each at `file:line:col` with what was expected, so a file is fixed in
one pass instead of one error per run.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

Loc = tuple[str | int, ...]
#: The last part of the location pydantic gives an error in a mapping's key.
KEY = "[key]"

#: The reader's bounds, for every file a user gives leadscore (rules, rosters) and every
#: version read from a topic. A file past one is refused, at the place it goes past it,
#: in milliseconds: a 600-byte YAML "billion laughs" (aliases of aliases) otherwise
#: expands to 10 million values, 3 GB and 20 s, and a worker reading it from the roster
#: topic is killed for memory at every restart.
#:
#: MAX_BYTES, 4 MiB: four times the largest record leadscore publishes by default
#: (`message_max_bytes`, 1 MiB), which a published rule set or roster must fit; the
#: shipped rules and roster are under 10 kB.
#: MAX_VALUES, 250,000 values (every key, item and scalar), aliases expanded: a roster
#: that fills a 1 MiB record (4,000 reps) holds about 116,000, so whatever the default
#: record limit takes is read; at the bound, turning the nodes into data costs about
#: 0.2 s and 50 MB.
#: MAX_DEPTH, 64 levels: the deepest key of a roster or rule file is 7 levels in; a
#: deeper file is a mistake or an attack, and stays far from Python's recursion limit.
MAX_BYTES = 4 * 1024 * 1024
MAX_VALUES = 250_000
MAX_DEPTH = 64


@dataclass(frozen=True, slots=True)
class FileError:
    """One problem in a file; `line` and `col` are 1-based, as editors show them."""

    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


class FilesError(Exception):
    """Files that do not pass their check; `errors` holds every problem found, in order."""

    def __init__(self, errors: list[FileError]) -> None:
        self.errors = sorted(errors, key=lambda e: (e.file, e.line, e.col))
        super().__init__("\n".join(str(error) for error in self.errors))


@dataclass
class YamlFile:
    """One file's text, where each key and value sits in it, and the problems found."""

    name: str
    text: str
    values: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    errors: list[FileError] = field(default_factory=list)
    #: How many items failed validation and were left out; checks about the whole file
    #: are only meaningful when it is 0.
    dropped: int = 0
    #: The text of each unquoted value YAML reads as something other than text (`NO` as
    #: false, `34` as a number), for errors that say so.
    plain: dict[Loc, str] = field(default_factory=dict)

    def error(self, loc: Loc, message: str, *, at_key: bool = False) -> None:
        marks = self.keys if at_key else self.values
        while loc not in marks and loc:
            loc = loc[:-1]
        line, col = marks.get(loc, (1, 1))
        self.errors.append(FileError(self.name, line, col, message))


def yaml_texts(path: Path, what: str) -> dict[str, str]:
    """The files at `path` (a file, or a folder's `*.yaml`), name -> text, in name order;
    `what` names them in errors ("rule files")."""
    if path.is_dir():
        files = sorted(path.glob("*.yaml"))
        if not files:
            raise FilesError([FileError(str(path), 1, 1, f"no *.yaml {what} here")])
    elif path.is_file():
        files = [path]
    else:
        raise FilesError([FileError(str(path), 1, 1, "no such file or folder")])
    return {str(file): read_text(file) for file in files}


def read_text(file: Path) -> str:
    """A file's text; one that cannot be read, is too large or is not UTF-8 raises a
    located error."""
    try:
        with file.open("rb") as opened:
            data = opened.read(MAX_BYTES + 1)  # no more: a huge file is not read whole
    except OSError as error:
        raise FilesError([FileError(str(file), 1, 1, f"cannot read: {error.strerror}")]) \
            from None
    if len(data) > MAX_BYTES:
        raise FilesError([_too_large(str(file), data)])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[:error.start]
        line = before.count(b"\n") + 1
        col = len(before) - (before.rfind(b"\n") + 1) + 1
        raise FilesError([FileError(
            str(file), line, col,
            f"not UTF-8 text (byte 0x{data[error.start]:02x}); save the file as UTF-8")]) \
            from None


def _too_large(name: str, data: bytes) -> FileError:
    """Where a text passes MAX_BYTES, and by how much."""
    before = data[:MAX_BYTES]
    line = before.count(b"\n") + 1
    col = len(before) - (before.rfind(b"\n") + 1) + 1
    return FileError(name, line, col, f"the file goes on past {MAX_BYTES:,} bytes here, the "
                     "most leadscore reads of a file people edit: split it, or leave out "
                     "what is not needed")


class _Refused(yaml.YAMLError):
    """A document past one of the reader's bounds, at the event where it passed it."""

    def __init__(self, event: yaml.Event, message: str) -> None:
        super().__init__(message)
        mark = event.start_mark
        self.line, self.col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        self.message = message


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader, counting as it composes: the values the document holds with
    every alias expanded, and how deep it nests, aliases included. Composing shares an
    anchored node between its aliases, so this costs as much as the text; it is building
    plain data from the nodes (and validating it) that expands every alias, so a document
    is refused here, before that, at the alias or the level that goes past the bound.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.depth = 0
        self.values = 0
        #: id(node) -> (values in it with its aliases expanded, levels it nests).
        self.sizes: dict[int, tuple[int, int]] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _Refused(event, f"nested more than {MAX_DEPTH} levels deep, the most "
                           "leadscore reads")
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if isinstance(event, yaml.AliasEvent):
            size = self.sizes.get(id(node))
            if size is None:  # its node is still being composed: it holds the alias
                raise _Refused(event, f"the alias *{event.anchor} refers to the node that "
                               "holds it")
            added, height = size
            if self.depth + height > MAX_DEPTH:
                raise _Refused(event, f"the alias *{event.anchor} nests the file more than "
                               f"{MAX_DEPTH} levels deep, the most leadscore reads")
        else:
            children = [part for pair in node.value for part in pair] if isinstance(
                node, yaml.MappingNode) else node.value if isinstance(
                node, yaml.SequenceNode) else []
            self.sizes[id(node)] = (
                1 + sum(self.sizes[id(child)][0] for child in children),
                1 + max((self.sizes[id(child)][1] for child in children), default=0))
            added = 1  # its children were counted as they were composed
        self.values += added
        if self.values > MAX_VALUES:
            what = f"the alias *{event.anchor}" if isinstance(event, yaml.AliasEvent) \
                else "this value"
            raise _Refused(event, f"{what} takes the file past {MAX_VALUES:,} values with "
                           "its aliases (*name) expanded, the most leadscore reads: write "
                           "the values out, or repeat fewer aliases")
        return node


def parse_yaml(file: YamlFile) -> Any:
    """The file's document as plain data, every position recorded; None (with the error
    recorded) when it is not YAML or passes the reader's bounds (MAX_BYTES, MAX_VALUES,
    MAX_DEPTH)."""
    data = file.text.encode()
    if len(data) > MAX_BYTES:
        file.errors.append(_too_large(file.name, data))
        file.dropped += 1
        return None
    try:
        loader = _BoundedLoader(file.text)
        try:
            node = loader.get_single_node()
            return _to_python(node, (), file, loader) if node is not None else {}
        finally:
            loader.dispose()
    except _Refused as error:
        file.errors.append(FileError(file.name, error.line, error.col, error.message))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = error.problem or error.context or "not valid YAML"
        file.errors.append(FileError(file.name, line, col, f"not valid YAML: {problem}"))
    except yaml.reader.ReaderError as error:  # a character YAML does not allow
        before = file.text[:error.position]
        line, col = before.count("\n") + 1, error.position - before.rfind("\n")
        file.errors.append(FileError(
            file.name, line, col,
            f"not valid YAML: the character #x{error.character:04x} is not allowed"))
    file.dropped += 1
    return None


def _to_python(node: yaml.Node, loc: Loc, file: YamlFile, loader: yaml.SafeLoader) -> Any:
    """Plain data from a YAML node, recording each value's and key's position."""
    file.values[loc] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node)
            if isinstance(key, list | dict):
                key = str(key)
            if not isinstance(key, str) and key_node.style is None:
                file.plain[(*loc, key, KEY)] = key_node.value
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
    try:
        value = loader.construct_object(node)
    except (ValueError, OverflowError):  # a date YAML cannot read (2026-13-01): the text,
        value = node.value  # for the check to say what is wrong with it
    if not isinstance(value, str) and isinstance(node, yaml.ScalarNode) and node.style is None:
        file.plain[loc] = node.value
    return value


def validate(file: YamlFile, loc: Loc, model: type[BaseModel], value: Any) -> Any:
    """`value` as a `model`, or None with every error recorded in `file` at its place."""
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
                file.error(where, unknown_key(name, known), at_key=True)
            elif kind == "missing":
                file.error(where[:-1], f"missing key {name!r}")
            else:
                if where in file.plain and kind in ("string_type", "literal_error"):
                    message = _read_as(_named(where), file.plain[where], item["input"])
                else:
                    named = _named(where[:-2]) if name == KEY else name  # a key: its mapping's
                    message = _describe(kind, item["msg"], named, item.get("input"),
                                        item.get("ctx") or {})
                if where[-1] == KEY:  # a mapping's key: shown where the key is
                    file.error(where[:-1], message, at_key=True)
                else:
                    file.error(where, message)
    return None


def _read_as(name: str, text: str, value: Any) -> str:
    """Why an unquoted `text` is no text: YAML 1.1 reads NO, off, y as booleans, ~ as null,
    and numbers and dates as such."""
    if isinstance(value, bool):
        read = f"{str(value).lower()} (YAML 1.1)"
    elif value is None:
        read = "null, no value"
    elif isinstance(value, int | float):
        read = "a number"
    else:
        read = f"a {type(value).__name__}"
    prefix = f"{name}: " if name else ""
    return f'{prefix}{text} is read as {read}: write it in quotes, "{text}"'


def _named(loc: Loc) -> str:
    """The key a value is under: the list's, for an item of a list."""
    return next((str(part) for part in reversed(loc) if isinstance(part, str) and part != KEY),
                "")


#: Validation errors in words (pydantic's `ctx` fills them in), instead of its phrases.
_NO_DATE, _NO_TIME = "{value!r} is not a date: write YYYY-MM-DD", \
    '{value!r} is not a time: write "HH:MM" in quotes'
_WORDED = {
    "literal_error": "{value!r} is not one of {expected}",
    "greater_than_equal": "{value!r} is too small: at least {ge}",
    "greater_than": "{value!r} is too small: more than {gt}",
    "less_than_equal": "{value!r} is too large: at most {le}",
    "less_than": "{value!r} is too large: less than {lt}",
    "too_short": "give at least {min_length}",
    "too_long": "give at most {max_length}",
    "string_too_long": "longer than {max_length} characters",
    "date_parsing": _NO_DATE, "date_from_datetime_parsing": _NO_DATE, "date_type": _NO_DATE,
    "time_parsing": _NO_TIME, "time_type": _NO_TIME,
}


def _describe(kind: str, message: str, name: str, value: Any, ctx: dict[str, Any]) -> str:
    """A validation error in words, without the validator's phrases."""
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
    if kind in _WORDED:
        return prefix + _WORDED[kind].format(value=value, **ctx)
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


def unknown_key(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; expected one of: {', '.join(known)}"
    return f"unknown key {key!r}{hint}"
