"""The server launchers: no orphans however the parent ends, clear startup errors, the
jar cache, and the choice of broker."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from leadscore.infra.broker import kafka_answers
from leadscore.infra.kafka_apache import _cluster_id, kafka_jars
from leadscore.infra.processes import ServerStartError, spawn, stop, wait_until_ready
from leadscore.infra.redis_local import redis_answers
from leadscore.infra.selection import choose_broker_kind

# A parent process that starts one server, prints its address and waits to be ended.
# It reacts to SIGINT like an interactive pytest even when started from a shell that
# ignores SIGINT in background jobs (the ignore would be inherited).
PARENT = """
import importlib, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)
module, function = sys.argv[1].split(":")
with getattr(importlib.import_module(module), function)() as server:
    address = getattr(server, "bootstrap_servers", server)
    print("ADDRESS", address, flush=True)
    time.sleep(600)
"""

LAUNCHERS = {
    "redis": ("leadscore.infra.redis_local:run_local_redis", redis_answers),
    "tansu": ("leadscore.infra.kafka_tansu:run_tansu", kafka_answers),
    "apache": ("leadscore.infra.kafka_apache:run_apache_kafka", kafka_answers),
}


def started_address(log_path: Path, timeout: float = 120.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in log_path.read_text().splitlines():
            if line.startswith("ADDRESS "):
                return line.split()[1]
        time.sleep(0.2)
    raise AssertionError(f"the parent never started its server:\n{log_path.read_text()}")


@pytest.mark.parametrize(
    ("launcher", "ending"),
    [
        pytest.param(launcher, ending, id=f"{launcher}-{ending.name}")
        for launcher, ending in [
            ("redis", signal.SIGKILL),
            ("redis", signal.SIGINT),
            ("tansu", signal.SIGKILL),
            ("tansu", signal.SIGINT),
            ("apache", signal.SIGKILL),
        ]
    ],
)
def test_server_goes_away_when_its_parent_is_killed_or_interrupted(
    launcher: str, ending: signal.Signals, tmp_path: Path
) -> None:
    target, answers = LAUNCHERS[launcher]
    log_path = tmp_path / "parent.log"
    parent = spawn([sys.executable, "-c", PARENT, target], log_path)
    try:
        address = started_address(log_path)
        assert answers(address)
        parent.send_signal(ending)
        parent.wait(timeout=30)
        deadline = time.monotonic() + 20
        while answers(address) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not answers(address), f"{launcher} outlived its parent ({ending.name})"
    finally:
        stop(parent)


@pytest.mark.parametrize(
    ("script", "timeout", "problem", "logged"),
    [
        ("echo 'bad value for port: x' >&2; exit 3", 30, "demo exited with code 3",
         "bad value for port: x"),
        ("echo still booting; exec sleep 60", 0.5, "demo did not answer within 0 s",
         "still booting"),
    ],
    ids=["exits", "never-answers"],
)
def test_a_server_that_fails_to_start_is_stopped_and_reported_with_its_log(
    script: str, timeout: float, problem: str, logged: str, tmp_path: Path
) -> None:
    log_path = tmp_path / "server.log"
    process = spawn(["sh", "-c", script], log_path)
    with pytest.raises(ServerStartError) as error:
        wait_until_ready(process, lambda: False, name="demo", log_path=log_path,
                         timeout=timeout)
    assert problem in str(error.value)
    assert logged in str(error.value)
    assert process.poll() is not None


def test_cached_kafka_jars_are_reused_without_maven(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "libs").mkdir()
    (tmp_path / "complete").write_text("kafka_2.13:4.1.1\n")
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools-here"))
    assert kafka_jars(tmp_path) == tmp_path / "libs"


def test_an_unfinished_jar_fetch_is_not_taken_for_a_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "libs").mkdir()  # jars folder but no completion marker
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools-here"))
    with pytest.raises(RuntimeError, match="`mvn` is not on PATH"):
        kafka_jars(tmp_path)


@pytest.mark.parametrize(
    ("env", "docker", "kind"),
    [
        ({}, False, "apache"),
        ({}, True, "docker"),
        ({"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"}, True, "external"),
        ({"LEADSCORE_TEST_KAFKA": "tansu", "KAFKA_BOOTSTRAP_SERVERS": "kafka:9092"}, True,
         "tansu"),
        ({"LEADSCORE_TEST_KAFKA": " Apache "}, True, "apache"),
    ],
)
def test_broker_choice(env: dict[str, str], docker: bool, kind: str) -> None:
    assert choose_broker_kind(env, lambda: docker) == kind


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"LEADSCORE_TEST_KAFKA": "zookeeper"}, "expected one of apache, tansu"),
        ({"LEADSCORE_TEST_KAFKA": "external"}, "needs KAFKA_BOOTSTRAP_SERVERS"),
    ],
)
def test_broker_choice_errors(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        choose_broker_kind(env, lambda: False)


def test_kafka_cluster_ids_never_look_like_an_option() -> None:
    # StorageTool refuses `-t -abc...`; a random id starts with "-" once in 64.
    ids = {_cluster_id() for _ in range(2_000)}
    assert len(ids) == 2_000
    assert not [cluster_id for cluster_id in ids if cluster_id.startswith("-")]
