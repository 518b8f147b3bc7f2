"""Chalice wiring only: read settings, build the services, run one job, report.

Settings are read inside each handler, never at import: chalice's test client (and a warm Lambda
after a configuration change) hands the stage's variables to the invocation, not the import.
"""

from __future__ import annotations

import os
import re
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from chalice.app import Chalice, CloudWatchEvent, ConvertToMiddleware, Rate

from chalicelib import jobs, render
from chalicelib.config import ConfigError, Settings
from chalicelib.services import Services, aws_services, aws_time_limit

# Powertools writes the logs (JSON); chalice would add a second, plain handler to the same
# "lb-failover" logger and every line would appear twice.
app = Chalice(app_name="lb-failover", configure_logs=False)
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "lb-failover"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "LbFailover"))
copy_config_to_registered_loggers(source_logger=logger, include={"chalicelib"})

app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context(clear_state=True)))
app.register_middleware(ConvertToMiddleware(metrics.log_metrics))


def _tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() not in ("1", "true")


if _tracing_enabled():  # pragma: no cover - needs the X-Ray SDK from Powertools' Lambda layer
    # Imported only when tracing is on: the X-Ray SDK costs ~400 ms of cold start.
    from aws_lambda_powertools import Tracer

    app.register_middleware(ConvertToMiddleware(Tracer().capture_lambda_handler))

# The runs' clock; tests hand in a fake one together with a Lambda context that follows it.
clock: jobs.Clock = jobs.SystemClock()
_INSTANCE_ID = re.compile(r"i-[0-9a-f]{8,17}")
_EC2_STATES = frozenset(
    {"pending", "running", "stopping", "stopped", "shutting-down", "terminated"}
)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def reconcile(event: CloudWatchEvent) -> dict[str, Any]:
    run_id = jobs.new_run_id()
    logger.append_keys(run_id=run_id)
    settings, services = _configured()
    deadline = _deadline(event.context)
    with aws_time_limit(lambda: deadline - clock.now()):
        report = jobs.reconcile(settings, services, clock, run_id=run_id, deadline=deadline)
    return _finish(report)


@app.on_cw_event({"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]})
def on_instance_change(event: CloudWatchEvent) -> dict[str, Any]:
    detail = event.detail if isinstance(event.detail, dict) else {}
    instance_id = detail.get("instance-id")
    state = detail.get("state")
    problem = None
    if not isinstance(instance_id, str) or not _INSTANCE_ID.fullmatch(instance_id):
        problem = "detail.instance-id is not an EC2 instance id"
    # isinstance first: a list or an object in the field is unhashable, and `in` would raise.
    elif not isinstance(state, str) or state not in _EC2_STATES:
        problem = "detail.state is not an EC2 instance state"
    if problem is not None:
        logger.error("ignored event", extra={"problem": problem})
        metrics.add_metric(name="IgnoredEvents", unit=MetricUnit.Count, value=1)
        return {"ignored": problem}
    run_id = jobs.new_run_id()
    logger.append_keys(run_id=run_id, instance_id=instance_id, instance_state=state)
    settings, services = _configured()
    deadline = _deadline(event.context)
    with aws_time_limit(lambda: deadline - clock.now()):
        report = jobs.reconcile(
            settings,
            services,
            clock,
            rounds=1,
            probe=False,
            job="on_instance_change",
            concerning=instance_id,
            run_id=run_id,
            deadline=deadline,
        )
    return _finish(report)


def _configured() -> tuple[Settings, Services]:
    """The settings and the AWS services, or one clear error before any AWS call.

    Raised, not returned: the invocation fails, and the functions' error alarm pages, as it must
    for a controller that cannot run at all.
    """
    try:
        settings = Settings.from_env(os.environ)
        return settings, aws_services(settings)
    except ConfigError as exc:
        logger.error("configuration error, nothing done", extra={"error": str(exc)})
        raise


def _deadline(context: Any) -> float:
    """When this invocation ends, on the runs' clock: Lambda stops it then, mid-call or not."""
    remaining_ms = context.get_remaining_time_in_millis() if context is not None else None
    if remaining_ms is None:
        return float("inf")
    return clock.now() + float(remaining_ms) / 1000


def _finish(report: jobs.Report) -> dict[str, Any]:
    # HealthyLBs only from a view that was read and is about this cluster: an event about another
    # cluster's instance, or a run that could not read, measured nothing, and a 0 would page.
    if report.world is not None:
        metrics.add_metric(name="HealthyLBs", unit=MetricUnit.Count, value=report.healthy_lbs)
    metrics.add_metric(name="Failovers", unit=MetricUnit.Count, value=len(report.failovers))
    metrics.add_metric(name="ProbeFailures", unit=MetricUnit.Count, value=report.probe_failures)
    metrics.add_metric(name="ActionErrors", unit=MetricUnit.Count, value=len(report.errors))
    metrics.add_metric(name="RunSeconds", unit=MetricUnit.Seconds, value=report.seconds)
    summary = render.report_json(report)
    # A failed action is not raised: Lambda would re-run the whole job twice, overlapping the
    # next scheduled run. It is counted (ActionErrors, alarmed) and retried by the next run.
    (logger.info if report.ok else logger.error)("run finished", extra=summary)
    return summary
