"""Checking a roster (and any file a user gives): bounded reading, errors in words, in one
pass, and the warnings a worker logs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from leadscore.yaml_files import MAX_BYTES, MAX_DEPTH, MAX_VALUES, YamlFile, parse_yaml
from routing.roster import (
    RosterError,
    from_published,
    load_roster,
    published,
    roster_from_text,
    secrets_needed,
    unset_secrets,
)
from scoring_rules import RulesError, load_rules

ROOT = Path(__file__).resolve().parent.parent
ROSTER = ROOT / "routing" / "roster.yaml"
RULES = ROOT / "scoring_rules" / "default"


def alias_bomb(levels: int = 9, width: int = 9) -> str:
    """A "billion laughs" roster: each region repeats the one before `width` times."""
    lines = ["regions:", "  l0: &l0 [ES, FR, DE, IT, PT, GB, IE, NL, BE]"]
    lines += [f"  l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * width) + "]"
              for n in range(1, levels)]
    lines += ["teams:", "  - {id: emea, escalation: ana, territory: {regions: [l8]}}",
              "reps:", "  - {id: ana, name: Ana, email: ana@x.example, role: MRR, team: emea}"]
    return "\n".join(lines) + "\n"


def refused(text: str) -> list[str]:
    with pytest.raises(RosterError) as raised:
        roster_from_text("roster.yaml", text)
    return [str(error) for error in raised.value.errors]


def test_an_alias_bomb_is_refused_at_the_alias_that_expands_it_past_the_bound() -> None:
    bomb = alias_bomb()
    assert len(bomb) < 1_000
    # 9 levels of 9 are 387 million values; the fifth level passes the bound.
    assert refused(bomb) == [
        f"roster.yaml:7:22: the alias *l4 takes the file past {MAX_VALUES:,} values with "
        "its aliases (*name) expanded, the most leadscore reads: write the values out, or "
        "repeat fewer aliases"]


def test_an_alias_inside_the_node_it_names_is_refused() -> None:
    assert refused("regions:\n  loop: &loop [ES, *loop]\n") == [
        "roster.yaml:2:20: the alias *loop refers to the node that holds it"]


def test_deep_nesting_is_refused_where_it_goes_too_deep_even_through_aliases() -> None:
    deep = "regions:\n  deep: " + "[" * 100 + "]" * 100 + "\n"
    assert refused(deep) == [
        f"roster.yaml:2:{9 + MAX_DEPTH - 2}: nested more than {MAX_DEPTH} levels deep, the "
        "most leadscore reads"]
    half = "[" * 40 + "ES" + "]" * 40
    aliased = f"regions:\n  a: &a {half}\n  b: {half[:30]}*a{half[-30:]}\n"
    assert refused(aliased) == [
        f"roster.yaml:3:36: the alias *a nests the file more than {MAX_DEPTH} levels deep, "
        "the most leadscore reads"]


def test_a_file_too_large_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    big = tmp_path / "roster.yaml"
    big.write_text(("#" + "y" * 98 + "\n") * (MAX_BYTES // 100 + 1))  # lines of 100 bytes
    with pytest.raises(RosterError) as raised:
        load_roster(big)
    line = MAX_BYTES // 100 + 1
    assert [str(e) for e in raised.value.errors] == [
        f"{big}:{line}:{MAX_BYTES % 100 + 1}: the file goes on past {MAX_BYTES:,} bytes here, "
        "the most leadscore reads of a file people edit: split it, or leave out what is not "
        "needed"]
    file = YamlFile("rules.yaml", big.read_text())  # the same text from a topic
    assert parse_yaml(file) is None and file.errors[0].message.startswith("the file goes on")


def test_the_rules_loader_refuses_an_alias_bomb_too(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    (rules / "zz_bomb.yaml").write_text(
        alias_bomb().replace("regions:", "x:").split("teams:")[0])
    with pytest.raises(RulesError) as raised:
        load_rules(rules)
    assert [str(e) for e in raised.value.errors] == [
        f"{rules / 'zz_bomb.yaml'}:7:22: the alias *l4 takes the file past {MAX_VALUES:,} "
        "values with its aliases (*name) expanded, the most leadscore reads: write the values "
        "out, or repeat fewer aliases"]


def test_the_shipped_rules_and_roster_still_load() -> None:
    assert load_rules(RULES).rule_ids
    assert load_roster(ROSTER).reps


def roster_check(path: Path, *env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", "roster", "check", str(path)],
                          capture_output=True, text=True, timeout=120, check=False,
                          env={**dict(line.split("=", 1) for line in env),
                               "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})


def test_roster_check_refuses_an_alias_bomb_with_where_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(alias_bomb())
    checked = roster_check(path)
    assert checked.returncode == 2 and "Traceback" not in checked.stderr + checked.stdout
    assert f"{path}:7:22: the alias *l4 takes the file past" in checked.stdout


def test_roster_check_refuses_a_roster_too_large_for_the_roster_topic(tmp_path: Path) -> None:
    reps = "".join(f"\n  - {{id: rep{n}, name: Rep {n}, email: rep{n}@northwind.example, "
                   f"role: MRR, team: emea, time_zone: Europe/Madrid}}" for n in range(10_000))
    path = tmp_path / "roster.yaml"
    path.write_text(f"teams:\n  - {{id: emea, escalation: rep0}}\nreps:{reps}\n")
    checked = roster_check(path)
    assert checked.returncode == 2, checked.stdout
    [error] = checked.stdout.splitlines()
    assert re.fullmatch(rf"{re.escape(str(path))}:1:1: this roster is 1,1\d\d,\d\d\d bytes "
                        "as a record.*", error)
    assert error.endswith("as a record of the roster topic, which takes at most 1,048,576 (the "
                          "message_max_bytes setting): it cannot be published; make it "
                          "smaller, or raise message_max_bytes and the broker's "
                          "message.max.bytes")


ONE_TEAM = """regions:
  nordics: [SE, DK]
teams:
  - id: emea
    territory: {countries: [ES], regions: [nordics], accounts: [acme.example]}
    escalation: ana
reps:
  - {id: ana, name: Ana, email: ana@x.example, role: MRR, team: emea, alerts: [live],
     working_hours: {days: [mon, tue]}}
channels:
  live: {type: stream}
"""


@pytest.mark.parametrize(("change", "error"), [
    (("countries: [ES]", "countries: [NO]"),
     '5:29: countries: NO is read as false (YAML 1.1): write it in quotes, "NO"'),
    (("countries: [ES]", "countries: [ES, 34]"),
     '5:33: countries: 34 is read as a number: write it in quotes, "34"'),
    (("countries: [ES]", "countries: [null]"),
     '5:29: countries: null is read as null, no value: write it in quotes, "null"'),
    (("[SE, DK]", "[SE, NO, DK]"),
     '2:17: nordics: NO is read as false (YAML 1.1): write it in quotes, "NO"'),
    (("regions: [nordics]", "regions: [nordics, off]"),
     '5:53: regions: off is read as false (YAML 1.1): write it in quotes, "off"'),
    (("accounts: [acme.example]", "accounts: [acme.example, yes]"),
     '5:79: accounts: yes is read as true (YAML 1.1): write it in quotes, "yes"'),
    (("days: [mon, tue]", "days: [mon, no]"),
     '9:34: days: no is read as false (YAML 1.1): write it in quotes, "no"'),
    (("alerts: [live]", "alerts: [on]"),
     '8:80: alerts: on is read as true (YAML 1.1): write it in quotes, "on"'),
    (("  nordics:", "  NO:"),
     '2:3: regions: NO is read as false (YAML 1.1): write it in quotes, "NO"'),
])
def test_yaml_1_1_booleans_nulls_and_numbers_in_lists_of_text_are_located_errors(
    tmp_path: Path, change: tuple[str, str], error: str,
) -> None:
    assert change[0] in ONE_TEAM
    assert load_roster(write(tmp_path, ONE_TEAM)).reps
    path = write(tmp_path, ONE_TEAM.replace(*change))
    checked = roster_check(path)
    assert checked.returncode == 2
    assert "Traceback" not in checked.stdout + checked.stderr
    assert checked.stdout.splitlines()[0] == f"{path}:{error}"
    with pytest.raises(RosterError) as raised:  # as a worker reads it from the topic
        from_published(published("roster.yaml", path.read_text()))
    assert str(raised.value.errors[0]) == f"roster.yaml:{error}"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "roster.yaml"
    path.write_text(text)
    return path


def test_the_secrets_a_roster_needs_are_listed_and_an_unset_one_is_warned_of(
    tmp_path: Path,
) -> None:
    roster = load_roster(ROSTER)
    assert secrets_needed(roster) == {"LEADSCORE_WEBHOOK_SECRET": ["webhook"],
                                      "LEADSCORE_SMTP_PASSWORD": ["email"]}
    assert [str(e) for e in unset_secrets(roster, {"LEADSCORE_SMTP_PASSWORD": "u:p",
                                                   "LEADSCORE_WEBHOOK_SECRET": ""})] == [
        f"{ROSTER}:90:17: secret_env: LEADSCORE_WEBHOOK_SECRET is not set where this runs: the "
        "channel 'webhook' would send its alerts without its secret"]
    assert unset_secrets(roster, {"LEADSCORE_SMTP_PASSWORD": "u:p",
                                  "LEADSCORE_WEBHOOK_SECRET": "whsec_x"}) == []
    checked = roster_check(ROSTER, "LEADSCORE_SMTP_PASSWORD=u:p")
    assert checked.returncode == 0
    assert checked.stdout.splitlines()[1] == (
        "its channels read secrets from: LEADSCORE_WEBHOOK_SECRET (webhook), "
        "LEADSCORE_SMTP_PASSWORD (email)")
    assert checked.stderr.splitlines() == [
        f"{ROSTER}:90:17: warning: secret_env: LEADSCORE_WEBHOOK_SECRET is not set where this "
        "runs: the channel 'webhook' would send its alerts without its secret; a worker where "
        "it is not set refuses this roster"]


def test_a_worker_refuses_to_start_with_a_roster_whose_secret_is_not_set(
    tmp_path: Path,
) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
           "LEADSCORE_ROSTER_PATH": str(ROSTER), "LEADSCORE_SMTP_PASSWORD": "u:p",
           "LEADSCORE_DATA_DIR": str(tmp_path)}
    started = subprocess.run([sys.executable, "-m", "app.cli", "worker"], env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert started.returncode == 2, started.stderr
    assert started.stderr == (
        "leadscore worker: the roster does not pass the check:\n"
        f"{ROSTER}:90:17: secret_env: LEADSCORE_WEBHOOK_SECRET is not set where this runs: "
        "the channel 'webhook' would send its alerts without its secret\n")


@pytest.mark.parametrize(("channel", "error"), [
    ("{type: pager}",
     "11:16: type: no installed channel type 'pager' (installed: email, slack, stream, "
     "webhook)"),
    ("{type: webhook}",
     "11:3: channel 'live' has no url; webhook channels send to http:// or https:// URLs"),
    ("{type: slack}",
     "11:3: channel 'live' has no url; slack channels send to http:// or https:// URLs"),
    ("{type: webhook, url: 'file:///etc/passwd'}",
     "11:30: url: 'file:///etc/passwd' uses file://; webhook channels send to http:// or "
     "https:// URLs with a host"),
    ("{type: slack, url: 'gopher://hooks.example/1'}",
     "11:28: url: 'gopher://hooks.example/1' uses gopher://; slack channels send to http:// "
     "or https:// URLs with a host"),
    ("{type: webhook, url: 'https:///hooks'}",
     "11:30: url: 'https:///hooks' names no host; webhook channels send to http:// or "
     "https:// URLs with a host"),
    ("{type: email, url: 'http://mail.example', sender: a@b.example}",
     "11:28: url: 'http://mail.example' uses http://; email channels send to smtp://, "
     "smtp+starttls:// or smtps:// URLs with a host"),
])
def test_a_channel_that_cannot_deliver_is_refused_at_its_line(
    tmp_path: Path, channel: str, error: str,
) -> None:
    path = write(tmp_path, ONE_TEAM.replace("live: {type: stream}", f"live: {channel}"))
    checked = roster_check(path)
    assert checked.returncode == 2
    assert checked.stdout.splitlines() == [f"{path}:{error}"]
    with pytest.raises(RosterError) as raised:  # as a worker reads it, at start or published
        from_published(published("roster.yaml", path.read_text()))
    assert [str(e) for e in raised.value.errors] == [f"roster.yaml:{error}"]


def test_the_channels_that_can_deliver_pass() -> None:
    for channel in ("{type: webhook, url: 'https://crm.example/hooks'}",
                    "{type: slack, url: 'http://127.0.0.1:9/x'}",
                    "{type: email, url: 'smtps://mail.example'}",
                    "{type: email, url: 'smtp+starttls://mail.example:587'}"):
        assert roster_from_text("r.yaml", ONE_TEAM.replace("{type: stream}", channel)).reps


def test_every_error_is_in_words_and_references_come_in_the_same_pass() -> None:
    text = ROSTER.read_text()
    for change in (("email: ana.lopez@northwind.example", "email: ana.lopez"),
                   ("escalation: dana", "escalation: nobody"),
                   ("  - id: bruno", "  - id: ana"),
                   ("role: SDR", "role: BDR"),
                   ("weight: 1\n    daily_cap: 40", "weight: 0\n    daily_cap: 40"),
                   ("  - id: dana", "  - id: dana smith"),
                   ("  live:\n", "  live now:\n"),
                   ("{start: 2026-12-24,", "{start: 2026-13-24,"),
                   ('start: "09:00"', 'start: "9am"')):
        assert change[0] in text, change
        text = text.replace(*change, 1)
    assert refused(text) == [
        "roster.yaml:35:17: escalation: no rep with the id 'nobody'",
        "roster.yaml:42:12: email: 'ana.lopez' is not an email address",
        "roster.yaml:46:61: start: '9am' is not a time: write \"HH:MM\" in quotes",
        "roster.yaml:48:17: start: '2026-13-24' is not a date: write YYYY-MM-DD",
        "roster.yaml:49:13: weight: 0 is too small: at least 1",
        "roster.yaml:52:37: no channel named 'live' under channels:",
        "roster.yaml:54:9: duplicate rep id 'ana'",
        "roster.yaml:71:9: id: 'dana smith' is not an id: up to 80 letters, digits, '_', '.' "
        "and '-', starting with a letter or digit",
        "roster.yaml:82:11: role: 'BDR' is not one of 'MRR' or 'SDR'",
        "roster.yaml:99:3: channels: 'live now' is not an id: up to 80 letters, digits, '_', "
        "'.' and '-', starting with a letter or digit",
    ]


WARNED = ONE_TEAM.replace("    escalation: ana\n", """    escalation: ana
    sla:
      fast_track:
        acknowledge_within: 5m
        ladder:
          - {after: 4m, action: reassign}
          - {after: 2m, action: remind}
          - {after: 8m, action: remind}
          - {after: 15m, action: escalate}
""").replace("role: MRR,", "role: MRR, daily_cap: 500,")


def test_likely_mistakes_are_warnings_printed_by_the_check_which_passes(tmp_path: Path) -> None:
    roster = roster_from_text("roster.yaml", WARNED)
    assert [str(warning) for warning in roster.warnings] == [
        "roster.yaml:12:21: ladder: remind at 2m is not after the step before it (reassign at "
        "4m): steps run by their time, not their order",
        "roster.yaml:13:21: ladder: remind at 8m comes after the deadline (acknowledge_within "
        "5m): the lead has breached by then",
        "roster.yaml:16:70: daily_cap 500 is above monthly_cap 400: the monthly cap is reached "
        "first",
    ]
    path = write(tmp_path, WARNED)
    checked = roster_check(path)
    assert checked.returncode == 0, checked.stdout
    assert checked.stderr.splitlines() == [
        f"{path}:{str(warning).split(':', 1)[1].replace(': ', ': warning: ', 1)}"
        for warning in roster.warnings]
    assert load_roster(ROSTER).warnings == ()  # the shipped roster means what it says


def test_an_unknown_key_at_the_top_is_reported_once() -> None:
    assert refused(ONE_TEAM.replace("teams:", "teamz: []\nteams:")) == [
        "roster.yaml:3:1: unknown key 'teamz' (did you mean 'teams'?)"]
