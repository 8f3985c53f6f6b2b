"""`leadscore rules check`: every class of mistake gets a precise `file:line:col: message`."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main
from scoring_rules import RulesError, load_rule_texts, load_rules
from tests.scoring_events import DEFAULT_RULES, event, hits, rules_from, run

GOOD_RULE = """rules:
  - id: page-view
    event: web.page_view
    points: 1
"""


def errors_of(text: str, extra_event_types: tuple[str, ...] = ()) -> list[str]:
    with pytest.raises(RulesError) as raised:
        load_rule_texts({"mine.yaml": text}, extra_event_types)
    return [str(error) for error in raised.value.errors]


def test_the_shipped_rules_pass_with_a_summary_line_per_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["rules", "check", str(DEFAULT_RULES)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [Path(line.split(":")[0]).name for line in lines] == [
        "behavior.yaml", "fit.yaml", "hand_raisers.yaml", "settings.yaml"]
    assert lines[0].endswith("ok (12 rules)")


def test_unknown_key_suggests_the_right_one() -> None:
    assert errors_of(GOOD_RULE.replace("points", "pionts")) == [
        "mine.yaml:4:5: unknown key 'pionts' (did you mean 'points'?)"]


def test_unknown_key_inside_a_condition() -> None:
    text = GOOD_RULE + "    where:\n      url: {pathh: /pricing}\n"
    assert errors_of(text) == ["mine.yaml:6:13: unknown key 'pathh' (did you mean 'path'?)"]


def test_wrong_type() -> None:
    assert errors_of(GOOD_RULE.replace("points: 1", "points: ten")) == [
        "mine.yaml:4:13: points: wrong type: expected a whole number, got 'ten'"]


def test_unknown_event_type() -> None:
    assert errors_of(GOOD_RULE.replace("web.page_view", "web.pageview")) == [
        "mine.yaml:3:12: unknown event type 'web.pageview' (did you mean 'web.page_view'?)"]


def test_event_types_declared_by_source_plugins_are_known() -> None:
    text = GOOD_RULE.replace("web.page_view", "chat.started")
    assert errors_of(text)[0].startswith("mine.yaml:3:12: unknown event type 'chat.started'")
    rules = load_rule_texts({"mine.yaml": text}, extra_event_types=["chat.started"])
    assert "chat.started" in rules.behavior


def test_duplicate_rule_id_across_files() -> None:
    with pytest.raises(RulesError) as raised:
        load_rule_texts({"a.yaml": GOOD_RULE, "b.yaml": "\n" + GOOD_RULE})
    assert str(raised.value) == (
        "b.yaml:3:9: duplicate rule id 'page-view' (first defined at a.yaml:2)")


def test_unreachable_threshold() -> None:
    text = "settings:\n  threshold: 70\n" + GOOD_RULE + "    max_points: 20\n" + """fit:
  - id: boss
    fact: title
    words: [ceo]
    points: 10
"""
    assert errors_of(text) == [
        "mine.yaml:2:14: threshold 70 cannot be reached: the highest score these rules allow "
        "is 30"]


def test_unparseable_duration() -> None:
    text = GOOD_RULE + "    expires_after: 3 months\n"
    assert errors_of(text) == [
        "mine.yaml:5:20: expires_after: cannot read the duration '3 months'; write a number "
        "and a unit, like 30d, 12h or 2w"]


def test_unparseable_pattern() -> None:
    text = GOOD_RULE + "    where:\n      url:\n        matches: '/pricing(['\n"
    [error] = errors_of(text)
    assert error.startswith("mine.yaml:7:18: cannot use the pattern '/pricing(['")


def test_a_path_pattern_must_start_with_a_slash() -> None:
    text = GOOD_RULE + "    where:\n      url: {path: pricing}\n"
    assert errors_of(text) == [
        "mine.yaml:6:19: a path pattern starts with / (like /pricing*), got 'pricing'"]


def test_not_yaml() -> None:
    assert errors_of("rules:\n  - id: x\n   event: [\n") [0].startswith("mine.yaml:3:")


def test_every_error_of_a_file_is_reported_in_one_run() -> None:
    text = """settings:
  decay: {after: soon, bands: [{id: d, subtract: 5}]}
rules:
  - id: a
    event: web.page_veiw
    points: 1
  - id: a
    event: email.open
    points: lots
  - id: c
    event: email.open
    pionts: 1
"""
    assert [e.split(": ")[0] for e in errors_of(text)] == [
        "mine.yaml:2:18", "mine.yaml:5:12", "mine.yaml:7:9", "mine.yaml:9:13", "mine.yaml:12:5"]


def test_check_command_prints_errors_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a.yaml").write_text(GOOD_RULE.replace("points", "pionts"))
    (tmp_path / "b.yaml").write_text(GOOD_RULE.replace("page-view", "pv").replace("1", "x"))
    assert main(["rules", "check", str(tmp_path)]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{tmp_path}/a.yaml:4:5: unknown key 'pionts' (did you mean 'points'?)",
                   f"{tmp_path}/b.yaml:4:13: points: wrong type: expected a whole number, "
                   "got 'x'"]


def test_rules_error_lists_file_line_col_message() -> None:
    with pytest.raises(RulesError) as raised:
        load_rules(Path("/nonexistent/rules"))
    [error] = raised.value.errors
    assert (error.file, error.line, error.col) == ("/nonexistent/rules", 1, 1)
    assert "no such file" in error.message


def test_version_is_a_content_hash() -> None:
    one = load_rule_texts({"x/mine.yaml": GOOD_RULE})
    assert one.version == load_rule_texts({"y/mine.yaml": GOOD_RULE}).version
    assert one.version != load_rule_texts({"mine.yaml": GOOD_RULE + "    max_points: 99\n"}).version
    assert len(one.version) == 12


def test_a_pattern_that_needs_backtracking_is_refused_where_it_is_written() -> None:
    text = GOOD_RULE + "    where:\n      title:\n        matches: '(vp)\\1'\n"
    [error] = errors_of(text)
    assert error.startswith("mine.yaml:7:18: cannot use the pattern")
    assert "invalid escape sequence" in error and "no backreferences or lookarounds" in error


def test_a_pattern_that_backtracks_badly_elsewhere_scores_in_linear_time() -> None:
    # `(a+)+$` takes seconds on a 26-character title with a backtracking engine, 4x longer
    # per extra character; here a 10,000-character title is answered at once.
    rules = rules_from(GOOD_RULE.replace("points: 1", "points: 1\n    where:\n      title:\n"
                                         "        matches: '(a+)+$'"))
    hostile = event("web.page_view", title="a" * 10_000 + "!")
    fitting = event("web.page_view", title="aaaa")
    assert hits(run(rules, [hostile])[1]) == []
    assert hits(run(rules, [fitting])[1]) == [("page-view", 1)]


def test_a_rule_file_that_is_not_utf8_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_bytes(b"rules:\n  - id: caf\xe9\n")
    with pytest.raises(RulesError) as raised:
        load_rules(path)
    assert [str(e) for e in raised.value.errors] == [
        f"{path}:2:12: not UTF-8 text (byte 0xe9); save the file as UTF-8"]


def test_a_duration_past_ten_years_is_refused() -> None:
    text = GOOD_RULE + "    expires_after: 3651d\n"
    [error] = errors_of(text)
    assert error.startswith("mine.yaml:5:20: expires_after:")
    assert "longer than the longest allowed, 3650d" in error
