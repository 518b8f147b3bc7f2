"""app.py's handlers through chalice's test client, on the in-memory AWS and the fake clock.

chalice's test client hands each invocation a context that always reports about 3 s left, on the
real clock. Here the context reports the time left of an invocation with the given timeout, on the
fake clock that the run also uses, so a test decides how much time an invocation has and a slow
fake AWS spends it without anything sleeping.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import chalice.test
import pytest
from chalice.local import LambdaContext

from tests.kit.cloud import FakeCloud, small_cluster
from tests.kit.settings import STAND_IN_AWS
from tests.kit.slow_aws import ClockTime

ROOT = Path(__file__).resolve().parents[2]
# The committed example dev stage (infra/stages/.chalice/config.json): its cluster, and its 90 s lambda_timeout.
STAGE = "dev"
CLUSTER = "web-dev"
STAGE_TIMEOUT_MS = 90_000
# The dev stage's variables (infra/stages/.chalice/config.json), for runs that are not through the app and
# must see what its handlers see.
DEV_STAGE_ENV = {
    "LBF_CLUSTER": CLUSTER,
    "LBF_DOMAIN": "edge-dev.example.com",
    "LBF_HOSTED_ZONE_ID": "Z0000000000EXAMPLE",
    "LBF_SNS_TOPIC_ARN": "arn:aws:sns:eu-west-1:111122223333:lb-failover-web-dev",
}


class LambdaApp:
    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        cloud: FakeCloud,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """`environ`: variables set in the process for the test, as a deployed stage sets them."""
        # The in-memory AWS, with its loopback instances, stands in for AWS: see tests/kit/settings.
        for key, value in {**STAND_IN_AWS, **(environ or {})}.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "LbFailover")
        self.module: Any = importlib.import_module("app")
        self.cloud = cloud
        self._monkeypatch = monkeypatch
        monkeypatch.setattr(self.module, "aws_services", lambda settings: cloud.services())
        # raising=False: the same test runs against an app.py that reads the system clock itself.
        monkeypatch.setattr(self.module, "clock", cloud.clock, raising=False)
        self.timeout_ms = STAGE_TIMEOUT_MS

    def _context(self, function_name: str, memory_size: int) -> LambdaContext:
        return LambdaContext(
            function_name,
            memory_size,
            max_runtime_ms=self.timeout_ms,
            time_source=ClockTime(self.cloud.clock),  # type: ignore[arg-type]
        )

    def invoke(
        self,
        function: str,
        detail: Any = None,
        *,
        timeout_ms: int | None = None,
        scheduled_ago: float = 0.0,
    ) -> Any:
        """One invocation of `function` with `timeout_ms` of Lambda time; returns its payload.

        The scheduled event's `time` is `scheduled_ago` seconds before the fake clock's now, as
        EventBridge's is the minute the run was scheduled for (chalice's generated event says
        2015, which would leave no minute at all)."""
        if timeout_ms is not None:
            self.timeout_ms = timeout_ms
        self._monkeypatch.setattr(chalice.test, "LambdaContext", self._context)
        with chalice.test.Client(
            self.module.app, stage_name=STAGE, project_dir=str(ROOT / "infra" / "stages")
        ) as client:
            if function == "reconcile":
                event = client.events.generate_cw_event(
                    source="aws.events", detail_type="Scheduled Event", detail={}, resources=[]
                )
                scheduled = self.cloud.clock.now() - scheduled_ago
                event["time"] = datetime.fromtimestamp(scheduled, UTC).isoformat()
            else:
                event = client.events.generate_cw_event(
                    source="aws.ec2",
                    detail_type="EC2 Instance State-change Notification",
                    detail=detail,
                    resources=[],
                )
            return client.lambda_.invoke(function, event).payload


def emf_figures(stdout: str) -> list[dict[str, list[float]]]:
    """The metric values of each EMF document printed (CloudWatch's embedded metric format).

    Powertools writes a value once as a number and a value added twice as a list: always a list.
    """
    documents = [json.loads(line) for line in stdout.splitlines() if '"_aws"' in line]
    figures = []
    for document in documents:
        names = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
        figures.append(
            {n: document[n] if isinstance(document[n], list) else [document[n]] for n in names}
        )
    return figures


def stage_cloud() -> FakeCloud:
    """Two LBs and two web servers of the dev stage's cluster."""
    cloud = small_cluster(webs=("127.0.1.21", "127.0.1.22"), cluster=CLUSTER)
    cloud.prober.timeout = 2.0
    return cloud


__all__ = ["DEV_STAGE_ENV", "LambdaApp", "emf_figures", "stage_cloud"]
