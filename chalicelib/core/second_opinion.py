"""Route 53 health checks as a second opinion (`LBF_ROUTE53_HEALTH_CHECKS`). Pure.

The controller keeps one Route 53 health check per running LB, pointed at the LB's current address.
They are consulted only in a round the controller takes as a fault on its own side (most of its
probes failed at once, `is_prober_fault`): that round's results are discarded as before, and the
checks say which LBs Route 53's checkers, probing from several regions, still see healthy. So the
notice can say "your LB is fine, the prober is not" instead of only "the prober is not".

Outside such a round the checks are never read: Route 53 needs 30 s x 3 to call an endpoint
unhealthy, and a single dead LB must be failed over on the controller's own probes, never held
back by that lag. Route 53's checkers cannot reach private, loopback, shared (100.64/10) or
documentation addresses at all: such an LB gets no health check, and `status` says so.

Which checks are the controller's: their CallerReference (set atomically when the check is made,
unlike a tag written by a second call) is `lbf:<cluster digest>:<instance id>:<run start>`. The
run start makes it unique, as Route 53 requires even for deleted checks, and makes a retried
create in the same run idempotent (Route 53 returns the existing check for the same reference).
"""

from __future__ import annotations

import enum
import hashlib
import ipaddress
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from chalicelib.core.changes import (
    CreateHealthCheck,
    DeleteHealthCheck,
    HealthCheckChange,
    UpdateHealthCheck,
    describe_check,
)
from chalicelib.core.dns import by_name
from chalicelib.core.endpoints import CheckTemplate
from chalicelib.core.model import (
    DOWN_STATES,
    TAG_CLUSTER,
    HealthCheck,
    HealthCheckSpec,
    Instance,
    World,
)
from chalicelib.core.names import is_instance_id

# Route 53's standard interval and threshold: the cheapest health check ($0.50 a month for an AWS
# endpoint); a 10 s interval costs $1 more per check and the second opinion does not need it.
REQUEST_INTERVAL = 30
FAILURE_THRESHOLD = 3
# A checker's report older than this (three intervals) says nothing about now.
OBSERVATION_MAX_AGE = 3 * REQUEST_INTERVAL
# Route 53 checks from at least three regions; fewer reporting is too thin to call.
MIN_REGIONS = 3
# Route 53 refuses a longer ResourcePath.
RESOURCE_PATH_MAX_CHARS = 255

_KINDS = {"http": "HTTP", "https": "HTTPS", "tcp": "TCP"}
_REFERENCE_PREFIX = "lbf"

NOT_CHECKABLE_PRIVATE = "not possible for private address"


@dataclass(frozen=True)
class SecondOpinionRules:
    """LBF_ROUTE53_HEALTH_CHECKS, and what a check needs: whose it is and what it probes."""

    enabled: bool
    cluster: str
    lb_check: CheckTemplate  # a health check probes what the controller's LB probe does
    # Route 53 cannot change a check's interval: a check made with another one is replaced.
    request_interval: int = REQUEST_INTERVAL  # LBF_ROUTE53_INTERVAL
    failure_threshold: int = FAILURE_THRESHOLD  # LBF_FALL
    # The local stand-in's "public" addresses are loopback, and its checkers reach them.
    loopback_allowed: bool = False


# ---------------------------------------------------------------------------------------------
# Which checks are ours.


def cluster_digest(cluster: str) -> str:
    """A cluster name is up to 128 characters; CallerReference holds 64. 64 bits tell them apart."""
    return hashlib.sha256(cluster.encode()).hexdigest()[:16]


def caller_reference(cluster: str, instance_id: str, run_started_at: float) -> str:
    return f"{_REFERENCE_PREFIX}:{cluster_digest(cluster)}:{instance_id}:{int(run_started_at)}"


def instance_of_reference(cluster: str, reference: str) -> str | None:
    """The LB a health check belongs to, or None when it is not this cluster's."""
    parts = reference.split(":")
    if (
        len(parts) != 4
        or parts[0] != _REFERENCE_PREFIX
        or parts[1] != cluster_digest(cluster)
        or not is_instance_id(parts[2])
        or not parts[3].isdigit()
    ):
        return None
    return parts[2]


# ---------------------------------------------------------------------------------------------
# The health check an LB should have.


@dataclass(frozen=True)
class NotCheckable:
    reason: str


def checkable_by_route53(address: str, *, loopback_allowed: bool = False) -> bool:
    """Route 53's checkers are on the internet: they reach global unicast addresses only.

    `loopback_allowed`: on the local stand-in every "public" address is a loopback one, and its
    checkers run on loopback too.
    """
    parsed = ipaddress.ip_address(address)
    if loopback_allowed and parsed.is_loopback:
        return True
    return parsed.is_global and not parsed.is_multicast


def desired_check(lb: Instance, rules: SecondOpinionRules) -> HealthCheckSpec | NotCheckable | None:
    """The check `lb` should have; None when it should have none (not running, no address)."""
    if not lb.running or lb.address is None:
        return None
    if not checkable_by_route53(lb.address, loopback_allowed=rules.loopback_allowed):
        return NotCheckable(NOT_CHECKABLE_PRIVATE)
    endpoint = rules.lb_check.endpoint(lb.address)
    path: str | None = None
    if endpoint.scheme != "tcp":
        path = endpoint.path
        if len(path) > RESOURCE_PATH_MAX_CHARS:
            return NotCheckable(
                f"not possible: the check path is longer than Route 53's "
                f"{RESOURCE_PATH_MAX_CHARS} characters"
            )
    return HealthCheckSpec(
        kind=_KINDS[endpoint.scheme],
        address=lb.address,
        port=endpoint.port,
        resource_path=path,
        request_interval=rules.request_interval,
        failure_threshold=rules.failure_threshold,
    )


def plan_health_checks(
    world: World,
    rules: SecondOpinionRules,
    *,
    run_started_at: float,
    in_use: Collection[str] = (),
) -> tuple[HealthCheckChange, ...]:
    """The writes that give each running, checkable LB exactly one check at its current address.

    A frozen (skipped) LB's check is left as it is, like its record, until EC2 reports it down
    (EC2's state outranks a tag). A check of an instance that
    is no longer a running LB of the cluster, or a second check of one LB, is deleted, unless a
    record is bound to it (`in_use`: the failover pair's): the pair moves to the new check
    first, and a later run deletes the old one, so the pair never names a check that is gone.
    """
    if world.health_checks is None:
        return ()  # not read (setting off, or the read failed): never plan against a guess
    by_instance: dict[str, list[HealthCheck]] = defaultdict(list)
    for check in sorted(world.health_checks, key=lambda c: c.health_check_id):
        by_instance[check.instance_id].append(check)
    changes: list[HealthCheckChange] = []
    for lb in by_name(world.lbs):
        existing = by_instance.pop(lb.instance_id, [])
        changes += _lb_checks(lb, existing, rules, run_started_at)
    skipped = {s.instance_id: s for s in world.skipped}
    for instance_id, checks in sorted(by_instance.items()):
        frozen = skipped.get(instance_id)
        if frozen is not None and frozen.state not in DOWN_STATES:
            continue
        why = (
            "no longer an LB of the cluster"
            if frozen is None
            else f"{instance_id} is {frozen.state}"
        )
        changes += [DeleteHealthCheck(c.health_check_id, instance_id, why) for c in checks]
    return tuple(
        c for c in changes if not (isinstance(c, DeleteHealthCheck) and c.health_check_id in in_use)
    )


def _lb_checks(
    lb: Instance, existing: Sequence[HealthCheck], rules: SecondOpinionRules, run_started_at: float
) -> list[HealthCheckChange]:
    """One LB's changes: its check made, updated or deleted, and any second one deleted."""
    name = lb.name or lb.instance_id
    wanted = desired_check(lb, rules)
    if not isinstance(wanted, HealthCheckSpec):
        reason = f"{name} is {lb.state}" if wanted is None else f"{name}: {wanted.reason}"
        return [DeleteHealthCheck(c.health_check_id, lb.instance_id, reason) for c in existing]
    changes: list[HealthCheckChange] = []
    kept = kept_check(existing, wanted)
    if kept is None:
        changes.append(
            CreateHealthCheck(
                instance_id=lb.instance_id,
                lb_name=name,
                spec=wanted,
                caller_reference=caller_reference(rules.cluster, lb.instance_id, run_started_at),
                tags=(
                    ("Name", f"lbf {rules.cluster} {name}"),
                    (TAG_CLUSTER, rules.cluster),
                    ("lbf:instance", lb.instance_id),
                ),
            )
        )
    elif kept.spec != wanted:
        changes.append(
            UpdateHealthCheck(
                health_check_id=kept.health_check_id,
                version=kept.version,
                instance_id=lb.instance_id,
                lb_name=name,
                before=kept.spec,
                spec=wanted,
            )
        )
    changes += [
        DeleteHealthCheck(c.health_check_id, lb.instance_id, f"a second check of {name}")
        for c in existing
        if c is not kept
    ]
    return changes


def kept_check(existing: Sequence[HealthCheck], wanted: HealthCheckSpec) -> HealthCheck | None:
    """The check to keep: one that is right already, else one an update can fix.

    Route 53 cannot change a check's type or request interval, so a check that differs there
    is replaced: a new check is made, and the old one deleted.
    """
    exact = next((c for c in existing if c.spec == wanted), None)
    if exact is not None:
        return exact
    return next(
        (
            c
            for c in existing
            if (c.spec.kind, c.spec.request_interval) == (wanted.kind, wanted.request_interval)
        ),
        None,
    )


# ---------------------------------------------------------------------------------------------
# Asking: which checks, and what their checkers say.


@dataclass(frozen=True)
class CheckerObservation:
    """One Route 53 checker's last report (GetHealthCheckStatus returns one per checker)."""

    region: str
    healthy: bool  # its status report starts with "Success"
    checked_at: float  # epoch seconds


def checks_to_consult(world: World, failed: Collection[str]) -> dict[str, HealthCheck]:
    """Per LB whose probe failed: its check, if that check probes the LB's current address.

    A check still at an old address (it is updated after the round) would speak of another host.
    """
    if not world.health_checks:
        return {}
    at_address = {(c.instance_id, c.spec.address): c for c in world.health_checks}
    consult: dict[str, HealthCheck] = {}
    for lb in by_name(world.lbs):
        if lb.instance_id not in failed or not lb.running or lb.address is None:
            continue
        check = at_address.get((lb.instance_id, lb.address))
        if check is not None:
            consult[lb.instance_id] = check
    return consult


class Consensus(enum.Enum):
    """What Route 53's checkers say of one LB, taken together (not a verdict: it changes none)."""

    HEALTHY = "healthy"  # most regions reporting see it healthy
    DOWN = "down"  # no checker anywhere sees it healthy
    SPLIT = "split"  # neither
    SILENT = "silent"  # no recent report


@dataclass(frozen=True)
class Opinion:
    instance_id: str
    lb_name: str
    consensus: Consensus
    healthy_regions: int
    reporting_regions: int

    @property
    def condition(self) -> str:
        """The notice key: a new consensus on an LB is news, the same one again is not."""
        return f"second-opinion:{self.instance_id}:{self.consensus.value}"

    def describe(self) -> str:
        counted = f"{self.healthy_regions} of {self.reporting_regions} regions"
        if self.consensus is Consensus.HEALTHY:
            return f"Route 53 checkers in {counted} still see {self.lb_name} healthy: holding"
        if self.consensus is Consensus.DOWN:
            return (
                f"Route 53 checkers in {counted} see {self.lb_name} healthy: it may really be "
                "down; holding while the prober is at fault"
            )
        if self.consensus is Consensus.SPLIT:
            return (
                f"Route 53 checkers in {counted} see {self.lb_name} healthy, not a majority: "
                "holding"
            )
        return f"no recent report from Route 53 checkers on {self.lb_name}: holding"


def judge(lb: Instance, observations: Iterable[CheckerObservation], *, now: float) -> Opinion:
    """What Route 53's checkers say about one LB.

    A region sees it healthy when most of its checkers' recent reports are successes; the LB is
    held healthy when most reporting regions do. DOWN needs every recent report to be a failure,
    from at least MIN_REGIONS regions: Route 53 itself calls an endpoint healthy while more than
    18% of its checkers do.
    """
    recent = [o for o in observations if now - o.checked_at <= OBSERVATION_MAX_AGE]
    regions: dict[str, list[bool]] = defaultdict(list)
    for observation in recent:
        regions[observation.region].append(observation.healthy)
    healthy = sum(1 for oks in regions.values() if sum(oks) * 2 > len(oks))
    reporting = len(regions)
    if reporting == 0:
        consensus = Consensus.SILENT
    elif healthy * 2 > reporting:
        consensus = Consensus.HEALTHY
    elif reporting >= MIN_REGIONS and not any(o.healthy for o in recent):
        consensus = Consensus.DOWN
    else:
        consensus = Consensus.SPLIT
    return Opinion(
        instance_id=lb.instance_id,
        lb_name=lb.name or lb.instance_id,
        consensus=consensus,
        healthy_regions=healthy,
        reporting_regions=reporting,
    )


def opinions_of(
    world: World,
    statuses: Mapping[str, Sequence[CheckerObservation]],
    *,
    now: float,
) -> tuple[Opinion, ...]:
    """Opinions on the LBs whose checks' statuses were read (keyed by instance id)."""
    return tuple(
        judge(lb, statuses[lb.instance_id], now=now)
        for lb in by_name(world.lbs)
        if lb.instance_id in statuses
    )


# ---------------------------------------------------------------------------------------------
# What `status` shows.


def status_note(lb: Instance, world: World, rules: SecondOpinionRules) -> str | None:
    if not rules.enabled or world.health_checks is None:
        return None
    wanted = desired_check(lb, rules)
    if wanted is None:
        return None
    if isinstance(wanted, NotCheckable):
        return f"second opinion: {wanted.reason}"
    checks = [c for c in world.health_checks if c.instance_id == lb.instance_id]
    current = next((c for c in checks if c.spec == wanted), None)
    if current is not None:
        return f"second opinion: Route 53 health check {current.health_check_id}"
    if checks:
        return (
            f"second opinion: Route 53 health check {checks[0].health_check_id} "
            f"probes {describe_check(checks[0].spec)}, updated on the next run"
        )
    return "second opinion: no Route 53 health check yet, made on the next run"
