"""The observed world, as frozen values. Nothing here talks to AWS or reads a clock."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from chalicelib.core.endpoints import Endpoint

# Tag keys are the operator-facing contract (SPEC: "Tags on EC2 instances").
TAG_CLUSTER = "lbf:cluster"
TAG_ROLE = "lbf:role"
TAG_NAME = "lbf:name"
TAG_PORT = "lbf:port"
TAG_MAINTENANCE = "lbf:maintenance"
TAG_HEALTH = "lbf:health"
TAG_PROBE = "lbf:probe"
TAG_STATE = "lbf:state"
TAG_BACKENDS = "lbf:backends"

# The only tags the controller ever writes; the IAM policy allows exactly these.
CONTROLLER_TAGS = (TAG_NAME, TAG_HEALTH, TAG_PROBE, TAG_STATE, TAG_BACKENDS)


class Role(enum.Enum):
    LB = "lb"
    WEB = "web"


class Verdict(enum.Enum):
    """What rise/fall damping concludes from an instance's probes; `lbf:health` stores it."""

    HEALTHY = "healthy"
    UNHEALTHY = "unhealthy"
    UNKNOWN = "unknown"


class LbState(enum.Enum):
    ACTIVE = "active"
    STANDBY = "standby"


# The operators' choices. Their values are the words typed into the variables, so a choice compares
# equal to, prints as and serialises to exactly that word.


class FailoverMode(enum.StrEnum):
    """LBF_MODE: what moves when the active LB changes."""

    DNS = "dns"  # the active record's value
    EIP = "eip"  # an Elastic IP's association; the active record holds the Elastic IP


class ActiveMode(enum.StrEnum):
    """LBF_ACTIVE_MODE: how many LBs the active record holds."""

    SINGLE = "single"  # one LB at a time
    ALL = "all"  # every eligible LB (active-active)


class DnsFailover(enum.StrEnum):
    """LBF_DNS_FAILOVER: who moves clients when the active LB fails."""

    CONTROLLER = "controller"  # this controller alone, through the active record
    ROUTE53 = "route53"  # a failover pair on the LBs' health checks: Route 53 moves them too


class AddressKind(enum.StrEnum):
    """LBF_LB_ADDRESS, LBF_POOL_ADDRESS: which of an instance's addresses is probed and published."""

    PUBLIC = "public"
    PRIVATE = "private"


# EC2 instance states in which an instance cannot serve: unhealthy at once, no rounds needed.
DOWN_STATES = frozenset({"stopping", "stopped", "shutting-down", "terminated"})
# States in which a per-LB record is removed (the instance has given up its address).
GONE_STATES = frozenset({"stopped", "shutting-down", "terminated"})


@dataclass(frozen=True)
class ProbeRun:
    """A run of equal probe results (`lbf:probe` = `ok:N` / `fail:N reason`)."""

    ok: bool
    count: int
    # The last failed probe's reason ("timeout", "connection refused", "HTTP 503"), for `status`.
    reason: str | None = None

    def render(self) -> str:
        tag = f"{'ok' if self.ok else 'fail'}:{self.count}"
        return f"{tag} {self.reason}" if self.reason and not self.ok else tag


@dataclass(frozen=True)
class Damping:
    """What the controller carries per target across rounds and invocations."""

    verdict: Verdict = Verdict.UNKNOWN
    run: ProbeRun | None = None


@dataclass(frozen=True)
class Instance:
    """An instance of the cluster whose tags all parsed."""

    instance_id: str
    role: Role
    state: str  # EC2 state name: pending, running, stopping, stopped, shutting-down, terminated
    launch_time: float  # epoch seconds; the older of two LBs with one name keeps it
    address: str | None  # the address that is probed and published (per LBF_*_ADDRESS)
    name: str | None = None  # LBs: lbf:name, None until assigned
    name_assigned: bool = False  # the name was chosen this run and its tag is yet to be written
    port: int | None = None  # web: backend port
    draining: bool = False
    damping: Damping = field(default_factory=Damping)
    lb_state: LbState | None = None  # lbf:state
    backends_checksum: str | None = None  # lbf:backends
    written: tuple[tuple[str, str], ...] = ()  # the controller's own tags as EC2 holds them

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def down(self) -> bool:
        return self.state in DOWN_STATES

    @property
    def verdict(self) -> Verdict:
        return self.damping.verdict


@dataclass(frozen=True)
class Skipped:
    """An instance of the cluster that is skipped: a tag did not parse, or it has no address the
    settings select. Its tags are frozen (never written, never rendered), not its health."""

    instance_id: str
    reason: str
    role: str | None  # raw lbf:role, only for display after escaping
    name: str | None  # raw lbf:name if it is a valid label (protects that record), else None
    address: str | None  # its address if it parsed, so an active record on it is recognised
    state: str
    # What parsed of it (role, EC2 state, address, the damping in its own lbf:probe/lbf:health):
    # probed and judged like any instance, so that it can lose what it holds when it stops or
    # fails, but never newly chosen. None when its role is not known. Its name is a valid label
    # or None; no value here came from a tag that did not parse.
    frozen: Instance | None = None


@dataclass(frozen=True)
class Record:
    """A Route 53 record set as read: name without the trailing dot, lower case."""

    name: str
    type: str
    ttl: int
    values: tuple[str, ...]
    # A failover record (LBF_DNS_FAILOVER=route53): Route 53 tells the two records of one name
    # apart by SetIdentifier, answers by Failover (PRIMARY, SECONDARY) and the health check's
    # status. A DELETE must name all of them, as it names the TTL and every value.
    set_identifier: str | None = None
    failover: str | None = None
    health_check_id: str | None = None


@dataclass(frozen=True)
class HealthCheckSpec:
    """What a Route 53 health check probes (LBF_ROUTE53_HEALTH_CHECKS)."""

    kind: str  # HTTP | HTTPS | TCP
    address: str
    port: int
    resource_path: str | None  # None for TCP
    # Route 53 cannot change a check's interval (nor its type): another one means a new check.
    request_interval: int = 30
    failure_threshold: int = 3


@dataclass(frozen=True)
class HealthCheck:
    """One of the controller's Route 53 health checks, as read; `version` guards an update."""

    health_check_id: str
    instance_id: str  # the LB it belongs to, from its CallerReference
    version: int
    spec: HealthCheckSpec


@dataclass(frozen=True)
class ProbeTarget:
    key: str  # instance id
    endpoint: Endpoint


@dataclass(frozen=True)
class ProbeResult:
    ok: bool
    detail: str  # "200", "timeout", "connection refused", ...
    seconds: float


@dataclass(frozen=True)
class Push:
    """The last backend push to one LB, as SSM reports it."""

    command_id: str
    instance_id: str
    checksum: str
    status: str  # Pending, InProgress, Delayed, Success, Failed, TimedOut, Cancelled, Undeliverable
    requested_at: float

    IN_FLIGHT = frozenset({"Pending", "InProgress", "Delayed"})

    @property
    def in_flight(self) -> bool:
        return self.status in self.IN_FLIGHT

    def output_in(self, log_group: str) -> str:
        """Where its output is, for an operator: SSM Agent names the streams
        <command id>/<instance id>/<step>/stdout and .../stderr."""
        return (
            f"output in CloudWatch Logs {log_group}, streams {self.command_id}/{self.instance_id}/"
        )


@dataclass(frozen=True)
class World:
    """Everything one run reads once: the inventory, the records, the parameters."""

    lbs: tuple[Instance, ...]
    webs: tuple[Instance, ...]
    skipped: tuple[Skipped, ...]
    records: tuple[Record, ...]
    backends_parameter: str | None  # <prefix>/backends as stored
    lbs_parameter: str | None  # <prefix>/lbs as stored
    paused: bool = False
    # <prefix>/paused as found when it is neither true nor false (taken as paused); else None.
    paused_unclear: str | None = None
    held_drop_parameter: str | None = None  # <prefix>/held-drop as stored (core.held_drop)
    pushes: tuple[Push, ...] = ()
    # The pushes this run printed and did not send (dry run, paused): LB instance id -> checksum.
    # No command exists for them, so they are kept apart from `pushes`, which SSM reports.
    pushes_printed: tuple[tuple[str, str], ...] = ()
    notices: frozenset[str] = frozenset()  # conditions already notified (notices go out on change)
    # EIP mode: the instance the Elastic IP is associated with, and its public address.
    eip_instance_id: str | None = None
    eip_address: str | None = None
    # LBF_ROUTE53_HEALTH_CHECKS: the cluster's health checks; None when not read (the setting is
    # off, or the read failed, and then `health_checks_error` says why).
    health_checks: tuple[HealthCheck, ...] | None = None
    health_checks_error: str | None = None
    # LBF_DNS_FAILOVER=route53: Route 53's view of the pair's checks (check id, healthy), read
    # at most once per check interval; and when the pair's PRIMARY last moved between LBs.
    route53_view: tuple[tuple[str, bool], ...] = ()
    pair_swapped_at: float | None = None
    # Why Route 53's view of a pair check was not read (`status`): None when it was, or when no
    # check was asked about. A check missing from the view is then unknown, not "no report".
    route53_view_unread: str | None = None


@dataclass(frozen=True)
class RawInstance:
    """An instance as EC2 describes it, before any tag is trusted."""

    instance_id: str
    state: str
    launch_time: float
    private_ip: str | None
    public_ip: str | None
    tags: tuple[tuple[str, str], ...]
