"""The changes a Plan is made of: each one is one AWS write call, as a frozen value.

The core plans them; the executor (chalicelib/executor.py) is the only code that makes the calls,
and it decides, per kind, which are applied and which only printed (dry run, paused).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from chalicelib.core import dns
from chalicelib.core.addresses import url_host
from chalicelib.core.model import HealthCheckSpec, Record


@dataclass(frozen=True)
class SetTags:
    """One CreateTags call: the same tag set on every instance listed."""

    instance_ids: tuple[str, ...]
    tags: tuple[tuple[str, str], ...]
    after_records: bool = False  # lbf:state follows the record: skipped if the batch failed

    def describe(self) -> str:
        pairs = ", ".join(f"{k}={v}" for k, v in self.tags)
        return f"tag {' '.join(self.instance_ids)}: {pairs}"


@dataclass(frozen=True)
class RemoveTags:
    """One DeleteTags call: these tag keys removed from every instance listed (`undrain`)."""

    instance_ids: tuple[str, ...]
    keys: tuple[str, ...]

    def describe(self) -> str:
        return f"untag {' '.join(self.instance_ids)}: {', '.join(self.keys)}"


@dataclass(frozen=True)
class ChangeRecords:
    """One Route 53 change batch."""

    changes: tuple[dns.RecordChange, ...]
    reason: str

    def describe(self) -> str:
        parts = [f"{c.action} {_shown_record(c.record)}" for c in self.changes]
        return f"records ({self.reason}): " + "; ".join(parts)


def _shown_record(record: Record) -> str:
    """A failover record (LBF_DNS_FAILOVER=route53) shows its role and the check it is bound
    to: a dry run must say what Route 53 would answer when."""
    shown = f"{record.name} {record.type} {' '.join(record.values)}"
    if record.failover is None:
        return shown
    return f"{shown} {record.failover} check {record.health_check_id or 'none'}"


@dataclass(frozen=True)
class PutParameter:
    """One PutParameter call. Never planned as such: each parameter has its own kind below, which
    says what the value holds, so that what reads a change (the fold into the world, the history)
    asks its type and never parses the parameter's name."""

    name: str
    value: str

    def describe(self) -> str:
        shown = self.value if len(self.value) <= 120 else self.value[:117] + "..."
        return f"parameter {self.name} = {shown}"


@dataclass(frozen=True)
class PutBackendList(PutParameter):
    """`<prefix>/backends`: the backend list every LB serves."""


@dataclass(frozen=True)
class PutLbList(PutParameter):
    """`<prefix>/lbs`: the running LBs' addresses."""


@dataclass(frozen=True)
class PutHeldDrop(PutParameter):
    """`<prefix>/held-drop`: what LBF_MAX_POOL_DROP holds back, and since when (core.held_drop)."""


@dataclass(frozen=True)
class PutPaused(PutParameter):
    """`<prefix>/paused`: the pause switch (`pause`, `resume`)."""


@dataclass(frozen=True)
class PushBackends:
    """One SendCommand per LB, so that one bad instance cannot fail the others."""

    instance_id: str
    lb_name: str
    backends: str
    checksum: str

    def describe(self) -> str:
        count = len(self.backends.split(" "))
        return f"push {count} backends ({self.checksum[:12]}) to {self.lb_name} {self.instance_id}"


@dataclass(frozen=True)
class MoveAddress:
    """EIP mode: associate the Elastic IP with the new active LB, if it is still where we saw it."""

    allocation_id: str
    instance_id: str
    expected_instance_id: str | None
    lb_name: str

    def describe(self) -> str:
        return f"move Elastic IP {self.allocation_id} to {self.lb_name} {self.instance_id}"


@dataclass(frozen=True)
class Notify:
    """One SNS publish (or, without a topic, one logged line): a notice to the operator.

    `key` names what the notice is about (a condition, a failover), so that what was notified
    can be remembered and deduplicated.
    """

    key: str
    subject: str
    message: str

    def describe(self) -> str:
        return f"notify: {self.message}"

    def marked_paused(self) -> Notify:
        """The same notice, saying that the controller is paused and changed nothing."""
        return replace(self, subject=f"[paused] {self.subject}", message=f"[paused] {self.message}")


@dataclass(frozen=True)
class StoreNotices:
    """The conditions already notified, kept in `<prefix>/notices` (one PutParameter)."""

    name: str
    value: str

    def describe(self) -> str:
        shown = self.value.replace("\n", " ")
        shown = shown if len(shown) <= 120 else shown[:117] + "..."
        return f"parameter {self.name} = {shown}"


@dataclass(frozen=True)
class RecordHistory:
    """One round's events (`core.history`): one PutParameter of `<prefix>/history`, which
    Parameter Store keeps as a new version."""

    name: str
    value: str
    codes: tuple[str, ...]  # the events' codes, for the printed plan

    def describe(self) -> str:
        return f"history {self.name}: {len(self.codes)} event(s) ({', '.join(self.codes)})"


# ---------------------------------------------------------------------------------------------
# Route 53 health checks (core.second_opinion): each one is one Route 53 write (a create also tags
# the check, for people).


@dataclass(frozen=True)
class CreateHealthCheck:
    instance_id: str
    lb_name: str
    spec: HealthCheckSpec
    caller_reference: str
    tags: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        return f"create Route 53 health check of {self.lb_name} {self.instance_id}: {describe_check(self.spec)}"


@dataclass(frozen=True)
class UpdateHealthCheck:
    """Compare-and-swap: Route 53 refuses it if the check changed since its version was read."""

    health_check_id: str
    version: int
    instance_id: str
    lb_name: str
    before: HealthCheckSpec
    spec: HealthCheckSpec

    def describe(self) -> str:
        return (
            f"update Route 53 health check {self.health_check_id} of {self.lb_name}: "
            f"{describe_check(self.before)} -> {describe_check(self.spec)}"
        )


@dataclass(frozen=True)
class DeleteHealthCheck:
    health_check_id: str
    instance_id: str
    reason: str
    # The failover pair's batch in the same plan stops naming this check: deleted only if that
    # batch went through, so the pair never names a check that is gone.
    after_records: bool = False

    def describe(self) -> str:
        return f"delete Route 53 health check {self.health_check_id} of {self.instance_id}: {self.reason}"


def describe_check(spec: HealthCheckSpec) -> str:
    """A health check as the printed plan and `status` show it."""
    return f"{spec.kind} {url_host(spec.address)}:{spec.port}{spec.resource_path or ''}"


HealthCheckChange = CreateHealthCheck | UpdateHealthCheck | DeleteHealthCheck

# What tells the operator: still sent while paused (marked so), never under LBF_DRY_RUN.
NoticeChange = Notify | StoreNotices

Change = (
    SetTags
    | RemoveTags
    | ChangeRecords
    | PutBackendList
    | PutLbList
    | PutHeldDrop
    | PutPaused
    | PushBackends
    | MoveAddress
    | CreateHealthCheck
    | UpdateHealthCheck
    | DeleteHealthCheck
    | Notify
    | StoreNotices
    | RecordHistory
)
