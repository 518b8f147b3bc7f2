"""Failover time: stop the active LB at random points of the probe cycle, time the record move.

The stand: moto's server, two real HAProxy load balancers running the project's own configuration
and apply script (their `/health` is answered by HAProxy itself: 503 without a usable web server, so
"healthy" means "can serve"), three real web servers, all on 127.0.5.0/24. The controller is the
job the Lambda runs, `jobs.reconcile` with the real adapters and the system clock, at the SPEC's
defaults (private LBs: 19 rounds of 3 s, LBF_PROBE_TIMEOUT 1.5 s, FALL 3), invoked once a minute
on a fixed grid and budgeted to the next start as the scheduled function is. So a kill can land in
any round of an invocation, or in the gap between two invocations.

A kill is SIGTERM to HAProxy's master: the listener closes, probes are refused at once. A hang is
SIGSTOP: the kernel still accepts connections, nobody answers, so every probe of it waits for the
whole TIMEOUT, the slow case the bound's `+ TIMEOUT` is there for. Detection is timed from the
signal to the moment the executor's change batch for the active record returned (a logging
handler on `chalicelib.executor`, as the demo uses), so polling Route 53 adds nothing to it.

Every target is private (loopback), so every round's probes go through the prober function,
running as the separate function it is (standin/local_lambda.py) behind Lambda's Invoke API and
reached with the real adapter: the invoke's latency is inside every detection time, and is
measured on its own (invoke wall time less the slowest probe in it) to set beside the bound's
named term for it (chalicelib/core/timing.py).

Elastic IP mode (`python -m bench --only failover-eip`) runs the same series of kills with the
Elastic IP moving instead of the record. The address itself has a stand-in: a loopback address
(standin/eip_forwarder.py) that forwards each connection to the LB moto's `describe_addresses`
says holds the allocation. Two times per kill: to the address move (the executor's association
returned), and to the first successful client request through the address.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import random
import re
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import requests

from bench.report import Figure, Progress, Section, table
from bench.stats import median, percentile, ratio
from bench.world import Observer, environment, quiet_controller, use_subnet
from chalicelib import jobs
from chalicelib.clock import SystemClock
from chalicelib.config import Settings
from chalicelib.core import timing
from chalicelib.core.model import ProbeResult, ProbeTarget
from chalicelib.core.timing import PROBER_INVOKE_SECONDS, SCHEDULE_SECONDS
from chalicelib.errors import ProberFault
from chalicelib.services import Prober, aws_services
from standin.aws import LocalAws, local_aws
from standin.eip_forwarder import EipForwarder
from standin.haproxy import LocalHaproxy
from standin.local_lambda import local_prober_function
from standin.ssm_agent import Applier, LocalSsmAgent
from standin.web import LocalWebServer

DOMAIN = "failover.bench.example.com"
CLUSTER = "bench-failover"
SUBNET = "127.0.5.0/24"
LB_ADDRESSES = {"lb1": "127.0.5.11", "lb2": "127.0.5.12"}
WEB_ADDRESSES = ("127.0.5.21", "127.0.5.22", "127.0.5.23")
LB_PORT, WEB_PORT = 28080, 28081

# The defaults (SPEC "Configuration") for this stand, whose LBs are private and go through the
# prober function: the settings below are asserted to be what the controller reads.
INTERVAL = timing.PRIVATE_LB_INTERVAL
TIMEOUT = timing.DEFAULT_PROBE_TIMEOUT
FALL, RISE = 3, 2
ROUNDS = timing.rounds_that_fit(interval=INTERVAL, probe_timeout=TIMEOUT, invoke=True)
PERIOD = SCHEDULE_SECONDS  # EventBridge's rate(1 minute)
# Without the invoke term: the measured invoke is added in its place (`_section`).
BOUND = timing.detection_bound(fall=FALL, interval=INTERVAL, timeout=TIMEOUT, rounds=ROUNDS).seconds
# The production value of the bound's invoke term: the ceiling the invoke client's read timeout
# puts on it (a slower answer voids the round instead of stretching it). AWS publishes no latency
# figure for a synchronous invoke; its "Operating Lambda: Performance optimization - Part 1"
# (AWS Compute Blog) puts cold starts, in under 1% of invocations, at under 100 ms to over 1 s.
INVOKE_TERM = PROBER_INVOKE_SECONDS
INVOKE_SOURCE = (
    "the invoke client's read timeout (TIMEOUT + 1 s) caps it: AWS publishes no latency figure "
    "for a synchronous invoke, and puts cold starts (under 1% of invocations) at under 100 ms to "
    "over 1 s (AWS Compute Blog, Operating Lambda: Performance optimization, Part 1)"
)
EIP_ADDRESS = "127.0.2.1"  # the Elastic IP's stand-in
TTL = 60  # the default LBF_TTL: how long a resolver may keep the old answer after the change
KILLS, HANGS = 20, 6
SEED = 6  # fixed, so a rerun kills at the same offsets
STEP_DEADLINE = 30.0  # a step that has not happened by then counts as failed


@dataclass(frozen=True)
class Event:
    number: int
    how: str  # "kill" or "hang"
    lb: str
    offset: float  # the random wait before the signal, seconds
    since_round: float | None  # seconds since the last probe round began, at the signal
    round_of_run: int | None  # that round's number within its invocation, from 1
    detection: float | None  # signal -> active record changed; None: not within the deadline
    served: float | None = None  # EIP mode: signal -> first successful request via the address


class _RoundTimes:
    """Wraps a probe path to note when each round starts (so each kill's phase can be reported)
    and, for the prober function, what each invoke cost beyond its slowest probe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.rounds: list[float] = []
        self.runs: list[float] = []
        self.invoke_overheads: list[float] = []
        self.invoke_faults: list[str] = []

    def wrap(self, prober: Prober, *, invoke: bool) -> Prober:
        times = self

        class Timed:
            def probe_round(self, targets: Sequence[ProbeTarget]) -> dict[str, ProbeResult]:
                started = time.monotonic()
                with times._lock:
                    times.rounds.append(started)
                try:
                    results = prober.probe_round(targets)
                except ProberFault as exc:
                    with times._lock:
                        times.invoke_faults.append(str(exc))
                    raise
                if invoke and results:
                    slowest = max(r.seconds for r in results.values())
                    with times._lock:
                        times.invoke_overheads.append(time.monotonic() - started - slowest)
                return results

        return Timed()

    def run_started(self) -> None:
        with self._lock:
            self.runs.append(time.monotonic())

    def phase(self, at: float) -> tuple[float | None, int | None]:
        with self._lock:
            # Both paths of one round start together: count a round once.
            rounds = sorted({round(r, 2) for r in self.rounds if r <= at})
            runs = [r for r in self.runs if r <= at]
        if not rounds or not runs:
            return None, None
        return at - rounds[-1], sum(1 for r in rounds if r >= runs[-1])


class _Moves(logging.Handler):
    """Timestamps each move of the active role when the executor has applied it: a change of the
    active record (to an address), or of the Elastic IP's association (to an instance id)."""

    def __init__(self, active_name: str) -> None:
        super().__init__(level=logging.INFO)
        self._create = re.compile(rf"(?:CREATE|UPSERT) {re.escape(active_name)} A ([0-9.]+)")
        self._associate = re.compile(r"move Elastic IP \S+ to \S+ (i-[0-9a-f]+)")
        self.moves: queue.Queue[tuple[float, str]] = queue.Queue()

    def emit(self, record: logging.LogRecord) -> None:
        at = time.monotonic()
        message = record.getMessage()
        if message.startswith("applied: records"):
            match = self._create.search(message)
            if match is not None:
                self.moves.put((at, match[1]))
        elif message.startswith("applied: move Elastic IP"):
            match = self._associate.search(message)
            if match is not None:
                self.moves.put((at, match[1]))

    def drain(self) -> None:
        while True:
            try:
                self.moves.get_nowait()
            except queue.Empty:
                return


@dataclass
class _Lb:
    name: str
    address: str
    instance_id: str
    haproxy: LocalHaproxy


@dataclass
class _Stand:
    aws: LocalAws
    workdir: Path
    settings: Settings
    observer: Observer
    agent: LocalSsmAgent
    moves: _Moves
    times: _RoundTimes = field(default_factory=_RoundTimes)
    forwarder: EipForwarder | None = None  # EIP mode: the address's stand-in
    lbs: dict[str, _Lb] = field(default_factory=dict)
    webs: list[LocalWebServer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    crashed: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        use_subnet(self.aws, SUBNET)
        for address in WEB_ADDRESSES:
            self.aws.launch(address, {"lbf:cluster": self.settings.cluster, "lbf:role": "web"})
            self.webs.append(LocalWebServer(address, WEB_PORT).start())
        for name, address in LB_ADDRESSES.items():
            tags = {"lbf:cluster": self.settings.cluster, "lbf:role": "lb", "lbf:name": name}
            instance_id = self.aws.launch(address, tags)
            haproxy = LocalHaproxy(self.workdir / name, address, LB_PORT)
            haproxy.start()
            self.agent.register(instance_id, _applier(haproxy))
            self.lbs[name] = _Lb(name, address, instance_id, haproxy)
        self.agent.install().start()
        if self.settings.eip_allocation_id is not None:
            self.forwarder = EipForwarder(
                self.aws.client("ec2"),
                self.settings.eip_allocation_id,
                port=LB_PORT,
                address=EIP_ADDRESS,
            ).start()
        logging.getLogger("chalicelib.executor").addHandler(self.moves)
        self._thread = threading.Thread(target=self._schedule, daemon=True)
        self._thread.start()

    def _schedule(self) -> None:
        """Invocations back to back on a fixed grid, as EventBridge starts them every minute."""
        services = aws_services(self.settings)
        assert services.probe_function is not None  # every target here is private
        services = replace(
            services,
            prober=self.times.wrap(services.prober, invoke=False),
            probe_function=self.times.wrap(services.probe_function, invoke=True),
        )
        period = PERIOD
        start = time.monotonic()
        number = 0
        try:
            while not self._stop.is_set():
                self.times.run_started()
                clock = SystemClock()
                # As app.py does: the rounds end their probes before the next start on the grid.
                scheduled = clock.now() - (time.monotonic() - (start + number * period))
                deadline = timing.round_deadline(scheduled_at=scheduled, invocation_ends=math.inf)
                report = jobs.reconcile(self.settings, services, clock, deadline=deadline)
                self.errors += report.errors
                number += 1
                wait = start + number * period - time.monotonic()
                if wait > 0:
                    self._stop.wait(wait)
        except Exception as exc:
            self.crashed = exc  # the main thread reports it instead of waiting out deadlines
            raise

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        logging.getLogger("chalicelib.executor").removeHandler(self.moves)
        if self.forwarder is not None:
            self.forwarder.stop()
        self.agent.uninstall()
        for lb in self.lbs.values():
            _resume(lb.haproxy)
            lb.haproxy.stop()
        for server in self.webs:
            server.stop()

    def health(self, lb: _Lb) -> str | None:
        return self.observer.tags(lb.instance_id).get("lbf:health")

    def active(self) -> _Lb | None:
        if self.settings.mode == "eip":
            holder = self.holder()
            return next((lb for lb in self.lbs.values() if lb.instance_id == holder), None)
        values = self.observer.a_record(self.settings.active_record_name)
        return next((lb for lb in self.lbs.values() if values == (lb.address,)), None)

    def holder(self) -> str | None:
        assert self.settings.eip_allocation_id is not None
        found = self.aws.client("ec2").describe_addresses(
            AllocationIds=[self.settings.eip_allocation_id]
        )["Addresses"]
        return (found[0].get("InstanceId") or None) if found else None

    def wait_for(self, what: str, condition: Callable[[], bool]) -> None:
        def holds() -> bool:
            if self.crashed is not None:
                raise RuntimeError(f"the controller crashed: {self.crashed!r}")
            return condition()

        self.observer.wait_for(what, holds, deadline=STEP_DEADLINE)

    def both_healthy_with_active(self) -> _Lb:
        self.wait_for(
            "an active record on a healthy LB, and the other LB healthy too",
            lambda: (
                self.active() is not None
                and all(self.health(lb) == "healthy" for lb in self.lbs.values())
            ),
        )
        active = self.active()
        assert active is not None
        return active

    def fail_over_once(self, number: int, how: str, offset: float) -> Event:
        victim = self.both_healthy_with_active()
        time.sleep(offset)
        self.moves.drain()
        client = _FirstRequest(self.forwarder) if self.forwarder is not None else None
        signalled = time.monotonic()
        if how == "kill":
            victim.haproxy.stop()
        else:
            os.killpg(victim.haproxy.pid, signal.SIGSTOP)
        if client is not None:
            client.start(after=signalled)
        since_round, round_of_run = self.times.phase(signalled)
        detection = None
        # The move is to an address (the record) or to an instance (the Elastic IP).
        gone = victim.instance_id if self.settings.mode == "eip" else victim.address
        give_up = signalled + STEP_DEADLINE
        while (left := give_up - time.monotonic()) > 0:
            try:
                at, moved_to = self.moves.moves.get(timeout=left)
            except queue.Empty:
                break
            if moved_to != gone:
                detection = at - signalled
                break
        served = None
        if client is not None:
            served_at = client.wait(deadline=STEP_DEADLINE)
            served = None if served_at is None else served_at - signalled
        # Restore: the victim must be seen unhealthy first (its tags follow the record change
        # in the same round), else an old "healthy" tag would pass for its recovery.
        if detection is not None:
            self.wait_for(
                f"{victim.name} tagged unhealthy", lambda: self.health(victim) != "healthy"
            )
        if how == "kill":
            victim.haproxy.start()
        else:
            _resume(victim.haproxy)
        return Event(number, how, victim.name, offset, since_round, round_of_run, detection, served)


class _FirstRequest:
    """A client that keeps asking through the Elastic IP's stand-in until one request succeeds."""

    def __init__(self, forwarder: EipForwarder) -> None:
        self._url = f"http://{forwarder.address}:{forwarder.port}/"
        self._done = threading.Event()
        self._stop = threading.Event()
        self.at: float | None = None

    def start(self, *, after: float) -> None:
        threading.Thread(target=self._ask, args=(after,), daemon=True).start()

    def _ask(self, after: float) -> None:
        while not self._stop.is_set():
            try:
                ok = requests.get(self._url, timeout=0.5).status_code == 200
            except requests.RequestException:
                ok = False
            # Only a request sent after the kill counts: one in flight before it proves nothing.
            if ok and time.monotonic() > after:
                self.at = time.monotonic()
                self._done.set()
                return
            self._stop.wait(0.02)

    def wait(self, *, deadline: float) -> float | None:
        self._done.wait(deadline)
        self._stop.set()
        return self.at


def _applier(haproxy: LocalHaproxy) -> Applier:
    def apply(backends: str, checksum: str) -> tuple[bool, str]:
        result = haproxy.apply(backends, checksum)
        return result.returncode == 0, result.stdout + result.stderr

    return apply


def _resume(haproxy: LocalHaproxy) -> None:
    """SIGCONT to a stopped (hung) HAProxy; a no-op for one that is not running."""
    with contextlib.suppress(OSError, RuntimeError):
        os.killpg(haproxy.pid, signal.SIGCONT)


def run(progress: Progress, *, quick: bool = False) -> Section:
    """DNS mode: the active record moves; kills and hangs."""
    return run_series(progress, mode="dns", quick=quick)


def run_series(progress: Progress, *, mode: str, quick: bool = False) -> Section:
    kills, hangs = (4, 2) if quick else (KILLS, HANGS)
    if mode == "eip":
        hangs = 0  # the address move is what is measured; a hang only slows its detection
    rng = random.Random(SEED)
    plan = ["kill"] * kills + ["hang"] * hangs
    events: list[Event] = []
    stopped = ""
    label = "failover" if mode == "dns" else "failover-eip"
    # moto's state outlives its server within one process (`make bench` runs both series): each
    # series has a cluster and a zone of its own, so neither sees the other's instances.
    cluster, domain = f"{CLUSTER}-{mode}", f"{mode}.{DOMAIN}"
    with (
        tempfile.TemporaryDirectory(prefix="lbf-bench-") as workdir,
        local_aws(domain) as aws,
        local_prober_function() as prober,
        quiet_controller(),
    ):
        # The probe schedule is the defaults': nothing of it is set here.
        extra = {"LBF_TTL": str(TTL), "LBF_PROBER_FUNCTION": prober.function}
        if mode == "eip":
            allocation = aws.client("ec2").allocate_address(Domain="vpc")["AllocationId"]
            extra |= {"LBF_MODE": "eip", "LBF_EIP_ALLOCATION_ID": allocation}
        settings = Settings.from_env(
            environment(
                aws, cluster=cluster, domain=domain, lb_port=LB_PORT, web_port=WEB_PORT, extra=extra
            )
        )
        assert (settings.probe_interval, settings.probe_timeout, settings.probe_rounds) == (
            INTERVAL,
            TIMEOUT,
            ROUNDS,
        )
        assert (settings.fall, settings.rise) == (FALL, RISE)
        stand = _Stand(
            aws=aws,
            workdir=Path(workdir),
            settings=settings,
            observer=Observer(aws),
            agent=LocalSsmAgent(settings.ssm_document),
            moves=_Moves(settings.active_record_name),
        )
        try:
            stand.start()
            progress(f"{label}: stand up, waiting for both LBs to be healthy")
            for number, how in enumerate(plan, start=1):
                offset = rng.uniform(0, PERIOD)
                try:
                    event = stand.fail_over_once(number, how, offset)
                except TimeoutError as exc:
                    # The stand did not recover (or never came up): what was measured stands.
                    stopped = f"stopped before {how} {number}: {exc}"
                    progress(f"{label}: {stopped}")
                    break
                events.append(event)
                shown = "none" if event.detection is None else f"{event.detection:.2f} s"
                if event.served is not None:
                    shown += f", first request through the address {event.served:.2f} s"
                progress(f"{label}: {how} {number}/{len(plan)} of {event.lb}: {shown}")
        finally:
            stand.stop()
    invoke = _Invoke(stand.times.invoke_overheads, stand.times.invoke_faults)
    if mode == "eip":
        return _eip_section(events, stand.errors, invoke, planned=kills, stopped=stopped)
    return _section(events, stand.errors, invoke, planned=(kills, hangs), stopped=stopped)


@dataclass(frozen=True)
class _Invoke:
    """What the prober function's invokes cost on the stand-in, beyond their slowest probe."""

    overheads: list[float]
    faults: list[str]

    @property
    def worst(self) -> float:
        return max(self.overheads, default=0.0)

    def figures(self) -> list[Figure]:
        if not self.overheads:
            return [Figure("prober function invoke", "no invoke measured", met=False)]
        return [
            Figure(
                "prober function invoke (stand-in)",
                f"median {median(self.overheads) * 1000:.0f} ms, p95 "
                f"{percentile(self.overheads, 95) * 1000:.0f} ms, max {self.worst * 1000:.0f} ms "
                f"over {len(self.overheads)} rounds; {len(self.faults)} faults",
                note="invoke wall time less the slowest probe in it: the real adapter and "
                "botocore to a local process behind Lambda's Invoke API, on loopback",
            ),
            Figure(
                "bound's invoke term (production)",
                f"{INVOKE_TERM:g} s",
                note=INVOKE_SOURCE,
            ),
        ]


def _section(
    events: list[Event],
    errors: list[str],
    invoke: _Invoke,
    *,
    planned: tuple[int, int],
    stopped: str,
) -> Section:
    killed = [e for e in events if e.how == "kill"]
    hung = [e for e in events if e.how == "hang"]
    section = Section(name="failover", title="Failover time")
    figures = section.figures
    bound = BOUND + invoke.worst
    _figures(figures, killed, "kill", planned=planned[0], bound=bound)
    if planned[1]:
        _figures(figures, hung, "hang", planned=planned[1], bound=bound, headline=False)
    figures += invoke.figures()
    times = [e.detection for e in killed if e.detection is not None]
    if times:
        figures.append(
            Figure(
                "what clients see (record change + TTL)",
                f"median {median(times) + TTL:.1f} s, worst {max(times) + TTL:.1f} s",
                note=f"TTL {TTL} s (the default LBF_TTL): a resolver that cached the old answer "
                "just before the change keeps it that long; a lower TTL shortens this 1:1",
            )
        )
    rows = [(e.number, e.how, e.lb, *_timing_cells(e)) for e in events]
    section.details += [
        f"Stand: 2 real HAProxy LBs (the project's haproxy.cfg answers `/health`), 3 real "
        f"web servers, moto's server; the real job once a minute at the defaults, {ROUNDS} rounds "
        f"of INTERVAL = {INTERVAL:g} s per invocation, TIMEOUT = {TIMEOUT:g} s, FALL = {FALL}, "
        f"RISE = {RISE}; "
        "every target private, so every round's probes go through the prober function (a "
        "separate process behind Lambda's Invoke API, reached with the real adapter). "
        f"Bound (FALL + 1) x INTERVAL + TIMEOUT + (60 - ROUNDS x INTERVAL) + invoke = {BOUND:g} s "
        "+ the worst invoke "
        f"measured ({invoke.worst * 1000:.0f} ms) = {bound:.2f} s; with the production invoke "
        f"term ({INVOKE_TERM:g} s) it is {BOUND + INVOKE_TERM:g} s. Each event waits a random "
        f"0-{PERIOD:g} s (seed {SEED}), then signals the active LB's HAProxy: "
        "*kill* = SIGTERM (connections refused at once), *hang* = SIGSTOP (connections accepted, "
        "never answered: every probe waits for TIMEOUT). Detection = signal until the change "
        "batch for the active record returned. The victim is restored (restart / SIGCONT) and "
        "the next event hits the new active LB, since the active record never moves back by "
        "itself.",
        table(
            ("#", "how", "LB", "waited s", "round of run", "s since round began", "detection s"),
            rows,
        ),
        _closing(stopped, errors),
    ]
    section.data = _data(
        events,
        errors,
        invoke,
        bound=bound,
        settings={"ttl": TTL, "invoke_term_production": INVOKE_TERM},
    )
    return section


def _eip_section(
    events: list[Event], errors: list[str], invoke: _Invoke, *, planned: int, stopped: str
) -> Section:
    section = Section(name="failover-eip", title="Elastic IP failover time")
    figures = section.figures
    bound = BOUND + invoke.worst
    _figures(figures, events, "kill", planned=planned, bound=bound, moved="moved the Elastic IP")
    served = [e.served for e in events if e.served is not None]
    if served:
        figures.append(
            Figure(
                "LB killed: first client request through the address",
                f"median {median(served):.2f} s, p95 {percentile(served, 95):.2f} s, "
                f"max {max(served):.2f} s ({len(served)} of {len(events)})",
                note="kill until a request through the Elastic IP's stand-in succeeds: clients "
                "see the move on their next connection, no TTL in between (DNS mode: the record "
                f"change + the TTL, {TTL} s by default). Add AWS's own reassociation time: AWS "
                "publishes no figure for it",
            )
        )
    figures += invoke.figures()
    rows = [
        (e.number, e.lb, *_timing_cells(e), "-" if e.served is None else f"{e.served:.2f}")
        for e in events
    ]
    section.details += [
        f"The stand of *Failover time*, in Elastic IP mode (LBF_MODE=eip): {ROUNDS} rounds of "
        f"INTERVAL = {INTERVAL:g} s, TIMEOUT = {TIMEOUT:g} s, FALL = {FALL}, every probe through "
        "the prober function. The Elastic IP's stand-in is the loopback address "
        f"{EIP_ADDRESS}, forwarding each connection to the LB that moto's describe_addresses "
        "says holds the allocation (polled every 50 ms). Each kill (SIGTERM to the active LB's "
        f"HAProxy) after a random 0-{PERIOD:g} s wait (seed {SEED}); *moved* = kill "
        "until the executor's AssociateAddress returned; *served* = kill until a client "
        "request through the address (one every 20 ms, 0.5 s timeout) succeeded. Bound "
        f"(FALL + 1) x INTERVAL + TIMEOUT + (60 - ROUNDS x INTERVAL) + worst invoke = {bound:.2f} s.",
        table(
            ("#", "LB", "waited s", "round of run", "s since round began", "moved s", "served s"),
            rows,
        ),
        _closing(stopped, errors),
    ]
    section.data = _data(events, errors, invoke, bound=bound, settings={"address": EIP_ADDRESS})
    return section


def _timing_cells(e: Event) -> tuple[object, ...]:
    """The columns both series' tables share: the wait, the round it fell in, the detection."""
    return (
        f"{e.offset:.2f}",
        "-" if e.round_of_run is None else e.round_of_run,
        "-" if e.since_round is None else f"{e.since_round:.2f}",
        "-" if e.detection is None else f"{e.detection:.2f}",
    )


def _closing(stopped: str, errors: list[str]) -> str:
    return (
        (f"The series {stopped}. " if stopped else "")
        + f"Controller errors during the run: {len(errors)}"
        + ("" if not errors else " (" + "; ".join(sorted(set(errors))[:5]) + ")")
    )


def _data(
    events: list[Event],
    errors: list[str],
    invoke: _Invoke,
    *,
    bound: float,
    settings: dict[str, object],
) -> dict[str, object]:
    """What both series store: the stand's settings (plus the series' own), events, invokes."""
    return {
        "settings": {
            "interval": INTERVAL,
            "timeout": TIMEOUT,
            "fall": FALL,
            "rise": RISE,
            "rounds": ROUNDS,
            "bound": BOUND,
            "bound_with_invoke": bound,
            "seed": SEED,
            **settings,
        },
        "events": [asdict(e) for e in events],
        "invoke_overheads": invoke.overheads,
        "invoke_faults": invoke.faults,
        "controller_errors": errors,
    }


def _figures(
    figures: list[Figure],
    events: list[Event],
    how: str,
    *,
    planned: int,
    bound: float,
    headline: bool = True,
    moved: str = "moved the active record",
) -> None:
    times = [e.detection for e in events if e.detection is not None]
    label = "LB killed" if how == "kill" else "LB hung"
    all_moved = len(times) == planned
    figures.append(
        Figure(
            f"{label}: failovers",
            f"{len(times)} of {planned} {moved}",
            target=f"all {planned}",
            met=all_moved,
            note=""
            if all_moved
            else f"{len(events) - len(times)} did not move within {STEP_DEADLINE:g} s, "
            f"{planned - len(events)} not attempted (the stand did not recover)",
        )
    )
    if not times:
        return
    worst = max(times)
    figures.append(
        Figure(
            f"{label}: detection max",
            f"{worst:.2f} s = {ratio(worst, bound):.2f} x bound",
            target=f"< bound {bound:.2f} s (invoke counted)",
            met=worst < bound,
            note="" if worst < BOUND else "see the per-event table: which round the kill fell in",
        )
    )
    figures.append(
        Figure(
            f"{label}: detection p95",
            f"{percentile(times, 95):.2f} s = {ratio(percentile(times, 95), bound):.2f} x bound",
        )
    )
    middle = median(times)
    near = (FALL - 1) * INTERVAL <= middle <= FALL * INTERVAL + TIMEOUT
    expected = FALL * INTERVAL
    figures.append(
        Figure(
            f"{label}: detection median",
            f"{middle:.2f} s = {ratio(middle, expected):.2f} x FALL x INTERVAL",
            target=f"near FALL x INTERVAL = {expected:g} s" if headline else "",
            met=near if headline else None,
            note=(
                "a kill lands on average half an INTERVAL before the next round, so FALL "
                f"failed rounds take about (FALL - 0.5) x INTERVAL = {(FALL - 0.5) * INTERVAL:g} s "
                "plus the round's probe and change batch"
                if how == "kill"
                else f"each of the FALL failed probes waits the TIMEOUT ({TIMEOUT:g} s) out"
            ),
        )
    )
