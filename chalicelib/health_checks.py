"""The Route 53 health checks in a run: read with the view, kept, and asked for a second opinion.

Optional (LBF_ROUTE53_HEALTH_CHECKS): with the setting off, none of this makes a call. The checks
never decide a failover; the controller's own probes do. What to create, update or delete, and
what the checkers' answers mean, is core/second_opinion.py's decision; this module reads, hands
the changes to the executor, and puts the answers in the round's conditions and the report.
"""

from __future__ import annotations

from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.core.model import HealthCheck, World
from chalicelib.core.second_opinion import (
    CheckerObservation,
    checks_to_consult,
    opinions_of,
    plan_health_checks,
)
from chalicelib.errors import AwsError
from chalicelib.executor import Executor
from chalicelib.report import Report, report_outcomes
from chalicelib.services import Services


def read_health_checks(
    settings: Settings, services: Services
) -> tuple[tuple[HealthCheck, ...] | None, str | None]:
    """The cluster's health checks, or why not. No call at all while the setting is off.

    A failed read fails the run (reported) but stops nothing else: failover runs on the
    controller's own probes, and a missing permission here must not take that away.
    """
    if not settings.route53_health_checks or services.health_checks is None:
        return None, None
    try:
        return services.health_checks.read(settings.cluster), None
    except AwsError as exc:
        return None, f"Route 53 health checks not read; none changed or asked this run: {exc}"


def keep_health_checks(
    world: World, settings: Settings, executor: Executor, report: Report, started: float
) -> None:
    """Once per run, as the inventory is read once: each LB's check follows its address."""
    changes = plan_health_checks(world, settings.rules.second_opinion, run_started_at=started)
    report_outcomes(executor.apply_changes(changes), report)


class SecondOpinion:
    """In a prober-fault round, asks Route 53's checkers about the LBs whose probes failed.

    Their answer changes no verdict: the round's results are discarded as before, and the answer
    goes into the notice and the report ("... still see lb1 healthy: holding"). A fault on the
    prober's side is often the controller's own network, so a failed read is not tried again in
    the same run: each try could cost seconds of the rounds.
    """

    def __init__(self, services: Services, clock: Clock) -> None:
        self._services = services
        self._clock = clock
        self._unavailable: str | None = None

    def consult(
        self, world: World, failed: list[str], conditions: dict[str, str], report: Report
    ) -> None:
        checks = self._services.health_checks
        if checks is None or not world.health_checks:
            return
        statuses: dict[str, tuple[CheckerObservation, ...]] = {}
        if self._unavailable is None:
            for instance_id, check in checks_to_consult(world, failed).items():
                try:
                    statuses[instance_id] = checks.status(check.health_check_id)
                except AwsError as exc:
                    self._unavailable = (
                        f"Route 53's checkers could not be asked (not again this run): {exc}"
                    )
                    break
        found = {
            o.condition: o.describe() for o in opinions_of(world, statuses, now=self._clock.now())
        }
        if self._unavailable is not None:
            found["second-opinion-unavailable"] = self._unavailable
        conditions.update(found)
        for text in found.values():
            if text not in report.notes:
                report.note("second-opinion", text)
