"""The Route 53 health checks in a run, read: with the world, and their checkers when asked.

Optional (LBF_ROUTE53_HEALTH_CHECKS, or LBF_DNS_FAILOVER=route53, whose failover pair is bound to
the checks): with both off, none of this makes a call. The checks never decide a failover; the
controller's own probes do. Which checks to keep and which to ask
about, and what the checkers' answers mean, is the core's (core/round.py, core/second_opinion.py);
this module only reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from chalicelib.config import Settings
from chalicelib.core.history import EventCode, last_of, newest_first
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
    wanted = settings.route53_health_checks or settings.rules.pair.enabled
    if not wanted or services.health_checks is None:
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


def ask_pair_checkers(
    services: Services, check_ids: Sequence[str]
) -> tuple[dict[str, tuple[CheckerObservation, ...]], str | None]:
    """What Route 53's checkers last reported on each of the failover pair's checks the core
    asked about (`core.round.pair_checks_to_read`), and the error that stopped the reading: the
    rest stay unread, as Route 53 counts a check it has no data for (healthy)."""
    checks = services.health_checks
    statuses: dict[str, tuple[CheckerObservation, ...]] = {}
    if checks is None:
        return statuses, None
    for health_check_id in check_ids:
        try:
            statuses[health_check_id] = checks.status(health_check_id)
        except AwsError as exc:
            return statuses, str(exc)
    return statuses, None


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
