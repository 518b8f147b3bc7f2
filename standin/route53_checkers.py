"""Route 53's health checkers, modelled on loopback: the stand-in's judgement of each health check.

This is the stand-in's model of Route 53, not AWS's own: figures measured through it show how the
project behaves against the documented rules below, not how fast AWS is. Every Route 53 duration
(the request interval, the probe timeouts) is multiplied by `time_factor`, so that tests and the
demo need not wait 90 s for three 30 s checks; whatever prints a figure states the factor.

The rules modelled, from Route 53's developer guide ("How Amazon Route 53 determines whether a
health check is healthy"):
- a checker in each of the check's regions (Route 53's eight by default) probes its
  IPAddress:Port every RequestInterval (10 or 30 s); on AWS they do not coordinate, here they
  probe in the same tick, which keeps counts exact;
- HTTP and HTTPS: a TCP connection within 4 s, then a 2xx or 3xx status within 2 s of connecting
  (HTTPS certificates are not validated); TCP: a connection within 10 s;
- each checker turns unhealthy after FailureThreshold failures in a row and healthy after as many
  successes in a row;
- the check is healthy while more than 18% of the checkers report it healthy;
- a check new to Route 53 counts as healthy until there is enough data; a disabled check counts as
  healthy; an inverted one is reported the other way round.

Only loopback addresses (127.0.0.0/8) are ever probed: a check on any other address (moto invents
public addresses outside it), or on a name, is never probed and stays "no data" (healthy, as a new
check is), and `not_probed()` says why. Types other than HTTP, HTTPS and TCP are not modelled and
are treated the same way.
"""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from moto.core.responses import ActionResult
from moto.route53 import responses as route53_responses

log = logging.getLogger(__name__)

# The regions Route 53 checks from when a check names none (its HealthCheckRegion values).
CHECKER_REGIONS = (
    "us-east-1",
    "us-west-1",
    "us-west-2",
    "eu-west-1",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-northeast-1",
    "sa-east-1",
)
# Route 53 counts a check healthy while more than this share of its checkers report it healthy.
HEALTHY_SHARE = 0.18
HTTP_CONNECT_SECONDS = 4.0
HTTP_RESPONSE_SECONDS = 2.0
TCP_CONNECT_SECONDS = 10.0
# Scaled timeouts never go below this: on a loaded test machine a loopback answer can take tens
# of milliseconds, and a probe failing for that would be the stand-in's fault, not the endpoint's.
MIN_TIMEOUT_SECONDS = 0.5
PROBED_TYPES = ("HTTP", "HTTPS", "TCP")
USER_AGENT = "Amazon-Route53-Health-Check-Service (lb-failover stand-in)"


@dataclass(frozen=True)
class CheckConfig:
    """One health check's configuration as Route 53's API lists it."""

    health_check_id: str
    kind: str
    address: str | None
    port: int
    resource_path: str
    request_interval: int
    failure_threshold: int
    inverted: bool = False
    disabled: bool = False
    regions: tuple[str, ...] = CHECKER_REGIONS

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> CheckConfig:
        config = item.get("HealthCheckConfig", {})
        kind = str(config.get("Type", ""))
        default_port = 443 if kind.startswith("HTTPS") else 80
        return cls(
            health_check_id=str(item["Id"]),
            kind=kind,
            address=config.get("IPAddress"),
            port=int(config.get("Port") or default_port),
            resource_path=str(config.get("ResourcePath") or "/"),
            request_interval=int(config.get("RequestInterval") or 30),
            failure_threshold=int(config.get("FailureThreshold") or 3),
            inverted=bool(config.get("Inverted", False)),
            disabled=bool(config.get("Disabled", False)),
            regions=tuple(config.get("Regions") or CHECKER_REGIONS),
        )

    def not_probed_reason(self) -> str | None:
        """Why the stand-in never probes this check, or None when it does."""
        if self.kind not in PROBED_TYPES:
            return f"type {self.kind} is not modelled by the stand-in"
        if self.address is None:
            return "the stand-in resolves no names for checks (it has no IPAddress)"
        try:
            loopback = ipaddress.ip_address(self.address) in ipaddress.ip_network("127.0.0.0/8")
        except ValueError:
            loopback = False
        if not loopback:
            return f"{self.address} is outside 127.0.0.0/8: the stand-in sends no traffic there"
        return None


@dataclass(frozen=True)
class Observation:
    """One checker's report of one probe, worded as Route 53's StatusReport."""

    region: str
    success: bool
    status: str
    checked_at: float  # seconds since the epoch


@dataclass
class _Checker:
    """One region's checker: its verdict (None: no data yet) and its current run of results."""

    verdict: bool | None = None
    run_success: bool = True
    run_length: int = 0
    last: Observation | None = None

    def record(self, observation: Observation, threshold: int) -> None:
        if self.run_length and observation.success == self.run_success:
            self.run_length += 1
        else:
            self.run_success, self.run_length = observation.success, 1
        if self.run_length >= threshold:
            self.verdict = self.run_success
        self.last = observation


@dataclass
class CheckJudgement:
    """One check as Route 53 judges it, from its checkers' reports."""

    config: CheckConfig
    checkers: dict[str, _Checker] = field(default_factory=dict)

    def record(self, observation: Observation) -> None:
        checker = self.checkers.setdefault(observation.region, _Checker())
        checker.record(observation, self.config.failure_threshold)

    @property
    def has_data(self) -> bool:
        return any(c.verdict is not None for c in self.checkers.values())

    @property
    def healthy(self) -> bool:
        if self.config.disabled or not self.has_data:
            return True
        verdicts = [c.verdict is not False for c in self.checkers.values()]
        healthy = sum(verdicts) / len(verdicts) > HEALTHY_SHARE
        return healthy != self.config.inverted

    def observations(self) -> tuple[Observation, ...]:
        return tuple(c.last for c in self.checkers.values() if c.last is not None)


Probe = Callable[[CheckConfig, float], tuple[bool, str]]


def probe(config: CheckConfig, time_factor: float) -> tuple[bool, str]:
    """One checker's probe of a loopback endpoint: (success, Route 53's wording of the result)."""
    assert config.address is not None
    connect = max(MIN_TIMEOUT_SECONDS, time_factor * HTTP_CONNECT_SECONDS)
    if config.kind == "TCP":
        try:
            timeout = max(MIN_TIMEOUT_SECONDS, time_factor * TCP_CONNECT_SECONDS)
            socket.create_connection((config.address, config.port), timeout=timeout).close()
        except OSError as exc:
            return False, f"Failure: TCP connection failed: {exc.strerror or exc}"
        return True, "Success: TCP connection established"
    if config.kind == "HTTPS":
        # Route 53 does not validate certificates (an IP address has no name to match anyway).
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            config.address, config.port, timeout=connect, context=context
        )
    else:
        connection = http.client.HTTPConnection(config.address, config.port, timeout=connect)
    return _http_status(connection, config, time_factor)


def _http_status(
    connection: http.client.HTTPConnection, config: CheckConfig, time_factor: float
) -> tuple[bool, str]:
    try:
        connection.connect()
    except OSError as exc:
        return False, f"Failure: Connection failed: {exc.strerror or exc}"
    try:
        assert connection.sock is not None
        connection.sock.settimeout(max(MIN_TIMEOUT_SECONDS, time_factor * HTTP_RESPONSE_SECONDS))
        connection.request("GET", config.resource_path, headers={"User-Agent": USER_AGENT})
        response = connection.getresponse()
        status, reason = response.status, response.reason
    except (OSError, http.client.HTTPException) as exc:
        return False, f"Failure: No HTTP status within the time limit: {exc}"
    finally:
        connection.close()
    wording = f"HTTP Status Code {status}, {reason}"
    if 200 <= status < 400:
        return True, f"Success: {wording}"
    return False, f"Failure: {wording}"


class Route53Checkers:
    """The checkers of every health check moto holds, and their judgement.

    `refresh()` reads the checks, `tick(now)` probes the checks that are due at `now` (monotonic
    seconds); `start()` runs both in a thread on the real clock, and tests call them directly.
    """

    def __init__(
        self,
        route53: Any,
        *,
        time_factor: float = 1.0,
        probe_function: Probe = probe,
        wall_clock: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if time_factor <= 0:
            raise ValueError("time_factor must be positive")
        self.time_factor = time_factor
        self._route53 = route53
        self._probe = probe_function
        self._wall_clock = wall_clock
        self._clock = clock
        self._lock = threading.Lock()
        self._judgements: dict[str, CheckJudgement] = {}
        self._due: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="route53-checker")

    def interval(self, config: CheckConfig) -> float:
        """Seconds between one checker's probes, in the stand-in's time."""
        return config.request_interval * self.time_factor

    def refresh(self) -> None:
        """Take up the checks moto holds now: new ones start with no data, deleted ones go."""
        found: dict[str, CheckConfig] = {}
        for page in self._route53.get_paginator("list_health_checks").paginate():
            for item in page.get("HealthChecks", []):
                config = CheckConfig.from_api(item)
                found[config.health_check_id] = config
        with self._lock:
            for health_check_id in set(self._judgements) - set(found):
                del self._judgements[health_check_id]
                self._due.pop(health_check_id, None)
            for health_check_id, config in found.items():
                judgement = self._judgements.get(health_check_id)
                if judgement is None:
                    self._judgements[health_check_id] = CheckJudgement(config)
                    reason = config.not_probed_reason()
                    if reason is not None:
                        log.warning("health check %s is never probed: %s", health_check_id, reason)
                else:
                    # An updated address or path is probed from the next tick on; the checkers
                    # keep their verdicts, as Route 53's do.
                    judgement.config = config

    def tick(self, now: float) -> int:
        """Probe, from every region, each check that is due at `now`; returns the probes sent."""
        with self._lock:
            due = [
                j.config
                for j in self._judgements.values()
                if j.config.not_probed_reason() is None
                and self._due.get(j.config.health_check_id, now) <= now
            ]
            for config in due:
                self._due[config.health_check_id] = now + self.interval(config)
        jobs = [
            (config, region, self._pool.submit(self._probe, config, self.time_factor))
            for config in due
            for region in config.regions
        ]
        for config, region, future in jobs:
            success, status = future.result()
            observation = Observation(region, success, status, self._wall_clock())
            with self._lock:
                judgement = self._judgements.get(config.health_check_id)
                if judgement is not None:
                    judgement.record(observation)
        return len(jobs)

    def next_due(self) -> float | None:
        with self._lock:
            return min(self._due.values(), default=None)

    def healthy(self, health_check_id: str) -> bool:
        """Route 53's view: unknown checks (not read yet, or deleted) count as healthy, as a
        new check does; a record naming a deleted check is Route 53's undefined case."""
        with self._lock:
            judgement = self._judgements.get(health_check_id)
            return judgement is None or judgement.healthy

    def observations(self, health_check_id: str) -> tuple[Observation, ...]:
        with self._lock:
            judgement = self._judgements.get(health_check_id)
            return () if judgement is None else judgement.observations()

    def not_probed(self) -> dict[str, str]:
        """The checks the stand-in never probes, and why."""
        with self._lock:
            return {
                health_check_id: reason
                for health_check_id, j in self._judgements.items()
                if (reason := j.config.not_probed_reason()) is not None
            }

    def start(self, *, refresh_every: float = 0.5) -> Route53Checkers:
        self.refresh()
        self._thread = threading.Thread(
            target=self._run, args=(refresh_every,), daemon=True, name="route53-checkers"
        )
        self._thread.start()
        return self

    def _run(self, refresh_every: float) -> None:
        refreshed = self._clock()
        while not self._stop.is_set():
            now = self._clock()
            try:
                if now - refreshed >= refresh_every:
                    refreshed = now
                    self.refresh()
                self.tick(now)
            except Exception:  # a moto hiccup must not stop the checkers for good
                log.exception("the stand-in's Route 53 checkers failed a round")
            next_due = self.next_due()
            wait = refresh_every if next_due is None else next_due - self._clock()
            self._stop.wait(max(0.01, min(wait, refresh_every)))

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self._pool.shutdown(wait=True)


def _status_response(checkers: Route53Checkers, health_check_id: str) -> dict[str, Any]:
    return {
        "HealthCheckObservations": [
            {
                "Region": observation.region,
                "IPAddress": "127.0.0.1",
                "StatusReport": {
                    "Status": observation.status,
                    "CheckedTime": dt.datetime.fromtimestamp(observation.checked_at, dt.UTC),
                },
            }
            for observation in checkers.observations(health_check_id)
        ]
    }


@contextmanager
def route53_status_from(checkers: Route53Checkers) -> Iterator[None]:
    """moto's GetHealthCheckStatus answers the stand-in checkers' last reports.

    moto 5.2.5 answers a fixed "Success" for every check. The moto server runs in this process, so
    patching its response class reaches it (as standin/moto_fixes.py does for Route 53 batches). A
    check without data yet has no reports, as a check new to Route 53 has none.
    """
    response_class = route53_responses.Route53
    original = response_class.get_health_check_status

    def get_health_check_status(response: Any) -> ActionResult:
        health_check_id = response._get_param("HealthCheckId")
        response.backend.get_health_check(health_check_id)  # NoSuchHealthCheck as before
        return ActionResult(_status_response(checkers, health_check_id))

    response_class.get_health_check_status = get_health_check_status  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        response_class.get_health_check_status = original  # type: ignore[method-assign]
