"""docs/configuration.md documents every setting, by the names users type."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices

from leadscore.settings import Settings

PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def setting_rows() -> dict[str, str]:
    """Setting name -> its table row, from the page's `| \\`name\\` | ...` rows."""
    rows = re.findall(r"^\| `([a-z_]+)` \|(.*)$", PAGE.read_text(), flags=re.MULTILINE)
    return dict(rows)


def environment_names(name: str) -> list[str]:
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    return [f"LEADSCORE_{name.upper()}"]


def test_every_setting_is_documented_with_its_environment_variables() -> None:
    rows = setting_rows()
    missing = [name for name in Settings.model_fields if name not in rows]
    assert not missing, f"settings missing from {PAGE.name}: {missing}"
    for name in Settings.model_fields:
        for variable in environment_names(name):
            assert f"`{variable}`" in rows[name], f"{name}: {variable} not named in its row"


def test_the_page_documents_no_setting_that_does_not_exist() -> None:
    assert set(setting_rows()) <= set(Settings.model_fields)


def test_the_page_names_the_settings_file_and_test_server_variables() -> None:
    text = PAGE.read_text()
    for variable in ("LEADSCORE_SETTINGS_FILE", "LEADSCORE_TEST_KAFKA",
                     "KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"):
        assert f"`{variable}`" in text
