"""The load-balancer side of the backend push, against a real HAProxy on loopback.

Every test runs the real infra/lb/apply-backends.sh against a real HAProxy (Debian's 2.6) started
from the real infra/lb/haproxy.cfg by standin/haproxy.py, in front of real HTTP servers. Load
balancers listen on 127.0.0.6x, web servers on 127.0.1.6x to 127.0.1.8x: nothing leaves
127.0.0.0/8.
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType

import pytest

from bench.pool_changes import rolling_changes
from standin.haproxy import APPLY_SCRIPT, EMPTY_BACKENDS, LocalHaproxy, haproxy_binary
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
INFRA = ROOT / "infra"


def _load_renderer() -> ModuleType:
    return load_script(INFRA / "render_document.py")


render = _load_renderer()


# --- web servers --------------------------------------------------------------------------------


def web_server(address: str) -> LocalWebServer:
    """Answers `GET /` with its own `address:port`, `GET /health` with 200 (503 when unhealthy)."""
    return LocalWebServer(address, body="{entry}", health_page=True, keep_alive=True).start()


@pytest.fixture(scope="module")
def webs() -> Iterator[list[LocalWebServer]]:
    servers = [web_server(f"127.0.1.{61 + i}") for i in range(4)]
    yield servers
    for server in servers:
        server.stop()


def entries(servers: Sequence[LocalWebServer]) -> set[str]:
    return {server.entry for server in servers}


def backend_list(servers: Sequence[LocalWebServer]) -> tuple[str, str]:
    """The list and checksum exactly as the controller writes them (SPEC: sorted, numerically)."""

    def key(entry: str) -> tuple[int, ...]:
        address, port = entry.rsplit(":", 1)
        return (*map(int, address.split(".")), int(port))

    text = " ".join(sorted(entries(servers), key=key))
    return text, sha256(text)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- load balancers -----------------------------------------------------------------------------

_lb_addresses = itertools.count(61)


def free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def new_lb(tmp_path: Path) -> Iterator[Callable[[], LocalHaproxy]]:
    """Starts LocalHaproxy instances on fresh loopback addresses; stops them after the test."""
    started: list[LocalHaproxy] = []

    def start() -> LocalHaproxy:
        address = f"127.0.0.{next(_lb_addresses)}"
        lb = LocalHaproxy(tmp_path / f"lb-{address}", address, free_port(address))
        lb.start()
        started.append(lb)
        return lb

    yield start
    for lb in started:
        lb.stop()


def get(lb: LocalHaproxy, path: str = "/") -> tuple[int, str]:
    """One request on a new connection."""
    connection = http.client.HTTPConnection(lb.bind_address, lb.port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def served_by(lb: LocalHaproxy, requests: int = 24) -> Counter[str]:
    answers: Counter[str] = Counter()
    for _ in range(requests):
        status, body = get(lb)
        answers[body if status == 200 else f"HTTP {status}"] += 1
    return answers


def wait_until_served_by(lb: LocalHaproxy, expected: set[str], *, timeout: float = 10.0) -> None:
    """A reload is asynchronous: wait (bounded) until one batch of requests reaches exactly `expected`."""
    deadline = time.monotonic() + timeout
    seen: Counter[str] = Counter()
    while time.monotonic() < deadline:
        seen = served_by(lb, requests=6 * len(expected))
        if set(seen) == expected:
            return
        time.sleep(0.05)
    raise AssertionError(f"served by {dict(seen)}, expected exactly {sorted(expected)}")


def apply_ok(lb: LocalHaproxy, servers: Sequence[LocalWebServer]) -> None:
    result = lb.apply(*backend_list(servers))
    assert result.returncode == 0, result.stdout + result.stderr
    wait_until_served_by(lb, entries(servers))


# --- applying a list ----------------------------------------------------------------------------


def test_apply_sends_traffic_to_exactly_the_new_backends(new_lb, webs) -> None:
    lb = new_lb()
    assert get(lb, "/health")[0] == 503  # no list yet: this LB cannot serve

    apply_ok(lb, webs[:2])
    text, checksum = backend_list(webs[2:])
    result = lb.apply(text, checksum)

    assert result.returncode == 0, result.stderr
    assert f"serving: {text}" in result.stdout
    wait_until_served_by(lb, entries(webs[2:]))
    assert lb.applied_checksum() == checksum
    assert get(lb, "/health")[0] == 200


def test_reapplying_the_same_checksum_is_a_no_op(new_lb, webs) -> None:
    lb = new_lb()
    apply_ok(lb, webs[:2])
    before = lb.backends_path.read_bytes()

    result = lb.apply(*backend_list(webs[:2]))

    assert result.returncode == 0, result.stderr
    assert "already serves" in result.stdout
    assert lb.backends_path.read_bytes() == before


@pytest.fixture(scope="module")
def steady_lb(tmp_path_factory, webs) -> Iterator[LocalHaproxy]:
    """One LB serving webs[0] and webs[1], for the cases that must change nothing."""
    address = f"127.0.0.{next(_lb_addresses)}"
    lb = LocalHaproxy(tmp_path_factory.mktemp("steady"), address, free_port(address))
    lb.start()
    apply_ok(lb, webs[:2])
    yield lb
    lb.stop()


def _hostile_cases(good: str, marker: Path) -> dict[str, tuple[str, str]]:
    """name -> (Backends, Checksum); every checksum but one matches its list, so the content is
    what must be refused, not the hash."""
    first = good.split(" ")[0]
    lists = {
        "semicolon": f"{first};touch {marker}",
        "command substitution": f"$(touch {marker})",
        "command substitution in an entry": f"{first} $(touch {marker})",
        "backticks": f"{first} `touch {marker}`",
        "newline": good.replace(" ", "\n"),
        "trailing newline": good + "\n",
        # (A short entry: Linux refuses one environment string over 128 KiB, SSM's limit
        # comes far earlier, and the script's 8 KB bound is what is tested.)
        "ten thousand entries": " ".join(["10.0.0.1:80"] * 10_000),
        "IPv6 without brackets": "2001:db8::1:80",
        "IPv6 loopback without brackets": "::1:80",
        "IPv6 with too many groups": "[1:2:3:4:5:6:7:8:9]:80",
        "IPv6 with two double colons": "[2001::db8::1]:80",
        "port 0": f"{first.rsplit(':', 1)[0]}:0",
        "port 70000": f"{first.rsplit(':', 1)[0]}:70000",
        "port with a leading zero": f"{first.rsplit(':', 1)[0]}:080",
        "octet 256": "127.0.1.256:80",
        "hostname": "localhost:80",
        "empty list": "",
        "double space": good.replace(" ", "  "),
        "tab": good.replace(" ", "\t"),
        "listed twice": f"{first} {first}",
        "double quote": f'{first}";touch {marker};"',
    }
    cases = {name: (value, sha256(value)) for name, value in lists.items()}
    cases["checksum mismatch"] = (good, sha256(good + " "))
    cases["checksum in uppercase"] = (good, sha256(good).upper())
    cases["checksum with shell syntax"] = (good, f"$(touch {marker})")
    return cases


HOSTILE_NAMES = list(_hostile_cases("127.0.0.1:1 127.0.0.1:2", Path("/nonexistent")))


@pytest.mark.parametrize("case", HOSTILE_NAMES)
def test_hostile_input_is_rejected_and_changes_nothing(case, steady_lb, webs, tmp_path) -> None:
    marker = tmp_path / "pwned"
    good, _ = backend_list(webs[2:])
    backends, checksum = _hostile_cases(good, marker)[case]
    before = steady_lb.backends_path.read_bytes()

    result = steady_lb.apply(backends, checksum)

    assert result.returncode == 2, result.stdout + result.stderr
    assert "rejected" in result.stderr
    assert steady_lb.backends_path.read_bytes() == before
    assert not marker.exists(), "the input was executed"
    assert set(served_by(steady_lb, requests=8)) == entries(webs[:2])


# Addresses no web server has: a list naming one is refused whole, beside a good entry too.
REFUSED = {
    "instance metadata service": (
        "169.254.169.254:80",
        "link-local: the instance metadata service is one",
    ),
    "link-local": ("169.254.10.1:8080", "link-local: the instance metadata service is one"),
    "IPv6 link-local": ("[fe80::1]:80", "link-local"),
    "IPv6 link-local, long form": ("[FEBF:0:0:0:0:0:0:1]:80", "link-local"),
    "IPv6 instance metadata service": ("[fd00:ec2::254]:80", "the instance metadata service"),
    "metadata service as IPv4-mapped IPv6": (
        "[::ffff:a9fe:a9fe]:80",
        "link-local: the instance metadata service is one",
    ),
    "unspecified": ("0.0.0.0:80", "unspecified (0.0.0.0/8)"),
    "this network": ("0.1.2.3:80", "unspecified (0.0.0.0/8)"),
    "IPv6 unspecified": ("[::]:80", "unspecified"),
    "IPv6 unspecified, long form": ("[0:0:0:0:0:0:0:0]:80", "unspecified"),
    "multicast": ("224.0.0.1:80", "multicast"),
    "multicast, last block": ("239.255.255.250:1900", "multicast"),
    "IPv6 multicast": ("[ff02::1]:80", "multicast"),
    "broadcast": ("255.255.255.255:80", "broadcast"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_an_address_no_web_server_has_refuses_the_whole_list(case, steady_lb, webs) -> None:
    entry, why = REFUSED[case]
    text = f"{webs[2].entry} {entry}"
    before = steady_lb.backends_path.read_bytes()

    result = steady_lb.apply(text, sha256(text))

    assert result.returncode == 2, result.stdout + result.stderr
    assert (
        f"rejected: not a web server's address: {entry} ({why}); the whole list is refused; "
        "nothing changed"
    ) in result.stderr
    assert steady_lb.backends_path.read_bytes() == before
    assert steady_lb.serving() == entries(webs[:2])  # webs[2], good, was not applied either


def test_every_refused_entry_is_named(steady_lb, webs) -> None:
    text = f"0.0.0.0:80 {webs[2].entry} 169.254.169.254:80 [ff02::1]:80"
    result = steady_lb.apply(text, sha256(text))
    assert result.returncode == 2
    assert (
        "not a web server's address: 0.0.0.0:80 (unspecified (0.0.0.0/8)), 169.254.169.254:80 "
        "(link-local: the instance metadata service is one), [ff02::1]:80 (multicast); "
    ) in result.stderr


@pytest.mark.parametrize(
    "entry", ["127.0.0.1:80", "127.0.1.61:80", "[::1]:80", "[::ffff:127.0.0.1]:80"]
)
def test_loopback_is_refused_unless_the_stand_in_allows_it(entry, steady_lb, webs) -> None:
    before = steady_lb.backends_path.read_bytes()
    text = f"{entry} 10.0.1.5:80"

    # A deployed LB: the stand-in's switch is not set.
    result = steady_lb.apply(text, sha256(text), extra_env={"LBSIDE_ALLOW_LOOPBACK": ""})

    assert result.returncode == 2, result.stdout + result.stderr
    assert f"not a web server's address: {entry} (loopback)" in result.stderr
    assert steady_lb.backends_path.read_bytes() == before
    # Only exactly `1` allows it.
    other = steady_lb.apply(text, sha256(text), extra_env={"LBSIDE_ALLOW_LOOPBACK": "true"})
    assert other.returncode == 2
    assert "(loopback)" in other.stderr


@pytest.mark.parametrize("local", [True, False], ids=["stand-in", "EC2"])
def test_haproxy_cfg_is_valid_alone_and_with_the_backends_file(local, steady_lb, tmp_path) -> None:
    # Distributions' units check haproxy.cfg alone before starting HAProxy; the drop-in loads it
    # with the backends file: before any list, and as the apply script writes it.
    env = steady_lb.environment()
    if not local:
        env = {k: v for k, v in env.items() if k not in ("LBSIDE_LOCAL", "LBSIDE_ADMIN_SOCKET")}
    empty = tmp_path / "empty-backends.cfg"
    empty.write_text(EMPTY_BACKENDS)
    config = INFRA / "lb" / "haproxy.cfg"
    for extra in ([], [empty], [steady_lb.backends_path]):
        files = [arg for path in (config, *extra) for arg in ("-f", str(path))]
        result = subprocess.run(
            [steady_lb.binary, "-c", *files], env=env, capture_output=True, text=True, timeout=30
        )
        assert result.returncode == 0, (extra, result.stdout + result.stderr)
    assert "server s1 " in steady_lb.backends_path.read_text()


@pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/var/lib/haproxy").is_dir(),
    reason="the EC2 configuration chroots to /var/lib/haproxy and switches user: needs root",
)
def test_an_ec2_lb_logs_requests_to_standard_output_from_its_chroot(webs, tmp_path) -> None:
    # haproxy.cfg as an EC2 LB runs it (chroot, user switch; no stand-in switch), started the
    # way the drop-in starts it: systemd gives HAProxy's standard output to the journal. No
    # /dev/log inside the chroot is needed for a request's log line to get there.
    backends = tmp_path / "backends.cfg"
    backends.write_text(f"backend web\n    server s1 {webs[0].entry}\n")
    address = f"127.0.0.{next(_lb_addresses)}"
    port = free_port(address)
    sockets = Path(tempfile.mkdtemp(prefix="lbside-"))
    env = {
        "PATH": "/usr/sbin:/usr/bin:/bin",
        "LBSIDE_BIND": f"{address}:{port}",
        "LBSIDE_ADMIN_SOCKET": str(sockets / "admin.sock"),
    }
    output = tmp_path / "stdout.log"
    config = INFRA / "lb" / "haproxy.cfg"
    binary = haproxy_binary()
    assert binary is not None
    with output.open("wb") as stdout:
        process = subprocess.Popen(
            [binary, "-Ws", "-f", str(config), "-f", str(backends)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection((address, port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None, output.read_text()
                assert time.monotonic() < deadline, output.read_text()
                time.sleep(0.05)
        connection = http.client.HTTPConnection(address, port, timeout=10)
        try:
            connection.request("GET", "/")
            response = connection.getresponse()
            assert (response.status, response.read().decode()) == (200, webs[0].entry)
        finally:
            connection.close()
        deadline = time.monotonic() + 5
        while '"GET / HTTP/1.1"' not in output.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        (line,) = [line for line in output.read_text().splitlines() if '"GET / HTTP/1.1"' in line]
        assert " http web/s1 " in line, line
        assert " 200 " in line, line
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
        shutil.rmtree(sockets, ignore_errors=True)


def test_missing_parameters_are_rejected(steady_lb, webs) -> None:
    env = {k: v for k, v in steady_lb.environment().items() if not k.startswith("SSM_")}
    before = steady_lb.backends_path.read_bytes()

    result = subprocess.run(
        ["bash", str(APPLY_SCRIPT)], env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 2
    assert "SSM_Backends is not set" in result.stderr
    assert steady_lb.backends_path.read_bytes() == before


def test_a_configuration_haproxy_refuses_is_never_installed(new_lb, webs, tmp_path) -> None:
    lb = new_lb()
    apply_ok(lb, webs[:2])
    before = lb.backends_path.read_bytes()
    broken = tmp_path / "broken.cfg"
    broken.write_text(lb.config_path.read_text() + "\nfrontend broken\n    no-such-keyword\n")

    result = lb.apply(*backend_list(webs[2:]), extra_env={"LBSIDE_HAPROXY_CONFIG": str(broken)})

    assert result.returncode != 0
    assert "haproxy -c refused" in result.stderr
    assert lb.backends_path.read_bytes() == before
    assert set(served_by(lb)) == entries(webs[:2])


def test_a_failed_reload_restores_the_last_good_file(new_lb, webs, tmp_path) -> None:
    lb = new_lb()
    apply_ok(lb, webs[:2])
    before = lb.backends_path.read_bytes()
    # HAProxy as the script finds it after a crash (no admin socket, the master gone), with a
    # binary that checks configurations but cannot start (as when another process holds the
    # port): the script starts HAProxy with the new file, which fails here.
    dead_pidfile = tmp_path / "dead.pid"
    dead_pidfile.write_text(f"{_exited_pid()}\n")
    cannot_start = tmp_path / "haproxy"
    cannot_start.write_text(
        f'#!/bin/sh\nfor a; do [ "$a" = -c ] && exec {lb.binary} "$@"; done\n'
        'echo "[ALERT] cannot bind" >&2\nexit 1\n'
    )
    cannot_start.chmod(0o755)
    gone = {
        "LBSIDE_HAPROXY_PIDFILE": str(dead_pidfile),
        "LBSIDE_HAPROXY_SOCKET": str(tmp_path / "x"),
        "LBSIDE_HAPROXY_BIN": str(cannot_start),
        "LBSIDE_RELOAD_TIMEOUT": "2",
    }

    result = lb.apply(*backend_list(webs[2:]), extra_env=gone)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "no HAProxy master runs: starting HAProxy" in result.stdout
    assert "haproxy: [ALERT] cannot bind" in result.stdout
    assert "restored the last good" in result.stdout
    assert lb.backends_path.read_bytes() == before
    assert set(served_by(lb)) == entries(webs[:2])
    # And the next push, with a working reload, applies normally.
    apply_ok(lb, webs[2:])


def test_a_push_to_an_lb_whose_haproxy_is_gone_starts_it_with_the_list(new_lb, webs) -> None:
    lb = new_lb()
    apply_ok(lb, webs[:2])
    master = lb.pid
    os.kill(master, signal.SIGTERM)  # the master stops its workers and exits
    _wait_for_exit(master)
    with pytest.raises(ConnectionRefusedError):
        get(lb, "/")

    result = lb.apply(*backend_list(webs[1:3]))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "HAProxy is not running: it starts with the list" in result.stdout
    assert "started HAProxy" in result.stdout
    assert lb.pid != master
    wait_until_served_by(lb, entries(webs[1:3]))


def _wait_for_exit(pid: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if state == "Z":
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still runs after {timeout}s")


def test_a_running_haproxy_whose_state_cannot_be_read_is_left_alone(new_lb, webs, tmp_path):
    lb = new_lb()
    apply_ok(lb, webs[:2])
    before = lb.backends_path.read_bytes()

    result = lb.apply(
        *backend_list(webs[2:]), extra_env={"LBSIDE_HAPROXY_SOCKET": str(tmp_path / "x")}
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "gave no state of backend web; nothing changed" in result.stderr
    assert lb.backends_path.read_bytes() == before
    assert lb.serving() == entries(webs[:2])


def _exited_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


# --- what HAProxy serves, changed at run time -----------------------------------------------------


def workers(lb: LocalHaproxy) -> set[int]:
    """The master's live children: a reload replaces them, a Runtime API change does not."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == str(lb.pid) and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def test_a_pool_change_is_made_at_run_time_without_a_reload(new_lb, webs) -> None:
    lb = new_lb()
    apply_ok(lb, webs[:2])
    before = workers(lb)
    assert before

    result = lb.apply(*backend_list(webs[1:]))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "changed at run time, no reload (2 added, 1 removed)" in result.stdout
    assert lb.serving() == entries(webs[1:])
    wait_until_served_by(lb, entries(webs[1:]))
    assert workers(lb) == before
    # The file says the same, so a restart serves the same list.
    lb.stop()
    lb.start()
    assert lb.serving() == entries(webs[1:])


def test_already_applied_means_haproxy_serves_it_not_that_the_file_says_so(new_lb, webs) -> None:
    lb = new_lb()
    apply_ok(lb, webs[:2])
    file_before = lb.backends_path.read_bytes()
    # Behind the script's back, one server leaves rotation (an operator, a half-done push): the
    # file and its checksum still name the list.
    (slot,) = re.findall(rf"server (s\d+) {re.escape(webs[0].entry)}\n", file_before.decode())
    lb.runtime(f"set server web/{slot} state maint")
    assert lb.serving() == {webs[1].entry}

    result = lb.apply(*backend_list(webs[:2]))

    assert result.returncode == 0, result.stdout + result.stderr
    assert "already serves" not in result.stdout
    assert "(1 added, 0 removed)" in result.stdout
    assert lb.serving() == entries(webs[:2])
    assert lb.backends_path.read_bytes() == file_before


# Each step the script can die at (LBSIDE_APPLY_KILL_AT: SIGKILL, no cleanup), on both paths: a
# change at run time, and the first list of a new LB, which HAProxy can only load by a reload.
KILL_POINTS = [
    *(("change", step) for step in ("planned", "file-written", "servers-added", "servers-removed")),
    *(("first list", step) for step in ("planned", "file-written", "reloaded")),
]


@pytest.mark.parametrize(("path", "step"), KILL_POINTS, ids=[f"{p}-{s}" for p, s in KILL_POINTS])
def test_a_push_killed_at_any_step_is_completed_by_the_next(path, step, new_lb, webs) -> None:
    lb = new_lb()
    if path == "change":
        apply_ok(lb, webs[:2])
    served_before = lb.serving()
    wanted = backend_list(webs[1:])

    killed = lb.apply(*wanted, extra_env={"LBSIDE_APPLY_KILL_AT": step})

    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    assert f"killed at {step}" in killed.stdout
    if step in ("planned", "file-written"):
        assert lb.serving() == served_before  # HAProxy was not touched yet
    result = lb.apply(*wanted)
    assert result.returncode == 0, result.stdout + result.stderr
    if step == "file-written":
        # The file already names the list: only HAProxy's own state shows it is not served.
        assert "already serves" not in result.stdout
    assert lb.serving() == entries(webs[1:])
    wait_until_served_by(lb, entries(webs[1:]))
    assert not list(lb.workdir.glob("backends.cfg.new.*"))
    # And a restart serves the same list: the file matches what runs.
    lb.stop()
    lb.start()
    assert lb.serving() == entries(webs[1:])


def test_servers_added_at_run_time_are_health_checked(new_lb) -> None:
    servers = [web_server(f"127.0.1.{75 + i}") for i in range(2)]
    try:
        lb = new_lb()
        apply_ok(lb, servers[:1])
        result = lb.apply(*backend_list(servers))
        assert "changed at run time" in result.stdout, result.stdout + result.stderr
        wait_until_served_by(lb, entries(servers))

        servers[1].healthy = False

        # haproxy.cfg's checks (default-server): out within about 3 s, `fall` checks apart.
        wait_until_served_by(lb, {servers[0].entry}, timeout=10)
    finally:
        for server in servers:
            server.stop()


def test_an_ipv6_entry_is_compared_in_the_form_haproxy_prints(new_lb) -> None:
    # An IPv4-mapped IPv6 address: IPv6 through the Runtime API, traffic still to 127.0.1.79.
    servers = [web_server("127.0.1.78"), web_server("127.0.1.79")]
    try:
        lb = new_lb()
        apply_ok(lb, servers[:1])
        port = servers[1].entry.rsplit(":", 1)[1]
        text = f"[0:0:0:0:0:FFFF:7f00:14f]:{port}"  # 127.0.1.79, written the long way

        result = lb.apply(text, sha256(text))

        assert "changed at run time" in result.stdout, result.stdout + result.stderr
        assert lb.serving() == {f"[::ffff:127.0.1.79]:{port}"}
        wait_until_served_by(lb, {servers[1].entry})
        again = lb.apply(text, sha256(text))
        assert "already serves" in again.stdout, again.stdout + again.stderr
    finally:
        for server in servers:
            server.stop()


def test_fifty_rolling_pool_changes_fail_no_request(new_lb) -> None:
    # A rolling change, 50 times: a new web server joins, the oldest leaves and is stopped once it
    # drained; keep-alive and new-connection clients meanwhile, no retry anywhere (the reload-based
    # run of the same workload is in bench/pool_changes.py).
    lb = new_lb()

    outcome = rolling_changes(lb, "127.0.1.81", changes=50)

    print(
        f"changes: 50, requests: {dict(outcome.tally.ok)}, failed: "
        f"{ {kind: len(problems) for kind, problems in outcome.tally.failures.items()} }"
    )
    assert outcome.failed_applies == []
    assert outcome.reloads == 0
    assert outcome.tally.failures == {}, {
        kind: Counter(problems).most_common(3) for kind, problems in outcome.tally.failures.items()
    }
    for kind in ("keep-alive", "new connection"):
        assert outcome.tally.ok[kind] >= 300, f"only {outcome.tally.ok[kind]} {kind} requests ran"
    assert outcome.undrained == 0
    assert outcome.served_at_end == outcome.pool_at_end


# --- the health endpoint the controller probes ---------------------------------------------------


def test_health_answers_whether_the_lb_can_serve(new_lb) -> None:
    servers = [web_server(f"127.0.1.{71 + i}") for i in range(2)]
    try:
        lb = new_lb()
        apply_ok(lb, servers)
        assert get(lb, "/health")[0] == 200

        for server in servers:
            server.healthy = False
        # HAProxy's checks: first failure within `inter` (2 s), then `fastinter` until `fall`.
        _wait_for_status(lb, 503, timeout=10)
        assert get(lb, "/")[0] == 503

        servers[0].healthy = True
        _wait_for_status(lb, 200, timeout=10)
    finally:
        for server in servers:
            server.stop()


def _wait_for_status(lb: LocalHaproxy, status: int, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        seen = get(lb, "/health")[0]
        if seen == status:
            return
        time.sleep(0.1)
    raise AssertionError(f"/health answered {seen}, expected {status} within {timeout}s")


# --- the same script, as SSM and the boot script run it ------------------------------------------


def _run_script(
    lb: LocalHaproxy, script: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_document_script_applies_a_list_on_an_old_agent(new_lb, webs, tmp_path) -> None:
    # SSM Agent < 3.3.2746.0: no SSM_* variables, the references in the text substituted.
    lb = new_lb()
    text, checksum = backend_list(webs[1:3])
    lines = render.document()["mainSteps"][0]["inputs"]["runCommand"]
    script = tmp_path / "_script.sh"
    substituted = "\n".join(lines).replace("{{Backends}}", text).replace("{{Checksum}}", checksum)
    script.write_text(substituted + "\n")
    env = {k: v for k, v in lb.environment().items() if not k.startswith("SSM_")}

    result = _run_script(lb, script, env)

    assert result.returncode == 0, result.stdout + result.stderr
    wait_until_served_by(lb, entries(webs[1:3]))


def test_document_script_applies_a_list_from_environment_variables(new_lb, webs, tmp_path) -> None:
    # SSM Agent with interpolationType ENV_VAR: the values arrive as SSM_Backends / SSM_Checksum.
    lb = new_lb()
    text, checksum = backend_list(webs[:3])
    lines = render.document()["mainSteps"][0]["inputs"]["runCommand"]
    script = tmp_path / "_script.sh"
    script.write_text("\n".join(lines) + "\n")
    env = lb.environment() | {"SSM_Backends": text, "SSM_Checksum": checksum}

    result = _run_script(lb, script, env)

    assert result.returncode == 0, result.stdout + result.stderr
    wait_until_served_by(lb, entries(webs[:3]))


def test_user_data_installs_a_working_apply_script(new_lb, webs, tmp_path) -> None:
    # The boot script embeds apply-backends.sh without its comments: that copy must work too.
    lb = new_lb()
    user_data = render.user_data()
    embedded = re.search(
        r"<<'LBSIDE_EOF_APPLY_BACKENDS_SH'\n(.*?)\nLBSIDE_EOF_APPLY_BACKENDS_SH\n", user_data, re.S
    )
    assert embedded is not None
    script = tmp_path / "apply-backends.sh"
    script.write_text(embedded.group(1) + "\n")
    text, checksum = backend_list(webs[2:])
    env = lb.environment() | {"SSM_Backends": text, "SSM_Checksum": checksum}

    result = _run_script(lb, script, env)

    assert result.returncode == 0, result.stdout + result.stderr
    wait_until_served_by(lb, entries(webs[2:]))
    rejected = _run_script(
        lb, script, env | {"SSM_Backends": "$(id)", "SSM_Checksum": sha256("$(id)")}
    )
    assert rejected.returncode == 2


def test_scripts_are_shellcheck_clean(tmp_path) -> None:
    shellcheck = shutil.which("shellcheck")
    assert shellcheck, "shellcheck is not installed (make system installs Debian's shellcheck)"
    # As run: the scripts of infra/ (haproxy-control.sh sourced), and what the LBs receive (each
    # document's one file, the user data), with haproxy-control.sh inlined.
    rendered = []
    for name, document in (
        ("update-backends", render.document()),
        ("update-config", render.update_config_document()),
    ):
        path = tmp_path / f"{name}-runCommand.sh"
        path.write_text("\n".join(document["mainSteps"][0]["inputs"]["runCommand"]) + "\n")
        rendered.append(path)
    user_data = tmp_path / "user-data-rendered.sh"
    user_data.write_text(render.user_data())
    scripts = [*sorted(INFRA.rglob("*.sh")), *rendered, user_data]
    assert len(scripts) >= 7

    result = subprocess.run(
        [shellcheck, "--external-sources", *map(str, scripts)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


# --- reloads under load -------------------------------------------------------------------------


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ok = 0
        self.retried = 0
        self.failures: list[str] = []

    def success(self, *, retried: bool = False) -> None:
        with self.lock:
            self.ok += 1
            self.retried += retried

    def failure(self, what: str) -> None:
        with self.lock:
            self.failures.append(what)


def _answer(connection: http.client.HTTPConnection, known: set[str]) -> str | None:
    """None when the request succeeded, else what went wrong."""
    connection.request("GET", "/")
    response = connection.getresponse()
    body = response.read().decode()
    if response.status != 200:
        return f"HTTP {response.status}"
    if body not in known:
        return f"unknown body {body!r}"
    return None


def _new_connection_client(
    lb: LocalHaproxy, known: set[str], stop: threading.Event, tally: Tally
) -> None:
    # A new connection per request: any failure is a dropped request.
    while not stop.is_set():
        connection = http.client.HTTPConnection(lb.bind_address, lb.port, timeout=15)
        try:
            problem = _answer(connection, known)
        except (OSError, http.client.HTTPException) as exc:
            problem = f"{type(exc).__name__}: {exc}"
        finally:
            connection.close()
        if problem is None:
            tally.success()
        else:
            tally.failure(problem)


def _keep_alive_client(
    lb: LocalHaproxy, known: set[str], stop: threading.Event, tally: Tally
) -> None:
    # A reused connection may be closed by the worker a reload retires: like any HTTP client, an
    # idempotent GET that fails on a reused connection is retried once on a new one.
    connection = http.client.HTTPConnection(lb.bind_address, lb.port, timeout=15)
    used = False
    try:
        while not stop.is_set():
            try:
                problem = _answer(connection, known)
            except (OSError, http.client.HTTPException) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if problem is not None and used:
                connection.close()
                connection = http.client.HTTPConnection(lb.bind_address, lb.port, timeout=15)
                try:
                    retry = _answer(connection, known)
                except (OSError, http.client.HTTPException) as exc:
                    retry = f"{type(exc).__name__}: {exc}"
                if retry is None:
                    tally.success(retried=True)
                else:
                    tally.failure(f"{problem}, then on retry {retry}")
                used = retry is None
                continue
            if problem is None:
                tally.success()
                used = True
            else:
                tally.failure(problem)
                connection.close()
                connection = http.client.HTTPConnection(lb.bind_address, lb.port, timeout=15)
                used = False
    finally:
        connection.close()


def test_reloads_that_change_the_servers_drop_no_request(new_lb, webs) -> None:
    # The fallback when the slots run out, forced for every change (LBSIDE_APPLY_METHOD=reload).
    lb = new_lb()
    apply_ok(lb, webs)
    # Each apply adds and removes servers; checks stay on (haproxy.cfg: default-server check).
    sequence = [webs[:3], webs[1:], webs[:2], webs[2:]]
    known = entries(webs)
    stop = threading.Event()
    tally = Tally()
    clients = [
        *(
            threading.Thread(target=_new_connection_client, args=(lb, known, stop, tally))
            for _ in range(8)
        ),
        *(
            threading.Thread(target=_keep_alive_client, args=(lb, known, stop, tally))
            for _ in range(4)
        ),
    ]
    for client in clients:
        client.start()
    try:
        time.sleep(0.5)
        for i in range(20):
            servers = sequence[i % len(sequence)]
            result = lb.apply(*backend_list(servers), extra_env={"LBSIDE_APPLY_METHOD": "reload"})
            assert result.returncode == 0, result.stdout + result.stderr
            assert "HAProxy reloaded" in result.stdout
            time.sleep(0.25)
        time.sleep(0.5)
    finally:
        stop.set()
        for client in clients:
            client.join(timeout=30)

    print(
        f"reloads: 20, requests: {tally.ok}, retried on a reused connection: "
        f"{tally.retried}, failed: {len(tally.failures)}"
    )
    assert not any(client.is_alive() for client in clients)
    assert tally.failures == [], Counter(tally.failures).most_common(5)
    assert tally.ok >= 500, f"only {tally.ok} requests ran: the test measured too little"
    wait_until_served_by(lb, entries(sequence[19 % len(sequence)]))
