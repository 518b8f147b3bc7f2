"""Failover by mode, at the defaults: plain DNS, the Route 53 failover pair with the controller
running and with it stopped, and the Elastic IP (`python -m bench --only failover-modes`).

The stand, one per mode: moto's server, two real HAProxy load balancers running the project's
configuration and apply script, three real web servers, all on loopback. The LBs are public (the
default, and what LBF_DNS_FAILOVER=route53 needs): they listen on their loopback public addresses
too (standin/moto_fixes.loopback_public_addresses). The Elastic IP mode has private LBs probed
through the prober function, as an LB that holds an Elastic IP has no other public address on EC2.
The controller is the job the Lambda runs, `jobs.reconcile` with the real adapters and the system
clock, started on a one-minute grid like the schedule, with the probe settings at their defaults
(LBF_PROBE_INTERVAL, LBF_PROBE_TIMEOUT, LBF_PROBE_ROUNDS, LBF_RISE, LBF_FALL are not set), so the
bound held against is the one `status` prints for these settings.

Route 53's data plane is its stand-in (standin/route53_dns.py): DNS answers from moto's zone,
health checks judged by the stand-in's checkers with their intervals scaled by TIME_FACTOR, and a
record change answered PROPAGATION seconds after it is made. The client resolves the active name
through it with a caching resolver (TTL honoured: LBF_TTL is TTL here) and asks the answer, every
CLIENT_EVERY seconds; in the Elastic IP mode it asks through the address's stand-in
(standin/eip_forwarder.py) instead.

Each kill waits a random time (seeded), then stops the HAProxy clients are using (SIGTERM to its
master: connections are refused at once) and times, from the moment it has exited: detection, the
answer changing and the first successful client request (bench/mode_figures.py says what each means per mode).
The killed LB is started again and the next kill waits until the stand has recovered.
"""

from __future__ import annotations

import logging
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Self

import requests

from bench.mode_figures import (
    MODES,
    Kill,
    Mode,
    Model,
    Trace,
    marks_from,
    mode_figures,
    parse_applied,
    representative,
    with_defaults_note,
)
from bench.report import RESULTS, Figure, Progress, Section, table
from bench.timeline import draw
from bench.world import quiet_controller
from chalicelib import jobs
from chalicelib.clock import SystemClock
from chalicelib.config import Settings
from chalicelib.config.reading import ConfigError
from chalicelib.core.model import ProbeResult, ProbeTarget
from chalicelib.core.timing import SCHEDULE_SECONDS
from chalicelib.services import Prober, aws_services
from standin.aws import LocalAws, local_aws
from standin.eip_forwarder import EipForwarder
from standin.haproxy import LocalHaproxy
from standin.local_lambda import local_prober_function
from standin.moto_fixes import public_address_of
from standin.route53_checkers import CheckConfig, Probe, Route53Checkers, probe, route53_status_from
from standin.route53_dns import CachingResolver, RecordSet, ResolveError, Route53DataPlane
from standin.ssm_agent import Applier, LocalSsmAgent
from standin.web import LocalWebServer

DOMAIN = "modes.bench.example.com"
CLUSTER = "bench-modes"
# In the stand-in's instance subnet (127.0.1.0/24), the one whose instances get loopback public
# addresses (127.0.3.N); host numbers the tests and the demo do not use.
LB_ADDRESSES = {"lb1": "127.0.1.201", "lb2": "127.0.1.202"}
WEB_ADDRESSES = ("127.0.1.211", "127.0.1.212", "127.0.1.213")
LB_PORT, WEB_PORT = 28180, 28181
EIP_ADDRESS = "127.0.2.3"  # the Elastic IP's stand-in

# Chosen so that 20 kills per mode take minutes, not hours (with_defaults_note says what changes
# at the defaults): a 5 s TTL, 2 s propagation, and Route 53's checks ten times as often.
TTL = 5
PROPAGATION = 2.0
TIME_FACTOR = 0.1

KILLS, QUICK_KILLS = 20, 3
SEED = 21  # fixed, so a rerun waits the same times
STEP_DEADLINE = 90.0  # a step that has not happened by then is counted as not happening
CLIENT_EVERY = 0.1
ANSWER_EVERY = 0.05
REQUEST_TIMEOUT = 0.5


class _Recorder(logging.Handler):
    """The executor's moves and verdicts, stamped with the monotonic time they were logged."""

    def __init__(self, active_name: str) -> None:
        super().__init__(level=logging.INFO)
        self._active_name = active_name
        self._lock = threading.Lock()
        self.entries: list[tuple[float, str, str, str]] = []  # (at, kind, target, value)
        self.notices: list[str] = []  # what the controller told the operator, in order

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("notice: "):
            with self._lock:
                self.notices.append(message.removeprefix("notice: "))
        applied = parse_applied(message, self._active_name)
        if applied is not None:
            with self._lock:
                self.entries.append((time.monotonic(), applied.kind, applied.target, applied.value))

    def last(self, kind: str) -> float:
        """When the last entry of this kind was logged, -inf before any."""
        with self._lock:
            return max((at for at, k, _, _ in self.entries if k == kind), default=float("-inf"))

    def first(self, kind: str, after: float, test: Callable[[str, str], bool]) -> float | None:
        with self._lock:
            return next(
                (
                    at
                    for at, k, target, value in self.entries
                    if k == kind and at > after and test(target, value)
                ),
                None,
            )


class _Probes:
    """Every probe result of the controller (by instance id) and of the stand-in's checkers (by
    address), stamped with the monotonic time it ended."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.results: list[tuple[float, str, bool]] = []

    def _add(self, at: float, key: str, ok: bool) -> None:
        with self._lock:
            self.results.append((at, key, ok))

    def wrap(self, prober: Prober) -> Prober:
        probes = self

        class Recorded:
            def probe_round(self, targets: Sequence[ProbeTarget]) -> dict[str, ProbeResult]:
                started = time.monotonic()
                results = prober.probe_round(targets)
                for key, result in results.items():
                    probes._add(started + result.seconds, key, result.ok)
                return results

        return Recorded()

    def checker(self, probe_function: Probe) -> Probe:
        def recorded(config: CheckConfig, time_factor: float) -> tuple[bool, str]:
            ok, status = probe_function(config, time_factor)
            self._add(time.monotonic(), config.address or "", ok)
            return ok, status

        return recorded

    def of(self, key: str) -> tuple[tuple[float, bool], ...]:
        with self._lock:
            return tuple((at, ok) for at, k, ok in self.results if k == key)


class _Background:
    """A loop in a daemon thread (`_run`, which waits on `_stop`), started and stopped once."""

    def __init__(self, name: str) -> None:
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=name)

    def _run(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


class _Sampled(_Background):
    """A value sampled every `every` seconds in a thread (the answer, or the address's holder),
    with the monotonic time of each change."""

    def __init__(self, read: Callable[[], str | None], every: float) -> None:
        super().__init__("bench-sampled")
        self._read = read
        self._every = every
        self.changes: list[tuple[float, str | None]] = []

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                value = self._read()
            except Exception:  # noqa: BLE001 - moto or the DNS stand-in busy: sample again
                continue
            with self._lock:
                if not self.changes or self.changes[-1][1] != value:
                    self.changes.append((time.monotonic(), value))

    @property
    def current(self) -> str | None:
        with self._lock:
            return self.changes[-1][1] if self.changes else None

    def first_after(self, after: float, *, leaving: str) -> tuple[float, str] | None:
        """The first change after `after` to a value other than `leaving` (and not none)."""
        with self._lock:
            return next(
                ((at, v) for at, v in self.changes if at > after and v not in (None, leaving)),
                None,
            )


class _Client(_Background):
    """A client asking every CLIENT_EVERY seconds through `url()`, each request on a connection
    of its own (a new client sees a move on its next connection)."""

    def __init__(self, url: Callable[[], str | None]) -> None:
        super().__init__("bench-client")
        self._url = url
        self.requests: list[tuple[float, float, bool]] = []  # (sent, answered, ok)
        self.last_url: str | None = None  # where the last request went

    def _run(self) -> None:
        while not self._stop.wait(CLIENT_EVERY):
            sent = time.monotonic()
            url = None
            try:
                url = self._url()
                ok = url is not None and requests.get(url, timeout=REQUEST_TIMEOUT).ok
            except (requests.RequestException, ResolveError):
                ok = False
            with self._lock:
                self.requests.append((sent, time.monotonic(), ok))
                self.last_url = url

    def first_ok_after(self, after: float) -> float | None:
        """When the first request sent after `after` succeeded (one in flight at `after`
        proves nothing)."""
        with self._lock:
            return next((done for sent, done, ok in self.requests if ok and sent > after), None)

    def sent(self) -> tuple[tuple[float, bool], ...]:
        with self._lock:
            return tuple((sent, ok) for sent, _, ok in self.requests)


class _StoppableClock(SystemClock):
    """The system clock, whose wait between rounds ends the run once the controller is stopped:
    jobs.reconcile takes the KeyboardInterrupt between rounds, as it takes Ctrl-C."""

    def __init__(self, stopped: threading.Event) -> None:
        self._stopped = stopped

    def sleep(self, seconds: float) -> None:
        if self._stopped.wait(seconds):
            raise KeyboardInterrupt


@dataclass
class _Lb:
    name: str
    private: str
    public: str | None
    instance_id: str
    haproxy: LocalHaproxy

    @property
    def published(self) -> str:
        """The address the controller publishes and probes for it."""
        return self.public or self.private


@dataclass
class _Stand:
    """One mode's stand, running: instances, LBs, web servers, the controller on its schedule,
    and what watches them (the executor's log, the probes, the answer, the client)."""

    mode: Mode
    aws: LocalAws
    settings: Settings
    workdir: Path
    plane: Route53DataPlane | None
    forwarder_allocation: str | None
    recorder: _Recorder
    probes: _Probes
    agent: LocalSsmAgent
    lbs: dict[str, _Lb] = field(default_factory=dict)
    webs: list[LocalWebServer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    crashed: BaseException | None = None
    grid_start: float = 0.0
    forwarder: EipForwarder | None = None
    answer: _Sampled | None = None
    client: _Client | None = None
    _stopped: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        for address in WEB_ADDRESSES:
            self.aws.launch(address, {"lbf:cluster": self.settings.cluster, "lbf:role": "web"})
            self.webs.append(LocalWebServer(address, WEB_PORT).start())
        for name, private in LB_ADDRESSES.items():
            tags = {"lbf:cluster": self.settings.cluster, "lbf:role": "lb", "lbf:name": name}
            instance_id = self.aws.launch(private, tags)
            public = public_address_of(private) if self.aws.public_addresses else None
            haproxy = LocalHaproxy(self.workdir / name, private, LB_PORT, public_address=public)
            haproxy.start()
            self.agent.register(instance_id, _applier(haproxy))
            self.lbs[name] = _Lb(name, private, public, instance_id, haproxy)
        self.agent.install().start()
        logging.getLogger("chalicelib.executor").addHandler(self.recorder)
        self.answer, url = self._watchers()
        self.answer.start()
        self.client = _Client(url).start()
        self._thread = threading.Thread(target=self._schedule, daemon=True, name="bench-runs")
        self._thread.start()

    def _watchers(self) -> tuple[_Sampled, Callable[[], str | None]]:
        """What clients are given, sampled without a cache, and the client's URL for a request."""
        if self.plane is None:
            assert self.forwarder_allocation is not None
            self.forwarder = EipForwarder(
                self.aws.client("ec2"), self.forwarder_allocation, port=LB_PORT, address=EIP_ADDRESS
            ).start()
            forwarder = self.forwarder
            through = _url(EIP_ADDRESS)
            return _Sampled(lambda: forwarder.holder, ANSWER_EVERY), lambda: through
        name = self.settings.active_record_name
        watcher = CachingResolver(self.plane.address, self.plane.port)
        resolver = CachingResolver(self.plane.address, self.plane.port)

        def answer() -> str | None:
            values = sorted(str(rr.rdata) for rr in watcher.query(name).rr if rr.rtype == 1)
            return " ".join(values) or None

        def url() -> str | None:
            values = resolver.resolve(name)
            return _url(values[0]) if values else None

        return _Sampled(answer, ANSWER_EVERY), url

    def _schedule(self) -> None:
        """Runs started on a one-minute grid, as EventBridge starts them, until stopped."""
        services = aws_services(self.settings)
        function = services.probe_function
        services = replace(
            services,
            prober=self.probes.wrap(services.prober),
            probe_function=None if function is None else self.probes.wrap(function),
        )
        clock = _StoppableClock(self._stopped)
        self.grid_start = time.monotonic()
        number = 0
        try:
            while not self._stopped.is_set():
                report = jobs.reconcile(self.settings, services, clock)
                self.errors += report.errors
                number += 1
                wait = self.grid_start + number * SCHEDULE_SECONDS - time.monotonic()
                if wait > 0:
                    self._stopped.wait(wait)
        except Exception as exc:
            self.crashed = exc  # the main thread reports it instead of waiting out deadlines
            raise

    def stop_controller(self) -> None:
        self._stopped.set()
        if self._thread is not None:
            self._thread.join(timeout=SCHEDULE_SECONDS + 10)

    def stop(self) -> None:
        self.stop_controller()
        logging.getLogger("chalicelib.executor").removeHandler(self.recorder)
        for watcher in (self.client, self.answer, self.forwarder):
            if watcher is not None:
                watcher.stop()
        self.agent.uninstall()
        for lb in self.lbs.values():
            lb.haproxy.stop()
        for server in self.webs:
            server.stop()

    def _lb_given(self) -> _Lb | None:
        """The LB clients are given now: the answer's, or the Elastic IP holder's."""
        assert self.answer is not None
        value = self.answer.current
        eip = self.plane is None
        return next(
            (lb for lb in self.lbs.values() if value == (lb.private if eip else lb.published)),
            None,
        )

    def _pair(self) -> list[RecordSet]:
        assert self.plane is not None
        name = self.settings.active_record_name
        return [r for r in self.plane.read_records() if r.name == name and r.kind == "A"]

    def _route53_ready(self, given: _Lb) -> bool:
        """The pair holds both LBs, PRIMARY is the one clients are given, both checks healthy."""
        assert self.plane is not None
        pair = self._pair()
        primary = [r for r in pair if r.failover == "PRIMARY"]
        both = {v for r in pair for v in r.values} == {lb.published for lb in self.lbs.values()}
        checks = [r.health_check_id for r in pair]
        return (
            both
            and len(primary) == 1
            and primary[0].values == (given.published,)
            and all(c is not None and self.plane.checkers.healthy(c) for c in checks)
        )

    def ready(self) -> _Lb | None:
        """The LB clients are given, when the stand is ready for a kill: the controller's choice
        is what clients are given and (while it runs) it judges both LBs healthy."""
        given = self._lb_given()
        if given is None:
            return None
        if self.mode.key.startswith("route53"):
            if not self._route53_ready(given):
                return None
        elif self.plane is not None and self.aws.a_record(self.settings.active_record_name) != (
            given.published,
        ):
            return None
        # The client's cached answer too: after a failback it keeps the other LB for the TTL, and
        # a kill then would time nothing.
        assert self.client is not None
        if self.plane is not None and self.client.last_url != _url(given.published):
            return None
        if self.mode.controller or not self._stopped.is_set():
            healthy = (self.aws.tags(lb.instance_id).get("lbf:health") for lb in self.lbs.values())
            if not all(h == "healthy" for h in healthy):
                return None
        return given

    def wait_for(self, what: str, condition: Callable[[], object], deadline: float) -> object:
        give_up = time.monotonic() + deadline
        while time.monotonic() < give_up:
            if self.crashed is not None:
                raise RuntimeError(f"the controller crashed: {self.crashed!r}")
            found = condition()
            if found:
                return found
            time.sleep(0.1)
        raise TimeoutError(f"did not hold within {deadline:.0f} s: {what}")

    def wait_ready(self, deadline: float = STEP_DEADLINE) -> _Lb:
        found = self.wait_for("the stand ready for a kill", self.ready, deadline)
        assert isinstance(found, _Lb)
        return found

    def check_of(self, lb: _Lb) -> str | None:
        """The Route 53 health check bound to the LB's record of the pair."""
        if self.plane is None or not self.mode.key.startswith("route53"):
            return None
        return next((r.health_check_id for r in self._pair() if r.values == (lb.published,)), None)

    def _wait_random(self, rng: random.Random) -> float:
        """A random wait: to a random second of the controller's minute (so a kill can land in
        any round, or in the gap between two runs), or of a check interval without it."""
        if self.mode.controller:
            now = time.monotonic()
            target = rng.uniform(0, SCHEDULE_SECONDS)
            # The pair swaps at most once per LBF_ROUTE53_INTERVAL x LBF_FALL (real seconds)
            # unless EC2 reports PRIMARY stopped: kills closer together would time that hold,
            # not the controller's detection. The first second with the drawn phase after it.
            earliest = max(now, self._last_move() + self.settings.rules.pair.detection_seconds)
            phase = (earliest - self.grid_start) % SCHEDULE_SECONDS
            wait = earliest - now + (target - phase) % SCHEDULE_SECONDS
        else:
            wait = rng.uniform(0, self.settings.route53_interval * TIME_FACTOR)
        time.sleep(wait)
        return wait

    def _last_move(self) -> float:
        """When the controller last moved the active role (a pair's swap), -inf before that;
        only the pair holds a second move, so only its mode looks."""
        if not self.settings.rules.pair.enabled:
            return float("-inf")
        return self.recorder.last("move")

    def _detected(self, victim: _Lb, killed: float, check: str | None) -> float | None:
        if self.mode.controller:
            gone = victim.instance_id if self.plane is None else victim.published
            return self.recorder.first("move", killed, lambda target, _: target != gone)
        assert self.plane is not None
        assert check is not None
        return None if self.plane.checkers.healthy(check) else time.monotonic()

    def kill_once(self, number: int, rng: random.Random) -> tuple[Kill, Trace]:
        self.wait_ready()
        waited = self._wait_random(rng)
        victim = self.wait_ready()
        check = self.check_of(victim)
        leaving = victim.private if self.plane is None else victim.published
        assert self.answer is not None
        assert self.client is not None
        victim.haproxy.stop()
        # From when its master has exited: until then it may still answer a request.
        killed = time.monotonic()
        detection = answer = served = None
        while time.monotonic() < killed + STEP_DEADLINE:
            detection = detection or self._detected(victim, killed, check)
            answer = answer or self.answer.first_after(killed, leaving=leaving)
            served = served or self.client.first_ok_after(killed)
            if detection and answer and served:
                break
            time.sleep(0.02)
        if self.mode.controller and detection is not None:
            # Its verdict is written with the move: an old "healthy" tag must not pass for its
            # recovery before the next kill.
            self.wait_for(
                f"{victim.name} tagged unhealthy",
                lambda: self.aws.tags(victim.instance_id).get("lbf:health") != "healthy",
                STEP_DEADLINE,
            )
        victim.haproxy.start()
        kill = Kill(
            self.mode.key,
            number,
            victim.name,
            waited,
            (killed - self.grid_start) % SCHEDULE_SECONDS if self.mode.controller else None,
            *(
                None if at is None else at - killed
                for at in (detection, answer[0] if answer else None, served)
            ),
        )
        return kill, self._trace(victim, killed, detection, answer)

    def _trace(
        self,
        victim: _Lb,
        killed: float,
        detection: float | None,
        answer: tuple[float, str] | None,
    ) -> Trace:
        assert self.client is not None
        if self.mode.controller:
            probes = self.probes.of(victim.instance_id)
            verdict = self.recorder.first(
                "verdict",
                killed,
                lambda target, value: victim.instance_id in target.split() and value == "unhealthy",
            )
        else:
            probes, verdict = self.probes.of(victim.published), detection
        to = next(
            (
                lb.name
                for lb in self.lbs.values()
                if answer is not None and answer[1] in (lb.private, lb.published)
            ),
            "?",
        )
        return Trace(
            mode=self.mode.key,
            killed_at=killed,
            lb=victim.name,
            to=to,
            probes=probes,
            verdict=verdict,
            change=detection if self.mode.controller else None,
            answer=None if answer is None else answer[0],
            requests=self.client.sent(),
        )


def _url(address: str) -> str:
    return f"http://{address}:{LB_PORT}/"


def _applier(haproxy: LocalHaproxy) -> Applier:
    def apply(backends: str, checksum: str) -> tuple[bool, str]:
        result = haproxy.apply(backends, checksum)
        return result.returncode == 0, result.stdout + result.stderr

    return apply


@dataclass
class _Outcome:
    """One mode's series: its kills, their traces, and what the stand reported."""

    mode: Mode
    planned: int
    kills: list[Kill] = field(default_factory=list)
    traces: list[Trace] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    bound: float = 0.0
    fall: int = 3
    route53_interval: int = 30
    stopped: str = ""  # why the series ended early
    not_run: str = ""  # why the mode could not run at all


def _environment(mode: Mode, aws: LocalAws, extra: dict[str, str]) -> dict[str, str]:
    """The controller's settings: the defaults, but for the mode's own and LBF_TTL."""
    own = {"LBF_TTL": str(TTL), **extra}
    if mode.key.startswith("route53"):
        own["LBF_DNS_FAILOVER"] = "route53"
    return aws.controller_environment(
        cluster=f"{CLUSTER}-{mode.key}",
        domain=f"{mode.key}.{DOMAIN}",
        lb_port=LB_PORT,
        web_port=WEB_PORT,
        **own,
    )


@contextmanager
def _data_plane(aws: LocalAws, probes: _Probes) -> Iterator[Route53DataPlane]:
    """The Route 53 stand-in (as standin/route53_dns.local_route53 makes it), its checkers'
    probes recorded for the timeline."""
    route53 = aws.client("route53")
    checkers = Route53Checkers(
        route53, time_factor=TIME_FACTOR, probe_function=probes.checker(probe)
    ).start(refresh_every=0.1)
    plane = Route53DataPlane(route53, aws.zone_id, checkers, propagation_seconds=PROPAGATION)
    try:
        with route53_status_from(checkers):
            plane.start(poll_interval=0.1)
            yield plane
    finally:
        plane.stop()
        checkers.stop()


def _run_mode(mode: Mode, count: int, progress: Progress) -> _Outcome:
    outcome = _Outcome(mode, planned=count)
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lbf-modes-")))
        aws = stack.enter_context(
            local_aws(f"{mode.key}.{DOMAIN}", public_addresses=mode.route53_answers)
        )
        stack.enter_context(quiet_controller())
        extra: dict[str, str] = {}
        if not mode.route53_answers:
            function = stack.enter_context(local_prober_function()).function
            allocation = aws.client("ec2").allocate_address(Domain="vpc")["AllocationId"]
            extra = {"LBF_MODE": "eip", "LBF_EIP_ALLOCATION_ID": allocation}
            extra["LBF_PROBER_FUNCTION"] = function
        try:
            settings = Settings.from_env(_environment(mode, aws, extra))
        except ConfigError as exc:
            outcome.not_run = f"the controller refuses the settings: {exc}"
            progress(f"{mode.key}: not run, {outcome.not_run}")
            return outcome
        outcome.bound, outcome.fall = settings.detection_bound.seconds, settings.fall
        outcome.route53_interval = settings.route53_interval
        probes = _Probes()
        plane = stack.enter_context(_data_plane(aws, probes)) if mode.route53_answers else None
        stand = _Stand(
            mode=mode,
            aws=aws,
            settings=settings,
            workdir=workdir,
            plane=plane,
            forwarder_allocation=extra.get("LBF_EIP_ALLOCATION_ID"),
            recorder=_Recorder(settings.active_record_name),
            probes=probes,
            agent=LocalSsmAgent(settings.ssm_document),
        )
        stack.callback(stand.stop)
        _series(stand, outcome, progress)
        outcome.errors = stand.errors
        outcome.notices = stand.recorder.notices
    return outcome


def _series(stand: _Stand, outcome: _Outcome, progress: Progress) -> None:
    mode = stand.mode
    try:
        stand.start()
        progress(f"{mode.key}: stand up, bound {outcome.bound:g} s; waiting for it to be ready")
        stand.wait_ready(deadline=3 * SCHEDULE_SECONDS)
        if not mode.controller:
            stand.stop_controller()
            progress(f"{mode.key}: controller stopped; Route 53's stand-in alone from here")
    except TimeoutError as exc:
        outcome.stopped = f"never ready: {exc}"
        progress(f"{mode.key}: {outcome.stopped}")
        return
    rng = random.Random(f"{SEED}-{mode.key}")
    for number in range(1, outcome.planned + 1):
        try:
            kill, trace = stand.kill_once(number, rng)
        except TimeoutError as exc:
            outcome.stopped = f"stopped before kill {number}: {exc}"
            progress(f"{mode.key}: {outcome.stopped}")
            return
        outcome.kills.append(kill)
        outcome.traces.append(trace)
        _, _, waited, phase, detection, answer, served = _cells(kill)
        progress(
            f"{mode.key}: kill {number}/{outcome.planned} of {kill.lb} after {waited} s "
            f"({phase} s into the minute): detection {detection} s, answer {answer} s, "
            f"served {served} s"
        )


def _cells(kill: Kill) -> tuple[object, ...]:
    def seconds(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    return (
        kill.number,
        kill.lb,
        f"{kill.waited:.1f}",
        seconds(kill.phase),
        seconds(kill.detection),
        seconds(kill.answer),
        seconds(kill.served),
    )


def run(progress: Progress, *, quick: bool = False, modes: Sequence[str] = ()) -> Section:
    """Every mode (or those named in `modes`), 20 kills each (3 with `quick`)."""
    count = QUICK_KILLS if quick else KILLS
    chosen = [m for m in MODES if not modes or m.key in modes]
    outcomes = [_run_mode(mode, count, progress) for mode in chosen]
    # Timelines are part of the published results; a quick run draws them aside.
    folder = RESULTS if not quick else Path(tempfile.mkdtemp(prefix="lbf-timelines-"))
    return _section(outcomes, folder, progress)


def _model(outcomes: Sequence[_Outcome]) -> Model:
    """The model's parameters, with LBF_FALL and LBF_ROUTE53_INTERVAL as the modes read them
    (every mode reads the same defaults)."""
    ran = [o for o in outcomes if not o.not_run] or [_Outcome(MODES[0], planned=0)]
    return Model(
        time_factor=TIME_FACTOR,
        propagation=PROPAGATION,
        ttl=TTL,
        route53_interval=ran[0].route53_interval,
        fall=ran[0].fall,
    )


def _section(outcomes: Sequence[_Outcome], folder: Path, progress: Progress) -> Section:
    section = Section(name="failover-modes", title="Failover by mode, at the defaults")
    model = _model(outcomes)
    section.details.append(
        "Per mode, a stand of its own: moto's server, 2 real HAProxy LBs (the project's "
        "haproxy.cfg answers `/health`), 3 real web servers, the real job started on a "
        "one-minute grid with the probe settings at their defaults (the bound is the one "
        "`status` prints for them). Clients resolve the active name through the Route 53 "
        f"stand-in with a caching resolver (LBF_TTL {TTL}, honoured) and send a request every "
        f"{CLIENT_EVERY:g} s on a new connection; in Elastic IP mode they go through the "
        f"address's stand-in ({EIP_ADDRESS}), and the LBs are private, probed through the "
        "prober function (an instance holding an Elastic IP has no other public address). "
        f"Route 53's data plane is {model.label()}. Each kill (SIGTERM to the HAProxy clients "
        "use) comes after a random wait (seed "
        f"{SEED}): to a random second of the controller's minute, or of a check interval with "
        "the controller stopped; with the failover pair, at least LBF_ROUTE53_INTERVAL x LBF_FALL "
        "after its last swap (the pair swaps at most that often, unless EC2 reports PRIMARY "
        "stopped). Times are from the moment the killed HAProxy has exited; *detection*, *answer* and *served* "
        "mean, per mode: "
        + "; ".join(
            f"{o.mode.title}: detection = {o.mode.detection}, answer = {o.mode.answer}"
            for o in outcomes
        )
        + "; served = the first request sent after the kill that succeeded."
    )
    section.details.append(with_defaults_note(model))
    for outcome in outcomes:
        _mode_part(section, outcome, model, folder, progress)
    section.data = {
        "settings": {
            "ttl": TTL,
            "propagation": PROPAGATION,
            "time_factor": TIME_FACTOR,
            "route53_interval": model.route53_interval,
            "seed": SEED,
            "client_every": CLIENT_EVERY,
        },
        "modes": {
            o.mode.key: {
                "bound": o.bound,
                "fall": o.fall,
                "kills": [asdict(k) for k in o.kills],
                "controller_errors": o.errors,
                "notices": o.notices,
                "stopped": o.stopped,
                "not_run": o.not_run,
            }
            for o in outcomes
        },
    }
    return section


def _mode_part(
    section: Section, outcome: _Outcome, model: Model, folder: Path, progress: Progress
) -> None:
    mode = outcome.mode
    if outcome.not_run:
        section.figures.append(
            Figure(f"{mode.title}: kills measured", "not run", met=False, note=outcome.not_run)
        )
        section.details.append(f"**{mode.title}**: not run: {outcome.not_run}")
        return
    section.figures += mode_figures(
        mode, outcome.kills, planned=outcome.planned, bound=outcome.bound, model=model
    )
    errors = sorted(set(outcome.errors))
    parts = [
        f"**{mode.title}** ("
        + (
            f"bound {outcome.bound:g} s"
            if mode.controller
            else f"Route 53's check time in the model {model.model_seconds:g} s"
        )
        + "):",
        table(
            ("#", "LB", "waited s", "s into the minute", "detection s", "answer s", "served s"),
            [_cells(k) for k in outcome.kills],
        ),
        (f"The series {outcome.stopped}. " if outcome.stopped else "")
        + f"Controller errors during the series: {len(outcome.errors)}"
        + (" (" + "; ".join(errors[:5]) + ")" if errors else "")
        + f". The controller's notices: {len(outcome.notices)}"
        + (" (" + "; ".join(sorted(set(outcome.notices))[:8]) + ")" if outcome.notices else ""),
    ]
    drawn = _draw(outcome, model, folder)
    if drawn is not None:
        parts.append(f"![{mode.title}: one failover's timeline]({drawn.name})")
        progress(f"{mode.key}: timeline in {drawn}")
    section.details += parts


def _draw(outcome: _Outcome, model: Model, folder: Path) -> Path | None:
    chosen = representative(outcome.kills)
    if chosen is None:
        return None
    trace = outcome.traces[outcome.kills.index(chosen)]
    mode = outcome.mode
    return draw(
        folder / f"failover-modes-{mode.key}.svg",
        title=f"{mode.title}: kill {chosen.number} of {chosen.lb}, the median client time "
        f"({chosen.served:.1f} s)",
        marks=marks_from(trace),
        note=model.label() if mode.route53_answers else "",
    )
