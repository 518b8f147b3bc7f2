"""The Route 53 health checks in a run: read with the view, kept, and asked for a second opinion.

Optional (LBF_ROUTE53_HEALTH_CHECKS): with the setting off, none of this makes a call. The checks
never decide a failover; the controller's own probes do. What to create, update or delete, and
what the checkers' answers mean, is core/second_opinion.py's decision; this module reads, hands
the changes to the executor, and puts the answers in the round's conditions and the report.
"""

from __future__ import annotations

from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.core.failover_pair import checks_in_use, judged_healthy, read_active_name
from chalicelib.core.history import EventCode, last_of, newest_first
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
    wanted = settings.route53_health_checks or settings.rules.pair.enabled
    if not wanted or services.health_checks is None:
        return None, None
    try:
        return services.health_checks.read(settings.cluster), None
    except AwsError as exc:
        return None, f"Route 53 health checks not read; none changed or asked this run: {exc}"


def keep_health_checks(
    world: World, settings: Settings, executor: Executor, report: Report, started: float
) -> None:
    """Once per run, as the inventory is read once: each LB's check follows its address."""
    changes = plan_health_checks(
        world,
        settings.rules.second_opinion,
        run_started_at=started,
        in_use=checks_in_use(world.records, settings.rules.records),
    )
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


def read_route53_view(
    world: World, settings: Settings, services: Services, *, now: float
) -> tuple[tuple[str, bool], ...]:
    """Route 53's view of the checks the pair is bound to: one GetHealthCheckStatus per check,
    once per run, at most once per check interval (its checkers report no faster, and the
    account's health-check API allows five requests a second). A check not read counts as
    Route 53 counts a new one: healthy. A failed read leaves the rest unread: the pair is kept
    on the controller's own probes, as it always is."""
    rules = settings.rules.pair
    if not rules.enabled or services.health_checks is None:
        return ()
    current = read_active_name(world.records, settings.rules.records)
    ids = sorted({r.health_check_id for r in current.records if r.health_check_id is not None})
    view: list[tuple[str, bool]] = []
    for health_check_id in ids:
        try:
            observations = services.health_checks.status(health_check_id)
        except AwsError:
            return tuple(view)
        healthy = judged_healthy(observations, now=now, rules=rules)
        if healthy is not None:
            view.append((health_check_id, healthy))
    return tuple(view)


def read_last_swap(settings: Settings, services: Services) -> float | None:
    """When the active role last moved (the history's last failover): at most one swap of the
    pair per LBF_ROUTE53_INTERVAL x LBF_FALL, across runs too. Unreadable: None, no limit,
    because a failover must never wait for the history."""
    if not settings.rules.pair.enabled or services.history is None:
        return None
    try:
        versions = services.history.read(settings.history_parameter_name)
    except AwsError:
        return None
    last = last_of(newest_first(versions), (EventCode.FAILOVER,))
    return last.at if last is not None else None
