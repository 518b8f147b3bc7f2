"""The Route 53 health checks in a run, read: with the world, and their checkers when asked.

Optional (LBF_ROUTE53_HEALTH_CHECKS): with the setting off, none of this makes a call. The checks
never decide a failover; the controller's own probes do. Which checks to keep and which to ask
about, and what the checkers' answers mean, is the core's (core/round.py, core/second_opinion.py);
this module only reads.
"""

from __future__ import annotations

from collections.abc import Mapping

from chalicelib.config import Settings
from chalicelib.core.model import HealthCheck
from chalicelib.core.second_opinion import CheckerObservation
from chalicelib.errors import AwsError
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


def ask_checkers(
    services: Services, asked: Mapping[str, HealthCheck]
) -> tuple[dict[str, tuple[CheckerObservation, ...]], str | None]:
    """What Route 53's checkers last reported on each check the core asked about (by LB), and
    the error that stopped the asking. A fault on the prober's side is often the controller's own
    network, so the first failed read ends the asking (the core asks no more this run)."""
    checks = services.health_checks
    statuses: dict[str, tuple[CheckerObservation, ...]] = {}
    if checks is None:
        return statuses, None
    for instance_id, check in asked.items():
        try:
            statuses[instance_id] = checks.status(check.health_check_id)
        except AwsError as exc:
            return statuses, str(exc)
    return statuses, None
