"""`leadscore dev`, the README's first command: embedded broker, Redis, a worker, the examples."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from leadscore.infra.processes import free_port


def _children(pid: int) -> set[int]:
    """Every descendant of `pid`, from /proc."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            kids = {int(k) for k in task.read_text().split()}
            todo.extend(kids - found)
            found |= kids
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_dev_prints_the_example_decisions_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LEADSCORE_")}
    env["LEADSCORE_WEB_PORT"] = str(free_port())
    env["PYTHONUNBUFFERED"] = "1"
    out_path = tmp_path / "dev.out"
    with out_path.open("wb") as out:
        dev = subprocess.Popen([sys.executable, "-m", "app.cli", "dev"], stdout=out,
                               stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        wanted = ("ana.lopez@acme.example", "LEAD", "carlos@globex.example")
        while time.monotonic() < deadline and dev.poll() is None:
            text = out_path.read_text(errors="replace")
            leads = [line for line in text.splitlines() if " LEAD " in line]
            routed = [line for line in text.splitlines() if " routed to " in line]
            if any("ana.lopez@acme.example" in line for line in leads) and any(
                    "carlos@globex.example" in line and "FAST TRACK" in line for line in leads
            ) and any("carlos@globex.example" in line for line in routed):
                break
            time.sleep(0.5)
        text = out_path.read_text(errors="replace")
        assert all(word in text for word in wanted), text[-4000:]
        assert "carlos@globex.example        routed to " in text  # the fast-track lead
        assert "ingest       POST http://127.0.0.1:" in text
        assert "metrics      http://127.0.0.1:" in text
        children = _children(dev.pid)
        assert len(children) >= 3, "broker, redis and worker should be running"
        dev.send_signal(signal.SIGINT)
        assert dev.wait(timeout=60) == 0
        assert "leadscore dev: stopping." in out_path.read_text()
        time.sleep(1)
        assert [pid for pid in children if _alive(pid)] == []
    finally:
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
