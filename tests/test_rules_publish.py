"""`leadscore rules publish` and the event types source plugins add to the rule language."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.cli import main
from app.worker import prepare_topics
from leadscore.infra.broker import Broker
from leadscore.settings import Settings
from scoring_rules import load_rules
from streams.topics import topics_of
from tests.live import read_topic

SPAM_RULE = """\
rules:
  - id: spam-complaint
    description: Marked our email as spam (a type only the email source declares).
    event: email.spam_report
    points: -20
"""


def test_rules_may_use_event_types_that_installed_sources_declare(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for shipped in Settings().rules_path.glob("*.yaml"):
        (tmp_path / shipped.name).write_text(shipped.read_text())
    (tmp_path / "spam.yaml").write_text(SPAM_RULE)
    assert main(["rules", "check", str(tmp_path)]) == 0
    assert "spam.yaml: ok" in capsys.readouterr().out


@pytest.mark.kafka
def test_publish_puts_checked_rules_on_the_rules_topic_and_refuses_bad_ones(
    broker: Broker, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LEADSCORE_KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap_servers)
    monkeypatch.setenv("LEADSCORE_TOPIC_PREFIX", f"{unique}.")
    settings = Settings()
    prepare_topics(settings)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "rules.yaml").write_text("rules:\n  - id: x\n    event: web.page_view\n    pointz: 1\n")
    assert main(["rules", "publish", str(bad)]) == 2
    assert "rules.yaml:4:5: unknown key 'pointz'" in capsys.readouterr().err

    assert main(["rules", "publish"]) == 0
    version = load_rules(settings.rules_path).version
    assert f"published rules {version}" in capsys.readouterr().out
    [record] = read_topic(broker.bootstrap_servers, topics_of(settings).rules)
    published = {Path(name).name: text for name, text in record["files"].items()}
    assert published == {p.name: p.read_text() for p in settings.rules_path.glob("*.yaml")}
