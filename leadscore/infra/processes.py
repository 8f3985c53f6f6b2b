"""Child server processes that can never outlive the Python process that started them.

A test run can end in three ways: normally, interrupted (Ctrl-C), or killed outright
(SIGKILL from a CI timeout, an OOM killer, a closed terminal). Each leaves no orphan:

- normally or interrupted: the caller's `stop()` runs (context managers, pytest
  finalizers), and an `atexit` hook stops whatever is still running;
- killed: the kernel sends SIGKILL to every child whose parent dies, because each child
  asks for it with `prctl(PR_SET_PDEATHSIG, SIGKILL)` before it execs (Linux only; the
  signal fires when the *thread* that spawned the child exits, so spawn from the main
  thread, which pytest fixtures do).

Each child runs in its own process group, so `stop()` also reaches the processes the
server forks itself, and a Ctrl-C in the terminal reaches only pytest, which then stops
its servers in order.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1
_running: set[subprocess.Popen[bytes]] = set()


class ServerStartError(RuntimeError):
    """A server exited or did not answer in time; the message ends with its log's tail."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent_hook() -> Callable[[], None] | None:
    """The `preexec_fn` that arms PR_SET_PDEATHSIG; None where prctl does not exist."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    parent = os.getpid()

    def arm() -> None:
        # Runs in the child between fork and exec: keep it to system calls.
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm


def spawn(
    command: Sequence[str | Path],
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start `command` with stdout and stderr going to `log_path`; see the module doc."""
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [str(part) for part in command],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=None if env is None else dict(env),
            cwd=cwd,
            process_group=0,
            preexec_fn=_die_with_parent_hook(),  # noqa: PLW1509 - only system calls inside
        )
    _running.add(process)
    return process


def stop(process: subprocess.Popen[bytes], grace_seconds: float = 10.0) -> None:
    """SIGTERM the child's process group, then SIGKILL it if it is not gone in time."""
    _running.discard(process)
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_seconds)
    # Also reaches anything the server forked, even when the leader itself is gone.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@atexit.register
def _stop_all() -> None:
    for process in list(_running):
        stop(process, grace_seconds=3.0)


def log_tail(log_path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a server log, for error messages."""
    try:
        text = log_path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log written)"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def wait_until_ready(
    process: subprocess.Popen[bytes],
    answers: Callable[[], bool],
    *,
    name: str,
    log_path: Path,
    timeout: float,
) -> None:
    """Poll `answers()` until it is true; raise ServerStartError with the log's tail if the
    server exits first or `timeout` seconds pass. On error the server is stopped."""
    deadline = time.monotonic() + timeout
    while True:
        code = process.poll()
        if code is not None:
            problem = f"{name} exited with code {code} while starting"
        elif answers():
            return
        elif time.monotonic() > deadline:
            problem = f"{name} did not answer within {timeout:.0f} s"
        else:
            time.sleep(0.1)
            continue
        stop(process)
        raise start_error(problem, log_path)


def start_error(problem: str, log_path: Path) -> ServerStartError:
    return ServerStartError(f"{problem}. Last lines of {log_path}:\n{log_tail(log_path)}")


@contextlib.contextmanager
def server_dir(prefix: str) -> Iterator[Path]:
    """A fresh temporary directory for one server's config, data and log.

    Removed when the server stops normally; kept when an error passes through, so the log
    named in a ServerStartError is still there to read.
    """
    path = Path(tempfile.mkdtemp(prefix=f"leadscore-{prefix}-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
