"""The deployment files say what the code reads: every variable a setting, every file there,
every port the one the worker serves, every metric an alert or a panel reads one we export."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
import yaml

import routing.metrics
import streams.metrics
from leadscore.settings import Settings
from routing.roster import load_roster
from scoring_rules import load_rules

DOCKER = Path(__file__).resolve().parent.parent / "docker"
WORKERS = ("worker-1", "worker-2")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return loaded


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """The service's variables, with `${NAME:?...}` and `${NAME:-default}` filled in as
    compose would from docker/example.env."""
    example = dict(line.split("=", 1) for line in (DOCKER / "example.env").read_text().splitlines()
                   if line and not line.startswith("#"))

    def fill(value: Any) -> str:
        def one(match: re.Match[str]) -> str:
            return example.get(match[1]) or match[2] or ""
        return re.sub(r"\$\{(\w+)(?::[?-]([^}]*))?\}", one, str(value))

    return {name: fill(value) for name, value in service["environment"].items()}


def _mounts(service: dict[str, Any]) -> dict[str, Path | str]:
    """Container path -> host path (a file of the repository) or volume name."""
    mounts: dict[str, Path | str] = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        mounts[target] = (DOCKER / source).resolve() if source.startswith(".") else source
    return mounts


def test_the_stack_has_kafka_redis_two_workers_prometheus_and_grafana(
    compose: dict[str, Any],
) -> None:
    assert set(compose["services"]) == {"kafka", "redis", *WORKERS, "prometheus", "grafana"}
    assert compose["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert "--appendonly" in compose["services"]["redis"]["command"]  # persistence
    named = {m for s in compose["services"].values() for m in _mounts(s).values()
             if isinstance(m, str)}
    assert named == set(compose["volumes"])


@pytest.mark.parametrize("name", WORKERS)
def test_a_workers_variables_are_settings_and_its_files_are_mounted_from_the_repo(
    compose: dict[str, Any], name: str,
) -> None:
    service = compose["services"][name]
    environment = _environment(service)
    roster_secrets = {"LEADSCORE_WEBHOOK_SECRET", "LEADSCORE_SMTP_PASSWORD"}
    known = {f"LEADSCORE_{field.upper()}" for field in Settings.model_fields}
    known |= {"KAFKA_BOOTSTRAP_SERVERS", "REDIS_URL"}
    assert set(environment) - known == roster_secrets
    # A worker refuses a roster whose secret is unset: compose asks for them up front.
    assert all(":?" in service["environment"][name] for name in roster_secrets)
    values: dict[str, Any] = {field: environment[f"LEADSCORE_{field.upper()}"]
                              for field in Settings.model_fields
                              if f"LEADSCORE_{field.upper()}" in environment}
    settings = Settings(**values, kafka_bootstrap_servers=environment["KAFKA_BOOTSTRAP_SERVERS"],
                        redis_url=environment["REDIS_URL"])
    mounts = _mounts(service)
    rules, roster = mounts[str(settings.rules_path)], mounts[str(settings.roster_path)]
    assert isinstance(rules, Path) and load_rules(rules).rule_ids
    assert isinstance(roster, Path) and load_roster(roster).reps
    secrets = set(re.findall(r"secret_env: (\w+)", roster.read_text()))
    assert secrets == roster_secrets
    assert mounts[str(settings.data_dir)] == f"{name}-state"  # its own state volume
    assert [p.split(":")[1] for p in service["ports"]] == [str(settings.web_port)]
    kafka = compose["services"]["kafka"]["environment"]
    assert kafka["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{settings.kafka_bootstrap_servers}"
    assert settings.redis_url.startswith("redis://redis:")


def test_prometheus_scrapes_every_worker_and_loads_the_alerting_rules(
    compose: dict[str, Any],
) -> None:
    config = yaml.safe_load((DOCKER / "prometheus.yml").read_text())
    [job] = config["scrape_configs"]
    port = _environment(compose["services"]["worker-1"])["LEADSCORE_WEB_PORT"]
    assert job["static_configs"][0]["targets"] == [f"{w}:{port}" for w in WORKERS]
    mounts = _mounts(compose["services"]["prometheus"])
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    assert mounts["/etc/prometheus/alerts.yml"] == DOCKER / "alerts.yml"


def _exported() -> set[str]:
    """Every series name leadscore exports (a histogram's _bucket, _sum and _count)."""
    assert streams.metrics and routing.metrics  # imported: registered
    names = set()
    for metric in prometheus_client.REGISTRY.collect():
        for sample in metric.samples:
            names.add(sample.name)
        names.add(metric.name + ("_total" if metric.type == "counter" else ""))
        if metric.type == "histogram":
            names |= {f"{metric.name}_{suffix}" for suffix in ("bucket", "sum", "count")}
    return {name for name in names if name.startswith("leadscore_")}


def test_every_alert_and_every_panel_reads_a_metric_the_worker_exports() -> None:
    exported = _exported()
    rules = yaml.safe_load((DOCKER / "alerts.yml").read_text())["groups"][0]["rules"]
    dashboard = json.loads((DOCKER / "grafana" / "dashboards" / "leadscore.json").read_text())
    expressions = [rule["expr"] for rule in rules] + [
        target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    read = {name for expr in expressions for name in re.findall(r"leadscore_\w+", expr)}
    assert read - exported == set()
    assert {"leadscore_dead_letters_total", "leadscore_speed_to_lead_seconds_bucket",
            "leadscore_sla_breaches_total", "leadscore_queue_depth"} <= read
    assert all(rule["annotations"]["summary"] for rule in rules)


def test_the_image_runs_the_worker_as_a_user_with_a_health_check() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    final = text.split("\nFROM ")[-1]
    assert re.search(r"^ARG BASE=python:3\.1\d", text, re.M)
    assert "USER leadscore" in final and "/healthz" in final
    assert 'CMD ["leadscore", "worker"]' in final
    assert "pip" not in final.replace("/opt/leadscore", "")  # no build tools in the last stage
    root = DOCKER.parent
    for source in re.findall(r"^COPY (?!--from)(.+) /src/", text, re.M):
        assert all((root / part).exists() for part in source.split())
