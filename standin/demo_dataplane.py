"""The last part of `make demo`: the failover the plain design cannot survive.

With the plain active record, only a running controller moves clients: a bad deploy, throttling,
or an impaired Route 53 control plane and a dead LB keeps its clients. Here a second cluster, on
the same moto and the same hosted zone (its own LBF_CLUSTER and LBF_DOMAIN, a subdomain), runs
with LBF_DNS_FAILOVER=route53: the active name is a Route 53 failover pair bound to the LBs'
health checks, and the LBs are published at their public addresses (loopback ones on the
stand-in), the only ones Route 53's checkers reach.

The steps: the controller keeps the pair; the controller is STOPPED; the PRIMARY's HAProxy is
killed; clients resolving through the Route 53 stand-in are moved by its checkers alone, while
moto's records stay as the controller left them; the controller comes back and matches Route 53
(the surviving LB becomes PRIMARY); the old LB recovers and does not take traffic back. Every
step checks its outcome with real requests through the address clients resolve. Figures are the
stand-in's model of Route 53 (standin/route53_dns.py), and are labelled so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import requests

from standin.aws import LocalAws
from standin.demo import FALL, LB_PORT, STEP_DEADLINE, TTL, Demo, StepFailed, Timeline
from standin.route53_checkers import (
    HTTP_CONNECT_SECONDS,
    HTTP_RESPONSE_SECONDS,
    MIN_TIMEOUT_SECONDS,
)
from standin.route53_dns import PLAIN, CachingResolver, ResolveError, Route53DataPlane

CLUSTER = "demo-pair"
DOMAIN = "pair.demo.example.com"  # in the demo's hosted zone: a subdomain per cluster
# Route 53's fast checks (10 s, LBF_ROUTE53_INTERVAL), every 10 x the stand-in's time factor.
ROUTE53_INTERVAL = 10
WEBS = ("127.0.1.41", "127.0.1.42")
LBS = (("lb1", "127.0.1.31"), ("lb2", "127.0.1.32"))
# How long the recovered LB is watched not taking traffic back, in Route 53 check intervals on
# top of the TTL: a failback would show in Route 53's answer within an interval of its checkers
# seeing the LB healthy again, and a client re-resolves at least once while it is watched.
HOLD_INTERVALS = 2
POLL = 0.05


@dataclass(frozen=True)
class PairRecord:
    """One record of the failover pair, as moto holds it (what the controller wrote)."""

    role: str  # PRIMARY or SECONDARY
    values: tuple[str, ...]
    health_check_id: str | None


def read_pair(aws: LocalAws, name: str) -> dict[str, PairRecord]:
    """The failover records of `name` in moto's zone, by role (empty for a plain record)."""
    found = aws.client("route53").list_resource_record_sets(
        HostedZoneId=aws.zone_id, StartRecordName=name + ".", StartRecordType="A"
    )["ResourceRecordSets"]
    pair: dict[str, PairRecord] = {}
    for item in found:
        if item["Name"].rstrip(".") == name and item["Type"] == "A" and "Failover" in item:
            values = tuple(r["Value"] for r in item.get("ResourceRecords", []))
            pair[item["Failover"]] = PairRecord(item["Failover"], values, item.get("HealthCheckId"))
    return pair


class ControllerStopped:
    """The second cluster's world and its steps; `moments` is the case's short timeline."""

    def __init__(self, world: Demo, plane: Route53DataPlane) -> None:
        self.world = world
        self.plane = plane
        self.name = world.settings.active_record_name
        self.moments: list[tuple[float, str]] = []
        self.killed: tuple[str, str] | None = None  # (name, public address) of the killed LB
        self.survivor: tuple[str, str] | None = None
        self.checks: dict[str, str] = {}  # LB name -> its Route 53 health check
        self.answer_moved = 0.0  # kill -> the stand-in answers the survivor
        self.client_moved = 0.0  # kill -> the first client request served through it

    @property
    def check_interval(self) -> float:
        """One Route 53 checker interval, in the stand-in's time."""
        return ROUTE53_INTERVAL * self.plane.checkers.time_factor

    def roles(self) -> tuple[tuple[str, str], tuple[str, str]]:
        """(name, public address) of the killed LB and of the one that took over."""
        if self.killed is None or self.survivor is None:
            raise StepFailed("no LB was killed yet")
        return self.killed, self.survivor

    def mark(self, what: str) -> float:
        now = time.monotonic()
        self.moments.append((now, what))
        return now

    def pair(self) -> dict[str, PairRecord]:
        return read_pair(self.world.aws, self.name)

    def public_address(self, name: str) -> str:
        address = self.world.lbs[name][1].public_address
        if address is None:
            raise StepFailed(f"{name} has no public address")
        return address

    def answer(self) -> tuple[str, ...]:
        """What the stand-in answers now (no client cache): Route 53's own view."""
        assert self.world.clients is not None
        try:
            reply = self.world.clients.query(self.name)
        except ResolveError:
            return ()
        return tuple(str(rr.rdata) for rr in reply.rr)

    def client_request(self) -> str | None:
        """One client request through the address its resolver gives (cached for the TTL):
        the address that served it, or None when it failed."""
        address = self.world.resolved_address()
        if address is None:
            return None
        try:
            response = requests.get(f"http://{address}:{LB_PORT}/", timeout=1)
        except requests.RequestException:
            return None
        return address if response.status_code == 200 else None

    def propagated(self) -> dict[str, PairRecord]:
        """The pair as Route 53's name servers answer it now: the records the stand-in's model
        of propagation has let through, by role."""
        visible = self.plane.visible(time.monotonic())
        return {
            r.failover: PairRecord(r.failover, r.values, r.health_check_id)
            for r in visible
            if r.name == self.name and r.kind == "A" and r.failover != PLAIN
        }

    def in_sync(self) -> bool:
        """Whether the name servers answer from the pair moto holds (Route 53's INSYNC)."""
        pair = self.pair()
        return bool(pair) and self.propagated() == pair

    def checkers_judge(self, name: str, *, healthy: bool) -> bool:
        """Whether Route 53's checkers (the stand-in's) hold `name`'s check healthy or not, every
        region's last probe agreeing."""
        check = self.checks[name]
        seen = self.plane.checkers.observations(check)
        agree = bool(seen) and all(o.success is healthy for o in seen)
        return agree and self.plane.checkers.healthy(check) is healthy

    # --- the steps -----------------------------------------------------------------------------

    def step_pair(self) -> None:
        world = self.world
        for address in WEBS:
            world.add_web(address)
        for name, address in LBS:
            world.add_lb(name, address)
        world.start_controller()
        wanted = world.backend_list()
        world.wait_for("both LBs serve the list", lambda: len(world.lbs_serving(wanted)) == 2)
        world.wait_for(
            f"{self.name} is a failover pair, each record with its LB's health check",
            self._pair_checked,
        )
        # Route 53's name servers answer by the checks only once the checked pair reached them.
        world.wait_for("the checked pair reaches Route 53's name servers", self.in_sync)
        world.wait_for(
            "Route 53's checkers judge both LBs healthy",
            lambda: all(self.checkers_judge(name, healthy=True) for name, _ in LBS),
        )
        world.wait_for(
            "clients reach both web servers through the name they resolve",
            lambda: world.served_by_active() == set(world.healthy_webs()),
        )
        pair = self.pair()
        world.check("pair", " / ".join(self._shown(pair[role]) for role in pair))

    def _pair_checked(self) -> bool:
        pair = self.pair()
        if set(pair) != {"PRIMARY", "SECONDARY"}:
            return False
        by_address = {self.public_address(name): name for name, _ in LBS}
        checks: dict[str, str] = {}
        for record in pair.values():
            name = by_address.get(record.values[0]) if len(record.values) == 1 else None
            if name is None or record.health_check_id is None:
                return False
            checks[name] = record.health_check_id
        if len(checks) != 2:
            return False
        self.checks = checks
        return True

    def _shown(self, record: PairRecord) -> str:
        where = ", ".join(f"{self.world.lb_at(v) or 'no LB'} {v}" for v in record.values)
        check = record.health_check_id or "no check"
        return f"{record.role} {where} (check {check})"

    def step_kill_without_controller(self) -> None:
        world = self.world
        world.stop_controller()
        self.mark("controller stopped: no run from now on")
        world.timeline.add("world", "controller STOPPED: no scheduled run from now on")
        before = self.pair()
        primary = before["PRIMARY"].values[0]
        dead, survivor = world.lb_at(primary), world.lb_at(before["SECONDARY"].values[0])
        if dead is None or survivor is None or dead == survivor:
            raise StepFailed(f"the pair does not name two LBs: {before}")
        self.killed = (dead, primary)
        self.survivor = (survivor, self.public_address(survivor))
        world.lbs[dead][1].stop()
        killed = self.mark(f"killed HAProxy of PRIMARY {dead} ({primary})")
        world.timeline.add("world", f"killed HAProxy of the PRIMARY, {dead} ({primary})")
        self._watch_clients_move(killed)
        if self.pair() != before:
            raise StepFailed("moto's records changed while no controller ran")
        world.wait_for(
            "clients reach both web servers through the SECONDARY",
            lambda: world.served_by_active() == set(world.healthy_webs()),
        )
        world.check(
            "dataplane",
            f"clients moved to {survivor} by Route 53's checkers alone in "
            f"{self.client_moved:.2f} s; moto's records unchanged (PRIMARY is still {dead})",
        )

    def _watch_clients_move(self, killed: float) -> None:
        """Until the stand-in answers the survivor and a client is served through it."""
        assert self.survivor is not None
        name, address = self.survivor
        answered = served = None
        deadline = killed + STEP_DEADLINE
        while (answered is None or served is None) and time.monotonic() < deadline:
            if answered is None and self.answer() == (address,):
                answered = self.mark(f"the stand-in answers SECONDARY {name} ({address})")
                self.world.timeline.add("route53", f"{self.name} answers {name} ({address})")
            if served is None and self.client_request() == address:
                served = self.mark(f"first client request served through {name}")
                self.world.timeline.add("client", f"served through {name} ({address})")
            time.sleep(POLL)
        if answered is None or served is None:
            raise StepFailed(f"clients were not moved to {name} without a controller")
        self.answer_moved, self.client_moved = answered - killed, served - killed

    def step_controller_back(self) -> None:
        world = self.world
        (dead, _), (survivor, address) = self.roles()
        world.start_controller()
        self.mark("controller back")
        world.timeline.add("world", "controller back: scheduled runs again")
        world.wait_for(
            f"the controller makes {survivor} PRIMARY, matching Route 53",
            lambda: self.pair()["PRIMARY"].values == (address,),
        )
        self.mark(f"PRIMARY is {survivor}: the controller matched Route 53")
        # Until the change reaches Route 53's name servers they answer from the old pair, where a
        # recovered old PRIMARY would take the traffic back: an operator waits for INSYNC.
        world.wait_for(
            f"the new pair reaches Route 53's name servers ({self.plane.propagation_seconds:g} s)",
            self.in_sync,
        )
        self.mark("the new pair answered by Route 53's name servers (INSYNC)")
        world.wait_for(
            "clients reach both web servers through the new PRIMARY",
            lambda: world.served_by_active() == set(world.healthy_webs()),
        )
        world.check("matched", f"PRIMARY {survivor} ({address}); {dead} is not eligible")

    def step_old_lb_recovers(self) -> None:
        world = self.world
        (dead, dead_address), (survivor, address) = self.roles()
        # A restarted HAProxy on the same instance: its last applied list is still on disk.
        world.lbs[dead][1].start()
        self.mark(f"{dead}'s HAProxy back")
        world.timeline.add("world", f"{dead}'s HAProxy back on {dead_address}")
        world.wait_for(
            f"Route 53's checkers judge {dead} healthy again",
            lambda: self.checkers_judge(dead, healthy=True),
        )
        self.mark(f"Route 53's checkers judge {dead} healthy")
        instance_id = world.lbs[dead][0]
        world.wait_for(
            f"the controller judges {dead} healthy again",
            lambda: world.aws.tags(instance_id).get("lbf:health") == "healthy",
        )
        self.mark(f"the controller judges {dead} healthy")
        world.wait_for(
            f"the controller makes {dead} SECONDARY again, with its check",
            lambda: (
                self.pair()["SECONDARY"]
                == PairRecord("SECONDARY", (dead_address,), self.checks[dead])
            ),
        )
        self.mark(f"SECONDARY is {dead} again: PRIMARY stays {survivor}")
        held = self._hold(address)
        self.mark(f"held {held:.1f} s: every answer and every request {survivor}")
        pair = self.pair()
        if pair["PRIMARY"].values != (address,):
            raise StepFailed(f"PRIMARY moved off {survivor}: {pair['PRIMARY']}")
        world.check("no return", f"{dead} healthy, {survivor} keeps the traffic for {held:.1f} s")

    def _hold(self, address: str) -> float:
        """Watch answers and client requests for a while: each must be the survivor's."""
        assert self.world.clients is not None
        self.world.clients.forget()  # a cached answer would hide a failback
        started = time.monotonic()
        hold = TTL + HOLD_INTERVALS * self.check_interval
        while time.monotonic() < started + hold:
            answer = self.answer()
            if answer != (address,):
                raise StepFailed(f"the stand-in answers {answer}: the old LB took traffic back")
            served = self.client_request()
            if served != address:
                raise StepFailed(f"a client request was not served through {address}: {served}")
            time.sleep(POLL)
        return time.monotonic() - started

    # --- what it prints ------------------------------------------------------------------------

    def model_bound(self) -> float:
        """The model's latest kill -> answer moved: FailureThreshold probes, one interval apart,
        the first within an interval of the kill, the last taking at most a probe's time."""
        factor = self.plane.checkers.time_factor
        probe = max(MIN_TIMEOUT_SECONDS, factor * HTTP_CONNECT_SECONDS) + max(
            MIN_TIMEOUT_SECONDS, factor * HTTP_RESPONSE_SECONDS
        )
        return FALL * self.check_interval + probe

    def summary(self) -> str:
        killed = next(t for t, what in self.moments if what.startswith("killed"))
        bound = self.model_bound()

        def held(measured: float, limit: float) -> str:
            verdict = "held" if measured <= limit else "NOT held"
            return f"{measured:.2f} s (model: at most {limit:.1f} s, {verdict})"

        lines = [
            "",
            f"failover with the controller stopped ({self.name}, LBF_DNS_FAILOVER=route53):",
            *(f"{t - killed:8.2f}s  {what}" for t, what in self.moments),
            f"kill -> the answer moved: {held(self.answer_moved, bound)}",
            f"kill -> first client served: {held(self.client_moved, bound + TTL)}",
            f"model: a check turns unhealthy after FailureThreshold ({FALL}) failed probes, "
            f"RequestInterval {ROUTE53_INTERVAL} s apart (here {self.check_interval:g} s), each "
            f"within a probe's time limits; a client keeps its cached answer for the TTL ({TTL} s)",
            f"({self.plane.model_label()})",
        ]
        return "\n".join(lines)


def run_part(
    aws: LocalAws, plane: Route53DataPlane, workdir: Path, timeline: Timeline
) -> int | None:
    """The part's steps; the number that held, or None when one did not (printed)."""
    steps = [
        "step_pair",
        "step_kill_without_controller",
        "step_controller_back",
        "step_old_lb_recovers",
    ]
    timeline.add("setup", f"cluster {CLUSTER}, domain {DOMAIN}: LBF_DNS_FAILOVER=route53")
    world = Demo(
        aws,
        workdir,
        timeline,
        None,
        clients=CachingResolver(plane.address, plane.port),
        cluster=CLUSTER,
        domain=DOMAIN,
        extra={
            "LBF_DNS_FAILOVER": "route53",
            "LBF_LB_ADDRESS": "public",
            "LBF_ROUTE53_INTERVAL": str(ROUTE53_INTERVAL),
        },
    )
    case = ControllerStopped(world, plane)
    try:
        for step in steps:
            getattr(case, step)()
        # Read while the LBs still run: the status shows Route 53's live view of their checks.
        status = world.status()
    except StepFailed as exc:
        timeline.add("FAILED", str(exc))
        return None
    finally:
        world.stop()
    print(case.summary())
    print("\nwhat `python -m chalicelib status` shows now for this cluster:\n")
    print(status)
    return len(steps)
