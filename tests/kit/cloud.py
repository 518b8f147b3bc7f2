"""In-memory stand-ins for AWS and the prober, faithful where moto is not.

FakeRoute53 applies a change batch atomically and rejects a DELETE that does not match the current
record exactly, or a CREATE over an existing one, as Route 53 does (moto accepts both). FakeSsm
lets a test decide each command's status, which moto always reports as Success. FakeHealthChecks
lets a test decide what Route 53's checkers see, which moto reports as one fixed "Success".
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

from chalicelib.adapters.operations import is_write  # the benchmarks' rule too
from chalicelib.core.dns import RecordChange
from chalicelib.core.model import (
    HealthCheck,
    HealthCheckSpec,
    ProbeResult,
    ProbeTarget,
    Push,
    RawInstance,
    Record,
)
from chalicelib.core.second_opinion import CheckerObservation
from chalicelib.errors import AwsError, ChangeRejected, ProberFault
from chalicelib.services import (
    Notifier,
    Pushes,
    PushesWriter,
    Records,
    RecordsWriter,
    Sealed,
    Services,
    Writers,
)
from standin.route53_checkers import CHECKER_REGIONS


class FakeClock:
    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.time = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds

    def advance(self, seconds: float) -> None:
        self.time += seconds


STANDARD_PARAMETER_LIMIT = 4096
ADVANCED_PARAMETER_LIMIT = 8192


@dataclass
class Calls:
    """Every call made, by operation name, so tests can count writes."""

    log: list[tuple[str, object]] = field(default_factory=list)
    # Called with each call before it takes effect: a test can raise here to kill a run mid-apply.
    before: Callable[[str, object], None] | None = None

    def add(self, operation: str, detail: object = None) -> None:
        self.log.append((operation, detail))
        if self.before is not None:
            self.before(operation, detail)

    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.log if op == operation)

    def writes(self) -> list[tuple[str, object]]:
        return [(op, d) for op, d in self.log if is_write(op)]


class FakeEc2:
    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self.instances: dict[str, RawInstance] = {}
        self.fail_describe: AwsError | None = None
        self.fail_tags: AwsError | None = None
        self.eip_holder: str | None = None
        self.fail_associate: AwsError | None = None
        self._ids = itertools.count(1)

    def add(
        self,
        role: str,
        address: str,
        *,
        name: str | None = None,
        state: str = "running",
        cluster: str = "demo",
        launch_time: float | None = None,
        tags: dict[str, str] | None = None,
        public: str | None = None,
    ) -> str:
        number = next(self._ids)
        instance_id = f"i-{number:017x}"
        all_tags = {"lbf:cluster": cluster, "lbf:role": role}
        if name is not None:
            all_tags["lbf:name"] = name
        all_tags.update(tags or {})
        self.instances[instance_id] = RawInstance(
            instance_id=instance_id,
            state=state,
            launch_time=float(number) if launch_time is None else launch_time,
            private_ip=address,
            public_ip=public if public is not None else address,
            tags=tuple(all_tags.items()),
        )
        return instance_id

    def set_state(self, instance_id: str, state: str, *, address: str | None = None) -> None:
        raw = self.instances[instance_id]
        self.instances[instance_id] = replace(
            raw,
            state=state,
            private_ip=address or raw.private_ip,
            public_ip=address or raw.public_ip,
        )

    def ids(self, role: str) -> list[str]:
        """The instances with this lbf:role, in the order they were added."""
        return [i for i, raw in self.instances.items() if ("lbf:role", role) in raw.tags]

    def id_named(self, name: str) -> str:
        return next(i for i in self.instances if self.tag(i, "lbf:name") == name)

    def id_at(self, address: str) -> str:
        """The instance whose private address this is."""
        return next(i for i, raw in self.instances.items() if raw.private_ip == address)

    def tag(self, instance_id: str, key: str) -> str | None:
        return dict(self.instances[instance_id].tags).get(key)

    def set_tag(self, instance_id: str, key: str, value: str | None) -> None:
        raw = self.instances[instance_id]
        tags = dict(raw.tags)
        if value is None:
            tags.pop(key, None)
        else:
            tags[key] = value
        self.instances[instance_id] = replace(raw, tags=tuple(tags.items()))

    # Inventory protocol
    def describe(self, cluster: str) -> list[RawInstance]:
        self.calls.add("DescribeInstances")
        if self.fail_describe is not None:
            raise self.fail_describe
        return [r for r in self.instances.values() if ("lbf:cluster", cluster) in r.tags]

    def describe_other_clusters(self, cluster: str) -> list[RawInstance]:
        self.calls.add("DescribeInstances")
        if self.fail_describe is not None:
            raise self.fail_describe
        return [
            r
            for r in self.instances.values()
            if "lbf:cluster" in dict(r.tags) and ("lbf:cluster", cluster) not in r.tags
        ]

    def create_tags(self, instance_ids: Sequence[str], tags: Sequence[tuple[str, str]]) -> None:
        self.calls.add("CreateTags", (tuple(instance_ids), tuple(tags)))
        if self.fail_tags is not None:
            raise self.fail_tags
        for instance_id in instance_ids:
            for key, value in tags:
                self.set_tag(instance_id, key, value)

    def delete_tags(self, instance_ids: Sequence[str], keys: Sequence[str]) -> None:
        self.calls.add("DeleteTags", (tuple(instance_ids), tuple(keys)))
        if self.fail_tags is not None:
            raise self.fail_tags
        for instance_id in instance_ids:
            for key in keys:
                self.set_tag(instance_id, key, None)

    def address_holder(self, allocation_id: str) -> tuple[str | None, str | None]:
        self.calls.add("DescribeAddresses")
        # An allocated Elastic IP has its address whether or not it is associated.
        return self.eip_holder, "198.51.100.7"

    def associate_address(self, allocation_id: str, instance_id: str) -> None:
        self.calls.add("AssociateAddress", instance_id)
        if self.fail_associate is not None:
            raise self.fail_associate
        self.eip_holder = instance_id


def record_key(record: Record) -> tuple[str, str]:
    """A plain record is keyed by name and type; a failover record's SetIdentifier joins the
    type, as Route 53 tells the pair's two records of one name and type apart by it."""
    if record.set_identifier is None:
        return (record.name, record.type)
    return (record.name, f"{record.type} {record.set_identifier}")


def _refuse_plain_beside_failover(staged: Mapping[tuple[str, str], Record]) -> None:
    """Route 53 refuses a plain record beside failover records of the same name and type (moto
    accepts it): switching between them must be one batch."""
    plain = {(r.name, r.type) for r in staged.values() if r.set_identifier is None}
    for record in staged.values():
        if record.set_identifier is not None and (record.name, record.type) in plain:
            raise ChangeRejected(
                "route53",
                "ChangeResourceRecordSets",
                "InvalidChangeBatch",
                f"[RRSet with DNS name {record.name}., type {record.type}, SetIdentifier "
                f"{record.set_identifier} cannot be created because a non multivalue answer "
                "rrset exists with the same name and type.]",
            )


class FakeRoute53:
    def __init__(self, calls: Calls, clock: FakeClock) -> None:
        self.calls = calls
        self.clock = clock
        self.history: list[tuple[float, tuple[RecordChange, ...]]] = []
        self.records: dict[tuple[str, str], Record] = {}
        self.fail_next: list[AwsError] = []
        self.fail_read: AwsError | None = None
        self.batches: list[tuple[RecordChange, ...]] = []
        self.before_change: Callable[[], None] | None = None  # to race another run in
        # Rejections that are not stale, with AWS's InvalidChangeBatch messages (moto enforces no
        # CNAME conflict, and answers InvalidInput where AWS says InvalidChangeBatch).
        self.cnames: set[str] = set()  # names holding a CNAME: no A record may join it
        self.zone: str | None = None  # the hosted zone's name: nothing outside it is accepted
        # The code and message of those refusals, when a test words them otherwise: moto's
        # InvalidInput, or a message that names none of the records.
        self.refusal: tuple[str, str] | None = None
        # Lost answers: the next N batches are applied, then their answer is lost and botocore's
        # retry is rejected because the DELETE no longer matches.
        self.lose_answers = 0

    def value(self, name: str) -> tuple[str, ...] | None:
        record = self.records.get((name, "A"))
        return record.values if record else None

    def read(self, domain: str) -> tuple[Record, ...]:
        self.calls.add("ListResourceRecordSets")
        if self.fail_read is not None:
            raise self.fail_read
        return tuple(
            r
            for (name, _), r in self.records.items()
            if name == domain or name.endswith("." + domain)
        )

    def change(self, changes: Sequence[RecordChange], comment: str) -> str:
        self.calls.add("ChangeResourceRecordSets", tuple(changes))
        if self.before_change is not None:
            hook, self.before_change = self.before_change, None
            hook()
        if self.fail_next:
            raise self.fail_next.pop(0)
        self._refuse_permanently(changes)
        staged = dict(self.records)
        for change in changes:
            key = record_key(change.record)
            present = staged.get(key)
            if change.action == "DELETE":
                if present != change.record:
                    raise ChangeRejected(
                        "route53",
                        "ChangeResourceRecordSets",
                        "InvalidChangeBatch",
                        f"Tried to delete resource record set {key} but the values do not match",
                    )
                del staged[key]
            elif change.action == "CREATE":
                if present is not None:
                    raise ChangeRejected(
                        "route53",
                        "ChangeResourceRecordSets",
                        "InvalidChangeBatch",
                        f"Tried to create resource record set {key} but it already exists",
                    )
                staged[key] = change.record
            else:
                staged[key] = change.record
        _refuse_plain_beside_failover(staged)
        self.records = staged  # atomic: all or nothing
        self.batches.append(tuple(changes))
        self.history.append((self.clock.now(), tuple(changes)))
        if self.lose_answers > 0 and any(c.action == "DELETE" for c in changes):
            self.lose_answers -= 1
            self.calls.add("ChangeResourceRecordSets", tuple(changes))  # botocore's retry
            deleted = next(c.record for c in changes if c.action == "DELETE")
            raise ChangeRejected(
                "route53",
                "ChangeResourceRecordSets",
                "InvalidChangeBatch",
                f"[Tried to delete resource record set [name='{deleted.name}.', "
                f"type='{deleted.type}'] but it was not found]",
            )
        return f"/change/C{len(self.batches)}"

    def _refuse_permanently(self, changes: Sequence[RecordChange]) -> None:
        problems = []
        for change in changes:
            name = change.record.name
            if self.zone is not None and name != self.zone and not name.endswith("." + self.zone):
                problems.append(
                    f"RRSet with DNS name {name}. is not permitted in zone {self.zone}."
                )
            elif change.action != "DELETE" and name in self.cnames:
                problems.append(
                    f"RRSet of type {change.record.type} with DNS name {name}. is not permitted "
                    "because a conflicting RRSet of type  CNAME with the same DNS name already "
                    f"exists in zone {self.zone or 'example.com'}."
                )
        if problems:
            code, message = self.refusal or ("InvalidChangeBatch", "[" + ", ".join(problems) + "]")
            raise ChangeRejected("route53", "ChangeResourceRecordSets", code, message)

    def change_status(self, change_id: str) -> str:
        self.calls.add("GetChange")
        return "INSYNC"


# Parameter Store keeps this many versions of a parameter and drops the oldest by itself.
KEPT_VERSIONS = 100


class FakeSsm:
    """Parameters and commands. `outcome` decides what each sent command ends as."""

    def __init__(self, calls: Calls, clock: FakeClock | None = None) -> None:
        self.calls = calls
        self.clock = clock
        self.parameters: dict[str, str] = {}
        # Every parameter's versions, oldest first, (LastModifiedDate, value), as SSM keeps them.
        self.versions: dict[str, list[tuple[float, str]]] = {}
        # Intelligent-Tiering as the adapter asks for it: past 4,096 characters a parameter becomes
        # advanced (billed); past 8,192 Parameter Store refuses it. moto enforces neither.
        self.tiers: dict[str, str] = {}
        self.commands: list[Push] = []
        self.outcome: Callable[[Push], str] = lambda command: "Success"
        self.fail_send_for: set[str] = set()
        self.fail_read: AwsError | None = None  # GetParameters
        self.fail_recent: AwsError | None = None  # ListCommands
        self.fail_status: AwsError | None = None  # GetCommandInvocation
        self._ids = itertools.count(1)

    def read(self, names: Sequence[str]) -> dict[str, str]:
        self.calls.add("GetParameters")
        if self.fail_read is not None:
            raise self.fail_read
        return {n: self.parameters[n] for n in names if n in self.parameters}

    def put(self, name: str, value: str) -> None:
        self.calls.add("PutParameter", (name, value))
        if len(value) > ADVANCED_PARAMETER_LIMIT:
            raise AwsError(
                "ssm",
                "PutParameter",
                "ValidationException",
                f"Parameter value, {len(value)} characters, exceeds the maximum of 8192",
            )
        self.parameters[name] = value
        at = self.clock.now() if self.clock is not None else 0.0
        self.versions[name] = [*self.versions.get(name, []), (at, value)][-KEPT_VERSIONS:]
        self.tiers[name] = "Standard" if len(value) <= STANDARD_PARAMETER_LIMIT else "Advanced"

    def send(self, instance_id: str, backends: str, checksum: str, *, now: float) -> Push:
        self.calls.add("SendCommand", (instance_id, backends, checksum))
        if instance_id in self.fail_send_for:
            raise AwsError("ssm", "SendCommand", "InvalidInstanceId", f"{instance_id} not ready")
        command = Push(f"cmd-{next(self._ids)}", instance_id, checksum, "Pending", now)
        self.commands.append(command)
        return command

    def recent(self, *, since: float) -> list[Push]:
        self.calls.add("ListCommands")
        if self.fail_recent is not None:
            raise self.fail_recent
        return [c for c in self.commands if c.requested_at >= since]

    def status(self, command: Push) -> str:
        self.calls.add("GetCommandInvocation", command.command_id)
        if self.fail_status is not None:
            raise self.fail_status
        status = self.outcome(command)
        self.commands = [
            replace(c, status=status) if c.command_id == command.command_id else c
            for c in self.commands
        ]
        return status


class FakeHistory:
    """GetParameterHistory over FakeSsm's versions (the History protocol)."""

    def __init__(self, ssm: FakeSsm) -> None:
        self.ssm = ssm
        self.fail_read: AwsError | None = None

    def read(self, name: str) -> list[tuple[float, str]]:
        self.ssm.calls.add("GetParameterHistory", name)
        if self.fail_read is not None:
            raise self.fail_read
        return list(self.ssm.versions.get(name, []))


class FakeSns:
    def __init__(self, calls: Calls) -> None:
        self.calls = calls
        self.messages: list[str] = []

    def publish(self, subject: str, message: str) -> None:
        self.calls.add("Publish", message)
        self.messages.append(message)


# The regions Route 53 checks from, as the stand-in's checkers use them.
REGIONS = CHECKER_REGIONS


@dataclass
class FakeHealthChecks:
    """Route 53's health checks in memory, with checkers whose answers the test decides.

    Like Route 53: a CallerReference is never reused, even after a delete, and an update must
    carry the check's current version.
    """

    clock: FakeClock
    cloud_calls: Calls = field(default_factory=Calls)
    # The health checks' own calls, apart from the rest of the cloud's.
    calls: list[tuple[str, object]] = field(default_factory=list)
    checks: dict[str, HealthCheck] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    references: set[str] = field(default_factory=set)
    # Addresses Route 53's checkers see healthy (they reach the LBs from the internet).
    seen_healthy: set[str] = field(default_factory=set)
    fail_read: AwsError | None = None
    fail_status: AwsError | None = None
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def _add(self, operation: str, detail: object) -> None:
        self.calls.append((operation, detail))
        self.cloud_calls.add(operation, detail)

    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.calls if op == operation)

    def at(self, instance_id: str) -> list[str]:
        return [c.spec.address for c in self.checks.values() if c.instance_id == instance_id]

    def read(self, cluster: str) -> tuple[HealthCheck, ...]:
        self._add("ListHealthChecks", cluster)
        if self.fail_read is not None:
            raise self.fail_read
        return tuple(self.checks.values())

    def create(
        self, spec: HealthCheckSpec, caller_reference: str, tags: Sequence[tuple[str, str]]
    ) -> str:
        self._add("CreateHealthCheck", spec)
        if caller_reference in self.references:
            raise AwsError("route53", "CreateHealthCheck", "HealthCheckAlreadyExists", "reused")
        self.references.add(caller_reference)
        health_check_id = f"hc-{next(self._ids)}"
        instance_id = caller_reference.split(":")[2]
        self.checks[health_check_id] = HealthCheck(health_check_id, instance_id, 1, spec)
        self.tags[health_check_id] = dict(tags)
        return health_check_id

    def update(self, health_check_id: str, version: int, spec: HealthCheckSpec) -> None:
        self._add("UpdateHealthCheck", (health_check_id, spec))
        check = self.checks[health_check_id]
        if check.version != version:
            raise AwsError("route53", "UpdateHealthCheck", "HealthCheckVersionMismatch", "stale")
        self.checks[health_check_id] = replace(check, spec=spec, version=version + 1)

    def delete(self, health_check_id: str) -> None:
        self._add("DeleteHealthCheck", health_check_id)
        self.checks.pop(health_check_id, None)

    def status(self, health_check_id: str) -> tuple[CheckerObservation, ...]:
        self._add("GetHealthCheckStatus", health_check_id)
        if self.fail_status is not None:
            raise self.fail_status
        healthy = self.checks[health_check_id].spec.address in self.seen_healthy
        # Three checkers per region, each reporting within the last interval.
        return tuple(
            CheckerObservation(region, healthy, self.clock.now() - 10)
            for region in REGIONS
            for _ in range(3)
        )


class FakeProber:
    """Healthy unless the address is listed as dead (or `dead(address, now)` says so)."""

    def __init__(self, clock: FakeClock, ec2: FakeEc2, timeout: float = 2.0) -> None:
        self.clock = clock
        self.ec2 = ec2
        self.timeout = timeout
        self.dead: set[str] = set()
        self.dead_when: Callable[[str, float], bool] | None = None
        self.rounds: list[float] = []
        self.probed: list[list[str]] = []  # each round's target keys

    def probe_round(self, targets: Sequence[ProbeTarget]) -> dict[str, ProbeResult]:
        self.rounds.append(self.clock.now())
        self.probed.append([t.key for t in targets])
        results = {}
        for target in targets:
            address = self.ec2.instances[target.key].private_ip or ""
            dead = address in self.dead or (
                self.dead_when is not None and self.dead_when(address, self.clock.now())
            )
            results[target.key] = ProbeResult(
                ok=not dead, detail="timeout" if dead else "200", seconds=0.01
            )
        # Probes run concurrently: a round with dead targets costs one timeout. The pool's
        # invoke in its worker (chalicelib/probing.py, thread "lbf-pool") spends it beside the
        # rounds, not in them: no round waits for it.
        beside = threading.current_thread().name.startswith("lbf-pool")
        if any(not r.ok for r in results.values()) and not beside:
            self.clock.advance(self.timeout)
        return results


class FakeProbeFunction:
    """The prober function as the controller's adapter presents it: the same probes as FakeProber
    (same dead addresses), or a ProberFault when `fault` is set. Records each invoke's targets."""

    def __init__(self, controller: FakeProber) -> None:
        # Probes of its own, that find the same targets dead as the controller's would.
        self.prober = FakeProber(controller.clock, controller.ec2, controller.timeout)
        self.prober.dead = controller.dead
        self.fault: str | None = None
        self.invocations: list[list[str]] = []

    def probe_round(self, targets: Sequence[ProbeTarget]) -> dict[str, ProbeResult]:
        if not targets:
            return {}
        self.invocations.append([t.key for t in targets])
        if self.fault is not None:
            raise ProberFault(self.fault)
        return self.prober.probe_round(targets)


@dataclass
class FakeCloud:
    clock: FakeClock = field(default_factory=FakeClock)
    calls: Calls = field(default_factory=Calls)

    def __post_init__(self) -> None:
        self.ec2 = FakeEc2(self.calls)
        self.route53 = FakeRoute53(self.calls, self.clock)
        self.ssm = FakeSsm(self.calls, self.clock)
        self.history = FakeHistory(self.ssm)
        self.sns = FakeSns(self.calls)
        self.prober = FakeProber(self.clock, self.ec2)
        self.probe_function = FakeProbeFunction(self.prober)
        self.health_checks = FakeHealthChecks(self.clock, self.calls)

    def services(
        self,
        *,
        records: RecordsAdapter | None = None,
        pushes: PushesAdapter | None = None,
        notifier: Notifier | None = None,
    ) -> Services:
        """The fakes as a job is given them: each fake reads and writes, split as the adapters are.

        `records`, `pushes` or `notifier` puts another one (a real adapter on botocore's Stubber,
        a recording wrapper) in the fake's place, as reader and writer both.
        """
        records = self.route53 if records is None else records
        pushes = self.ssm if pushes is None else pushes
        return Services(
            inventory=self.ec2,
            records=records,
            parameters=self.ssm,
            pushes=pushes,
            prober=self.prober,
            writers=Sealed(
                Writers(
                    inventory=self.ec2,
                    records=records,
                    parameters=self.ssm,
                    pushes=pushes,
                    notifier=self.sns if notifier is None else notifier,
                    health_checks=self.health_checks,
                )
            ),
            probe_function=self.probe_function,
            # Used only with LBF_ROUTE53_HEALTH_CHECKS on, as aws_services makes it then.
            health_checks=self.health_checks,
            history=self.history,
        )

    def answer(self, name: str) -> tuple[str, ...] | None:
        """What Route 53's data plane gives a client asking for `name` (A), by its checkers' view
        (`health_checks.seen_healthy`): the plain record; for a failover pair, PRIMARY while its
        check is healthy, else SECONDARY if its check is healthy, else PRIMARY (Route 53 fails
        open when both fail). A record without a check counts as healthy, and so does one naming
        a check Route 53 has no data for (a new one, or one deleted from under it)."""
        at_name = [r for (n, _), r in self.route53.records.items() if n == name and r.type == "A"]
        plain = next((r for r in at_name if r.failover is None), None)
        if plain is not None:
            return plain.values
        primary = next((r for r in at_name if r.failover == "PRIMARY"), None)
        secondary = next((r for r in at_name if r.failover == "SECONDARY"), None)
        if primary is None or secondary is None:
            found = primary or secondary
            return found.values if found is not None else None
        if self._seen_healthy(primary) or not self._seen_healthy(secondary):
            return primary.values
        return secondary.values

    def _seen_healthy(self, record: Record) -> bool:
        check = self.health_checks.checks.get(record.health_check_id or "")
        return check is None or check.spec.address in self.health_checks.seen_healthy


class RecordsAdapter(Records, RecordsWriter, Protocol):
    """What reads and writes the records, as Route53Records and FakeRoute53 both do."""


class PushesAdapter(Pushes, PushesWriter, Protocol):
    """What reads and sends the pushes, as SsmPushes and FakeSsm both do."""


WEBS = ("127.0.1.21", "127.0.1.22", "127.0.1.23")


def small_cluster(lbs: int = 2, webs: Sequence[str] = WEBS, *, cluster: str = "demo") -> FakeCloud:
    """LBs lb1, lb2, ... at 127.0.0.11, .12, ..., then web servers at `webs`, in that order."""
    cloud = FakeCloud()
    for number in range(1, lbs + 1):
        cloud.ec2.add("lb", f"127.0.0.{10 + number}", name=f"lb{number}", cluster=cluster)
    for address in webs:
        cloud.ec2.add("web", address, cluster=cluster)
    return cloud


FAKE_DOMAIN = "prod.example.com"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:lbf"
# The variables that point a job at FakeCloud, for `tests.kit.settings`: its EC2 tags instances
# into cluster "demo", the LBs are probed and published at their private (loopback) addresses, and
# notices go to a topic.
FAKE_CLOUD_ENV = {
    "LBF_CLUSTER": "demo",
    "LBF_DOMAIN": FAKE_DOMAIN,
    "LBF_HOSTED_ZONE_ID": "Z123",
    "LBF_LB_ADDRESS": "private",
    "LBF_SNS_TOPIC_ARN": TOPIC,
}


class Killed(BaseException):
    """The Lambda runtime ending an invocation: nothing in the job may catch it."""


def kill_at_write(kill_at: int) -> Callable[[str, object], None]:
    """A `Calls.before` hook that kills the run just before its `kill_at`-th write (from 0)."""
    writes = 0

    def kill(operation: str, detail: object) -> None:
        nonlocal writes
        if not is_write(operation):
            return
        if writes == kill_at:
            raise Killed(operation)  # before the call takes effect
        writes += 1

    return kill
