"""Chalice wiring only: read settings, build the services, run one job, report.

Settings are read inside each handler, never at import: chalice's test client (and a warm Lambda
after a configuration change) hands the stage's variables to the invocation, not the import.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit
from chalice.app import Chalice, CloudWatchEvent, ConvertToMiddleware, Rate

from chalicelib.adapters.probe import SocketProber
from chalicelib.config import Settings
from chalicelib.config.reading import ConfigError
from chalicelib.core import probe_contract
from chalicelib.core.names import is_instance_id

if TYPE_CHECKING:
    from chalicelib.clock import Clock
    from chalicelib.report import Report
    from chalicelib.services import Services

# Powertools writes the logs (JSON); chalice would add a second, plain handler to the same
# "lb-failover" logger and every line would appear twice.
app = Chalice(app_name="lb-failover", configure_logs=False)
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "lb-failover"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "LbFailover"))
copy_config_to_registered_loggers(source_logger=logger, include={"chalicelib"})

# The controller's handlers: scheduled and event-triggered. The prober function (`probe_private`,
# a "pure_lambda" handler) gets the logger only: it publishes no metrics and is never traced.
_CONTROLLER_EVENTS = ("scheduled", "cloudwatch")
# Lambda sets _HANDLER to the function's handler: the prober function is deployed from this same
# module, and must not import the X-Ray SDK even if the stage turns tracing on for the controller.
_PROBER_HANDLER = "app.probe_private"

app.register_middleware(ConvertToMiddleware(logger.inject_lambda_context(clear_state=True)))
for _event_type in _CONTROLLER_EVENTS:
    app.register_middleware(ConvertToMiddleware(metrics.log_metrics), _event_type)


def _tracing_enabled() -> bool:
    if os.environ.get("_HANDLER") == _PROBER_HANDLER:
        return False
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "").lower() not in ("1", "true")


if _tracing_enabled():  # pragma: no cover - needs the X-Ray SDK from Powertools' Lambda layer
    # Imported only when tracing is on: the X-Ray SDK costs ~400 ms of cold start.
    from aws_lambda_powertools import Tracer

    _tracer = Tracer()
    for _event_type in _CONTROLLER_EVENTS:
        app.register_middleware(ConvertToMiddleware(_tracer.capture_lambda_handler), _event_type)

# The runs' clock; tests hand in a fake one together with a Lambda context that follows it.
# None: the system clock, made on first use (its module is imported only by the controller).
clock: Clock | None = None
_EC2_STATES = frozenset(
    {"pending", "running", "stopping", "stopped", "shutting-down", "terminated"}
)


def aws_services(settings: Settings) -> Services:
    """The controller's AWS services, imported on first use, as the jobs are: the prober function
    is deployed from this module too, needs neither, and would pay for them at every cold start."""
    from chalicelib.services import aws_services as build

    return build(settings)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def reconcile(event: CloudWatchEvent) -> dict[str, Any]:
    from chalicelib import jobs
    from chalicelib.core import timing
    from chalicelib.report import new_run_id
    from chalicelib.services import aws_time_limit

    run_id = new_run_id()
    logger.append_keys(run_id=run_id)
    settings, services = _configured()
    run_clock = _clock()
    deadline = _deadline(event.context, run_clock)
    # The minute ends a minute after the run was scheduled (the event's time), not after the
    # invocation started: a late start (a cold start, EventBridge's delivery) leaves fewer rounds,
    # so that this run's probes never meet the next run's.
    rounds_until = timing.round_deadline(
        scheduled_at=timing.scheduled_time(event.time, now=run_clock.now()),
        invocation_ends=deadline,
    )
    with aws_time_limit(lambda: deadline - run_clock.now()):
        report = jobs.reconcile(settings, services, run_clock, run_id=run_id, deadline=rounds_until)
    return _finish(report)


@app.on_cw_event({"source": ["aws.ec2"], "detail-type": ["EC2 Instance State-change Notification"]})
def on_instance_change(event: CloudWatchEvent) -> dict[str, Any]:
    detail = event.detail if isinstance(event.detail, dict) else {}
    instance_id = detail.get("instance-id")
    state = detail.get("state")
    problem = None
    if not isinstance(instance_id, str) or not is_instance_id(instance_id):
        problem = "detail.instance-id is not an EC2 instance id"
    # isinstance first: a list or an object in the field is unhashable, and `in` would raise.
    elif not isinstance(state, str) or state not in _EC2_STATES:
        problem = "detail.state is not an EC2 instance state"
    # (the isinstance again only narrows the type: a non-str id has set `problem` already)
    if problem is not None or not isinstance(instance_id, str):
        logger.error("ignored event", extra={"problem": problem})
        metrics.add_metric(name="IgnoredEvents", unit=MetricUnit.Count, value=1)
        return {"ignored": problem}
    from chalicelib import jobs
    from chalicelib.report import new_run_id
    from chalicelib.services import aws_time_limit

    run_id = new_run_id()
    logger.append_keys(run_id=run_id, instance_id=instance_id, instance_state=state)
    settings, services = _configured()
    run_clock = _clock()
    deadline = _deadline(event.context, run_clock)
    with aws_time_limit(lambda: deadline - run_clock.now()):
        report = jobs.on_instance_change(
            settings, services, run_clock, instance_id, run_id=run_id, deadline=deadline
        )
    return _finish(report)


@app.lambda_function(name="probe_private")
def probe_private(event: Any, context: Any) -> dict[str, Any]:
    """The prober function: probes one round's private targets from inside the VPC.

    It has no AWS client and no permission beyond its logs and network interfaces: it takes the
    targets the controller sends (checked against the contract first: a refused request is
    answered with the reason, never probed) and returns their results. Nothing here imports boto3.
    """
    try:
        request = probe_contract.decode_request(event)
    except probe_contract.ContractError as exc:
        logger.error("refused a probe request", extra={"problem": str(exc)})
        return probe_contract.error_response(str(exc))
    results = {
        **request.unprobed,
        **SocketProber(timeout=request.timeout).probe_round(request.targets),
    }
    failed = sorted(key for key, result in results.items() if not result.ok)
    # Which ones failed, named (a few): the log is where an operator sees the VPC's side.
    logger.info(
        "probed",
        extra={"targets": len(results), "failed": len(failed), "failed_first": failed[:10]},
    )
    return probe_contract.encode_response(results)


def _configured() -> tuple[Settings, Services]:
    """The settings and the AWS services, or one clear error before any AWS call.

    Raised, not returned: the invocation fails, and the functions' error alarm pages, as it must
    for a controller that cannot run at all.
    """
    try:
        settings = Settings.from_env(os.environ)
        if settings.cluster_warning is not None:
            logger.warning(settings.cluster_warning)
        return settings, aws_services(settings)
    except ConfigError as exc:
        logger.error("configuration error, nothing done", extra={"error": str(exc)})
        raise


def _clock() -> Clock:
    from chalicelib.clock import SystemClock

    return clock if clock is not None else SystemClock()


def _deadline(context: Any, run_clock: Clock) -> float:
    """When this invocation ends, on the runs' clock: Lambda stops it then, mid-call or not."""
    remaining_ms = context.get_remaining_time_in_millis() if context is not None else None
    if remaining_ms is None:
        return float("inf")
    return run_clock.now() + float(remaining_ms) / 1000


def _finish(report: Report) -> dict[str, Any]:
    from chalicelib import render

    summary = render.report_json(report)
    if report.configuration_error is not None:
        # Refused before anything was planned (the domain is another cluster's): its one metric,
        # alarmed, and one logged error; no notice, which would go out every minute.
        metrics.add_metric(name="ConfigurationErrors", unit=MetricUnit.Count, value=1)
        logger.error(
            "configuration error, nothing written", extra={"error": report.configuration_error}
        )
        return summary
    # HealthyLBs only from a view that was read and is about this cluster: an event about another
    # cluster's instance, or a run that could not read, measured nothing, and a 0 would page.
    if report.world is not None:
        metrics.add_metric(name="HealthyLBs", unit=MetricUnit.Count, value=report.healthy_lbs)
    metrics.add_metric(name="Failovers", unit=MetricUnit.Count, value=len(report.failovers))
    metrics.add_metric(name="ProbeFailures", unit=MetricUnit.Count, value=report.probe_failures)
    metrics.add_metric(name="ActionErrors", unit=MetricUnit.Count, value=len(report.errors))
    metrics.add_metric(name="RunSeconds", unit=MetricUnit.Seconds, value=report.seconds)
    # A failed action is not raised: Lambda would re-run the whole job twice, overlapping the
    # next scheduled run. It is counted (ActionErrors, alarmed) and retried by the next run.
    (logger.info if report.ok else logger.error)("run finished", extra=summary)
    return summary
