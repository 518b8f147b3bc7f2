"""The active name as a Route 53 failover pair (`LBF_DNS_FAILOVER=route53`). Pure.

Route 53's data plane answers `PRIMARY` while its health check is healthy, else `SECONDARY`, so
clients move even when no controller runs. The controller keeps the pair: `PRIMARY` is the active
LB, `SECONDARY` the LB a run would choose next, each bound to its LB's health check.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.core.dns import RecordRules


@dataclass(frozen=True)
class PairRules:
    """LBF_DNS_FAILOVER=route53, and the timing of the health checks the pair is bound to."""

    enabled: bool
    records: RecordRules
    request_interval: int  # LBF_ROUTE53_INTERVAL
    failure_threshold: int  # LBF_FALL

    @property
    def detection_seconds(self) -> int:
        """How long Route 53 takes to call a dead LB unhealthy; one swap at most in that time."""
        return self.request_interval * self.failure_threshold
