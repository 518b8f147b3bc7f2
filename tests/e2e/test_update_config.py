"""LbFailover-UpdateConfig's script (infra/lb/update-config.sh) on a real HAProxy.

A real HAProxy (Debian's 2.6) runs infra/lb/haproxy.cfg through standin/haproxy.py in front of a
real HTTP server; the script installs new configurations into it as the SSM document would run
it. Load balancer on 127.0.3.11, web server on 127.0.3.21: nothing leaves 127.0.0.0/8.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from standin.haproxy import HAPROXY_CONFIG, LocalHaproxy, haproxy_binary
from standin.web import LocalWebServer

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        haproxy_binary() is None,
        reason="haproxy is not installed (make system installs Debian's haproxy)",
    ),
]

SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "lb" / "update-config.sh"
LB = ("127.0.3.11", 18380)
WEB = ("127.0.3.21", 18381)
# An address the new configuration asks for while something else holds it: `haproxy -c` binds
# nothing, so only the reload can find out.
TAKEN = ("127.0.3.11", 18389)


@pytest.fixture
def lb(tmp_path: Path) -> Iterator[LocalHaproxy]:
    web = LocalWebServer(*WEB, body="ok\n", keep_alive=True).start()
    haproxy = LocalHaproxy(tmp_path / "lb", *LB)
    haproxy.workdir.mkdir(parents=True)
    # The backend section as apply-backends.sh leaves it, written before the start so that
    # this test does not depend on how a list is applied.
    entry = f"{WEB[0]}:{WEB[1]}"
    haproxy.backends_path.write_text(f"# lbf-checksum 0\nbackend web\n    server {entry} {entry}\n")
    try:
        with haproxy:
            yield haproxy
    finally:
        web.stop()


def with_header(value: str) -> str:
    """The project's haproxy.cfg with one response header added, to see which one serves."""
    text = HAPROXY_CONFIG.read_text()
    anchor = "    use_backend %[str(web)]\n"
    assert anchor in text
    return text.replace(anchor, f"{anchor}    http-response set-header X-Lbf-Config {value}\n")


def update(lb: LocalHaproxy, config: str) -> subprocess.CompletedProcess[str]:
    encoded = base64.b64encode(config.encode()).decode()
    env = lb.environment()
    env.update(
        SSM_Config=encoded,
        SSM_Checksum=hashlib.sha256(config.encode()).hexdigest(),
        LBSIDE_RELOAD_TIMEOUT="3",
    )
    return subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def served_by(lb: LocalHaproxy) -> str | None:
    """The X-Lbf-Config header of a request through the LB (None: the original file)."""
    connection = http.client.HTTPConnection(*LB, timeout=5)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
        assert response.status == 200
        return response.getheader("X-Lbf-Config")
    finally:
        connection.close()


def workers(lb: LocalHaproxy) -> set[int]:
    """The master's live workers, once it has one (it forks its first just after listening)."""
    deadline = time.monotonic() + 5
    while not (children := _children(lb.pid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return children


def _children(pid: int) -> set[int]:
    children: set[int] = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            children.add(int(stat.parent.name))
    return children


def test_a_good_configuration_is_installed_and_served(lb: LocalHaproxy) -> None:
    assert served_by(lb) is None
    new = with_header("v2")

    result = update(lb, new)

    assert result.returncode == 0, result.stderr
    assert served_by(lb) == "v2"
    assert lb.config_path.read_text() == new
    assert not Path(f"{lb.config_path}.last-good").exists()


def test_a_configuration_haproxy_refuses_changes_nothing(lb: LocalHaproxy) -> None:
    before = lb.config_path.read_text()
    running = workers(lb)
    anchor = "    use_backend %[str(web)]\n"
    broken = with_header("v2").replace(anchor, f"{anchor}    default_backend nowhere\n")
    assert "nowhere" in broken

    result = update(lb, broken)

    assert result.returncode == 2
    assert "haproxy -c refused the new configuration" in result.stderr
    assert "nothing changed" in result.stderr
    assert lb.config_path.read_text() == before
    assert workers(lb) == running  # not even reloaded
    assert served_by(lb) is None


def test_a_configuration_that_cannot_start_is_rolled_back_and_the_old_one_serves(
    lb: LocalHaproxy,
) -> None:
    assert update(lb, with_header("v1")).returncode == 0
    before = lb.config_path.read_text()
    cannot_start = with_header("v2").replace(
        '    bind "${LBSIDE_BIND}"\n',
        f'    bind "${{LBSIDE_BIND}}"\n    bind {TAKEN[0]}:{TAKEN[1]}\n',
    )
    with socket.create_server(TAKEN):
        result = update(lb, cannot_start)

        assert result.returncode == 1, result.stdout + result.stderr
        assert "restored the previous" in result.stdout
        assert "did not start a worker with the new configuration" in result.stderr
        assert lb.config_path.read_text() == before
        assert served_by(lb) == "v1"

    # Not stuck half-way: the next good configuration goes in as usual.
    assert update(lb, with_header("v3")).returncode == 0
    assert served_by(lb) == "v3"


def test_the_same_configuration_again_is_not_reloaded(lb: LocalHaproxy) -> None:
    new = with_header("v2")
    assert update(lb, new).returncode == 0
    running = workers(lb)

    result = update(lb, new)

    assert result.returncode == 0
    assert "already installed" in result.stdout
    assert workers(lb) == running


@pytest.mark.parametrize(
    ("config", "checksum", "reason"),
    [
        ("$(reboot)", None, "Config is not base64"),
        (base64.b64encode(b"global\n").decode(), "0" * 64, "Checksum does not match"),
        ("", None, "the configuration is empty"),
    ],
    ids=["shell text", "wrong checksum", "empty"],
)
def test_bad_input_is_refused_before_anything_changes(
    lb: LocalHaproxy, config: str, checksum: str | None, reason: str
) -> None:
    before = lb.config_path.read_text()
    env = lb.environment()
    env.update(SSM_Config=config, SSM_Checksum=checksum or hashlib.sha256(b"x").hexdigest())
    result = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert reason in result.stderr
    assert lb.config_path.read_text() == before
