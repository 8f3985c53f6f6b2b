"""Commands given a path they cannot use say so in one line and exit 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, Path]:
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe")
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    folder = tmp_path / "folder"
    folder.mkdir()
    return {"missing": tmp_path / "missing.jsonl", "binary": binary, "empty": empty,
            "folder": folder}


EXPECTED = {"missing": "no such file", "binary": "is not UTF-8 text",
            "empty": "is empty", "folder": "is a folder"}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
@pytest.mark.parametrize("command", [
    ["replay", "{path}"],
    ["explain", "{path}", "--prospect", "ana@acme.example"],
    ["send", "forms", "{path}"],
])
def test_an_unusable_events_file_is_one_line_and_exit_2(
    command: list[str], kind: str, paths: dict[str, Path], capsys: pytest.CaptureFixture[str],
) -> None:
    path = paths[kind]
    assert main([part.format(path=path) for part in command]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and f"{path}: {EXPECTED[kind]}" in err


def test_replay_state_into_a_folder_is_refused_before_replaying(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"id": "e1"}\n')
    assert main(["replay", str(events), "--state", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == f"leadscore: {tmp_path}: is a folder; give a file name to write\n"


@pytest.mark.parametrize("kind", ["missing", "binary", "empty", "folder"])
def test_rules_check_names_what_is_wrong_with_the_path(
    kind: str, paths: dict[str, Path], capsys: pytest.CaptureFixture[str],
) -> None:
    path = paths[kind]
    assert main(["rules", "check", str(path)]) == 2
    out, _ = capsys.readouterr()
    [line] = out.splitlines()
    assert line.startswith(f"{path}:1:")
