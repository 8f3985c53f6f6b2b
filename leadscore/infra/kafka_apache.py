"""Apache Kafka 4.1.1, single node KRaft, from the official jars on Maven Central.

The jars (47 files, 43 MB) are fetched once with Maven into
`${XDG_CACHE_HOME:-~/.cache}/leadscore/kafka-4.1.1/` and reused by every later run; each
start gets a fresh temporary data directory, so no state leaks between test sessions.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from leadscore.infra.broker import Broker, kafka_answers
from leadscore.infra.certificates import make_certificates
from leadscore.infra.processes import (
    free_port,
    server_dir,
    spawn,
    start_error,
    stop,
    wait_until_ready,
)

KAFKA_VERSION = "4.1.1"
START_TIMEOUT_SECONDS = 90.0
_COMPLETE_MARKER = "complete"
log = logging.getLogger(__name__)

_POM = """<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>leadscore</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <groupId>org.apache.maven.plugins</groupId>
        <artifactId>maven-dependency-plugin</artifactId>
        <version>3.8.1</version>
      </plugin>
    </plugins>
  </build>
</project>
"""

# Warnings and errors only: the log is read when something goes wrong, not on success.
_LOG4J2 = """<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="warn">
  <Appenders>
    <Console name="stdout" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Logger name="kafka.server.KafkaRaftServer" level="info"/>
    <Root level="warn"><AppenderRef ref="stdout"/></Root>
  </Loggers>
</Configuration>
"""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "leadscore" / f"kafka-{KAFKA_VERSION}"


def kafka_jars(cache: Path | None = None) -> Path:
    """The folder holding Kafka's runtime jars, fetched with Maven on first use.

    The fetch goes to a temporary sibling folder that is renamed into place only when
    Maven succeeded and a marker file is written, so an interrupted fetch is never
    mistaken for a complete one, and two sessions fetching at once do not mix files.
    """
    cache = cache or cache_dir()
    libs = cache / "libs"
    if (cache / _COMPLETE_MARKER).is_file():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError(
            f"Apache Kafka's jars are not cached in {cache} and `mvn` is not on PATH to "
            "fetch them: install Maven, or choose another broker with "
            "LEADSCORE_TEST_KAFKA=tansu|docker|external (see docs/development.md)."
        )
    log.info("fetching Apache Kafka %s jars with Maven into %s (once)", KAFKA_VERSION, cache)
    cache.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{cache.name}.", dir=cache.parent))
    try:
        (staging / "pom.xml").write_text(_POM.format(version=KAFKA_VERSION))
        fetch = spawn(
            [mvn, "-q", "-B", "-f", staging / "pom.xml", "dependency:copy-dependencies",
             "-DincludeScope=runtime", f"-DoutputDirectory={staging / 'libs'}"],
            staging / "mvn.log",
        )
        try:
            code = fetch.wait()
        finally:
            stop(fetch)
        if code != 0:
            raise start_error(
                f"mvn could not fetch org.apache.kafka:kafka_2.13:{KAFKA_VERSION} "
                f"(exit {code})", staging / "mvn.log",
            )
        (staging / _COMPLETE_MARKER).write_text(f"kafka_2.13:{KAFKA_VERSION}\n")
        staging.chmod(0o755)
        if cache.exists() and not (cache / _COMPLETE_MARKER).is_file():
            shutil.rmtree(cache)  # incomplete, and not made by this function
        with contextlib.suppress(OSError):  # lost a race: the other fetch is as good
            staging.rename(cache)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return libs


def _cluster_id() -> str:
    """A cluster id in Kafka's own format (what `StorageTool random-uuid` prints),
    made here to save a JVM start.

    Like Kafka's `Uuid.randomUuid`, it never starts with "-": StorageTool would read such
    an id as an option and refuse to format (one start in 64 failed that way).
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


#: The SASL user of the test broker's SASL_PLAINTEXT listener, for PLAIN and SCRAM-SHA-512:
#: the tests of leadscore's Kafka security settings connect as it.
SASL_USER, SASL_PASSWORD = "leadscore", "leadscore-test-secret"
SCRAM_MECHANISM = "SCRAM-SHA-512"


def _server_properties(
    workdir: Path, port: int, controller_port: int, sasl_port: int, tls_port: int | None,
    keystore: Path | None,
) -> str:
    # Test-suited single node: one replica for internal topics, few partitions for them
    # (the first consumer group otherwise waits for 50 offsets partitions), and no wait
    # for more group members before the first rebalance. Auto topic creation stays on,
    # Kafka's default, as on most clusters users run; leadscore creates its topics itself
    # (streams/topics.py) because consumers never trigger auto creation.
    tls_listener = f",SSL://127.0.0.1:{tls_port}" if keystore else ""
    return "\n".join([
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
        f"listeners=PLAINTEXT://127.0.0.1:{port},SASL_PLAINTEXT://127.0.0.1:{sasl_port},"
        f"CONTROLLER://127.0.0.1:{controller_port}{tls_listener}",
        f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},"
        f"SASL_PLAINTEXT://127.0.0.1:{sasl_port}{tls_listener}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map="
        "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT,SSL:SSL",
        *(["ssl.keystore.type=PEM", f"ssl.keystore.location={keystore}"] if keystore else []),
        f"sasl.enabled.mechanisms=PLAIN,{SCRAM_MECHANISM}",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config="
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        f'user_{SASL_USER}="{SASL_PASSWORD}";',
        f"listener.name.sasl_plaintext.{SCRAM_MECHANISM.lower()}.sasl.jaas.config="
        "org.apache.kafka.common.security.scram.ScramLoginModule required;",
        f"log.dirs={workdir / 'data'}",
        "offsets.topic.replication.factor=1",
        "offsets.topic.num.partitions=4",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "transaction.state.log.num.partitions=4",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=true",
        "",
    ])


@contextlib.contextmanager
def run_apache_kafka(timeout: float = START_TIMEOUT_SECONDS) -> Iterator[Broker]:
    """Start a single node Apache Kafka on free loopback ports; stop it on exit."""
    java = shutil.which("java")
    if java is None:
        raise RuntimeError("Apache Kafka needs Java 17 or newer and `java` is not on PATH.")
    classpath = f"{kafka_jars()}/*"
    with server_dir("kafka") as workdir:
        ports: set[int] = set()
        while len(ports) < 4:
            ports.add(free_port())
        port, controller_port, sasl_port, tls_port = ports
        tls = make_certificates(workdir / "tls")
        properties = workdir / "server.properties"
        properties.write_text(_server_properties(workdir, port, controller_port, sasl_port,
                                                 tls_port, tls[0] if tls else None))
        (workdir / "log4j2.xml").write_text(_LOG4J2)
        java_command = [java, "-Xmx512m", f"-Dlog4j2.configurationFile={workdir / 'log4j2.xml'}",
                        "-cp", classpath]
        log_path = workdir / "kafka.log"
        # The SCRAM user is stored with the cluster's metadata when the log is formatted.
        formatting = spawn([*java_command, "kafka.tools.StorageTool", "format",
                            "-t", _cluster_id(), "-c", properties, "--add-scram",
                            f"{SCRAM_MECHANISM}=[name={SASL_USER},password={SASL_PASSWORD}]"],
                           log_path)
        code = formatting.wait()
        stop(formatting)
        if code != 0:
            raise start_error(f"Kafka's StorageTool format exited with code {code}", log_path)
        bootstrap = f"127.0.0.1:{port}"
        process = spawn([*java_command, "kafka.Kafka", properties], log_path)
        try:
            wait_until_ready(process, lambda: kafka_answers(bootstrap),
                             name=f"Apache Kafka {KAFKA_VERSION}", log_path=log_path,
                             timeout=timeout)
            yield Broker("apache", f"Apache Kafka {KAFKA_VERSION}", bootstrap,
                         sasl_bootstrap_servers=f"127.0.0.1:{sasl_port}",
                         tls_bootstrap_servers=f"127.0.0.1:{tls_port}" if tls else None,
                         tls_cafile=tls[1] if tls else None)
        finally:
            stop(process)
