"""`make demo`: the whole story on one machine, every address on loopback.

AWS is moto's server; two load balancers are real HAProxy processes running the project's own
configuration and apply script; the web servers are real HTTP servers. The controller is the very
job the Lambda runs (`chalicelib.jobs.reconcile`), scheduled back to back with short intervals.
The prober function (app.py's `probe_private`) runs as the separate function it is, in a process
of its own behind Lambda's Invoke API (standin/local_lambda.py): this cluster's LBs and web
servers are reached at their private (loopback) addresses, so every round's probes go through
it, as they would inside a VPC.
Clients resolve the active name as real clients do: through Route 53's data plane on loopback
(standin/route53_dns.py, the stand-in's model of it), with their answers cached for the record's
TTL. Each step checks its outcome with real requests to the address they resolve, and the demo
exits non-zero if any outcome does not hold.

Its last part (standin/demo_dataplane.py) is the case the plain design cannot survive: a second
cluster with the active name as a Route 53 failover pair, whose controller is stopped before its
active LB dies.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import requests

from chalicelib import commands, jobs, render
from chalicelib.clock import SystemClock
from chalicelib.config import Settings
from chalicelib.core.model import AddressKind
from chalicelib.services import aws_services
from standin.aws import LocalAws, local_aws
from standin.haproxy import HaproxyError, LocalHaproxy
from standin.local_lambda import LocalLambda, local_prober_function, probed_lines
from standin.moto_fixes import public_address_of
from standin.route53_dns import CachingResolver, ResolveError, Route53DataPlane, local_route53
from standin.ssm_agent import LocalSsmAgent
from standin.web import LocalWebServer

DOMAIN = "demo.example.com"
CLUSTER = "demo"
LB_PORT = 8080
WEB_PORT = 8081
# The demo's own fast schedule (the defaults are 2 s rounds and 1.5 s probes): explicit here, so
# that a change of the defaults leaves the demo's timing as it is. Targets go through the prober
# function: its invoke (TIMEOUT + 1 s) fits one INTERVAL (SPEC "Time"), and the pool is probed
# every round, as the LBs are.
INTERVAL, TIMEOUT, ROUNDS, RISE, FALL = 1.5, 0.5, 5, 2, 2
TTL = 5
# The Route 53 stand-in's model: its checkers' intervals and timeouts x TIME_FACTOR (a 10 s check
# every second), and a record change reaching the answers PROPAGATION seconds after it is made
# (Route 53 reports changes INSYNC within about a minute; the demo does not wait that long).
TIME_FACTOR, PROPAGATION = 0.1, 2.0
STEP_DEADLINE = 45.0  # a step whose outcome does not hold by then has failed
_CONTROLLER_LOGS = (
    "chalicelib.executor",
    "chalicelib.jobs",
    "chalicelib.report",
)


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
    """One cluster of the stand-in's world, its controller, and clients of its active name.

    `clients` resolve the active name through the Route 53 stand-in (None: a world without
    clients, as the sandbox's). `prober` is the prober function (None: every probe in-process).
    `extra` are settings of this cluster's own, by full variable name.
    """

    def __init__(
        self,
        aws: LocalAws,
        workdir: Path,
        timeline: Timeline,
        prober: LocalLambda | None,
        *,
        schedule: tuple[float, float, int] = (INTERVAL, TIMEOUT, ROUNDS),
        clients: CachingResolver | None = None,
        cluster: str = CLUSTER,
        domain: str = DOMAIN,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        self.aws = aws
        self.schedule = schedule  # LBF_PROBE_INTERVAL, LBF_PROBE_TIMEOUT, LBF_PROBE_ROUNDS
        self.prober = prober
        self.clients = clients
        self.cluster = cluster
        self.domain = domain
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
        self.controller_env = self.environment(extra or {})
        self.settings = Settings.from_env(self.controller_env)
        self.agent = LocalSsmAgent(self.settings.ssm_document)
        self._stop = threading.Event()
        self._controller: threading.Thread | None = None
        self.controller_errors: list[str] = []
        self._log_handler: logging.Handler | None = None
        self._saved_logs: list[tuple[logging.Logger, int, bool]] = []

    def environment(self, extra: Mapping[str, str]) -> dict[str, str]:
        topic = self.aws.client("sns").create_topic(Name=f"lb-failover-{self.cluster}")
        interval, timeout, rounds = self.schedule
        settings = {
            # The prober function's part: private LBs, probed from inside the "VPC".
            "LBF_LB_ADDRESS": "private",
            "LBF_TTL": str(TTL),
            "LBF_PROBE_INTERVAL": str(interval),
            "LBF_PROBE_TIMEOUT": str(timeout),
            "LBF_PROBE_ROUNDS": str(rounds),
            "LBF_POOL_INTERVAL": str(interval),
            "LBF_RISE": str(RISE),
            "LBF_FALL": str(FALL),
            "LBF_SNS_TOPIC_ARN": topic["TopicArn"],
        }
        if self.prober is not None:
            settings["LBF_PROBER_FUNCTION"] = self.prober.function
        settings.update(extra)
        return self.aws.controller_environment(
            cluster=self.cluster, domain=self.domain, lb_port=LB_PORT, web_port=WEB_PORT, **settings
        )

    # --- the world -----------------------------------------------------------------------------

    def add_web(self, address: str) -> None:
        tags = {"lbf:cluster": self.cluster, "lbf:role": "web"}
        instance_id = self.aws.launch(address, tags)
        server = LocalWebServer(address, WEB_PORT).start()
        self.webs[address] = (instance_id, server)
        self.timeline.add("world", f"web {address} started ({instance_id})")

    def add_lb(self, name: str, address: str, *, boot_pull: bool = False) -> None:
        tags = {"lbf:cluster": self.cluster, "lbf:role": "lb", "lbf:name": name}
        instance_id = self.aws.launch(address, tags)
        # Where LBs are published by their public address, HAProxy listens there too, as an EC2
        # LB bound to every address does.
        public = public_address_of(address) if self.publishes_public() else None
        haproxy = LocalHaproxy(
            self.workdir / f"{self.cluster}-{name}-{address}",
            address,
            LB_PORT,
            public_address=public,
        )
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
        where = address if public is None else f"{public} (private {address})"
        self.timeline.add("world", f"LB {name} HAProxy started on {where} ({instance_id})")

    def publishes_public(self) -> bool:
        return self.settings.lb_address is AddressKind.PUBLIC

    # --- the controller ------------------------------------------------------------------------

    def start_controller(self) -> None:
        """The scheduled controller, running from now on (again, after `stop_controller`)."""
        if self._log_handler is None:
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
        self._stop = threading.Event()
        self._controller = threading.Thread(target=self._schedule, daemon=True)
        self._controller.start()
        if self.prober is not None:
            threading.Thread(target=self._watch_prober, daemon=True).start()

    def stop_controller(self) -> None:
        """No controller runs from now on: the run in progress ends, no other starts."""
        self._stop.set()
        if self._controller is not None:
            self._controller.join(timeout=30)
            if self._controller.is_alive():
                raise StepFailed("the controller's run did not end within 30 s")
            self._controller = None

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
        if self.prober is None:
            return
        with self._prober_lock:
            self._show_prober(self.prober)

    def _show_prober(self, prober: LocalLambda) -> None:
        for line in probed_lines(prober.logs):
            self.invocations += 1
            seen = (int(line.get("targets", 0)), tuple(line.get("failed_first", ())))
            if seen == self._last_probed:
                continue
            self._last_probed = seen
            failed = ", ".join(self.name_of(key) for key in seen[1]) or "none"
            self.timeline.add(
                "prober fn",
                f"{prober.function} probed {seen[0]} private targets from inside the "
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
            self._controller = None
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
        """The active record's one value as the controller wrote it (moto's records)."""
        values = self.aws.a_record(self.settings.active_record_name)
        return values[0] if len(values) == 1 else None

    def resolved_address(self) -> str | None:
        """The active name as a client resolves it: through the Route 53 stand-in, its answer
        cached for the record's TTL."""
        if self.clients is None:
            raise StepFailed("this world has no clients resolving the active name")
        try:
            values = self.clients.resolve(self.settings.active_record_name)
        except ResolveError:
            return None
        return values[0] if len(values) == 1 else None

    def lb_at(self, address: str | None) -> str | None:
        """The name of the LB listening on `address` (private or public)."""
        for name, (_, haproxy) in self.lbs.items():
            if address in (haproxy.bind_address, haproxy.public_address):
                return name
        return None

    def served_by_active(self, tries: int = 8) -> set[str]:
        """Which web servers answer a client through the LB the active name resolves to."""
        seen: set[str] = set()
        for _ in range(tries):
            address = self.resolved_address()
            if address is None:
                continue
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
        self.check(
            "start",
            f"lb -> {self.active_address()} (clients resolve {self.resolved_address()}),"
            f" serving {wanted}",
        )
        if self.invocations == 0:
            raise StepFailed("the prober function was never invoked")

    def step_kill_active(self) -> None:
        before = self.active_address()
        name = self.lb_at(before)
        if name is None:
            raise StepFailed(f"no LB listens on the active record's {before}")
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
        self.check(
            "failover", f"lb -> {self.active_address()} (clients resolve {self.resolved_address()})"
        )

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
        """What `python -m chalicelib status` prints: the same read, history and Route 53's view
        of the pair's checks included."""
        found = commands.status(
            self.settings, aws_services(self.settings), SystemClock(), probe=False
        )
        return render.status_text(found.world, self.settings, events=found.events)

    def check(self, event: str, detail: str) -> None:
        if self.controller_errors:
            raise StepFailed("the controller reported errors: " + "; ".join(self.controller_errors))
        self.timeline.add(event, "OK " + detail)


def summary(failovers: list[Failover], rounds: int, invocations: int, model: str) -> str:
    bound = (FALL + 1) * INTERVAL + TIMEOUT
    lines = [
        "",
        f"failover bound (FALL + 1) x INTERVAL + TIMEOUT = {bound:.1f} s"
        f" (INTERVAL {INTERVAL:g} s, TIMEOUT {TIMEOUT:g} s, FALL {FALL}), record TTL {TTL} s",
        f"{'failover':<14}{'detection':>10}{'total':>8}{'bound':>8}  held",
    ]
    for f in failovers:
        held = "yes" if f.detection <= bound else "NO"
        lines.append(f"{f.what:<14}{f.detection:>9.2f}s{f.total:>7.2f}s{bound:>7.1f}s  {held}")
    lines += [
        "detection: kill -> the controller changed the active record (bound: detection only)",
        "total: kill -> clients served anew, resolving the active name through the Route 53",
        "  stand-in: the record's propagation, then each client's cached answer until its TTL",
        f"  ({model})",
        f"both functions at work: the controller's scheduled runs probed {rounds} rounds, and "
        f"the prober function was invoked {invocations} times, once per round",
    ]
    return "\n".join(lines)


def _plain_part(
    aws: LocalAws, plane: Route53DataPlane, workdir: Path, timeline: Timeline, steps: list[str]
) -> bool:
    """The controller's own failover and upkeep, with private LBs probed by the prober function."""
    with local_prober_function() as prober:
        timeline.add("setup", f"prober function {prober.function} on {prober.endpoint}")
        clients = CachingResolver(plane.address, plane.port)
        demo = Demo(aws, workdir, timeline, prober, clients=clients)
        try:
            for step in steps:
                getattr(demo, step)()
        except StepFailed as exc:
            timeline.add("FAILED", str(exc))
            return False
        finally:
            demo.stop()
        demo.show_prober()
    print(summary(demo.failovers, demo.rounds, demo.invocations, plane.model_label()))
    print("\nwhat `python -m chalicelib status` shows now:\n")
    print(demo.status())
    return True


def run(*, short: bool = False) -> int:
    # The last part builds on this module's Demo: imported here, where both exist.
    from standin import demo_dataplane

    timeline = Timeline()
    steps = ["step_start", "step_kill_active", "step_stop_web"]
    if not short:
        steps += ["step_add_web", "step_replace_lb", "step_all_healthy"]
    with (
        tempfile.TemporaryDirectory(prefix="lbf-demo-") as workdir,
        local_aws(DOMAIN, public_addresses=True) as aws,
        local_route53(aws, time_factor=TIME_FACTOR, propagation_seconds=PROPAGATION) as plane,
    ):
        timeline.add("setup", f"moto on {aws.endpoint}, zone {DOMAIN}, VPC 127.0.0.0/16")
        timeline.add("setup", f"Route 53 data plane on {plane.address}:{plane.port}")
        timeline.add("setup", plane.model_label())
        if not _plain_part(aws, plane, Path(workdir), timeline, steps):
            return 1
        held = demo_dataplane.run_part(aws, plane, Path(workdir), timeline)
        if held is None:
            return 1
    print(f"\nall {len(steps) + held} steps held in {timeline.elapsed():.1f} s")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--short",
        action="store_true",
        help="the first three steps, then the failover with the controller stopped",
    )
    args = parser.parse_args()
    sys.exit(run(short=args.short))


if __name__ == "__main__":
    main()
