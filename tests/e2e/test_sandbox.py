"""`make sandbox`: the stand-in world left running, driven by hand from other processes.

What a newcomer does: start the sandbox, source the file it writes, run commands in another
process, stop it. The failback (move-active there and back again) is the case a plain moto server
refuses and Route 53 accepts: the sandbox's moto carries the stand-in's patch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from standin.haproxy import haproxy_binary

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(haproxy_binary() is None, reason="needs HAProxy (make system)"),
]


def _environment(env_file: Path) -> dict[str, str]:
    """What `. ./.sandbox.env` gives a POSIX shell, read by one."""
    shown = subprocess.run(
        ["sh", "-c", f". {env_file} && env -0"], capture_output=True, check=True, env={}
    ).stdout.decode()
    return dict(item.split("=", 1) for item in shown.split("\0") if "=" in item)


def _command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chalicelib", *args],
        cwd=ROOT,
        env={**env, "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sandbox_runs_commands_from_another_process_then_stops_everything(
    tmp_path: Path,
) -> None:
    env_file = tmp_path / "sandbox.env"
    sandbox = subprocess.Popen(
        [sys.executable, "-m", "standin.sandbox", "--env-file", str(env_file)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while not env_file.exists():
            assert sandbox.poll() is None, sandbox.stdout.read() if sandbox.stdout else ""
            assert time.monotonic() < deadline, "the sandbox did not come up in 90 s"
            time.sleep(0.2)
        env = _environment(env_file)
        assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
        assert env["LBF_CLUSTER"] == "demo"

        run = _command(env, "reconcile")
        assert run.returncode == 0, run.stdout + run.stderr
        status = _command(env, "status")
        assert "lb.demo.example.com -> 127.0.1.11" in status.stdout, status.stdout

        there = _command(env, "move-active", "--to", "lb2", "--no-wait")
        assert there.returncode == 0, there.stdout + there.stderr
        back = _command(env, "move-active", "--to", "lb1", "--no-wait")
        assert back.returncode == 0, back.stdout + back.stderr
        status = _command(env, "status")
        assert "lb.demo.example.com -> 127.0.1.11" in status.stdout, status.stdout
    finally:
        sandbox.send_signal(signal.SIGTERM)
        output, _ = sandbox.communicate(timeout=60)
    assert sandbox.returncode == 0, output
    assert "sandbox stopped" in output
    assert not env_file.exists()
    pids = [
        int(pid)
        for line in output.splitlines()
        if "pids:" in line
        for pid in line.split("pids:")[1].strip(" ).").replace(",", " ").split()
        if pid.isdigit()
    ]
    assert len(pids) == 2, output
    assert not any(_alive(pid) for pid in pids), "an LB's HAProxy outlived the sandbox"
