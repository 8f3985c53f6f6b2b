"""Every example a user may copy from the docs is loaded here, as leadscore would load it:
settings files, rule files, raw and canonical events, decisions, and source plugins."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from leadscore.decisions import DECISION_TYPES as ALL_DECISIONS
from leadscore.events import Event
from leadscore.settings import Settings
from scoring_rules.loader import parse_files
from streams.sources import Source, all_event_types, discover_sources

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DECISION_TYPES = {kind for kinds in ALL_DECISIONS.values() for kind in kinds}


def blocks(language: str) -> list[tuple[str, str]]:
    """(where, text) of every fenced block of `language` in the docs."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in re.finditer(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{page.relative_to(ROOT)}:{line}", match.group(1)))
    return found


def ids(examples: list[tuple[str, str]]) -> list[str]:
    return [where for where, _ in examples]


TOML, YAML, JSON, PYTHON = blocks("toml"), blocks("yaml"), blocks("json"), blocks("python")


def test_the_docs_have_examples_of_each_kind() -> None:
    assert len(TOML) >= 3 and len(YAML) >= 4 and len(JSON) >= 5 and len(PYTHON) >= 2


@pytest.mark.parametrize(("where", "text"), TOML, ids=ids(TOML))
def test_a_toml_example_is_a_settings_file_or_a_plugin_registration(
    where: str, text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    document = tomllib.loads(text)
    if "project" in document:
        entry_points = document["project"]["entry-points"]["leadscore.sources"]
        assert entry_points and all(":" in target for target in entry_points.values())
        return
    path = tmp_path / "leadscore.toml"
    path.write_text(text)
    monkeypatch.setenv("LEADSCORE_SETTINGS_FILE", str(path))
    settings = Settings()
    for name, value in document.items():
        loaded = getattr(settings, name)
        secret = getattr(loaded, "get_secret_value", None)
        assert (secret() if secret else loaded) == value


@pytest.mark.parametrize(("where", "text"), YAML, ids=ids(YAML))
def test_a_yaml_example_is_a_rule_file_that_passes_the_check(where: str, text: str) -> None:
    [parsed] = parse_files({where: text}, all_event_types())
    assert [str(error) for error in parsed.errors] == []


def _documents(text: str) -> list[Any]:
    """The JSON documents of a block, one after the other (each may span lines)."""
    decoder, documents, position = json.JSONDecoder(), [], 0
    while text[position:].strip():
        position += len(text[position:]) - len(text[position:].lstrip())
        document, position = decoder.raw_decode(text, position)
        documents.append(document)
    return documents


def _reads_as(document: Any) -> list[str]:
    """What leadscore reads `document` as: an event, a decision, or a source's payload."""
    kinds = []
    try:
        Event.model_validate(document)
        kinds.append("event")
    except ValidationError:
        pass
    if document.get("type") in DECISION_TYPES:
        kinds.append("decision")
    for name, source in discover_sources().items():
        try:
            source.to_events(source.payload.model_validate(document))
            kinds.append(name)
        except ValidationError:
            pass
    return kinds


@pytest.mark.parametrize(("where", "text"), JSON, ids=ids(JSON))
def test_a_json_example_is_an_event_a_decision_or_a_source_payload(where: str, text: str) -> None:
    for document in _documents(text):
        assert _reads_as(document), f"{where}: {document} is none of what leadscore reads"


@pytest.mark.parametrize(("where", "text"), PYTHON, ids=ids(PYTHON))
def test_a_python_example_defines_a_working_source(where: str, text: str) -> None:
    namespace: dict[str, Any] = {}
    exec(compile(text, where, "exec"), namespace)
    source = namespace["source"]
    assert isinstance(source, Source)
    assert source.payload.model_fields and source.topic.startswith("raw.")
