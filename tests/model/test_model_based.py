"""A model-based test: the reconcile job against a world that keeps changing under it.

Hypothesis drives a state machine over the in-memory AWS (tests/kit/cloud.py) and the real job loop
(the pure core plus observe/apply, all in memory with a fake clock): load balancers and web servers
die, recover, flap, stop, start with a new IP, drain, get a typo in a tag (running or stopped, so
they are skipped), appear and are terminated; LBF_TTL changes; AWS calls fail, or are slow against
the invocation's time left; Route 53 rejects for good or loses an answer; the prober's own network
fails; runs overlap and are killed mid-apply; an operator edits the active record. The model keeps
its own account of rise/fall damping from the probe results the job actually got, and after every step the SPEC's promises are checked:

- no backend list pushed or published is empty, and none holds anything but `address:port`
  entries of web servers in their one written form, with the checksum of exactly that text;
- no list is pushed twice to an LB that took it (or is still taking it);
- the active record holds one address, and every record the controller writes points at an LB;
- the record never leaves an LB the damping says is healthy while it runs, is not draining and
  the record holds its current address (no false failover), and never moves to an LB that is
  down, draining, or that damping says failed;
- the active record never stays on a stopped or unhealthy LB while an eligible LB exists; a
  running, healthy skipped LB never loses its record or its place (SPEC: "Where two rules meet");
- no run removes more than LBF_MAX_POOL_DROP percent of the list it started with for failed
  probes, whatever number of rounds it takes;
- after a run that met no fault: every record has the TTL of LBF_TTL; every verdict is what
  damping says (so a prober-side fault, a
  round where every probe fails, changes none); the active record points at an eligible LB
  whenever there is one (or at an LB with no verdict yet, never a reason to move), and never at a
  draining LB while another is eligible;
- no round starts that cannot finish its probes and writes in the invocation's time left, and no
  run outlasts that time, however slow AWS is;
- once faults stop, records, tags and parameters converge within a few runs, and then a run
  writes nothing;
- no notice is sent twice for one condition or one move: a failover notice again only after the
  same move was made again, a condition's notice again only after it cleared (or after a run that
  could not store what it notified). Route 53 here also rejects batches for good (a CNAME at the
  active name, a name outside the zone) and loses answers (applied, then the retry is refused).

A second machine (PairMachine, at the end) runs the same world, faults and promises with
LBF_DNS_FAILOVER=route53, plus Route 53's own vantage and the controller absent for minutes; its
promises are in its docstring.

CI runs a fixed, bounded set of examples (derandomized, no example database): 400 of the plain
machine, 40 of the pair's. `make soak` sets LBTEST_SOAK=1 for many more, longer ones.
"""

from __future__ import annotations

import hashlib
import ipaddress
import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from bench.calls import is_write
from chalicelib import jobs
from chalicelib.core import backends as backend_lists
from chalicelib.core import held_drop, timing
from chalicelib.core.dns import RecordChange, frozen_lbs, is_eligible
from chalicelib.core.failover_pair import PRIMARY, SECONDARY, SWAP_HELD, VANTAGES_DISAGREE
from chalicelib.core.inventory import natural_key
from chalicelib.core.model import Instance, ProbeResult, ProbeTarget, Record
from chalicelib.errors import AwsError, ChangeRejected
from chalicelib.report import Report
from tests.kit.cloud import FAKE_CLOUD_ENV, FakeCloud, Killed, kill_at_write, record_key
from tests.kit.settings import settings as config_from  # hypothesis has its own `settings`
from tests.kit.slow_aws import SlowAws

SOAK = os.environ.get("LBTEST_SOAK", "") not in ("", "0")
MAX_EXAMPLES = 5000 if SOAK else 400
STEPS = 200 if SOAK else 60

DOMAIN = "prod.example.com"
ACTIVE = f"lb.{DOMAIN}"
BACKENDS = "/lbf/demo/backends"
LBS = "/lbf/demo/lbs"
NOTICES = "/lbf/demo/notices"
FOREIGN = "198.51.100.77"  # an address no instance ever has
CONFIG = config_from(FAKE_CLOUD_ENV, probe_rounds=3)
RISE, FALL = CONFIG.rise, CONFIG.fall
TTLS = [CONFIG.ttl, 10, 300]
# Faults a run can meet. "prober-network" is not an AWS fault: every probe of the run fails.
FAULTS = [
    "route53-change",
    "route53-read",
    "ec2-describe",
    "ec2-tags",
    "ssm-read",
    "ssm-list-commands",
    "ssm-send",
    "push-failed",
    "push-timed-out",
    "prober-network",
]
BAD_ENDINGS = frozenset({"Failed", "TimedOut", "Cancelled", "Undeliverable"})


def is_a(kind: str) -> bool:
    """An A record's key: the in-memory Route 53 keys a failover record by type and SetIdentifier."""
    return kind.split(" ")[0] == "A"


def answered(change: RecordChange) -> bool:
    """A change of what clients are given at the active name while all is well: the plain record,
    or the pair's PRIMARY (never its SECONDARY, which Route 53 answers only when PRIMARY fails)."""
    return change.record.name == ACTIVE and change.record.failover != SECONDARY


class RecordingProber:
    """The fake prober, reporting every round's results to the model; during a prober-network
    fault every probe fails at once."""

    def __init__(self, machine: ClusterMachine) -> None:
        self.machine = machine

    def probe_round(self, targets: Sequence[ProbeTarget]) -> dict[str, ProbeResult]:
        cloud = self.machine.cloud
        if self.machine.blackout:
            cloud.prober.rounds.append(cloud.clock.now())
            cloud.clock.advance(cloud.prober.timeout)
            results = {t.key: ProbeResult(ok=False, detail="timeout", seconds=2.0) for t in targets}
        else:
            results = cloud.prober.probe_round(targets)
        self.machine.observe_round(cloud.clock.now(), results)
        return results


class WatchedRecords:
    """The fake Route 53, noting how each outermost change batch ended (a run that overlaps
    another runs inside the other's change call)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.depth = 0
        self.outermost: list[str] = []
        # Called after each batch Route 53 applied: what clients could see between two batches.
        self.after: Callable[[], None] | None = None

    def read(self, domain: str) -> tuple[Record, ...]:
        return self.inner.read(domain)  # type: ignore[no-any-return]

    def change_status(self, change_id: str) -> str:
        return self.inner.change_status(change_id)  # type: ignore[no-any-return]

    def change(self, changes: Sequence[RecordChange], comment: str) -> str:
        self.depth += 1
        outcome = "error"
        try:
            result: str = self.inner.change(changes, comment)
            outcome = "ok"
            return result
        except ChangeRejected:
            outcome = "stale"
            raise
        finally:
            self.depth -= 1
            if self.depth == 0:
                self.outermost.append(outcome)
            if self.after is not None:  # a lost answer was applied too
                self.after()


class NoticeLog:
    """The fake SNS, noting for each notice where in the calls and the record history it went
    out, and what `<prefix>/notices` held then."""

    def __init__(self, machine: ClusterMachine) -> None:
        self.machine = machine
        # (calls so far, batches so far, message, <prefix>/notices as it was)
        self.sent: list[tuple[int, int, str, str]] = []

    def publish(self, subject: str, message: str) -> None:
        cloud = self.machine.cloud
        cloud.sns.publish(subject, message)
        stored = cloud.ssm.parameters.get(NOTICES, "")
        self.sent.append((len(cloud.calls.log), len(cloud.route53.history), message, stored))


class Damping:
    """The model's own account of one target's verdict, from the SPEC's words: RISE equal good
    results in a row make it healthy, FALL bad ones unhealthy. None: not known to the model
    (after a fault a run may have persisted any part of its counts, so it starts afresh).

    Each verdict is kept with the number of record batches applied before it, not the time: a
    round whose probes end when the next round starts shares its instant with that round, and a
    batch the first round decided must be judged by the verdict it was decided on."""

    def __init__(self, batches: Callable[[], int]) -> None:
        self._batches = batches  # how many record batches have been applied so far
        self.ok: bool | None = None
        self.count = 0
        self.verdict: str | None = None
        self.timeline: list[tuple[int, str | None]] = []
        # When its probes began to fail, every one since (None: the last one answered). Kept when
        # the counts are forgotten: the failures happened whatever the job persisted of them.
        self.failing_since: float | None = None

    def forget(self) -> None:
        self.ok, self.count, self.verdict = None, 0, None
        self.timeline.append((self._batches(), None))

    def fold(self, now: float, ok: bool) -> None:
        if ok:
            self.failing_since = None
        elif self.failing_since is None:
            self.failing_since = now
        self.count = self.count + 1 if self.ok == ok else 1
        self.ok = ok
        if ok and self.count >= RISE:
            self.verdict = "healthy"
        elif not ok and self.count >= FALL:
            self.verdict = "unhealthy"
        self.timeline.append((self._batches(), self.verdict))

    def before_batch(self, index: int) -> str | None:
        """The verdict when the record batch `index` (from 0) was applied."""
        verdict = None
        for batches, value in self.timeline:
            if batches > index:
                break
            verdict = value
        return verdict


class ClusterMachine(RuleBasedStateMachine):
    """The world, the faults, and the promises."""

    def __init__(self) -> None:
        super().__init__()
        self.cloud = FakeCloud()
        self.records = WatchedRecords(self.cloud.route53)
        self.notices = NoticeLog(self)
        self.services = replace(
            self.cloud.services(records=self.records, notifier=self.notices),
            prober=RecordingProber(self),
        )
        self.unstored: list[int] = []  # calls-log marks of runs that may not have stored notices
        self.next_lb = 11
        self.next_web = 21
        self.owner: dict[str, str] = {}  # every address ever given out -> its instance
        self.roles: dict[str, str] = {}
        self.draining: set[str] = set()
        self.typo: set[str] = set()  # web servers whose lbf:port does not parse
        # Instances with an operator tag that does not parse (skipped): the tag and its value
        # before the typo, to put back when the operator fixes it.
        self.skipped: dict[str, tuple[str, str | None]] = {}
        self.config = CONFIG
        self.flapping: set[str] = set()  # addresses whose probe alternates each round
        self.flap_phase = 0
        self.blackout = False
        self.damping: dict[str, Damping] = {}
        self.pool_latest: dict[str, ProbeResult] = {}
        self.overlapped: set[str] = set()  # pushes sent by overlapping runs
        self.last_report: Report | None = None
        self.clean_run = False  # the last step was a run that met no fault
        self.checked_batches = 0
        self.checked_calls = 0
        self.cloud.prober.dead_when = self._flaps

    # --- the world ------------------------------------------------------------------------------

    def active_value(self) -> tuple[str, ...] | None:
        """What the active name gives clients while all is well: the plain record's values (the
        pair's machine below: its PRIMARY's)."""
        return self.cloud.route53.value(ACTIVE)

    def settling(self) -> None:
        """The world is about to settle: what else must stop first (the pair's machine below)."""

    def held(self) -> bool:
        """The last run held a move it will make once its time comes (the pair's swap limit)."""
        return False

    def kept_by_the_swap_limit(
        self, report: Report, holder: Instance, eligible: Sequence[Instance]
    ) -> bool:
        """Whether the last run kept the active role where it is only because the failover pair
        swaps at most once per LBF_ROUTE53_INTERVAL x LBF_FALL (the pair's machine below)."""
        return False

    def point_active_at(self, address: str) -> None:
        """An operator's edit of the active name in the console."""
        self.cloud.route53.records[(ACTIVE, "A")] = Record(ACTIVE, "A", self.config.ttl, (address,))

    def _flaps(self, address: str, now: float) -> bool:
        if address not in self.flapping:
            return False
        self.flap_phase += 1
        return self.flap_phase % 2 == 0

    def _ids(self, role: str, *, running: bool | None = None) -> list[str]:
        ids = [i for i, r in self.roles.items() if r == role]
        if running is not None:
            ids = [i for i in ids if (self.state(i) == "running") is running]
        return ids

    def state(self, instance_id: str) -> str:
        return self.cloud.ec2.instances[instance_id].state

    def address(self, instance_id: str) -> str:
        return self.cloud.ec2.instances[instance_id].private_ip or ""

    def _new_address(self, role: str) -> str:
        if role == "lb":
            address, self.next_lb = f"127.0.0.{self.next_lb}", self.next_lb + 1
        else:
            address, self.next_web = f"127.0.1.{self.next_web}", self.next_web + 1
        return address

    def _add(self, role: str, tags: dict[str, str] | None = None) -> str:
        address = self._new_address(role)
        instance_id = self.cloud.ec2.add(role, address, tags=tags)
        self.owner[address] = instance_id
        self.roles[instance_id] = role
        self.damping[instance_id] = Damping(lambda: len(self.cloud.route53.history))
        return instance_id

    def _pick(self, role: str | None, index: int, *, running: bool | None = None) -> str | None:
        ids = [i for i in self.roles if role is None or self.roles[i] == role]
        if running is not None:
            ids = [i for i in ids if (self.state(i) == "running") is running]
        ids = [i for i in ids if self.state(i) != "terminated"]
        return ids[index % len(ids)] if ids else None

    def _changed(self) -> None:
        """The world moved on: the last run's view no longer describes it."""
        self.clean_run = False

    @initialize(lbs=st.integers(1, 3), webs=st.integers(1, 4))
    def start(self, lbs: int, webs: int) -> None:
        # The domain is the cluster's from the start (SPEC "Ownership is by cluster"), as after its
        # first run that wrote a record: an operator's edit before any run is then still its own.
        txt = f"_lbf.{DOMAIN}"
        self.cloud.route53.records[(txt, "TXT")] = Record(txt, "TXT", 60, ('"cluster=demo"',))
        for _ in range(lbs):
            self._add("lb")
        for number in range(webs):
            self._add("web", {"lbf:port": "8080"} if number == 3 else None)

    @precondition(lambda self: len(self.roles) < 12)
    @rule(role=st.sampled_from(["lb", "web"]), port=st.sampled_from([None, "8080", "443"]))
    def add_instance(self, role: str, port: str | None) -> None:
        self._changed()
        self._add(role, {"lbf:port": port} if role == "web" and port else None)

    @rule(role=st.sampled_from(["lb", "web"]), index=st.integers(0, 20))
    def dies(self, role: str, index: int) -> None:
        self._changed()
        picked = self._pick(role, index)
        if picked is not None:
            self.cloud.prober.dead.add(self.address(picked))

    @rule(role=st.sampled_from(["lb", "web"]), index=st.integers(0, 20))
    def recovers(self, role: str, index: int) -> None:
        self._changed()
        picked = self._pick(role, index)
        if picked is not None:
            self.cloud.prober.dead.discard(self.address(picked))
            self.flapping.discard(self.address(picked))

    @rule(role=st.sampled_from(["lb", "web"]), index=st.integers(0, 20))
    def flaps(self, role: str, index: int) -> None:
        self._changed()
        picked = self._pick(role, index)
        if picked is not None:
            self.flapping.add(self.address(picked))

    @rule(role=st.sampled_from(["lb", "web"]), index=st.integers(0, 20))
    def stops(self, role: str, index: int) -> None:
        self._changed()
        picked = self._pick(role, index, running=True)
        if picked is not None:
            self.cloud.ec2.set_state(picked, "stopped")
            # A run may or may not see it stopped (unhealthy at once): its damping is unknown.
            self.damping[picked].forget()

    @rule(role=st.sampled_from(["lb", "web"]), index=st.integers(0, 20))
    def starts_with_a_new_ip(self, role: str, index: int) -> None:
        self._changed()
        picked = self._pick(role, index, running=False)
        if picked is not None:
            address = self._new_address(self.roles[picked])
            self.owner[address] = picked
            self.cloud.ec2.set_state(picked, "running", address=address)

    @precondition(lambda self: len(self._ids("lb", running=True)) > 1)
    @rule(role=st.sampled_from(["lb", "web"]), index=st.integers(0, 20))
    def is_terminated(self, role: str, index: int) -> None:
        self._changed()
        picked = self._pick(role, index)
        if picked is not None:
            self.cloud.ec2.set_state(picked, "terminated")
            self.damping[picked].forget()

    @rule(role=st.sampled_from(["lb", "web"]), index=st.integers(0, 20), drain=st.booleans())
    def drains(self, role: str, index: int, drain: bool) -> None:
        self._changed()
        picked = self._pick(role, index)
        if picked is not None:
            self.cloud.ec2.set_tag(picked, "lbf:maintenance", "drain" if drain else None)
            (self.draining.add if drain else self.draining.discard)(picked)
            if self.skipped.get(picked, ("",))[0] == "lbf:maintenance":
                del self.skipped[picked]  # the typo is overwritten: it parses again
                self.damping[picked].forget()

    @rule(index=st.integers(0, 20), typo=st.booleans())
    def port_typo(self, index: int, typo: bool) -> None:
        self._changed()
        picked = self._pick("web", index)
        if picked is not None:
            self.cloud.ec2.set_tag(picked, "lbf:port", "80a" if typo else None)
            (self.typo.add if typo else self.typo.discard)(picked)
            # A skipped instance is probed but its counts are never written: they start afresh
            # from its tags each run, and again once it parses. The model's count is unknown.
            self.damping[picked].forget()

    @rule(
        role=st.sampled_from(["lb", "web"]),
        index=st.integers(0, 20),
        tag=st.sampled_from(["lbf:maintenance", "lbf:name"]),
        running=st.booleans(),
    )
    def tag_typo(self, role: str, index: int, tag: str, running: bool) -> None:
        """An operator's typo makes a running or a stopped instance skipped."""
        self._changed()
        picked = self._pick(role, index, running=running)
        if picked is None or picked in self.skipped or (role == "web" and tag == "lbf:name"):
            return
        self.skipped[picked] = (tag, self.cloud.ec2.tag(picked, tag))
        self.cloud.ec2.set_tag(picked, tag, "Drain" if tag == "lbf:maintenance" else "LB 1")
        if tag == "lbf:maintenance":
            self.draining.discard(picked)  # a drain the typo replaced is no longer known
        self.damping[picked].forget()

    @rule(index=st.integers(0, 20))
    def typo_fixed(self, index: int) -> None:
        self._changed()
        if not self.skipped:
            return
        picked = sorted(self.skipped)[index % len(self.skipped)]
        self._fix_typo(picked)

    def _fix_typo(self, instance_id: str) -> None:
        tag, value = self.skipped.pop(instance_id)
        taken = {
            self.cloud.ec2.tag(i, "lbf:name")
            for i in self._ids("lb")
            if i != instance_id and self.state(i) != "terminated"
        }
        if tag == "lbf:name" and value in taken:
            # Another LB took the name while the typo hid it: the operator leaves the name to
            # the controller rather than making two LBs share it.
            value = None
        self.cloud.ec2.set_tag(instance_id, tag, value)
        if tag == "lbf:maintenance" and value == "drain":
            self.draining.add(instance_id)
        self.damping[instance_id].forget()

    @rule(ttl=st.sampled_from(TTLS))
    def ttl_changes(self, ttl: int) -> None:
        self._changed()
        self.config = replace(self.config, ttl=ttl)

    @rule(to=st.one_of(st.just(FOREIGN), st.integers(0, 20)))
    def operator_edits_the_active_record(self, to: str | int) -> None:
        self._changed()
        if isinstance(to, int):
            picked = self._pick("lb", to, running=True)
            if picked is None:
                return
            to = self.address(picked)
        self.point_active_at(to)

    # --- faults -----------------------------------------------------------------------------------

    def _arm(self, fault: str | None) -> bool:
        """Sets the fault up in the fakes for one run; True if it can leave counts half-written."""
        cloud = self.cloud
        if fault is None:
            return False
        if fault == "prober-network":
            self.blackout = True
            return False
        if fault == "route53-change":
            cloud.route53.fail_next = [
                AwsError("route53", "ChangeResourceRecordSets", "Throttling", "rate")
            ]
        elif fault == "route53-read":
            cloud.route53.fail_read = AwsError("route53", "ListResourceRecordSets", "x", "x")
        elif fault == "ec2-describe":
            cloud.ec2.fail_describe = AwsError("ec2", "DescribeInstances", "Timeout", "x")
        elif fault == "ec2-tags":
            cloud.ec2.fail_tags = AwsError("ec2", "CreateTags", "RequestLimitExceeded", "x")
        elif fault == "ssm-read":
            cloud.ssm.fail_read = AwsError("ssm", "GetParameters", "ThrottlingException", "x")
        elif fault == "ssm-list-commands":
            cloud.ssm.fail_recent = AwsError("ssm", "ListCommands", "ThrottlingException", "x")
        elif fault == "ssm-send":
            cloud.ssm.fail_send_for = set(self._ids("lb")[:1])
        else:
            status = "Failed" if fault == "push-failed" else "TimedOut"
            victims = set(self._ids("lb")[-1:])

            def outcome(command: Any) -> str:
                return status if command.instance_id in victims else "Success"

            cloud.ssm.outcome = outcome
        return True

    def _disarm(self) -> None:
        cloud = self.cloud
        cloud.route53.fail_next = []
        cloud.route53.fail_read = None
        cloud.ec2.fail_describe = None
        cloud.ec2.fail_tags = None
        cloud.ssm.fail_read = None
        cloud.ssm.fail_recent = None
        cloud.ssm.fail_send_for = set()
        cloud.ssm.outcome = lambda command: "Success"
        cloud.route53.before_change = None
        cloud.calls.before = None
        self.blackout = False

    # --- runs -------------------------------------------------------------------------------------

    def observe_round(self, now: float, results: dict[str, ProbeResult]) -> None:
        # A round in which every probe (of two or more) failed is the prober's fault, and the job
        # counts nothing from it: neither does the model. A round of the LBs alone is judged with
        # the pool's latest results of the run (the pool is probed every LBF_POOL_INTERVAL).
        pool = {key: r for key, r in results.items() if self.roles.get(key) != "lb"}
        if pool:
            self.pool_latest = pool
        judged = results if pool else {**self.pool_latest, **results}
        if len(judged) >= 2 and not any(r.ok for r in judged.values()):
            return
        for instance_id, result in results.items():
            self.damping[instance_id].fold(now, result.ok)

    def _run(
        self,
        *,
        fault: str | None = None,
        disturbed: bool = False,
        overlapping: bool = False,
        **kwargs: Any,
    ) -> None:
        disturbed = self._arm(fault) or disturbed
        batches = len(self.cloud.route53.history)
        started = self.cloud.clock.now()
        self.pool_latest = {}  # a run's own: the job keeps it for the run only
        start_list = self.cloud.ssm.parameters.get(BACKENDS)
        frozen_before = self._frozen_holdings()
        report: Report | None = None
        try:
            report = jobs.reconcile(self.config, self.services, self.cloud.clock, **kwargs)
        except Killed:
            disturbed = True
        finally:
            self._disarm()
            # The schedule: the next invocation starts a minute after this one did.
            self.cloud.clock.time = max(self.cloud.clock.time, started + 60)
        self._check_moves(batches, by_damping=not overlapping)
        if not overlapping:
            self._check_pool_drop(start_list, report, started=started)
        self._check_frozen_kept(frozen_before, report)
        self.last_report = report
        self.clean_run = report is not None and report.ok and not disturbed
        if not self.clean_run:
            for damping in self.damping.values():
                damping.forget()

    @rule(fault=st.one_of(st.none(), st.none(), st.sampled_from(FAULTS)))
    def scheduled_run(self, fault: str | None) -> None:
        self._run(fault=fault)

    @rule(index=st.integers(0, 20), fault=st.one_of(st.none(), st.sampled_from(FAULTS)))
    def event_run(self, index: int, fault: str | None) -> None:
        picked = self._pick(None, index) or "i-0123456789abcdef0"
        self._run(fault=fault, rounds=1, probe=False, job="on_instance_change", concerning=picked)

    @rule(inner_probes=st.booleans(), outer_probes=st.booleans())
    def overlapping_runs(self, inner_probes: bool, outer_probes: bool) -> None:
        """A second run starts and finishes while the first is about to change records."""

        def other_run() -> None:
            jobs.reconcile(
                self.config, self.services, self.cloud.clock, rounds=1, probe=inner_probes
            )

        self.cloud.route53.before_change = other_run
        sent = len(self.cloud.ssm.commands)
        changes = len(self.records.outermost)
        self._run(disturbed=True, overlapping=True, rounds=2, probe=outer_probes)
        # Both runs may push the same list when no compare-and-swap stood between them (the LB
        # applies a checksum it already has as a no-op): the one duplicate that is allowed. When
        # the batch the second run cut into went stale, the first must re-read and push nothing
        # twice.
        cut_into = self.records.outermost[changes : changes + 1]
        if cut_into != ["stale"]:
            self.overlapped |= {c.command_id for c in self.cloud.ssm.commands[sent:]}

    @rule(kill_at=st.integers(0, 12))
    def killed_run(self, kill_at: int) -> None:
        self.cloud.calls.before = kill_at_write(kill_at)
        self._run(disturbed=True)

    # --- slow AWS against the invocation's time left ---------------------------------------------

    @rule(
        seconds_left=st.sampled_from([90.0, 60.0, 35.0, 12.0, 5.0]),
        slow=st.sampled_from(
            ["ChangeResourceRecordSets", "CreateTags", "SendCommand", "DescribeInstances", "*"]
        ),
        delay=st.sampled_from([3.0, 12.0, 40.0]),
        event=st.booleans(),
        index=st.integers(0, 20),
    )
    def slow_aws_against_the_time_left(
        self, seconds_left: float, slow: str, delay: float, event: bool, index: int
    ) -> None:
        """AWS calls take `delay` each while the invocation has `seconds_left`: no round starts
        that could not finish its probes and writes, and the run never outlasts its time (a call
        that would is cut at the end less the report's share, as botocore is)."""
        started = self.cloud.clock.now()
        deadline = started + seconds_left
        slow_aws = SlowAws(self.cloud.clock, {slow: delay}, deadline=deadline)
        self.cloud.calls.before = slow_aws
        rounds_before = len(self.cloud.prober.rounds)
        kwargs: dict[str, Any] = {"deadline": deadline}
        if event:
            picked = self._pick(None, index) or "i-0123456789abcdef0"
            kwargs |= {"rounds": 1, "probe": False, "job": "on_instance_change"}
            kwargs["concerning"] = picked
        # A cut call may leave a round half-applied: the model forgets its counts, as after a fault.
        self._run(disturbed=True, **kwargs)
        report = self.last_report
        assert report is not None
        needs = timing.round_seconds(probes=not event, probe_timeout=CONFIG.probe_timeout)
        for start in self.cloud.prober.rounds[rounds_before:]:
            assert start + needs <= deadline + 1e-9, (
                f"a round started {deadline - start:.1f} s from the end"
            )
        if not timing.round_fits(starts_at=started, deadline=deadline, needs=needs):
            assert report.rounds == 0
            assert not report.ok
        ended = started + report.seconds
        assert ended <= deadline + 1e-9, f"ran {ended - deadline:.1f} s past the invocation's end"

    @rule(kind=st.sampled_from(["cname", "outside-zone"]))
    def run_meets_a_permanent_rejection(self, kind: str) -> None:
        """Route 53 refuses for good what the run writes: at the active name (a CNAME there), or
        every name (the domain outside the zone). The rest of the run goes on without it."""
        if kind == "cname":
            self.cloud.route53.cnames.add(ACTIVE)
        else:
            self.cloud.route53.zone = "example.org"
        try:
            self._run(disturbed=True)
        finally:
            self.cloud.route53.cnames.clear()
            self.cloud.route53.zone = None
        report = self.last_report
        assert report is not None
        assert not any("still stale" in e for e in report.errors), report.errors
        if kind == "cname":
            # The other records' upkeep went on: every running LB's own record is current.
            # A skipped LB's record is frozen, whatever it holds (SPEC: "Where two rules meet").
            for instance_id in self._ids("lb", running=True):
                if instance_id in self.skipped:
                    continue
                name = self.cloud.ec2.tag(instance_id, "lbf:name")
                if name is not None:
                    value = self.cloud.route53.value(f"{name}.{DOMAIN}")
                    assert value == (self.address(instance_id),), (name, value)

    @rule()
    def answer_is_lost(self) -> None:
        """The next batch with a DELETE is applied, then its answer is lost and the retry is
        refused: the run must still count the failover it made."""
        self.cloud.route53.lose_answers = 1
        batches = len(self.cloud.route53.history)
        try:
            self._run(disturbed=True)
        finally:
            self.cloud.route53.lose_answers = 0
        report = self.last_report
        assert report is not None
        for _, batch in self.cloud.route53.history[batches:]:
            deleted = [c for c in batch if answered(c) and c.action == "DELETE"]
            created = [c for c in batch if answered(c) and c.action != "DELETE"]
            if not deleted or not created:
                continue
            source = next((self._lb_of(v) for v in deleted[0].record.values), None)
            target = self._lb_of(created[0].record.values[0])
            if source is None or target is None or source == target:
                continue
            if self.address(source) in deleted[0].record.values:  # not a repair of an old address
                assert report.failovers, "a failover whose answer was lost went unreported"

    @invariant()
    def no_notice_is_sent_twice_for_one_condition_or_one_move(self) -> None:
        report = self.last_report
        if report is None or not report.ok:
            self.unstored.append(len(self.cloud.calls.log))
        sent = self.notices.sent
        for index, (at, batches, message, before) in enumerate(sent):
            again = next((entry for entry in sent[index + 1 :] if entry[2] == message), None)
            if again is None:
                continue
            later_at, later_batches, _, _ = again
            if message.startswith("active record moved"):
                old, _, new = message.rsplit("(", 1)[1].rstrip(")").partition("->")
                remade = any(
                    {c.record.values for c in batch if answered(c)}
                    == {tuple(old.split(",")), tuple(new.split(","))}
                    for _, batch in self.cloud.route53.history[batches:later_batches]
                )
                assert remade, f"one move notified twice: {message}"
                continue
            puts = [
                str(d[1])  # type: ignore[index]
                for op, d in self.cloud.calls.log[at:later_at]
                if op == "PutParameter" and d[0] == NOTICES  # type: ignore[index]
            ]
            stored = [set(before.splitlines()), *(set(v.splitlines()) for v in puts)]
            cleared = any(not (a <= b) for a, b in itertools.pairwise(stored))
            lost = any(at < mark <= later_at for mark in self.unstored)
            assert cleared or lost, f"one condition notified twice: {message}"

    @rule()
    def faults_stop_and_the_world_settles(self) -> None:
        """No more faults, no flapping: within a few runs everything converges, then stays."""
        self._changed()
        self.flapping.clear()
        for instance_id in sorted(self.skipped):  # the operator fixes the typos
            self._fix_typo(instance_id)
        for instance_id in sorted(self.typo):
            self.port_typo_fixed(instance_id)
        self.settling()
        for attempt in range(6):
            mark = len(self.cloud.calls.log)
            self._run()
            assert self.last_report is not None
            assert self.last_report.ok, self.last_report.errors
            writes = [(op, d) for op, d in self.cloud.calls.log[mark:] if is_write(op)]
            if attempt >= 1 and not writes and not self.held():
                break
        assert not writes, f"still writing after {attempt + 1} quiet runs: {writes}"
        self._check_converged()

    def port_typo_fixed(self, instance_id: str) -> None:
        self.cloud.ec2.set_tag(instance_id, "lbf:port", None)
        self.typo.discard(instance_id)
        self.damping[instance_id].forget()

    # --- promises --------------------------------------------------------------------------------

    def _frozen_holdings(self) -> dict[str, tuple[str, set[str]]]:
        """Each running skipped LB: its address and the names whose records hold it now.

        Only those whose stored verdict is healthy: a skipped LB's counts start from its frozen
        tags each run, so one frozen while judged unhealthy (it kept the record only because no
        other LB was eligible then) loses the role in the first round an eligible LB exists, as
        any unhealthy holder does, even if its probes in that run turn it healthy later.
        """
        held: dict[str, tuple[str, set[str]]] = {}
        for instance_id in self.skipped:
            if self.roles[instance_id] != "lb" or self.state(instance_id) != "running":
                continue
            if self.cloud.ec2.tag(instance_id, "lbf:health") != "healthy":
                continue
            address = self.address(instance_id)
            names = {
                name
                for (name, kind), record in self.cloud.route53.records.items()
                if is_a(kind) and record.failover != SECONDARY and address in record.values
            }
            held[instance_id] = (address, names)
        return held

    def _check_frozen_kept(
        self, before: dict[str, tuple[str, set[str]]], report: Report | None
    ) -> None:
        """A running, healthy skipped LB never loses its record or its place in the active one.

        Healthy in the run's own judgement (its counts start from its frozen tags each run) and
        in the prober's (not dead, not flapping).
        """
        if report is None or report.world is None:
            return
        frozen = {lb.instance_id: lb for lb in frozen_lbs(report.world.skipped)}
        for instance_id, (address, names) in before.items():
            view = frozen.get(instance_id)
            if (
                view is None
                or instance_id not in self.skipped
                or self.state(instance_id) != "running"
                or self.address(instance_id) != address
                or instance_id in self.draining  # a draining LB is moved off, skipped or not
                or address in self.cloud.prober.dead
                or address in self.flapping
                or view.verdict.value != "healthy"
            ):
                continue
            for name in names:
                value = self.active_value() if name == ACTIVE else self.cloud.route53.value(name)
                assert value is not None, f"skipped {instance_id} lost its record {name}"
                assert address in value, f"skipped {instance_id} lost {name}: now {value}"

    def _check_pool_drop(
        self, start_list: str | None, report: Report | None, *, started: float
    ) -> None:
        """No run removes more than LBF_MAX_POOL_DROP percent of the list it started with for
        failed probes: an entry gone whose server still runs, is not draining, has that entry,
        and failed its probes (unhealthy when the run ended; unknown is not a failed probe).

        Unless the held drop was released: a server that has failed every probe the model saw
        for held_drop.RELEASE_SECONDS may be taken out past the bound (SPEC: a held list is not
        held forever). Only that long a failure allows it, so a release that comes too early
        still fails here."""
        if not start_list or report is None or report.world is None:
            return
        failed = {w.instance_id for w in report.world.webs if w.verdict.value == "unhealthy"}
        failed |= {
            s.instance_id
            for s in report.world.skipped
            if s.frozen is not None and s.frozen.verdict.value == "unhealthy"
        }
        final = set((self.cloud.ssm.parameters.get(BACKENDS) or "").split())
        entries = {}
        for instance_id in self._ids("web", running=True):
            since = self.damping[instance_id].failing_since
            if (
                instance_id in self.draining
                or instance_id in self.typo
                or instance_id not in failed
                or (since is not None and started - since >= held_drop.RELEASE_SECONDS)
            ):
                continue
            port = self.cloud.ec2.tag(instance_id, "lbf:port") or str(self.config.pool_port)
            entries[f"{self.address(instance_id)}:{port}"] = instance_id
        listed = start_list.split()
        removed = [e for e in listed if e not in final and e in entries]
        limit = self.config.max_pool_drop * len(listed)
        assert len(removed) * 100 <= limit, f"one run removed {removed} of {listed}"

    def _lb_of(self, address: str) -> str | None:
        instance_id = self.owner.get(address)
        return instance_id if instance_id is not None and self.roles[instance_id] == "lb" else None

    def _check_moves(self, since: int, *, by_damping: bool) -> None:
        """No false failover; never onto an LB that is down, draining or failing.

        Two overlapping runs that both probe each count their own samples: the model's single
        sequence (both interleaved) is neither's view, so only the structural checks apply.
        """
        for index, (_, batch) in enumerate(self.cloud.route53.history[since:], start=since):
            deleted = [c for c in batch if answered(c) and c.action == "DELETE"]
            created = [c for c in batch if answered(c) and c.action != "DELETE"]
            if not created:
                continue
            [new] = created[0].record.values  # one address: no split brain
            if deleted and deleted[0].record.values == (new,):
                continue  # the same address restated with a new TTL: not a move
            target = self._lb_of(new)
            assert target is not None, f"active record moved to {new}, which is no LB"
            assert self.state(target) == "running", f"moved to {target}, {self.state(target)}"
            assert target not in self.draining, f"moved to draining {target}"
            if by_damping:
                assert self.damping[target].before_batch(index) != "unhealthy", (
                    f"moved to failing {target}"
                )
            if not deleted:
                continue
            source = next((self._lb_of(v) for v in deleted[0].record.values), None)
            if source is None or source == target:
                continue  # a repair, or following the same LB to its new address
            if self.state(source) != "running" or source in self.draining:
                continue
            if not by_damping or self.address(source) not in deleted[0].record.values:
                continue  # overlapping views, or the LB's old address: nobody reached it there
            if source in self.skipped:
                continue  # its counts restart from its frozen tags each run: not the model's
            assert self.damping[source].before_batch(index) != "healthy", (
                f"false failover off {source}"
            )

    @invariant()
    def every_list_written_is_whole_and_parsed(self) -> None:
        web_addresses = {a for a, i in self.owner.items() if self.roles[i] == "web"}
        log = self.cloud.calls.log
        for operation, detail in log[self.checked_calls :]:
            text: str | None = None
            if operation == "SendCommand":
                assert isinstance(detail, tuple)
                _, text, checksum = detail
                assert checksum == hashlib.sha256(text.encode()).hexdigest()
            elif operation == "PutParameter":
                assert isinstance(detail, tuple)
                if detail[0] == BACKENDS:
                    text = detail[1]
            if text is None:
                continue
            assert text, "an empty backend list was written"
            entries = text.split(" ")
            assert backend_lists.parse_list(text) == tuple(entries), f"unparsed list {text!r}"
            for entry in entries:
                host = entry.rpartition(":")[0].strip("[]")
                assert str(ipaddress.ip_address(host)) in web_addresses, entry
        self.checked_calls = len(log)

    @invariant()
    def no_list_is_pushed_twice_to_an_lb_that_took_it(self) -> None:
        last: dict[str, Any] = {}
        for command in self.cloud.ssm.commands:
            before = last.get(command.instance_id)
            if (
                before is not None
                and before.checksum == command.checksum
                and not {before.command_id, command.command_id} <= self.overlapped
            ):
                assert before.status in BAD_ENDINGS, f"pushed twice: {before} then {command}"
            last[command.instance_id] = command

    @invariant()
    def every_record_written_points_at_an_lb(self) -> None:
        """A failover pair's batch restates what it does not change (its DELETEs must match the
        whole pair), an address pointed by hand included; with no other LB to take it, SECONDARY
        holds PRIMARY's address (SPEC): neither is a new address the controller chose."""
        for _, batch in self.cloud.route53.history[self.checked_batches :]:
            deleted = {
                (c.record.name, c.record.failover): c.record.values
                for c in batch
                if c.action == "DELETE"
            }
            primary = next((c.record.values for c in batch if c.record.failover == PRIMARY), None)
            for change in batch:
                assert isinstance(change, RecordChange)
                record = change.record
                if change.action == "DELETE":
                    continue
                if record.type == "A":
                    restated = deleted.get((record.name, record.failover)) == record.values
                    copied = record.failover == SECONDARY and record.values == primary
                    assert restated or copied or all(self._lb_of(v) for v in record.values), record
                    if record.name == ACTIVE:
                        assert len(record.values) == 1, f"split brain: {record}"
                else:
                    assert record.name == f"_lbf.{DOMAIN}", record
        self.checked_batches = len(self.cloud.route53.history)

    @invariant()
    def after_a_clean_run_every_verdict_is_what_damping_says(self) -> None:
        if not self.clean_run:
            return
        for instance_id, damping in self.damping.items():
            if (
                self.state(instance_id) != "running"
                or instance_id in self.typo
                or instance_id in self.skipped
            ):
                continue
            if damping.verdict is not None:
                health = self.cloud.ec2.tag(instance_id, "lbf:health")
                assert health == damping.verdict, f"{instance_id}: {health}, not {damping.verdict}"

    @invariant()
    def after_a_clean_run_the_record_is_on_an_eligible_lb_if_there_is_one(self) -> None:
        report = self.last_report
        if not self.clean_run or report is None or report.world is None:
            return
        world = report.world
        eligible = [lb for lb in world.lbs if is_eligible(lb)]
        if not eligible:
            return
        value = self.active_value()
        assert value is not None, "no active record while an LB is eligible"
        # A skipped LB may hold the record (never newly chosen): judged like any holder.
        holder = next(
            (lb for lb in (*world.lbs, *frozen_lbs(world.skipped)) if lb.address in value), None
        )
        assert holder is not None, f"active record {value} on no LB, {eligible[0].name} eligible"
        if self.kept_by_the_swap_limit(report, holder, eligible):
            return
        if holder.draining:
            assert [lb for lb in eligible if lb is not holder] == [], "on a draining LB"
        unknown = holder.running and not holder.draining and holder.verdict.value == "unknown"
        holds = holder.running and not holder.draining and holder.verdict.value == "healthy"
        assert holds or unknown, f"on {holder.instance_id} ({holder.state}, {holder.verdict.value})"

    @invariant()
    def after_a_clean_run_every_record_has_the_configured_ttl(self) -> None:
        if not self.clean_run:
            return
        # A running skipped LB's own record is frozen, left as it is: not a record written.
        frozen = {
            self.address(i) for i in self.skipped if self.state(i) not in ("stopped", "terminated")
        }
        for (name, _), record in self.cloud.route53.records.items():
            if frozen.intersection(record.values) and name != ACTIVE:
                continue
            current = {self.address(i) for i in self._ids("lb")}
            if name == ACTIVE and not set(record.values) <= current:
                # Left on an address no LB has now (pointed by hand, or an LB's old one while
                # none was eligible): it waits as it is until it is moved or repaired.
                continue
            assert record.ttl == self.config.ttl, f"{name} has TTL {record.ttl}"

    def _check_converged(self) -> None:
        """The world an operator expects once nothing is failing any more."""
        cloud = self.cloud
        running_lbs = sorted(
            self._ids("lb", running=True),
            key=lambda i: natural_key(cloud.ec2.tag(i, "lbf:name") or ""),
        )

        def alive(instance_id: str) -> bool:
            return self.address(instance_id) not in cloud.prober.dead

        targets = self._ids("lb", running=True) + [
            i for i in self._ids("web", running=True) if i not in self.typo
        ]
        prober_fault = len(targets) >= 2 and not any(alive(i) for i in targets)

        # Records: one per running LB, at its address; the TXT record lists exactly those there.
        a_names = {name for (name, kind) in cloud.route53.records if is_a(kind)}
        for lb in running_lbs:
            name = cloud.ec2.tag(lb, "lbf:name")
            assert name is not None, f"{lb} has no lbf:name"
            assert cloud.route53.value(f"{name}.{DOMAIN}") == (self.address(lb),), lb
        names = {cloud.ec2.tag(lb, "lbf:name") for lb in running_lbs}
        assert a_names - {ACTIVE} == {f"{n}.{DOMAIN}" for n in names}
        owned = cloud.route53.records.get((f"_lbf.{DOMAIN}", "TXT"))
        if a_names:
            assert owned is not None
            # The owner first (the cluster the model runs), then exactly the labels there.
            owner, *labels = [v.strip('"') for v in owned.values]
            assert owner == "cluster=demo"
            assert set(labels) == {n.removesuffix("." + DOMAIN) for n in a_names}

        # The active record: on an LB that is up, whenever one is; lbf:state says which.
        up = [i for i in running_lbs if alive(i) and i not in self.draining]
        value = self.active_value()
        if up and not prober_fault:
            assert value is not None, up
            assert self._lb_of(value[0]) in up, (value, up)
        # When the record holds no running LB's address (it waits on an old one), the one LB
        # tagged active keeps its claim until the record can follow it or leave it.
        orphaned = value is None or not any(self.address(lb) in value for lb in running_lbs)
        claimants = [lb for lb in running_lbs if cloud.ec2.tag(lb, "lbf:state") == "active"]
        for lb in running_lbs:
            holds = value is not None and self.address(lb) in value
            holds = holds or (orphaned and claimants == [lb])
            state = cloud.ec2.tag(lb, "lbf:state")
            assert state in (None, "active" if holds else "standby"), (lb, state)

        # Verdicts follow the probes.
        if not prober_fault:
            for instance_id in targets:
                expected = "healthy" if alive(instance_id) else "unhealthy"
                assert cloud.ec2.tag(instance_id, "lbf:health") == expected, instance_id

        # The backend list: every healthy web server, unless a guard keeps the last list.
        def port(instance_id: str) -> int:
            return int(cloud.ec2.tag(instance_id, "lbf:port") or CONFIG.pool_port)

        serving = sorted(
            (
                i
                for i in self._ids("web", running=True)
                if alive(i) and i not in self.draining and i not in self.typo
            ),
            key=lambda i: (int(ipaddress.ip_address(self.address(i))), port(i)),
        )
        expected_list = " ".join(
            backend_lists.Backend(self.address(i), port(i), i).render() for i in serving
        )
        published = cloud.ssm.parameters.get(BACKENDS)
        notices = cloud.ssm.parameters.get(NOTICES, "").split("\n")
        if expected_list and published != expected_list and not prober_fault:
            assert any(n.startswith("backends-held:") for n in notices), (published, expected_list)
        if published is not None:
            checksum = backend_lists.checksum(published)
            for lb in running_lbs:
                assert cloud.ec2.tag(lb, "lbf:backends") == checksum, lb
        if running_lbs:
            assert cloud.ssm.parameters.get(LBS) == " ".join(self.address(i) for i in running_lbs)


TestClusterMachine = ClusterMachine.TestCase
TestClusterMachine.settings = settings(
    max_examples=MAX_EXAMPLES,
    stateful_step_count=STEPS,
    derandomize=not SOAK,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# --- the failover pair (LBF_DNS_FAILOVER=route53) ------------------------------------------------

PAIR_CONFIG = config_from(
    FAKE_CLOUD_ENV, probe_rounds=3, lb_address="public", dns_failover="route53"
)
# Route 53's own time to act on an LB's change: its checkers' detection (LBF_ROUTE53_INTERVAL x
# LBF_FALL), then the answer's propagation (about a minute).
DETECTION = PAIR_CONFIG.rules.pair.detection_seconds
ROUTE53_TIME = DETECTION + 60.0
PAIR_EXAMPLES = 2000 if SOAK else 40
# Where an LB stops answering: for every vantage (twice as likely), Route 53's checkers alone, or
# the controller's probes alone.
VANTAGES = ["every", "every", "route53", "controller"]


class PairMachine(ClusterMachine):
    """The same world, faults and promises, with the active name as a failover pair; and
    Route 53's own vantage beside the controller's.

    Route 53's checkers reach each LB from the internet, or not (`split`: a path one vantage has
    and the other has not); their view of each LB's check, which the in-memory Route 53 answers
    the pair by (`FakeCloud.answer`), lags behind the LBs, flips, flaps from run to run and
    disagrees with the controller's probes. The controller is absent for a while: runs are
    skipped while LBs die and recover, and Route 53's data plane alone moves clients. Promises:

    - clients (the data plane's answer) are never sent to an LB every vantage sees dead while a
      healthy one exists: after a clean run, and Route 53's own time, any LB the run judged
      eligible; after a run that held a swap (the limit keeps PRIMARY, and SECONDARY stays while
      the vantages disagree on it), or with no controller, the pair's other LB;
    - no run undoes another's swap without a new cause on the LB it swapped to (a rule that
      changed it, its probes failing, an operator's edit, or a run that met a fault since);
    - at most one swap per LBF_ROUTE53_INTERVAL x LBF_FALL, unless EC2 reports PRIMARY stopped
      (after a swap whose run could store it: the limit's memory is the history);
    - a disagreement the controller keeps the pair through is notified, once;
    - after every batch the active name is nothing, one plain record or a whole pair: every
      change of the pair, and the switch from a plain record, is one batch.
    """

    def __init__(self) -> None:
        super().__init__()
        self.config = PAIR_CONFIG
        # Addresses whose reachability from the internet differs from the controller's probes:
        # True, Route 53's checkers reach it (the controller's path is broken); False, they do not.
        self.split: dict[str, bool] = {}
        self.checks_flapping: set[str] = set()  # addresses whose check Route 53 flips every run
        # PRIMARY moved between LBs: when, from, to, and when the run that moved it started.
        self.swaps: list[tuple[float, str, str, float]] = []
        self.touched: dict[str, float] = {}  # instance -> when a rule last changed it
        self.edited_at = float("-inf")  # when an operator last pointed the active name by hand
        self.ran_at = float("-inf")  # when the last run started
        # When the last run that met a fault started: its stored verdicts may lag behind the
        # probes (tags not written, counts half-written), a cause the next runs act on.
        self.faulted_at = float("-inf")
        self.faulted_runs: set[float] = set()
        self.records.after = self._check_the_active_name_is_whole

    # --- Route 53's vantage -----------------------------------------------------------------------

    def _new_address(self, role: str) -> str:
        address = super()._new_address(role)
        if role == "lb":
            # A check new to Route 53 counts as healthy until its checkers report.
            self.cloud.health_checks.seen_healthy.add(address)
        return address

    def _pick(self, role: str | None, index: int, *, running: bool | None = None) -> str | None:
        picked = super()._pick(role, index, running=running)
        if picked is not None:
            self.touched[picked] = self.cloud.clock.now()
        return picked

    def _flaps(self, address: str, now: float) -> bool:
        dead = super()._flaps(address, now)
        if dead and address in self.owner:
            self.touched[self.owner[address]] = now  # a failed probe is a cause of its own
        return dead

    def _fix_typo(self, instance_id: str) -> None:
        super()._fix_typo(instance_id)
        self.touched[instance_id] = self.cloud.clock.now()

    def serves(self, instance_id: str) -> bool:
        """The controller's probes find the LB serving (running, not draining, answering):
        leaving it is a move of its own, not the undoing of one. An LB already failing when a
        run moved to it (its tags still said healthy: FALL rounds have not passed) is left
        again as its probes fail."""
        address = self.address(instance_id)
        return (
            self.state(instance_id) == "running"
            and instance_id not in self.draining
            and address not in self.cloud.prober.dead
            and address not in self.flapping
        )

    def reaches(self, instance_id: str) -> bool:
        """Route 53's checkers reach the LB (over its public address, here the same)."""
        address = self.address(instance_id)
        if self.state(instance_id) != "running":
            return False
        return self.split.get(address, address not in self.cloud.prober.dead)

    def _judge(self, address: str, healthy: bool) -> None:
        seen = self.cloud.health_checks.seen_healthy
        (seen.add if healthy else seen.discard)(address)

    def _catch_up(self, instance_id: str) -> None:
        """Route 53's checkers have seen the LB as it is for their failure threshold."""
        address = self.address(instance_id)
        if address not in self.flapping and address not in self.checks_flapping:
            self._judge(address, self.reaches(instance_id))

    def dead_everywhere(self, instance_id: str) -> bool:
        controller = (
            self.state(instance_id) != "running"
            or self.address(instance_id) in self.cloud.prober.dead
        )
        route53 = self.address(instance_id) not in self.cloud.health_checks.seen_healthy
        return controller and route53

    def alive_everywhere(self, instance_id: str) -> bool:
        address = self.address(instance_id)
        return (
            self.state(instance_id) == "running"
            and instance_id not in self.draining
            and address not in self.cloud.prober.dead
            and address not in self.flapping
            and address in self.cloud.health_checks.seen_healthy
        )

    def pair(self) -> tuple[Record, Record] | None:
        at_name = [r for (n, _), r in self.cloud.route53.records.items() if n == ACTIVE]
        primary = next((r for r in at_name if r.failover == PRIMARY), None)
        secondary = next((r for r in at_name if r.failover == SECONDARY), None)
        return (primary, secondary) if primary and secondary else None

    def active_value(self) -> tuple[str, ...] | None:
        pair = self.pair()
        return pair[0].values if pair is not None else super().active_value()

    def point_active_at(self, address: str) -> None:
        """In the console: PRIMARY's value, keeping its check (a plain record if no pair yet)."""
        self.edited_at = self.cloud.clock.now()
        pair = self.pair()
        if pair is None:
            super().point_active_at(address)
            return
        self.cloud.route53.records[record_key(pair[0])] = replace(pair[0], values=(address,))

    def settling(self) -> None:
        self.checks_flapping.clear()

    def held(self) -> bool:
        """A swap held by the limit is made once LBF_ROUTE53_INTERVAL x LBF_FALL has passed: a
        run in between writes nothing, and the world has not settled yet."""
        report = self.last_report
        return (
            report is not None and report.plan is not None and (SWAP_HELD in report.plan.conditions)
        )

    def kept_by_the_swap_limit(
        self, report: Report, holder: Instance, eligible: Sequence[Instance]
    ) -> bool:
        if report.plan is None or SWAP_HELD not in report.plan.conditions:
            return False
        # Held on an LB the controller judges ineligible: SECONDARY is where Route 53 sends
        # clients when its checkers agree, so it must be an eligible LB.
        pair = self.pair()
        assert pair is not None, "the swap limit held a pair that is not there"
        others = [lb.address for lb in eligible if lb is not holder]
        assert not others or pair[1].values[0] in others, f"SECONDARY {pair[1].values} held"
        return True

    # --- rules ------------------------------------------------------------------------------------

    @rule(index=st.integers(0, 20), healthy=st.booleans())
    def route53_judges(self, index: int, healthy: bool) -> None:
        """Route 53's checkers' view of one LB's check changes between runs: lagging behind the
        LB, ahead of the controller's damping, or wrong from where they stand."""
        picked = self._pick("lb", index)
        if picked is not None:
            self._judge(self.address(picked), healthy)

    @rule(index=st.integers(0, 20))
    def route53_catches_up(self, index: int) -> None:
        """One LB's check has seen it as it is for its failure threshold (the others lag)."""
        picked = self._pick("lb", index)
        if picked is not None:
            self._catch_up(picked)

    @rule(index=st.integers(0, 20), flapping=st.booleans())
    def route53_check_flaps(self, index: int, flapping: bool) -> None:
        """Route 53's view of one LB's check flips before every run (its checkers disagree
        among themselves around the 18% line)."""
        picked = self._pick("lb", index)
        if picked is not None:
            (self.checks_flapping.add if flapping else self.checks_flapping.discard)(
                self.address(picked)
            )

    @rule(index=st.integers(0, 20), vantage=st.sampled_from(["route53", "controller", "none"]))
    def one_vantage_loses_an_lb(self, index: int, vantage: str) -> None:
        """A path breaks: Route 53's checkers no longer reach a serving LB, or the controller's
        probes no longer do while the internet still does; "none": both paths work again."""
        self._changed()
        picked = self._pick("lb", index, running=True)
        if picked is None:
            return
        address = self.address(picked)
        if vantage == "none":
            self.split.pop(address, None)
            self.cloud.prober.dead.discard(address)
            return
        self.split[address] = vantage == "controller"
        (self.cloud.prober.dead.add if vantage == "controller" else self.cloud.prober.dead.discard)(
            address
        )

    @rule(
        role=st.sampled_from([PRIMARY, SECONDARY]),
        vantage=st.sampled_from(VANTAGES),
    )
    def a_pair_lb_fails(self, role: str, vantage: str) -> None:
        """The LB behind PRIMARY or SECONDARY stops answering, for every vantage or for one:
        the pair's own LBs, where a swap (and a second one) is decided."""
        self._changed()
        pair = self.pair()
        if pair is None:
            return
        picked = self._lb_of(pair[0 if role == PRIMARY else 1].values[0])
        if picked is None or self.state(picked) != "running":
            return
        self.touched[picked] = self.cloud.clock.now()
        address = self.address(picked)
        if vantage == "every":
            self.split.pop(address, None)
            self.cloud.prober.dead.add(address)
        elif vantage == "route53":
            self.split[address] = False
        else:
            self.split[address] = True
            self.cloud.prober.dead.add(address)

    @rule(
        first=st.sampled_from(VANTAGES),
        second=st.sampled_from(VANTAGES),
        back=st.booleans(),
        fault=st.one_of(st.none(), st.sampled_from(FAULTS)),
    )
    def primary_fails_twice_a_run_apart(
        self, first: str, second: str, back: bool, fault: str | None
    ) -> None:
        """PRIMARY's LB fails and a run swaps; then the new PRIMARY fails too (the old one
        back, or not) and the next run comes within LBF_ROUTE53_INTERVAL x LBF_FALL of that
        swap: where a second swap must wait, and where one vantage alone must move nothing."""
        pair = self.pair()
        if pair is None:
            return
        old = self._lb_of(pair[0].values[0])
        while len(self._ids("lb", running=True)) < 3 and len(self.roles) < 12:
            self._changed()
            self._add("lb")  # a third LB, for the second swap to go to
        self.a_pair_lb_fails(PRIMARY, first)
        self._run()
        self.a_pair_lb_fails(PRIMARY, second)
        if back and old is not None and self.state(old) == "running":
            address = self.address(old)
            self.split.pop(address, None)
            self.cloud.prober.dead.discard(address)
            self.flapping.discard(address)
            self.touched[old] = self.cloud.clock.now()
        self._run(fault=fault)

    @rule()
    def route53_time_passes(self) -> None:
        """No run for Route 53's own time: its checkers see every steady LB as it is, and the
        answer has propagated. Clients are not sent to an LB every vantage sees dead while a
        healthy one exists."""
        self.cloud.clock.advance(ROUTE53_TIME)
        for instance_id in self._ids("lb"):
            self._catch_up(instance_id)
        self._check_clients()

    @rule(
        events=st.lists(
            st.tuples(st.sampled_from(["dies", "recovers", "primary-dies"]), st.integers(0, 20)),
            min_size=1,
            max_size=3,
        )
    )
    def controller_absent(self, events: list[tuple[str, int]]) -> None:
        """No run for a while (a bad deploy, throttling, a region event): LBs die and recover,
        for every vantage, a minute apart; Route 53's data plane alone moves clients, by the pair
        the last run left."""
        self._changed()
        for kind, index in events:
            self.cloud.clock.advance(60.0)  # a scheduled run that did not happen
            pair = self.pair()
            if kind == "primary-dies" and pair is not None:
                picked = self._lb_of(pair[0].values[0])
                if picked is not None:
                    self.touched[picked] = self.cloud.clock.now()
            else:
                picked = self._pick("lb", index, running=True)
            if picked is None:
                continue
            address = self.address(picked)
            self.split.pop(address, None)
            if kind != "recovers":
                self.cloud.prober.dead.add(address)
            else:
                self.cloud.prober.dead.discard(address)
                self.flapping.discard(address)
        self.route53_time_passes()

    # --- runs and promises ------------------------------------------------------------------------

    def _run(self, **kwargs: Any) -> None:
        for address in self.checks_flapping:
            self._judge(address, address not in self.cloud.health_checks.seen_healthy)
        batches = len(self.cloud.route53.history)
        self.ran_at = self.cloud.clock.now()
        before = self.pair()
        super()._run(**kwargs)
        if not self.clean_run:
            self.faulted_at = self.ran_at
            self.faulted_runs.add(self.ran_at)
        self._check_swaps(batches)
        self._check_disagreement_notified(before[0] if before else None)

    def _check_clients(self) -> None:
        answer = self.cloud.answer(ACTIVE)
        target = self._lb_of(answer[0]) if answer else None
        if target is None or not self.dead_everywhere(target):
            return
        report = self.last_report
        if self.clean_run and report is not None and report.world is not None and not self.held():
            # The controller has had its run: any LB it judged eligible would do. Not when the
            # run held a swap: the SPEC's limit keeps PRIMARY on its LB, and the SECONDARY the run
            # chose (an eligible LB: kept_by_the_swap_limit) stays while Route 53 fails it (the
            # vantages disagree, and the pair stays): clients have what the pair gives them.
            healthy = [lb.instance_id for lb in report.world.lbs if is_eligible(lb)]
        elif self.edited_at > self.ran_at:
            return  # the operator's pair, not the controller's: bound as the operator left it
        else:
            # Route 53's data plane alone: it can answer only the pair's two LBs, and judges
            # only the checks they are bound to (a pair made before its checks is bound from
            # the round after they are made, and until then always answers PRIMARY: a run of one
            # round, or one stopped between, leaves it so; _check_converged holds a settled
            # pair bound).
            # Route 53 sends clients only to a record's address, and judges it by the address its
            # check probes: an LB that took a new address while no controller ran is not at its
            # record's, and a record that follows it before its check does (a run killed between
            # the batch and the check's update: records go first, so Route 53 never answers an
            # address its check has not judged) is judged unhealthy until the next run.
            pair = self.pair()
            if pair is None or any(r.health_check_id is None for r in pair):
                return
            healthy = [lb for record in pair if (lb := self._served_by(record))]
        healthy = [i for i in healthy if i in self.roles and self.alive_everywhere(i)]
        assert not healthy, f"clients sent to {target}, dead to every vantage; {healthy} serve"

    def _served_by(self, record: Record) -> str | None:
        """The LB at a pair record's address whose check probes that address too."""
        lb = self._lb_of(record.values[0])
        check = self.cloud.health_checks.checks.get(record.health_check_id or "")
        if lb is None or check is None or self.address(lb) not in record.values:
            return None
        return lb if check.spec.address == self.address(lb) else None

    def _check_the_active_name_is_whole(self) -> None:
        """Between two batches, clients see one plain record or a whole pair, never half of
        one, nor a plain record beside it."""
        at_name = [r for (n, kind), r in self.cloud.route53.records.items() if n == ACTIVE]
        roles = sorted(str(r.failover) for r in at_name)
        assert roles in ([], ["None"], [PRIMARY, SECONDARY]), f"the active name holds {at_name}"

    def _check_swaps(self, since: int) -> None:
        for at, batch in self.cloud.route53.history[since:]:
            old = [c.record.values for c in batch if answered(c) and c.action == "DELETE"]
            new = [c.record.values for c in batch if answered(c) and c.action != "DELETE"]
            if not old or not new:
                continue
            source = next((self._lb_of(v) for v in old[0]), None)
            target = self._lb_of(new[0][0])
            if source is None or target is None or source == target:
                continue
            if self.address(source) not in old[0]:
                continue  # the LB's old address: a repair, not a swap
            if self.swaps:
                last_at, last_source, last_target, last_run = self.swaps[-1]
                # The limit's memory is the history the swapping run writes: a run cut short or
                # failing may not have stored it, and the next run cannot know.
                if at - last_at < DETECTION and last_run not in self.faulted_runs:
                    assert self.state(source) != "running", (
                        f"swapped {last_source}->{last_target}, then {source}->{target} "
                        f"{at - last_at:.0f} s later, {source} running"
                    )
                if (source, target) == (last_target, last_source) and self.serves(source):
                    touched = self.touched.get(source, float("-inf"))
                    caused = max(touched, self.edited_at, self.faulted_at)
                    assert caused >= last_run, (
                        f"{last_source}->{last_target} undone by a run with no new cause"
                    )
            self.swaps.append((at, source, target, self.ran_at))

    def _check_disagreement_notified(self, before: Record | None) -> None:
        """A run that keeps PRIMARY through a disagreement on it has it notified. Only a PRIMARY
        the run found and kept, bound to its check: Route 53's view is read of the checks the
        records name (a run that binds a check, moves or repairs PRIMARY has not read it)."""
        report = self.last_report
        pair = self.pair()
        if not self.clean_run or report is None or report.world is None or pair is None:
            return
        primary = pair[0]
        if primary != before:
            return
        holder = next((lb for lb in report.world.lbs if lb.address in primary.values), None)
        check = self.cloud.health_checks.checks.get(primary.health_check_id or "")
        if holder is None or check is None or holder.verdict.value == "unknown":
            return
        route53 = check.spec.address in self.cloud.health_checks.seen_healthy
        controller = holder.running and holder.verdict.value == "healthy"
        if route53 == controller:
            return
        stored = self.cloud.ssm.parameters.get(NOTICES, "").split("\n")
        assert any(line.startswith(VANTAGES_DISAGREE) for line in stored), (
            f"vantages disagree on {holder.instance_id}, not notified: {stored}"
        )

    @invariant()
    def one_notice_per_disagreement(self) -> None:
        """A "vantages disagree" notice again only after the condition cleared (or a run could
        not store what it notified), whichever LB or views it names."""
        told = [entry for entry in self.notices.sent if "vantages disagree" in entry[2]]
        for (at, _, _, before), (later_at, _, _, _) in itertools.pairwise(told):
            puts = [
                str(d[1])  # type: ignore[index]
                for op, d in self.cloud.calls.log[at:later_at]
                if op == "PutParameter" and d[0] == NOTICES  # type: ignore[index]
            ]
            held = [
                any(line.startswith(VANTAGES_DISAGREE) for line in text.split("\n"))
                for text in [before, *puts]
            ]
            lost = any(at < mark <= later_at for mark in self.unstored)
            assert not all(held) or lost, "one disagreement notified twice"

    def _check_converged(self) -> None:
        super()._check_converged()
        up = [
            i
            for i in self._ids("lb", running=True)
            if self.address(i) not in self.cloud.prober.dead and i not in self.draining
        ]
        pair = self.pair()
        if not up:
            return
        assert pair is not None, "no failover pair while an LB is up"
        primary, secondary = pair
        checks = self.cloud.health_checks.checks
        for record in pair:
            if record.health_check_id is not None:
                check = checks[record.health_check_id]
                assert (check.spec.address,) == record.values, f"{record} bound to {check}"
        assert primary.health_check_id is not None, "PRIMARY without its check"
        if len(up) >= 2:
            assert secondary.values != primary.values, "SECONDARY on PRIMARY while another is up"
            assert self._lb_of(secondary.values[0]) in up, f"SECONDARY {secondary.values} not up"
            assert secondary.health_check_id is not None, "SECONDARY without its check"


TestPairMachine = PairMachine.TestCase
TestPairMachine.settings = settings(
    max_examples=PAIR_EXAMPLES,
    stateful_step_count=STEPS,
    derandomize=not SOAK,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_a_round_whose_probes_end_as_the_next_starts_is_judged_by_its_own_verdict() -> None:
    """Found by `make soak`: a round's probes took its whole interval (a dead LB's timeout), so
    its results and the next round's came at the same instant. The model judged the first
    round's move off a failing PRIMARY by the verdict after both (RISE met), and called a right
    failover false. The controller decided on one good probe, as the SPEC asks."""
    machine = PairMachine()
    machine.start(lbs=1, webs=1)
    machine.answer_is_lost()
    machine.primary_fails_twice_a_run_apart(
        back=True, fault="route53-change", first="every", second="every"
    )
    machine.stops(index=1, role="lb")
    machine.dies(index=1, role="web")
    machine.answer_is_lost()
    moved = len(machine.cloud.route53.history)

    machine.primary_fails_twice_a_run_apart(back=True, fault=None, first="every", second="every")

    pair = machine.pair()
    assert pair is not None
    assert len(machine.cloud.route53.history) > moved
    # The run's move (checked above by the model's invariants) went to an LB the model sees
    # healthy.
    primary = machine._lb_of(pair[0].values[0])
    assert primary is not None
    assert machine.damping[primary].verdict == "healthy"
    machine.teardown()


def test_a_held_swap_leaves_clients_to_the_pair_the_spec_keeps() -> None:
    """Found by `make soak`: PRIMARY's LB failed a minute after a swap, so the run held the next
    one (at most one per LBF_ROUTE53_INTERVAL x LBF_FALL), and its SECONDARY was an LB Route 53's
    checkers fail while the controller sees it healthy (the pair stays, notified). With no run
    for Route 53's own time, Route 53 fails open to the dead PRIMARY while a third LB, outside
    the pair, serves: the model promised that LB, which the SPEC gives clients only through the
    pair. The run after the limit moves the pair, and clients reach that LB."""
    machine = PairMachine()
    machine.start(lbs=3, webs=1)
    machine.faults_stop_and_the_world_settles()
    lb1, lb2, lb3 = machine._ids("lb")
    machine.one_vantage_loses_an_lb(index=2, vantage="route53")  # lb3, for Route 53 alone
    machine.route53_time_passes()
    machine.primary_fails_twice_a_run_apart(back=True, fault=None, first="every", second="every")

    assert machine.held()
    pair = machine.pair()
    assert pair is not None
    assert [machine._lb_of(r.values[0]) for r in pair] == [lb2, lb3]
    told = [entry[2] for entry in machine.notices.sent]
    assert any(
        f"vantages disagree on SECONDARY {machine.cloud.ec2.tag(lb3, 'lbf:name')}" in t
        for t in told
    ), told
    machine.route53_time_passes()
    assert machine.cloud.answer(ACTIVE) == (machine.address(lb2),)  # fails open: both checks fail

    machine.scheduled_run(fault=None)
    machine.route53_time_passes()
    pair = machine.pair()
    assert pair is not None
    assert [machine._lb_of(r.values[0]) for r in pair] == [lb3, lb1]
    assert machine.cloud.answer(ACTIVE) == (machine.address(lb1),)


def test_a_prober_fault_that_lasts_writes_the_held_drop_once() -> None:
    """Found by `make soak`: the only LB stopped and every web server died, one by one. Two of
    three failing was more than LBF_MAX_POOL_DROP, so the list was held; then the third died and
    every pool probe failed, so each round was taken as the prober's fault. The controller wrote
    a new start of the 10 minutes to <prefix>/held-drop on every run of a world that no longer
    changed, and the world never settled. A run that cannot vouch for the held servers stops
    the clock now, written once."""
    machine = ClusterMachine()
    machine.start(lbs=1, webs=3)
    machine.faults_stop_and_the_world_settles()
    machine.dies(index=2, role="web")
    machine.stops(index=0, role="lb")
    machine.dies(index=1, role="web")
    machine.faults_stop_and_the_world_settles()
    writes = len(machine.cloud.ssm.versions["/lbf/demo/held-drop"])
    machine.dies(index=0, role="web")

    machine.faults_stop_and_the_world_settles()

    assert len(machine.cloud.ssm.versions["/lbf/demo/held-drop"]) == writes + 1


def test_a_new_ttl_reaches_the_secondary_of_a_pair_pointed_by_hand() -> None:
    """Found by `make soak`: lb1 and lb2 failed, the pair stayed on lb2 with lb3 SECONDARY;
    lb3 stopped (holding its address), lb2 was terminated, and the operator pointed PRIMARY at
    lb1 and then at an address of their own. With no LB eligible the pair stays, PRIMARY as the
    operator put it; LBF_TTL then went from 60 to 10 and the next run restated every record but
    SECONDARY, which the controller wrote and so must carry LBF_TTL too."""
    machine = PairMachine()
    machine.start(lbs=2, webs=2)
    machine.answer_is_lost()
    machine.primary_fails_twice_a_run_apart(
        back=False, fault=None, first="every", second="controller"
    )
    machine.stops(index=2, role="lb")
    machine.is_terminated(index=13, role="lb")
    machine.operator_edits_the_active_record(to=4)
    machine.faults_stop_and_the_world_settles()
    machine.operator_edits_the_active_record(to=FOREIGN)
    machine.ttl_changes(ttl=10)

    machine.event_run(fault=None, index=12)

    pair = machine.pair()
    assert pair is not None
    assert pair[0].values == (FOREIGN,)
    assert machine._lb_of(pair[1].values[0]) is not None
    assert pair[1].ttl == 10
    machine.after_a_clean_run_every_record_has_the_configured_ttl()
    machine.teardown()


def assert_a_controller_back_serves_clients(machine: PairMachine) -> None:
    """One scheduled run, then Route 53's own time: clients reach an LB alive to every vantage."""
    machine.scheduled_run(fault=None)
    machine.route53_time_passes()
    answer = machine.cloud.answer(ACTIVE)
    assert answer is not None
    answered = machine._lb_of(answer[0])
    assert answered is not None
    assert machine.alive_everywhere(answered)
    machine.teardown()


def test_an_lb_that_took_a_new_address_with_no_controller_is_not_in_the_pair_route53_answers() -> (
    None
):
    """Found by `make soak`: while no controller ran, the PRIMARY died for every vantage and the
    SECONDARY's LB restarted with a new address. Both of the pair's checks fail (the SECONDARY's
    probes its old address), so Route 53 fails open to the PRIMARY; the model counted the
    SECONDARY's LB as one the pair could serve from its new address, which no record holds."""
    machine = PairMachine()
    machine.start(lbs=1, webs=2)
    machine.killed_run(kill_at=11)
    machine.primary_fails_twice_a_run_apart(back=True, fault=None, first="every", second="every")
    machine.stops(index=14, role="lb")
    machine.controller_absent(events=[("recovers", 17), ("primary-dies", 18), ("primary-dies", 0)])
    machine.starts_with_a_new_ip(index=13, role="lb")
    pair = machine.pair()
    assert pair is not None
    moved = machine._lb_of(pair[1].values[0])
    assert moved is not None
    assert machine.address(moved) not in pair[1].values  # the SECONDARY's LB moved away

    machine.controller_absent(events=[("recovers", 2)])

    assert machine.cloud.answer(ACTIVE) == pair[0].values  # Route 53 fails open to PRIMARY
    assert_a_controller_back_serves_clients(machine)  # it follows the LB to its new address


def test_a_record_that_follows_its_lb_before_its_check_is_not_one_route53_can_answer() -> None:
    """Found by `make soak`: a run moved the pair's SECONDARY to its LB's new address and was
    killed before updating that LB's check, which still probed the old one; then no controller
    ran. Route 53 judges the record by its check (unhealthy) and, the PRIMARY dead too, fails open
    to the PRIMARY. The model counted the SECONDARY's LB as one Route 53 could answer. The next
    run updates the check, and clients reach a live LB."""
    machine = PairMachine()
    machine.start(lbs=1, webs=2)
    machine.killed_run(kill_at=11)
    machine.primary_fails_twice_a_run_apart(back=True, fault=None, first="every", second="every")
    machine.stops(index=14, role="lb")
    machine.controller_absent(events=[("dies", 6)])
    machine.starts_with_a_new_ip(index=13, role="lb")
    machine.stops(index=9, role="web")
    machine.killed_run(kill_at=6)
    pair = machine.pair()
    assert pair is not None
    secondary_check = machine.cloud.health_checks.checks[pair[1].health_check_id or ""]
    assert secondary_check.spec.address not in pair[1].values  # the check is yet to follow

    machine.controller_absent(events=[("dies", 7)])

    assert_a_controller_back_serves_clients(machine)  # it updates the check first
