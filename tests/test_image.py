"""The container image: built from docker/Dockerfile, started, healthy, and scoring an event.

No Docker engine runs here, and `podman run` cannot start a container (crun may not set
rlimits; ../shared notes). So the test builds the image with podman (vfs storage, chroot
isolation) on a base made from Debian's packages (`debootstrap`, with Python from Debian),
creates a container without running it, mounts its file system, and runs the image's
command in a chroot, as the image's user, with the image's environment and working
directory. The worker talks to the session's broker over loopback.

It needs root (chroot), `podman` and `debootstrap`: `.ci/run` installs the last two with
apt. Elsewhere it skips, saying what is missing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaProducer

from app.worker import prepare_topics
from leadscore.infra.broker import Broker
from leadscore.infra.processes import free_port
from leadscore.settings import Settings
from streams.topics import topics_of
from tests.live import wait_for, wait_for_records

# Building on a clean machine (debootstrap, then pip in the build) takes 3 to 4 minutes.
pytestmark = [pytest.mark.kafka, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parent.parent
BASE = "localhost/leadscore-test-base:bookworm"
IMAGE = "localhost/leadscore:test"


def _podman(*args: str, **kwargs: Any) -> str:
    command = ["podman", "--storage-driver", "vfs", *args]
    done = subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)
    return str(done.stdout).strip()


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any]]]:
    """The mounted file system of a container of the freshly built image, and the image's
    configuration (user, command, environment, health check)."""
    missing = [tool for tool in ("podman", "debootstrap", "chroot") if not shutil.which(tool)]
    if os.geteuid() != 0:
        missing.append("root (for chroot)")
    if missing:
        pytest.skip(f"building and starting the image needs {', '.join(missing)}; .ci/run "
                    "installs podman and debootstrap with apt")
    if subprocess.run(["podman", "--storage-driver", "vfs", "image", "exists", BASE],
                      check=False).returncode != 0:
        base = tmp_path_factory.mktemp("base") / "root"
        subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv",
                        "bookworm", str(base)], check=True, capture_output=True)
        with subprocess.Popen(["tar", "-C", str(base), "-c", "."], stdout=subprocess.PIPE) as tar:
            _podman("import", "-", BASE, stdin=tar.stdout)
        shutil.rmtree(base)
    # The build reaches PyPI as this machine does: through its CA bundle, mounted for the
    # build only (the Dockerfile's PIP_CERT).
    trust = ["--volume", "/etc/ssl/certs/ca-certificates.crt:/run/build-ca.crt:ro",
             "--build-arg", "PIP_CERT=/run/build-ca.crt"] \
        if Path("/etc/ssl/certs/ca-certificates.crt").exists() else []
    _podman("build", "--isolation", "chroot", "--format", "docker", "--build-arg",
            f"BASE={BASE}", *trust, "-f", "docker/Dockerfile", "-t", IMAGE, ".", cwd=ROOT)
    [inspected] = json.loads(_podman("image", "inspect", IMAGE))
    config = {**inspected["Config"], "Healthcheck": inspected.get("Healthcheck")}
    created = _podman("create", IMAGE)
    try:
        yield Path(_podman("mount", created)), config
    finally:
        _podman("umount", created)
        _podman("rm", created)


def test_the_image_runs_the_worker_as_its_user_healthy_ready_and_scoring(
    broker: Broker, unique: str, container: tuple[Path, dict[str, Any]],
) -> None:
    root, config = container
    assert config["User"] == "leadscore" and config["Cmd"] == ["leadscore", "worker"]
    assert config["Healthcheck"]["Test"][:2] == ["CMD", "python3"]  # docker format keeps it
    port = free_port()
    settings = Settings(kafka_bootstrap_servers=broker.bootstrap_servers,
                        topic_prefix=f"{unique}.", app_id=unique, web_port=port)
    prepare_topics(settings)
    environment = [*config["Env"], f"KAFKA_BOOTSTRAP_SERVERS={broker.bootstrap_servers}",
                   f"LEADSCORE_TOPIC_PREFIX={unique}.", f"LEADSCORE_APP_ID={unique}",
                   f"LEADSCORE_WEB_PORT={port}"]
    in_image = ["chroot", f"--userspec={config['User']}:{config['User']}", str(root),
                "/usr/bin/env", "-i", *environment, "sh", "-c",
                f"cd {config['WorkingDir']} && exec \"$@\"", "sh"]
    log = root / "tmp" / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen([*in_image, *config["Cmd"]], stdout=output, stderr=output,
                                  start_new_session=True)
    try:
        wait_for(lambda: _status(port, "readyz") == 200, 90,
                 lambda: f"not ready; log:\n{log.read_text()[-3000:]}", process=worker)
        assert _status(port, "healthz") == 200
        # The image's own health check, run in the image, passes.
        health = subprocess.run([*in_image, *config["Healthcheck"]["Test"][1:]], check=False)
        assert health.returncode == 0
        event = {"id": "img-1", "type": "demo.watched", "occurred_at": "2026-03-02T10:00:00Z",
                 "prospect": {"email": "image@acme.example"}, "properties": {"video_id": "t"}}
        producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers)
        producer.send(topics_of(settings).raw["canonical"], orjson.dumps(event)).get(30)
        producer.close()
        [decision] = wait_for_records(broker.bootstrap_servers, topics_of(settings).decisions,
                                      1, 60)
        assert decision["event_id"] == "img-1"
        # Its tables live on the image's volume, owned by its user.
        state = root / config["WorkingDir"].lstrip("/") / unique
        assert state.is_dir() and state.stat().st_uid == 10001
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
    assert '"msg":"stopping"' in log.read_text()


def _status(port: int, probe: str) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/{probe}", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        time.sleep(0.5)
        return 0
