"""Carries a Plan out, one AWS call per change, each failure isolated to its change.

The dry-run executor takes the same plan and only reports it: `plan`, `LBF_DRY_RUN` and the
`paused` switch all go through it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from chalicelib.core.model import Command
from chalicelib.core.plan import (
    Change,
    ChangeRecords,
    MoveAddress,
    Plan,
    PutParameter,
    SendBackends,
    SetTags,
)
from chalicelib.errors import AwsError, StaleView
from chalicelib.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    change: Change
    ok: bool
    error: str | None = None
    stale: bool = False  # a compare-and-swap found the world changed: re-read and re-plan
    command: Command | None = None
    skipped: bool = False  # not attempted: it depended on a change that failed
    code: str | None = None  # AWS's error code when the call failed


class Executor:
    dry_run = False

    def __init__(self, services: Services, *, now: Callable[[], float]) -> None:
        self._services = services
        self._now = now

    def apply(self, plan: Plan) -> list[Outcome]:
        # Records (or the Elastic IP) first: a failover is what clients wait for. lbf:state
        # follows them, so it is written only if they went through.
        first = [c for c in plan.changes if isinstance(c, MoveAddress | ChangeRecords)]
        rest = [c for c in plan.changes if not isinstance(c, MoveAddress | ChangeRecords)]
        outcomes = [self._attempt(change) for change in first]
        moved = all(o.ok for o in outcomes)
        # A stale compare-and-swap says the whole view is older than the world: pushes and tags
        # planned from it may repeat what an overlapping run just did. None is attempted; the job
        # reads everything again and plans once more.
        stale = any(o.stale for o in outcomes)
        for later in rest:
            if stale or (isinstance(later, SetTags) and later.after_records and not moved):
                outcomes.append(Outcome(later, ok=False, skipped=True))
            else:
                outcomes.append(self._attempt(later))
        return outcomes

    def _attempt(self, change: Change) -> Outcome:
        try:
            command = self._apply_one(change)
        except StaleView as exc:
            log.warning("stale view, will re-read: %s: %s", change.describe(), exc)
            return Outcome(change, ok=False, error=str(exc), stale=True)
        except AwsError as exc:
            log.error("failed: %s: %s", change.describe(), exc)
            return Outcome(change, ok=False, error=str(exc), code=exc.code)
        log.info("applied: %s", change.describe())
        return Outcome(change, ok=True, command=command)

    def _apply_one(self, change: Change) -> Command | None:
        services = self._services
        if isinstance(change, ChangeRecords):
            services.records.change(change.changes, comment=f"lb-failover: {change.reason}")
        elif isinstance(change, SetTags):
            services.inventory.create_tags(change.instance_ids, change.tags)
        elif isinstance(change, PutParameter):
            services.parameters.put(change.name, change.value)
        elif isinstance(change, SendBackends):
            return services.commands.send(
                change.instance_id, change.backends, change.checksum, now=self._now()
            )
        elif isinstance(change, MoveAddress):
            holder, _ = services.inventory.address_holder(change.allocation_id)
            if holder != change.expected_instance_id:
                # Someone (an overlapping run, an operator) moved it since we looked.
                raise StaleView(
                    "ec2",
                    "AssociateAddress",
                    "AddressMoved",
                    f"{change.allocation_id} is on {holder}, expected {change.expected_instance_id}",
                )
            services.inventory.associate_address(change.allocation_id, change.instance_id)
        return None


class DryRunExecutor(Executor):
    """Reports the plan as if applied; makes no write call."""

    dry_run = True

    def __init__(self, *, now: Callable[[], float]) -> None:
        self._now = now

    def apply(self, plan: Plan) -> list[Outcome]:
        outcomes = []
        for change in plan.changes:
            log.info("would apply: %s", change.describe())
            command = None
            if isinstance(change, SendBackends):
                command = Command(
                    "dry-run", change.instance_id, change.checksum, "Pending", self._now()
                )
            outcomes.append(Outcome(change, ok=True, command=command))
        return outcomes


def applied(outcomes: Sequence[Outcome]) -> list[Change]:
    return [o.change for o in outcomes if o.ok]
