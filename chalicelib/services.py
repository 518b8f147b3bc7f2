"""What a job needs from the outside world, as interfaces, and the real AWS-backed set.

Jobs depend on these protocols only, so tests hand them in-memory fakes and the local stand-in
hands them the same adapters pointed at a moto server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from chalicelib.config import Settings
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


class Inventory(Protocol):
    def describe(self, cluster: str) -> list[RawInstance]: ...
    def describe_other_clusters(self, cluster: str) -> list[RawInstance]: ...
    def create_tags(self, instance_ids: Sequence[str], tags: Sequence[tuple[str, str]]) -> None: ...
    def delete_tags(self, instance_ids: Sequence[str], keys: Sequence[str]) -> None: ...
    def address_holder(self, allocation_id: str) -> tuple[str | None, str | None]: ...
    def associate_address(self, allocation_id: str, instance_id: str) -> None: ...


class Records(Protocol):
    def read(self, domain: str) -> tuple[Record, ...]: ...
    def change(self, changes: Sequence[RecordChange], comment: str) -> str: ...
    def change_status(self, change_id: str) -> str: ...


class Parameters(Protocol):
    def read(self, names: Sequence[str]) -> dict[str, str]: ...
    def put(self, name: str, value: str) -> None: ...


class History(Protocol):
    """A parameter's stored versions (Parameter Store keeps the last 100), oldest first."""

    def read(self, name: str) -> list[tuple[float, str]]: ...


class Pushes(Protocol):
    def send(self, instance_id: str, backends: str, checksum: str, *, now: float) -> Push: ...
    def recent(self, *, since: float) -> list[Push]: ...
    def status(self, command: Push) -> str: ...


class Notifier(Protocol):
    def publish(self, subject: str, message: str) -> None: ...


class Prober(Protocol):
    """One round's probes. The in-process prober always answers for every target; the prober
    function's adapter raises ProberFault instead when it cannot (see chalicelib.probing)."""

    def probe_round(self, targets: Sequence[ProbeTarget]) -> dict[str, ProbeResult]: ...


class HealthChecks(Protocol):
    """Route 53 health checks, the second opinion (LBF_ROUTE53_HEALTH_CHECKS)."""

    def read(self, cluster: str) -> tuple[HealthCheck, ...]: ...
    def create(
        self, spec: HealthCheckSpec, caller_reference: str, tags: Sequence[tuple[str, str]]
    ) -> str: ...
    def update(self, health_check_id: str, version: int, spec: HealthCheckSpec) -> None: ...
    def delete(self, health_check_id: str) -> None: ...
    def status(self, health_check_id: str) -> tuple[CheckerObservation, ...]: ...


@dataclass(frozen=True)
class Services:
    inventory: Inventory
    records: Records
    parameters: Parameters
    pushes: Pushes
    notifier: Notifier | None
    prober: Prober
    # Only with LBF_PROBER_FUNCTION: the private targets go there, once per round.
    probe_function: Prober | None = None
    # Only with LBF_ROUTE53_HEALTH_CHECKS or LBF_DNS_FAILOVER=route53: without either, no
    # health-check call is made at all.
    health_checks: HealthChecks | None = None
    # `<prefix>/history`'s versions; read by `status` and `history`, and by a run only with
    # LBF_DNS_FAILOVER=route53 (when the failover pair last swapped).
    history: History | None = None


def aws_services(settings: Settings) -> Services:
    """The real adapters. Imported lazily so that the pure core never pulls in boto3.

    Raises ConfigError, before any client is made, when AWS's own settings (the region, the
    credentials) are missing.
    """
    from chalicelib.adapters.clients import (
        aws_region,
        client,
        invoke_client,
        quick_client,
        require_credentials,
    )
    from chalicelib.adapters.ec2 import Ec2Inventory
    from chalicelib.adapters.notify import SnsNotifier
    from chalicelib.adapters.probe import SocketProber
    from chalicelib.adapters.probe_function import ProbeFunction
    from chalicelib.adapters.route53 import Route53Records
    from chalicelib.adapters.route53_health_checks import Route53HealthChecks
    from chalicelib.adapters.ssm import SsmHistory, SsmParameters, SsmPushes

    region = aws_region()
    require_credentials()
    return Services(
        inventory=Ec2Inventory(client("ec2", region)),
        records=Route53Records(client("route53", region), settings.hosted_zone_id),
        parameters=SsmParameters(client("ssm", region)),
        pushes=SsmPushes(
            client("ssm", region), settings.ssm_document, log_group=settings.push_log_group
        ),
        notifier=(
            SnsNotifier(client("sns", region), settings.sns_topic_arn)
            if settings.sns_topic_arn
            else None
        ),
        prober=SocketProber(timeout=settings.probe_timeout),
        probe_function=(
            ProbeFunction(
                invoke_client(settings.probe_timeout, region),
                settings.prober_function,
                timeout=settings.probe_timeout,
            )
            if settings.prober_function
            else None
        ),
        health_checks=(
            Route53HealthChecks(client("route53", region), quick_client("route53", region))
            if settings.route53_health_checks or settings.rules.pair.enabled
            else None
        ),
        history=SsmHistory(client("ssm", region)),
    )


@contextmanager
def aws_time_limit(time_left: Callable[[], float]) -> Iterator[None]:
    """The real adapters' AWS calls take their timeouts from `time_left()` while inside."""
    from chalicelib.adapters.clients import time_limit

    with time_limit(time_left):
        yield
