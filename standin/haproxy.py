"""A real HAProxy on a loopback address, run the way an lb-failover load balancer runs it.

It uses the project's own `infra/lb/haproxy.cfg` and applies lists with the real
`infra/lb/apply-backends.sh`, so the tests and the demo exercise exactly what an EC2 load
balancer runs, the Runtime API on the admin socket included; only the bind address, the paths
and the reload signal differ (master-worker mode, SIGUSR2 to the master, as systemd's reload does).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

INFRA_LB = Path(__file__).resolve().parent.parent / "infra" / "lb"
HAPROXY_CONFIG = INFRA_LB / "haproxy.cfg"
APPLY_SCRIPT = INFRA_LB / "apply-backends.sh"

# What HAProxy loads before any list has been applied: a backend with no server, so `/health`
# answers 503 and the LB counts as unable to serve.
EMPTY_BACKENDS = "# lbf-checksum none\nbackend web\n"


class HaproxyError(RuntimeError):
    pass


def haproxy_binary() -> str | None:
    """The haproxy on PATH, or in /usr/sbin (Debian installs it there, off a user's PATH)."""
    return shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")


class LocalHaproxy:
    """One HAProxy master (and its worker) serving `bind_address:port`, configured in `workdir`."""

    def __init__(
        self,
        workdir: Path,
        bind_address: str,
        port: int,
        *,
        config: Path = HAPROXY_CONFIG,
        public_address: str | None = None,
    ) -> None:
        """`config` is the main configuration to run (a benchmark compares it with a variant).

        `public_address`: the instance's public address on the stand-in (standin/aws.LocalAws
        with `public_addresses`), where clients and Route 53's checkers reach it; the frontend
        listens on both, as an EC2 LB bound to `:80` does. infra/lb/update-config.sh reads one
        address from LBSIDE_BIND, so it is not run against an LB with both.
        """
        self.source_config = config
        self.workdir = workdir
        self.bind_address = bind_address
        self.public_address = public_address
        self.port = port
        self.config_path = workdir / "haproxy.cfg"
        self.backends_path = workdir / "backends.cfg"
        self.pidfile = workdir / "haproxy.pid"
        self.log_path = workdir / "haproxy.log"
        # A Unix socket path holds at most 107 bytes; a test's tmp_path can be longer.
        self._socket_dir = Path(tempfile.mkdtemp(prefix="lbf-haproxy-"))
        self.admin_socket = self._socket_dir / "admin.sock"
        self._process: subprocess.Popen[bytes] | None = None
        binary = haproxy_binary()
        if binary is None:
            raise HaproxyError("haproxy is not installed (make system installs Debian's haproxy)")
        self.binary = binary

    @property
    def pid(self) -> int:
        """The master's pid: it stays the same across reloads. A script that found the master
        gone starts a new one itself (daemonised, in the pidfile): that one then."""
        if self._process is None:
            raise HaproxyError("HAProxy is not running")
        restarted = self._pidfile_master()
        return restarted if restarted is not None else self._process.pid

    def _pidfile_master(self) -> int | None:
        """The live master the pidfile names, when it is not the one this object started."""
        try:
            pid = int(self.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        if self._process is not None and pid == self._process.pid:
            return None
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError):
            return None
        if fields[0] == "Z" or str(self.config_path).encode() not in command:
            return None
        return pid

    @property
    def url(self) -> str:
        return f"http://{self.bind_address}:{self.port}"

    def environment(self) -> dict[str, str]:
        """What HAProxy and apply-backends.sh see: this instance's paths and address."""
        env = dict(os.environ)
        env.update(
            LBSIDE_LOCAL="1",
            # HAProxy's bind takes a comma-separated list of addresses.
            LBSIDE_BIND=",".join(
                f"{address}:{self.port}"
                for address in (self.bind_address, self.public_address)
                if address is not None
            ),
            LBSIDE_HAPROXY_CONFIG=str(self.config_path),
            LBSIDE_BACKENDS_FILE=str(self.backends_path),
            LBSIDE_HAPROXY_PIDFILE=str(self.pidfile),
            LBSIDE_HAPROXY_BIN=self.binary,
            LBSIDE_ADMIN_SOCKET=str(self.admin_socket),
            LBSIDE_HAPROXY_SOCKET=str(self.admin_socket),
            # Everything local runs on loopback, web servers included: only the stand-in lets
            # apply-backends.sh take loopback backends (never a deployed LB, nor a parameter).
            LBSIDE_ALLOW_LOOPBACK="1",
        )
        return env

    def start(self, *, timeout: float = 10.0) -> None:
        if self._process is not None:
            raise HaproxyError("HAProxy is already running")
        self.workdir.mkdir(parents=True, exist_ok=True)
        # A new socket path per start: a process of the previous start that is still exiting
        # unlinks its own socket path, which must not be this one's.
        shutil.rmtree(self._socket_dir, ignore_errors=True)
        self._socket_dir = Path(tempfile.mkdtemp(prefix="lbf-haproxy-"))
        self.admin_socket = self._socket_dir / "admin.sock"
        shutil.copyfile(self.source_config, self.config_path)
        if not self.backends_path.exists():
            self.backends_path.write_text(EMPTY_BACKENDS)
        command = [
            self.binary,
            "-W",
            "-f",
            str(self.config_path),
            "-f",
            str(self.backends_path),
            "-p",
            str(self.pidfile),
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                command,
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                raise HaproxyError(f"HAProxy exited at start; see {self.log_path}")
            if self.pidfile.exists() and self.admin_socket.exists() and self._accepts_connections():
                return
            time.sleep(0.05)
        self.stop()
        raise HaproxyError(f"HAProxy did not listen on {self.url} within {timeout}s")

    def _accepts_connections(self) -> bool:
        try:
            with socket.create_connection((self.bind_address, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def apply(
        self, backends: str, checksum: str, *, extra_env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run the real apply script against this HAProxy, as the SSM document would.

        `extra_env` overrides the script's environment (tests use it to make a step fail).
        """
        env = self.environment()
        env.update(extra_env or {})
        env["SSM_Backends"] = backends
        env["SSM_Checksum"] = checksum
        return subprocess.run(
            ["bash", str(APPLY_SCRIPT)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def runtime(self, command: str, *, timeout: float = 10.0) -> str:
        """One Runtime API command on the admin socket, as apply-backends.sh sends it."""
        with socket.socket(socket.AF_UNIX) as connection:
            connection.settimeout(timeout)
            connection.connect(str(self.admin_socket))
            connection.sendall(command.encode() + b"\n")
            chunks = []
            while chunk := connection.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def serving(self) -> set[str]:
        """The entries the running HAProxy serves: its servers not in maintenance or drain."""
        served = set()
        columns: list[str] = []
        for line in self.runtime("show servers state web").splitlines():
            fields = line.split()
            if fields[:1] == ["#"]:
                columns = fields[1:]
            elif columns and len(fields) == len(columns):
                server = dict(zip(columns, fields, strict=True))
                if int(server["srv_admin_state"]) & 0x3B == 0:
                    address = server["srv_addr"]
                    host = f"[{address}]" if ":" in address else address
                    served.add(f"{host}:{server['srv_port']}")
        return served

    def applied_checksum(self) -> str | None:
        """The checksum recorded in the backends file, None before any list was applied."""
        try:
            first_line = self.backends_path.read_text().split("\n", 1)[0]
        except FileNotFoundError:
            return None
        prefix = "# lbf-checksum "
        value = first_line.removeprefix(prefix) if first_line.startswith(prefix) else None
        return None if value in (None, "none") else value

    def stop(self, *, timeout: float = 10.0) -> None:
        restarted = self._pidfile_master()
        process, self._process = self._process, None
        if process is None:
            return
        if restarted is not None:
            # Started by a script after this object's master exited: its own session.
            os.killpg(restarted, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self._alive(restarted) and time.monotonic() < deadline:
                time.sleep(0.05)
            if self._alive(restarted):
                os.killpg(restarted, signal.SIGKILL)
        # SIGTERM to the master stops it and its workers at once (a hard stop: this is teardown).
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=timeout)
        shutil.rmtree(self._socket_dir, ignore_errors=True)

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (OSError, IndexError):
            return False

    def __enter__(self) -> LocalHaproxy:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
