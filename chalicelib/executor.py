"""Carries a Plan out, one AWS call per change, each failure isolated to its change.

This is the only module that calls a write of the services: it alone reads `Services.writers`,
a job holds only the readers, on which mypy refuses a write (tests/static/test_write_path.py checks
both). What is written and what is only printed is decided here, per kind of change, by what the
executor is allowed to write (`Writes`), so the safety switches hold for every write by
construction:

- ALL: every change is applied.
- NOTICES_ONLY (`<prefix>/paused` is true): every change is printed, except notices, the notices
  parameter and the history: those are still sent, each notice marked paused, so that an operator
  who paused for maintenance still hears about a dying LB.
- NOTHING (`LBF_DRY_RUN`, `plan`): every change is printed, notices included; nothing is sent.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable

from chalicelib.core.changes import (
    Change,
    ChangeRecords,
    CreateHealthCheck,
    DeleteHealthCheck,
    MoveAddress,
    Notify,
    PushBackends,
    PutParameter,
    RecordHistory,
    RemoveTags,
    SetTags,
    StoreNotices,
    UpdateHealthCheck,
)
from chalicelib.core.model import Push
from chalicelib.core.outcome import Outcome
from chalicelib.core.plan import Plan
from chalicelib.errors import AwsError, ChangeRejected
from chalicelib.services import Services

log = logging.getLogger(__name__)


class Writes(enum.Enum):
    """What the executor writes: the one policy the dry run and the pause switch set."""

    ALL = "all"
    NOTICES_ONLY = "notices-only"  # paused
    NOTHING = "nothing"  # LBF_DRY_RUN, `plan`


def writes_for(*, dry_run: bool, paused: bool) -> Writes:
    """LBF_DRY_RUN outranks the pause switch: a dry run sends nothing at all."""
    if dry_run:
        return Writes.NOTHING
    return Writes.NOTICES_ONLY if paused else Writes.ALL


def is_notice(change: Change) -> bool:
    """What tells the operator: notices, what was notified, and the history."""
    return isinstance(change, Notify | StoreNotices | RecordHistory)


def is_applied(writes: Writes, change: Change) -> bool:
    """The policy: whether this change is applied, or only printed."""
    if writes is Writes.ALL:
        return True
    if writes is Writes.NOTICES_ONLY:
        return is_notice(change)
    return False


class Executor:
    def __init__(
        self, services: Services, *, now: Callable[[], float], writes: Writes = Writes.ALL
    ) -> None:
        # The readers for the Elastic IP's check-then-move; every write goes through the writers.
        self._services = services
        self._writers = services.writers._writers  # noqa: SLF001 (the one place it is opened)
        self._now = now
        self.writes = writes

    def apply(self, plan: Plan) -> list[Outcome]:
        return self.apply_changes(plan.changes)

    def apply_changes(self, changes: Iterable[Change]) -> list[Outcome]:
        # Records (or the Elastic IP) first: a failover is what clients wait for. lbf:state
        # follows them, so it is written only if they went through.
        ordered = list(changes)
        first = [c for c in ordered if isinstance(c, MoveAddress | ChangeRecords)]
        rest = [c for c in ordered if not isinstance(c, MoveAddress | ChangeRecords)]
        outcomes = [self._attempt(change) for change in first]
        moved = all(o.ok for o in outcomes)
        # A rejected compare-and-swap may say that the world this run read is out of date, and
        # pushes and tags planned from it would repeat what an overlapping run just did. None is
        # attempted until the job's re-read judges the rejection: stale (plan again from the
        # re-read) or permanent (the rest goes on without the rejected records).
        rejected = any(o.rejected for o in outcomes)
        for later in rest:
            follows = isinstance(later, SetTags | DeleteHealthCheck) and later.after_records
            if rejected or (follows and not moved):
                outcomes.append(Outcome(later, ok=False, skipped=True))
            else:
                outcomes.append(self._attempt(later))
        return outcomes

    def _attempt(self, change: Change) -> Outcome:
        if not is_applied(self.writes, change):
            log.info("would apply: %s", change.describe())
            return Outcome(change, ok=True, printed=True)
        if self.writes is Writes.NOTICES_ONLY and isinstance(change, Notify):
            change = change.marked_paused()
        try:
            push, change_id, created_id = self._apply_one(change)
        except ChangeRejected as exc:
            log.warning("rejected, to be judged by a re-read: %s: %s", change.describe(), exc)
            return Outcome(change, ok=False, error=str(exc), rejected=True)
        except AwsError as exc:
            log.error("failed: %s: %s", change.describe(), exc)
            return Outcome(change, ok=False, error=str(exc), code=exc.code)
        if not isinstance(change, Notify):  # a notice is logged as "notice: ...", once
            log.info("applied: %s", change.describe())
        return Outcome(change, ok=True, push=push, change_id=change_id, created_id=created_id)

    def _apply_one(self, change: Change) -> tuple[Push | None, str | None, str | None]:
        """The one place a write is called: (the push sent, the change batch's id, the id of a
        health check it created)."""
        writers = self._writers
        if isinstance(change, ChangeRecords):
            change_id = writers.records.change(
                change.changes, comment=f"lb-failover: {change.reason}"
            )
            return None, change_id, None
        if isinstance(change, SetTags):
            writers.inventory.create_tags(change.instance_ids, change.tags)
        elif isinstance(change, RemoveTags):
            writers.inventory.delete_tags(change.instance_ids, change.keys)
        elif isinstance(change, PutParameter | StoreNotices | RecordHistory):
            writers.parameters.put(change.name, change.value)
        elif isinstance(change, PushBackends):
            push = writers.pushes.send(
                change.instance_id, change.backends, change.checksum, now=self._now()
            )
            return push, None, None
        elif isinstance(change, MoveAddress):
            # Check, then move: AssociateAddress has no condition of its own.
            holder, _ = self._services.inventory.address_holder(change.allocation_id)
            if holder != change.expected_instance_id:
                # Someone (an overlapping run, an operator) moved it since we looked.
                raise ChangeRejected(
                    "ec2",
                    "AssociateAddress",
                    "AddressMoved",
                    f"{change.allocation_id} is on {holder}, expected {change.expected_instance_id}",
                )
            writers.inventory.associate_address(change.allocation_id, change.instance_id)
        elif isinstance(change, Notify):
            log.warning("notice: %s", change.message)
            if writers.notifier is not None:  # without a topic, notices are only logged
                writers.notifier.publish(change.subject, change.message)
        else:
            return None, None, self._apply_health_check(change)
        return None, None, None

    def _apply_health_check(
        self, change: CreateHealthCheck | UpdateHealthCheck | DeleteHealthCheck
    ) -> str | None:
        """The id of the check created, if one was."""
        checks = self._writers.health_checks
        if checks is None:
            # Planned only from checks that were read, which needs the adapter: a bug if not.
            raise AwsError("route53", "HealthCheck", "NotConfigured", "no health-check adapter")
        if isinstance(change, CreateHealthCheck):
            return checks.create(change.spec, change.caller_reference, change.tags)
        if isinstance(change, UpdateHealthCheck):
            checks.update(change.health_check_id, change.version, change.spec)
        else:
            checks.delete(change.health_check_id)
        return None
