"""`make demo`: the whole story on one machine, every address on loopback.

AWS is moto's server; two load balancers are real HAProxy processes running the project's own
configuration and apply script; the web servers are real HTTP servers. The controller is the very
job the Lambda runs (`chalicelib.jobs.reconcile`), scheduled back to back with short intervals.
The prober function (app.py's `probe_private`) runs as the separate function it is, in a process
of its own behind Lambda's Invoke API (standin/local_lambda.py): the stand-in's targets are all
private (loopback) addresses, so every round's probes go through it, as they would inside a VPC.
Each step checks its outcome with real requests to the address the active record resolves to, and
the demo exits non-zero if any outcome does not hold.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests

from chalicelib import jobs, render
from chalicelib.clock import SystemClock
from chalicelib.config import Settings
from chalicelib.observe import observe
from chalicelib.services import aws_services
from standin.aws import LocalAws, local_aws
from standin.haproxy import HaproxyError, LocalHaproxy
from standin.local_lambda import LocalLambda, local_prober_function, probed_lines
from standin.ssm_agent import LocalSsmAgent
from standin.web import LocalWebServer

DOMAIN = "demo.example.com"
CLUSTER = "demo"
LB_PORT = 8080
WEB_PORT = 8081
# Every target goes through the prober function: its invoke (TIMEOUT + 1 s) fits one INTERVAL
# (SPEC "Time"), and the pool is probed every round, as the LBs are.
INTERVAL, TIMEOUT, ROUNDS, RISE, FALL = 1.5, 0.5, 5, 2, 2
STEP_DEADLINE = 45.0
_CONTROLLER_LOGS = (
    "chalicelib.executor",
    "chalicelib.jobs",
    "chalicelib.report",
)  # a step whose outcome does not hold by then has failed


class StepFailed(Exception):
    pass


@dataclass
class Timeline:
    started: float = field(default_factory=time.monotonic)
    lines: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def add(self, event: str, detail: str = "") -> None:
        line = f"{self.elapsed():7.2f}s  {event:<10} {detail}"
        with self.lock:
            self.lines.append(line)
        print(line, flush=True)


class _ChangeLog(logging.Handler):
    """Puts every change the controller applies on the timeline, as it happens."""

    def __init__(self, timeline: Timeline, changes: list[tuple[float, str]]) -> None:
        super().__init__(level=logging.INFO)
        self.timeline = timeline
        self.changes = changes

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith(("applied: ", "failed: ")):
            self.changes.append((time.monotonic(), message))
            self.timeline.add("controller", message)
        elif message.startswith("notice: "):
            self.timeline.add("notice", message.removeprefix("notice: "))


@dataclass
class Failover:
    what: str
    detection: float
    total: float


def _alive(haproxy: LocalHaproxy) -> bool:
    try:
        haproxy.pid  # noqa: B018 - raises when the process was stopped
    except HaproxyError:
        return False
    return True


class Demo:
    def __init__(
        self,
        aws: LocalAws,
        workdir: Path,
        timeline: Timeline,
        prober: LocalLambda,
        *,
        schedule: tuple[float, float, int] = (INTERVAL, TIMEOUT, ROUNDS),
    ) -> None:
        self.aws = aws
        self.schedule = schedule  # LBF_PROBE_INTERVAL, LBF_PROBE_TIMEOUT, LBF_PROBE_ROUNDS
        self.prober = prober
        self.invocations = 0
        self.rounds = 0  # the scheduled runs' probe rounds: one invocation of the prober each
        self._last_probed: tuple[int, tuple[str, ...]] | None = None
        self._prober_lock = threading.Lock()
        self.workdir = workdir
        self.timeline = timeline
        self.lbs: dict[str, tuple[str, LocalHaproxy]] = {}  # name -> (instance id, haproxy)
        self.webs: dict[str, tuple[str, LocalWebServer]] = {}  # address -> (id, server)
        self.changes: list[tuple[float, str]] = []
        self.failovers: list[Failover] = []
        self.controller_env = self.environment()
        self.settings = Settings.from_env(self.controller_env)
        self.agent = LocalSsmAgent(self.settings.ssm_document)
        self._stop = threading.Event()
        self._controller: threading.Thread | None = None
        self.controller_errors: list[str] = []
        self._log_handler: logging.Handler | None = None
        self._saved_logs: list[tuple[logging.Logger, int, bool]] = []

    def environment(self) -> dict[str, str]:
        topic = self.aws.client("sns").create_topic(Name="lb-failover-demo")["TopicArn"]
        interval, timeout, rounds = self.schedule
        return self.aws.controller_environment(
            cluster=CLUSTER,
            domain=DOMAIN,
            lb_port=LB_PORT,
            web_port=WEB_PORT,
            LBF_TTL="5",
            LBF_PROBE_INTERVAL=str(interval),
            LBF_PROBE_TIMEOUT=str(timeout),
            LBF_PROBE_ROUNDS=str(rounds),
            LBF_POOL_INTERVAL=str(interval),
            LBF_RISE=str(RISE),
            LBF_FALL=str(FALL),
            LBF_SNS_TOPIC_ARN=topic,
            LBF_PROBER_FUNCTION=self.prober.function,
        )

    # --- the world -----------------------------------------------------------------------------

    def add_web(self, address: str) -> None:
        tags = {"lbf:cluster": CLUSTER, "lbf:role": "web"}
        instance_id = self.aws.launch(address, tags)
        server = LocalWebServer(address, WEB_PORT).start()
        self.webs[address] = (instance_id, server)
        self.timeline.add("world", f"web {address} started ({instance_id})")

    def add_lb(self, name: str, address: str, *, boot_pull: bool = False) -> None:
        tags = {"lbf:cluster": CLUSTER, "lbf:role": "lb", "lbf:name": name}
        instance_id = self.aws.launch(address, tags)
        haproxy = LocalHaproxy(self.workdir / f"{name}-{address}", address, LB_PORT)
        haproxy.start()
        if boot_pull:
            # What infra/lb/user-data.sh does at boot: pull the current list and apply it.
            current = self.aws.parameter(self.settings.backends_parameter_name)
            if current:
                checksum = hashlib.sha256(current.encode()).hexdigest()
                result = haproxy.apply(current, checksum)
                if result.returncode != 0:
                    raise StepFailed(f"boot pull failed on {name}: {result.stdout}{result.stderr}")

        def apply(backends: str, checksum: str) -> tuple[bool, str]:
            result = haproxy.apply(backends, checksum)
            return result.returncode == 0, result.stdout + result.stderr

        self.agent.register(instance_id, apply)
        self.lbs[name] = (instance_id, haproxy)
        self.timeline.add("world", f"LB {name} HAProxy started on {address} ({instance_id})")

    # --- the controller ------------------------------------------------------------------------

    def start_controller(self) -> None:
        self.agent.install().start()
        self._log_handler = _ChangeLog(self.timeline, self.changes)
        for name in _CONTROLLER_LOGS:
            controller_log = logging.getLogger(name)
            self._saved_logs.append(
                (controller_log, controller_log.level, controller_log.propagate)
            )
            controller_log.addHandler(self._log_handler)
            controller_log.setLevel(logging.INFO)
            controller_log.propagate = False
        self._controller = threading.Thread(target=self._schedule, daemon=True)
        self._controller.start()
        threading.Thread(target=self._watch_prober, daemon=True).start()

    def _watch_prober(self) -> None:
        while not self._stop.wait(0.2):
            self.show_prober()

    def _schedule(self) -> None:
        """Invocations back to back, as a 1-minute schedule is to 6 rounds of 10 s."""
        period = self.settings.probe_rounds * self.settings.probe_interval
        services = aws_services(self.settings)
        start = time.monotonic()
        number = 0
        while not self._stop.is_set():
            report = jobs.reconcile(self.settings, services, SystemClock())
            self.rounds += report.rounds
            if not report.ok:
                self.controller_errors += report.errors
            number += 1
            wait = start + number * period - time.monotonic()
            if wait > 0:
                self._stop.wait(wait)

    def show_prober(self) -> None:
        """What the prober function logged it probed, on the timeline when that changes."""
        with self._prober_lock:
            self._show_prober()

    def _show_prober(self) -> None:
        for line in probed_lines(self.prober.logs):
            self.invocations += 1
            seen = (int(line.get("targets", 0)), tuple(line.get("failed_first", ())))
            if seen == self._last_probed:
                continue
            self._last_probed = seen
            failed = ", ".join(self.name_of(key) for key in seen[1]) or "none"
            self.timeline.add(
                "prober fn",
                f"{self.prober.function} probed {seen[0]} private targets from inside the "
                f'"VPC"; failed: {failed}',
            )

    def name_of(self, instance_id: str) -> str:
        for name, (lb_id, _) in self.lbs.items():
            if lb_id == instance_id:
                return name
        for address, (web_id, _) in self.webs.items():
            if web_id == instance_id:
                return f"web {address}"
        return instance_id

    def instance_event(self, instance_id: str) -> None:
        """What EventBridge does when an instance changes state: the event-triggered run, which
        may overlap a scheduled one (compare-and-swap keeps that safe)."""
        self.timeline.add("event", f"EC2 state-change event for {instance_id}")
        report = jobs.on_instance_change(
            self.settings, aws_services(self.settings), SystemClock(), instance_id
        )
        if not report.ok:
            self.controller_errors += report.errors

    def stop(self) -> None:
        self._stop.set()
        if self._controller is not None:
            self._controller.join(timeout=30)
        self.agent.uninstall()
        # Leave the process's logging as it was: the test suite runs on after the demo.
        for controller_log, level, propagate in self._saved_logs:
            if self._log_handler is not None:
                controller_log.removeHandler(self._log_handler)
            controller_log.setLevel(level)
            controller_log.propagate = propagate
        self._saved_logs.clear()
        for _, haproxy in self.lbs.values():
            haproxy.stop()
        for _, server in self.webs.values():
            server.stop()

    # --- checks through real requests ----------------------------------------------------------

    def active_address(self) -> str | None:
        values = self.aws.a_record(self.settings.active_record_name)
        return values[0] if len(values) == 1 else None

    def served_by_active(self, tries: int = 8) -> set[str]:
        """Which web servers answer through the LB the active record resolves to."""
        address = self.active_address()
        if address is None:
            return set()
        seen: set[str] = set()
        for _ in range(tries):
            try:
                response = requests.get(f"http://{address}:{LB_PORT}/", timeout=1)
            except requests.RequestException:
                continue
            if response.status_code == 200:
                seen.add(response.text.strip().removeprefix("web ").split(":")[0])
        return seen

    def backend_list(self) -> str:
        return " ".join(
            f"{address}:{WEB_PORT}"
            for address in sorted(self.healthy_webs(), key=lambda a: tuple(map(int, a.split("."))))
        )

    def healthy_webs(self) -> list[str]:
        return [a for a, (_, server) in self.webs.items() if server.running]

    def lbs_serving(self, expected: str) -> list[str]:
        """LBs whose HAProxy applied the expected list (its checksum is on file)."""
        checksum = hashlib.sha256(expected.encode()).hexdigest()
        return [
            name
            for name, (_, haproxy) in self.lbs.items()
            if haproxy.applied_checksum() == checksum
        ]

    def wait_for(self, what: str, condition: Callable[[], bool]) -> float:
        deadline = time.monotonic() + STEP_DEADLINE
        while time.monotonic() < deadline:
            if condition():
                return time.monotonic()
            time.sleep(0.1)
        raise StepFailed(f"did not hold within {STEP_DEADLINE:.0f} s: {what}")

    # --- the scenario --------------------------------------------------------------------------

    def step_start(self) -> None:
        for address in ("127.0.1.21", "127.0.1.22", "127.0.1.23"):
            self.add_web(address)
        self.add_lb("lb1", "127.0.1.11")
        self.add_lb("lb2", "127.0.1.12")
        self.start_controller()
        wanted = self.backend_list()
        self.wait_for("the active record exists", lambda: self.active_address() is not None)
        self.wait_for(
            "both LBs serve all three web servers", lambda: len(self.lbs_serving(wanted)) == 2
        )
        self.wait_for(
            "clients reach all three web servers through the active record",
            lambda: self.served_by_active() == set(self.healthy_webs()),
        )
        self.check("start", f"lb -> {self.active_address()}, serving {wanted}")
        if self.invocations == 0:
            raise StepFailed("the prober function was never invoked")

    def step_kill_active(self) -> None:
        before = self.active_address()
        name = next(n for n, (_, h) in self.lbs.items() if h.bind_address == before)
        self.lbs[name][1].stop()
        killed = time.monotonic()
        self.timeline.add("world", f"killed HAProxy of active LB {name} ({before})")
        moved = self.wait_for(
            "the active record leaves the dead LB",
            lambda: self.active_address() not in (None, before),
        )
        served = self.wait_for(
            "clients are served through the new active LB",
            lambda: self.served_by_active() == set(self.healthy_webs()),
        )
        self.failovers.append(Failover(f"kill {name}", moved - killed, served - killed))
        self.check("failover", f"lb -> {self.active_address()}")

    def step_stop_web(self) -> None:
        address = "127.0.1.23"
        self.webs[address][1].stop()
        self.timeline.add("world", f"stopped web server {address}")
        wanted = self.backend_list()
        live = [n for n, (_, h) in self.lbs.items() if _alive(h)]
        self.wait_for(
            f"every live LB ({', '.join(live)}) serves the shrunk list",
            lambda: set(live) <= set(self.lbs_serving(wanted)),
        )
        self.wait_for(
            "clients no longer reach the stopped web server",
            lambda: self.served_by_active() == set(self.healthy_webs()),
        )
        self.check("pool", f"list is now {wanted}")

    def step_add_web(self) -> None:
        self.add_web("127.0.1.24")
        wanted = self.backend_list()
        live = [n for n, (_, h) in self.lbs.items() if _alive(h)]
        self.wait_for(
            "the new web server joins every live LB's list after RISE probes",
            lambda: set(live) <= set(self.lbs_serving(wanted)),
        )
        self.wait_for(
            "clients reach the new web server",
            lambda: "127.0.1.24" in self.served_by_active(),
        )
        self.check("pool", f"list is now {wanted}")

    def step_replace_lb(self) -> None:
        dead = next(n for n, (_, h) in self.lbs.items() if not _alive(h))
        old_id = self.lbs[dead][0]
        self.aws.set_state(old_id, "terminated")
        self.agent.forget(old_id)
        self.timeline.add("world", f"terminated {dead} ({old_id}); starting a new {dead}")
        self.add_lb(dead, "127.0.1.13", boot_pull=True)
        self.instance_event(self.lbs[dead][0])
        record = f"{dead}.{DOMAIN}"
        self.wait_for(
            f"{record} follows the new address",
            lambda: self.aws.a_record(record) == ("127.0.1.13",),
        )
        wanted = self.backend_list()
        self.wait_for("both LBs serve the current list", lambda: len(self.lbs_serving(wanted)) == 2)
        self.check("replace", f"{record} -> 127.0.1.13")

    def step_all_healthy(self) -> None:
        def healthy() -> bool:
            lb_tags = [self.aws.tags(i) for i, _ in self.lbs.values()]
            web_tags = [self.aws.tags(i) for i, server in self.webs.values() if server.running]
            return all(t.get("lbf:health") == "healthy" for t in lb_tags + web_tags)

        self.wait_for("every LB and running web server is healthy", healthy)
        self.wait_for(
            "clients are served by every running web server",
            lambda: self.served_by_active() == set(self.healthy_webs()),
        )
        self.check("healthy", "all LBs and web servers healthy")

    def status(self) -> str:
        world = observe(self.settings, aws_services(self.settings), now=time.time())
        assert world is not None
        return render.status_text(world, self.settings)

    def check(self, event: str, detail: str) -> None:
        if self.controller_errors:
            raise StepFailed("the controller reported errors: " + "; ".join(self.controller_errors))
        self.timeline.add(event, "OK " + detail)


def summary(failovers: list[Failover], rounds: int, invocations: int) -> str:
    bound = (FALL + 1) * INTERVAL + TIMEOUT
    lines = [
        "",
        f"failover bound (FALL + 1) x INTERVAL + TIMEOUT = {bound:.1f} s"
        f" (INTERVAL {INTERVAL:g} s, TIMEOUT {TIMEOUT:g} s, FALL {FALL}), record TTL 5 s",
        f"{'failover':<14}{'detection':>10}{'total':>8}{'bound':>8}  held",
    ]
    for f in failovers:
        held = "yes" if f.detection <= bound else "NO"
        lines.append(f"{f.what:<14}{f.detection:>9.2f}s{f.total:>7.2f}s{bound:>7.1f}s  {held}")
    lines.append("detection: kill -> active record changed; total: kill -> clients served anew")
    lines.append(
        f"both functions at work: the controller's scheduled runs probed {rounds} rounds, and "
        f"the prober function was invoked {invocations} times, once per round"
    )
    return "\n".join(lines)


def run(*, short: bool = False) -> int:
    timeline = Timeline()
    steps = ["step_start", "step_kill_active", "step_stop_web"]
    if not short:
        steps += ["step_add_web", "step_replace_lb", "step_all_healthy"]
    with (
        tempfile.TemporaryDirectory(prefix="lbf-demo-") as workdir,
        local_aws(DOMAIN) as aws,
        local_prober_function() as prober,
    ):
        demo = Demo(aws, Path(workdir), timeline, prober)
        timeline.add("setup", f"moto on {aws.endpoint}, zone {DOMAIN}, VPC 127.0.0.0/16")
        timeline.add("setup", f"prober function {prober.function} on {prober.endpoint}")
        try:
            for step in steps:
                getattr(demo, step)()
        except StepFailed as exc:
            timeline.add("FAILED", str(exc))
            return 1
        finally:
            demo.stop()
        demo.show_prober()
        print(summary(demo.failovers, demo.rounds, demo.invocations))
        print("\nwhat `python -m chalicelib status` shows now:\n")
        print(demo.status())
    print(f"\nall {len(steps)} steps held in {timeline.elapsed():.1f} s")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--short", action="store_true", help="only the first three steps")
    args = parser.parse_args()
    sys.exit(run(short=args.short))


if __name__ == "__main__":
    main()
