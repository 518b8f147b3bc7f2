"""LbFailover-UpdateConfig's script (infra/lb/update-config.sh) on a real HAProxy.

A real HAProxy (Debian's 2.6) runs infra/lb/haproxy.cfg through standin/haproxy.py in front of a
real HTTP server; the script installs new configurations into it as the SSM document would run
it. Load balancer on 127.0.3.11, web server on 127.0.3.21: nothing leaves 127.0.0.0/8.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import io
import os
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from standin.haproxy import HAPROXY_CONFIG, LocalHaproxy, haproxy_binary
from standin.web import LocalWebServer
from tests.kit.scripts import load_script

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        haproxy_binary() is None,
        reason="haproxy is not installed (make system installs Debian's haproxy)",
    ),
]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "infra" / "lb" / "update-config.sh"
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


def update(
    lb: LocalHaproxy, config: str, *, script: Path = SCRIPT
) -> subprocess.CompletedProcess[str]:
    encoded = base64.b64encode(config.encode()).decode()
    env = lb.environment()
    env.update(
        SSM_Config=encoded,
        SSM_Checksum=hashlib.sha256(config.encode()).hexdigest(),
        LBSIDE_RELOAD_TIMEOUT="3",
        LBSIDE_SERVE_TIMEOUT="5",
    )
    return subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def served_by(lb: LocalHaproxy, address: tuple[str, int] = LB) -> str | None:
    """The X-Lbf-Config header of a request through the LB (None: the original file)."""
    connection = http.client.HTTPConnection(*address, timeout=5)
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
    # What update_config.py waits for before it goes on to the next LB.
    assert "update-config: serving: 1 server(s) of backend web up, /health 200, / 200" in (
        result.stdout
    )
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


# --- configurations that pass `haproxy -c` and still take the LB down ----------------------------


def passes_haproxy_check(lb: LocalHaproxy, config: str, tmp_path: Path) -> bool:
    path = tmp_path / "candidate.cfg"
    path.write_text(config)
    checked = subprocess.run(
        [lb.binary, "-c", "-q", "-f", str(path), "-f", str(lb.backends_path)],
        env=lb.environment(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return checked.returncode == 0


def worker_cannot_start() -> str:
    """Valid for `haproxy -c`, which does not chroot; the worker fails at start-up, and the
    master, by HAProxy's default, kills its workers and exits."""
    return with_header("v2").replace("global\n", "global\n    chroot /nonexistent-lbside\n", 1)


SERVES_NOTHING = {
    # The case: a backend name that does not exist, resolved at run time.
    "misspelt backend": ("    use_backend %[str(web)]\n", "    use_backend %[str(webs)]\n"),
    # A backend that exists and has no server.
    "empty backend": ("    use_backend %[str(web)]\n", "    use_backend empty\n"),
}


def serves_nothing(case: str) -> str:
    old, new = SERVES_NOTHING[case]
    text = with_header("v2")
    assert old in text
    return text.replace(old, new) + "\nbackend empty\n"


def test_a_worker_that_cannot_start_is_rolled_back_and_haproxy_started_again(
    lb: LocalHaproxy, tmp_path: Path
) -> None:
    assert update(lb, with_header("v1")).returncode == 0
    before, master = lb.config_path.read_text(), lb.pid
    config = worker_cannot_start()
    assert passes_haproxy_check(lb, config, tmp_path)

    result = update(lb, config)

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "restored the previous" in result.stdout
    # The master was gone: a reload would have signalled nothing.
    assert "started HAProxy" in result.stdout
    assert "the previous configuration serves again" in result.stdout
    assert lb.config_path.read_text() == before
    assert lb.pid != master
    # What a client sees: answers, from the previous configuration.
    assert served_by(lb) == "v1"
    # And the next good configuration goes in as usual, into the HAProxy the rollback started.
    assert update(lb, with_header("v3")).returncode == 0
    assert served_by(lb) == "v3"


@pytest.mark.parametrize("case", sorted(SERVES_NOTHING))
def test_a_configuration_that_serves_nothing_is_rolled_back(
    lb: LocalHaproxy, tmp_path: Path, case: str
) -> None:
    assert update(lb, with_header("v1")).returncode == 0
    before, running = lb.config_path.read_text(), workers(lb)
    config = serves_nothing(case)
    assert passes_haproxy_check(lb, config, tmp_path)

    result = update(lb, config)

    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "GET /health through the frontend answered 503, not 200" in result.stdout
    assert "the new configuration did not serve" in result.stderr
    assert "the previous configuration serves again" in result.stdout
    assert lb.config_path.read_text() == before
    assert workers(lb) != running  # reloaded twice: the new file, then the previous one
    assert served_by(lb) == "v1"


def test_an_lb_that_does_not_serve_stops_the_rollout_even_with_nothing_to_change(
    lb: LocalHaproxy,
) -> None:
    config = with_header("v1")
    assert update(lb, config).returncode == 0
    (server,) = [
        line.split()[3]
        for line in lb.runtime("show servers state web").splitlines()
        if line[:1].isdigit() and len(line.split()) > 5
    ]
    lb.runtime(f"set server web/{server} state maint")

    result = update(lb, config)

    assert result.returncode == 1
    assert "already installed, but this LB does not serve" in result.stderr
    assert "no server of backend web is up" in result.stderr


def test_the_rendered_document_rolls_back_on_its_own(lb: LocalHaproxy, tmp_path: Path) -> None:
    """As the SSM agent runs it: one file, haproxy-control.sh inlined, not next to it."""
    render = load_script(ROOT / "infra" / "render_document.py")
    script = tmp_path / "_script.sh"
    (step,) = render.update_config_document()["mainSteps"]
    script.write_text("\n".join(step["inputs"]["runCommand"]) + "\n")
    assert not (tmp_path / "haproxy-control.sh").exists()
    assert update(lb, with_header("v1")).returncode == 0

    for config in (worker_cannot_start(), serves_nothing("misspelt backend")):
        result = update(lb, config, script=script)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "the previous configuration serves again" in result.stdout
        assert served_by(lb) == "v1"
    result = update(lb, with_header("v2"), script=script)
    assert result.returncode == 0, result.stdout + result.stderr
    assert served_by(lb) == "v2"


# --- the rollout: infra/update_config.py across real LBs ------------------------------------------

STANDBY = ("127.0.3.12", 18380)


class LocalSsm:
    """SSM as update_config.py meets it, with the agent running the rendered document on the
    local LB that each instance id names, and reporting its real status and output."""

    def __init__(self, lbs: dict[str, LocalHaproxy], script: Path) -> None:
        self.lbs = lbs
        self.script = script
        self.sent: list[str] = []
        self.results: dict[str, subprocess.CompletedProcess[str]] = {}

    def send_command(self, **kwargs: object) -> dict[str, object]:
        (instance_id,) = kwargs["InstanceIds"]  # type: ignore[misc]
        parameters = kwargs["Parameters"]
        assert isinstance(parameters, dict)
        command_id = f"cmd-{len(self.sent) + 1}"
        self.sent.append(instance_id)
        env = self.lbs[instance_id].environment()
        env.update(
            SSM_Config=parameters["Config"][0],
            SSM_Checksum=parameters["Checksum"][0],
            LBSIDE_RELOAD_TIMEOUT="3",
            LBSIDE_SERVE_TIMEOUT="5",
        )
        self.results[command_id] = subprocess.run(
            ["bash", str(self.script)], env=env, capture_output=True, text=True, timeout=60
        )
        return {"Command": {"CommandId": command_id}}

    def get_command_invocation(self, *, CommandId: str, InstanceId: str) -> dict[str, object]:
        result = self.results[CommandId]
        return {
            "Status": "Success" if result.returncode == 0 else "Failed",
            "StandardOutputContent": result.stdout,
            "StandardErrorContent": result.stderr,
        }


class Ec2:
    def __init__(self, *instances: dict[str, object]) -> None:
        self.instances = list(instances)

    def describe_instances(self, **kwargs: object) -> dict[str, object]:
        return {"Reservations": [{"Instances": self.instances}]}


def lb_instance(instance_id: str, name: str, state: str) -> dict[str, object]:
    tags = {"lbf:cluster": "web", "lbf:role": "lb", "lbf:name": name, "lbf:state": state}
    return {"InstanceId": instance_id, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}


class Client(threading.Thread):
    """Requests through one LB on new connections, as clients do, until stopped."""

    def __init__(self, address: tuple[str, int]) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.answers: Counter[str] = Counter()
        self.halt = threading.Event()

    def run(self) -> None:
        while not self.halt.is_set():
            connection = http.client.HTTPConnection(*self.address, timeout=5)
            try:
                connection.request("GET", "/")
                response = connection.getresponse()
                response.read()
                self.answers[str(response.status)] += 1
            except (OSError, http.client.HTTPException) as exc:
                self.answers[type(exc).__name__] += 1
            finally:
                connection.close()
            time.sleep(0.02)


@pytest.fixture
def cluster(lb: LocalHaproxy, tmp_path: Path) -> Iterator[tuple[LocalHaproxy, LocalHaproxy]]:
    """lb (127.0.3.11) holds the active role; a standby on 127.0.3.12, same web server."""
    standby = LocalHaproxy(tmp_path / "standby", *STANDBY)
    standby.workdir.mkdir(parents=True)
    standby.backends_path.write_text(lb.backends_path.read_text())
    with standby:
        yield lb, standby


def roll_out(
    cluster: tuple[LocalHaproxy, LocalHaproxy], config: str, tmp_path: Path
) -> tuple[int, str, LocalSsm, Counter[str]]:
    active, standby = cluster
    tool = load_script(ROOT / "infra" / "update_config.py")
    render = load_script(ROOT / "infra" / "render_document.py")
    (step,) = render.update_config_document()["mainSteps"]
    script = tmp_path / "_script.sh"
    script.write_text("\n".join(step["inputs"]["runCommand"]) + "\n")
    ssm = LocalSsm({"i-active": active, "i-standby": standby}, script)
    ec2 = Ec2(lb_instance("i-active", "lb1", "active"), lb_instance("i-standby", "lb2", "standby"))
    path = tmp_path / "new.cfg"
    path.write_text(config)
    out = io.StringIO()
    client = Client(LB)
    client.start()
    try:
        code = tool.update_cluster(
            ec2, ssm, "web", path, out=out, sleep=lambda _: None, clock=time.monotonic
        )
    finally:
        client.halt.set()
        client.join(timeout=10)
    return code, out.getvalue(), ssm, client.answers


def test_a_rollout_reaches_the_standby_then_the_active_lb(cluster, tmp_path: Path) -> None:
    active, standby = cluster

    code, out, ssm, answers = roll_out(cluster, with_header("v2"), tmp_path)

    assert code == 0, out
    assert ssm.sent == ["i-standby", "i-active"]
    assert "lb2 i-standby: installed and serving: 1 server(s) of backend web up" in out
    assert served_by(active) == "v2"
    assert served_by(standby, STANDBY) == "v2"
    assert set(answers) == {"200"}, answers


@pytest.mark.parametrize("kind", ["worker cannot start", "serves nothing"])
def test_a_bad_configuration_stops_at_the_standby_and_no_client_of_the_active_lb_notices(
    cluster, tmp_path: Path, kind: str
) -> None:
    active, standby = cluster
    config = (
        worker_cannot_start()
        if kind == "worker cannot start"
        else serves_nothing("misspelt backend")
    )

    code, out, ssm, answers = roll_out(cluster, config, tmp_path)

    assert code == 1, out
    # The standby got it, failed the serving check and is back on its file; the active LB was
    # never sent the configuration, and its clients saw nothing but answers.
    assert ssm.sent == ["i-standby"]
    assert "lb2 i-standby: Failed" in out
    assert "stopped; not sent to: lb1" in out
    assert set(answers) == {"200"}, answers
    assert sum(answers.values()) >= 10
    assert served_by(active) is None
    assert served_by(standby, STANDBY) is None


def test_an_update_stopped_half_way_is_undone_by_the_next(lb: LocalHaproxy) -> None:
    assert update(lb, with_header("v1")).returncode == 0
    good = lb.config_path.read_text()
    # As SSM's time limit leaves a run it stopped after the reload: the new file in place and
    # running (serving nothing), the one it replaced beside it.
    Path(f"{lb.config_path}.last-good").write_text(good)
    lb.config_path.write_text(serves_nothing("misspelt backend"))
    os.kill(lb.pid, signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while status_through(lb) != 503:
        assert time.monotonic() < deadline, "the stopped update's file never served 503"
        time.sleep(0.1)

    # The next update fails too: its rollback must land on the last file that served, not on
    # the one the stopped run left running.
    result = update(lb, serves_nothing("empty backend"))

    assert result.returncode == 1, result.stdout + result.stderr
    assert "an earlier update did not finish: putting back" in result.stdout
    assert "the previous configuration serves again" in result.stdout
    assert served_by(lb) == "v1"
    assert lb.config_path.read_text() == good
    assert not Path(f"{lb.config_path}.last-good").exists()


def status_through(lb: LocalHaproxy) -> int:
    connection = http.client.HTTPConnection(lb.bind_address, lb.port, timeout=5)
    try:
        connection.request("GET", "/")
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()
