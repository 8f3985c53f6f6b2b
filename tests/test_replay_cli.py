"""`leadscore replay`, `explain` and `replay --compare` on the example story of examples/."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from app.cli import main
from leadscore.events import read_events
from scoring_rules import ReplayEnd, replay, replay_lines
from tests.scoring_events import DEFAULT_RULES, default_rules

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "events.jsonl"
ROSTER = EXAMPLE.parent.parent / "routing" / "roster.yaml"


def _replay_cli(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, object]]:
    assert main(["replay", str(EXAMPLE), *args]) == 0
    return [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_replay_prints_every_decision_with_the_rules_version(
    capsys: pytest.CaptureFixture[str],
) -> None:
    decisions = _replay_cli(capsys)
    version = default_rules().version
    assert {d["rules_version"] for d in decisions} == {version}
    promoted = [(d["prospect"], d["track"], d["score"]) for d in decisions
                if d["type"] == "prospect.promoted"]
    assert promoted == [("ana.lopez@acme.example", "standard", 67),
                        ("carlos@globex.example", "fast_track", 6)]


def test_a_bad_line_is_reported_and_the_run_goes_on(capsys: pytest.CaptureFixture[str]) -> None:
    decisions = _replay_cli(capsys)
    rejected = [d for d in decisions if d["type"] == "event.rejected"]
    assert rejected == [{"type": "event.rejected", "line": 21,
                         "error": "occurred_at: Input should have timezone info",
                         "rules_version": default_rules().version}]
    assert decisions.index(rejected[0]) < len(decisions) - 1


def test_replay_decays_up_to_the_latest_event_time_or_now(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _replay_cli(capsys, "--state", str(tmp_path / "default.json"))
    _replay_cli(capsys, "--now", "2026-12-31T00:00:00Z", "--state", str(tmp_path / "late.json"))
    default = orjson.loads((tmp_path / "default.json").read_bytes())["prospects"]
    late = orjson.loads((tmp_path / "late.json").read_bytes())["prospects"]
    assert default["ana.lopez@acme.example"] == {
        "score": 17, "fit": 13, "behavior": 4, "stage": "lead", "track": "standard",
        "last_activity_at": "2026-01-23T11:20:00Z"}
    # dana's rep approval and title (fit 34) stay; decay takes only her engagement
    assert default["dana@initech.example"] == {
        "score": 35, "fit": 34, "behavior": 1, "stage": "prospect", "track": None,
        "last_activity_at": "2026-06-03T09:00:00Z"}
    assert late["dana@initech.example"]["score"] == 34
    assert late["ana.lopez@acme.example"]["behavior"] == 0
    assert set(default) == {"ana.lopez@acme.example", "carlos@globex.example",
                            "jo@mail.example", "dana@initech.example"}


def test_replay_of_parsed_events_and_of_raw_lines_agree() -> None:
    rules = default_rules()
    from_lines = list(replay_lines(rules, EXAMPLE.open("rb")))
    from_events = list(replay(rules, read_events(EXAMPLE)))
    assert from_lines[:-1] == from_events[:-1]
    end_lines, end_events = from_lines[-1], from_events[-1]
    assert isinstance(end_lines, ReplayEnd) and isinstance(end_events, ReplayEnd)
    assert {k: s.to_dict() for k, s in end_lines.states.items()} == {
        k: s.to_dict() for k, s in end_events.states.items()}


def test_replay_with_bad_rules_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "r.yaml").write_text("rules:\n  - id: x\n    event: nope\n    points: 1\n")
    assert main(["replay", str(EXAMPLE), "--rules", str(tmp_path)]) == 2
    assert "r.yaml:3:12: unknown event type 'nope'" in capsys.readouterr().err


def test_explain_shows_hits_in_order_with_running_score(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["explain", str(EXAMPLE), "--prospect", "Ana.Lopez@acme.example"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ana.lopez@acme.example: score 17 (fit 13, behavior 4), "
                               "lead (standard)")
    assert "anonymous visitor v-ana" in lines[1]
    rows = [line.split() for line in lines[3:]]
    assert rows[0] == ["2026-01-05T09:00:00Z", "w-1001", "page-view", "(anonymous)", "+1", "1"]
    assert ["2026-01-08T14:33:00Z", "identity.merge", "+16", "16"] in rows
    assert ["2026-01-23T11:20:00Z", "=>", "promoted", "to", "lead,", "standard", "67"] in rows
    assert rows[-1] == ["2026-05-23T11:20:00Z", "(decay)", "decay-30-or-less", "-5", "17"]


def test_explain_with_a_roster_wraps_routing_lines_under_the_table_at_its_width(
    capsys: pytest.CaptureFixture[str],
) -> None:
    explain = ["explain", str(EXAMPLE), "--prospect", "carlos@globex.example"]
    assert main(explain) == 0
    scores = capsys.readouterr().out.splitlines()
    assert main([*explain, "--roster", str(ROSTER)]) == 0
    routed = capsys.readouterr().out.splitlines()
    header = routed[1]
    assert header == scores[1]  # the table keeps the width it has without routing
    assert max(len(line) for line in routed[1:]) <= len(header) < 89
    assert [line for line in routed if line in scores] == scores
    wrapped = " ".join(" ".join(line for line in routed if line not in scores).split())
    assert ("2026-01-09T10:03:00Z => routed to bruno, team emea by account globex.example, "
            "owned by AE ae-lucia; deadline 2026-01-09T10:08:00Z") in wrapped
    continued = [line for line in routed if line.startswith(" ")]
    assert continued and all(line.startswith(" " * 25) for line in continued)


def test_compare_reports_what_a_rule_change_would_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    for file in DEFAULT_RULES.glob("*.yaml"):
        (other / file.name).write_text(file.read_text())
    settings = other / "settings.yaml"
    settings.write_text(settings.read_text().replace("threshold: 65", "threshold: 40"))
    behavior = other / "behavior.yaml"
    behavior.write_text(behavior.read_text().replace("points: -10", "points: -20"))
    assert main(["replay", str(EXAMPLE), "--compare", str(other)]) == 0
    report = capsys.readouterr().out
    assert "Promotions to lead: 2 -> 3" in report
    assert "gained (1): dana@initech.example" in report
    assert "Fast tracks: 1 -> 1" in report
    assert "dana@initech.example: prospect -> lead" in report
    careers = next(line for line in report.splitlines() if "careers-page" in line)
    assert careers.split() == ["careers-page", "2", "2"]
