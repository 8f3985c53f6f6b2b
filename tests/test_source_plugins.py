"""A third party adds a source with one module and one pyproject.toml line, nothing else.

The package below is the one docs/sources.md walks through. Its metadata is generated from
its pyproject.toml by setuptools itself (the `egg_info` step of an editable install), and
its directory is put on sys.path, so discovery reads the same entry point metadata as for
any installed distribution. (A full `pip install` would need the `wheel` package, which the
dev environment does not have.)
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from textwrap import dedent

import orjson
import pytest

from leadscore.events import Event
from leadscore.settings import Settings
from streams.ingest import ingest
from streams.sources import (
    Source,
    SourceError,
    all_event_types,
    discover_sources,
    map_raw,
)

CHAT_MODULE = '''\
"""Chats started in the website's chat widget."""

from pydantic import AwareDatetime, BaseModel, ConfigDict

from leadscore.events import Event, ProspectRef
from streams.sources import Email, Source, Text, event_id


class ChatStarted(BaseModel):
    model_config = ConfigDict(extra="forbid")

    conversation_id: Text
    email: Email
    started_at: AwareDatetime


def to_events(chat: ChatStarted) -> list[Event]:
    return [
        Event(
            id=event_id("chat", chat.conversation_id),
            type="chat.started",
            occurred_at=chat.started_at,
            prospect=ProspectRef(email=chat.email),
        )
    ]


source = Source(
    name="chat",
    payload=ChatStarted,
    to_events=to_events,
    topic="raw.chat",
    event_types={"chat.started": "the prospect started a chat {}"},
)
'''

CHAT_PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "leadscore-chat"
version = "0.1.0"

[project.entry-points."leadscore.sources"]
chat = "leadscore_chat:source"
"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    """A directory on sys.path for installed plugins; forgotten again after the test."""
    directory = tmp_path / "site"
    directory.mkdir()
    sys.path.insert(0, str(directory))
    importlib.invalidate_caches()
    yield directory
    sys.path.remove(str(directory))
    for name in [m for m in sys.modules if m.startswith("leadscore_test_plugin")]:
        del sys.modules[name]
    sys.modules.pop("leadscore_chat", None)
    importlib.invalidate_caches()
    discover_sources(reload=True)


def test_an_installed_package_adds_a_source(site: Path) -> None:
    before = set(discover_sources(reload=True))
    (site / "leadscore_chat.py").write_text(CHAT_MODULE)
    (site / "pyproject.toml").write_text(CHAT_PYPROJECT)
    subprocess.run(
        [sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "egg_info"],
        cwd=site, check=True, capture_output=True,
    )  # fmt: skip

    assert set(discover_sources(reload=True)) - before == {"chat"}
    assert all_event_types()["chat.started"] == "the prospect started a chat {}"

    raw = {"conversation_id": "c-1", "email": "ana@acme.example",
           "started_at": "2026-01-05T09:30:00Z"}  # fmt: skip
    mapped = map_raw("chat", orjson.dumps(raw))
    assert isinstance(mapped, list)
    assert [(e.id, e.type, e.prospect.key) for e in mapped] == [
        ("chat:c-1", "chat.started", "ana@acme.example")
    ]
    accepted = ingest("chat", orjson.dumps([raw]), {}, Settings(ingest_secret=None), now=0)
    assert (accepted.status, accepted.topic) == (202, "leadscore.raw.chat")
    refused = ingest("chat", orjson.dumps({**raw, "mood": "happy"}), {}, Settings(), now=0)
    assert refused.body["errors"] == [
        {"index": 0, "reason": "mood: Extra inputs are not permitted"}
    ]


def fake_distribution(site: Path, name: str, entry_points: str, module: str = "") -> None:
    """An installed distribution as pip leaves it: a .dist-info with entry_points.txt."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[leadscore.sources]\n{entry_points}\n")
    if module:
        (site / f"{name}.py").write_text(dedent(module))


def test_a_plugin_that_fails_to_import_is_named_with_its_package(site: Path) -> None:
    name = "leadscore_test_plugin_broken"
    fake_distribution(site, name, f"fax = {name}:source", "import no_such_module\n")
    with pytest.raises(SourceError) as raised:
        discover_sources(reload=True)
    assert str(raised.value) == (
        "event source 'fax' (leadscore_test_plugin_broken:source) of package "
        "leadscore_test_plugin_broken 1.0 does not load: "
        "ModuleNotFoundError: No module named 'no_such_module'"
    )


def test_a_plugin_that_is_not_a_source_is_refused(site: Path) -> None:
    name = "leadscore_test_plugin_wrong"
    fake_distribution(site, name, f"fax = {name}:source", "source = {'name': 'fax'}\n")
    with pytest.raises(SourceError, match=r"of package leadscore_test_plugin_wrong 1.0 is a dict"):
        discover_sources(reload=True)


def test_two_packages_offering_one_source_name_is_an_error_naming_both(site: Path) -> None:
    fake_distribution(site, "leadscore_test_plugin_web", "web = streams.sources.web:source")
    with pytest.raises(SourceError) as raised:
        discover_sources(reload=True)
    message = str(raised.value)
    assert message.startswith("two installed packages offer the event source 'web': ")
    assert "leadscore 0.1.0" in message and "leadscore_test_plugin_web 1.0" in message


def test_a_mapping_that_fails_is_a_dead_letter_of_the_map_stage() -> None:
    def explode(payload: object) -> list[Event]:
        raise KeyError("visit_id")

    web = discover_sources()["web"]
    broken = Source(name="web", payload=web.payload, to_events=explode, topic="raw.web")
    raw = (
        b'{"type":"search","anonymous_id":"a","query":"acme","occurred_at":"2026-01-05T09:30:00Z"}'
    )
    assert map_raw(broken, raw) == {
        "source": "web", "raw": raw.decode(), "reason": "KeyError: 'visit_id'", "stage": "map"
    }  # fmt: skip
