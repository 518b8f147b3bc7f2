"""Running the reconcile job on FakeCloud, the ways the tests need it.

`run` and `converge` leave the clock where the run left it: back-to-back runs, as a test of one
decision wants them. `scheduled` and `settle` move the clock to the next minute after each run, as
the schedule invokes the function, so damping and time-based rules see the minutes go by.
"""

from __future__ import annotations

from typing import Any

from chalicelib import jobs
from chalicelib.config import Settings
from chalicelib.report import Report
from tests.kit.cloud import FakeCloud

SCHEDULE_SECONDS = 60.0  # the scheduled function runs once a minute


def run(cloud: FakeCloud, config: Settings, **kwargs: Any) -> Report:
    """One run of the reconcile job on `cloud`; the clock stays where the run left it."""
    return jobs.reconcile(config, cloud.services(), cloud.clock, **kwargs)


def converge(cloud: FakeCloud, config: Settings) -> Report:
    """One run that must succeed."""
    report = run(cloud, config)
    assert report.ok, report.errors
    return report


def event(cloud: FakeCloud, config: Settings, instance_id: str, **kwargs: Any) -> Report:
    """One event-triggered run about `instance_id`; the clock stays where the run left it."""
    return jobs.on_instance_change(config, cloud.services(), cloud.clock, instance_id, **kwargs)


def scheduled(cloud: FakeCloud, config: Settings, **kwargs: Any) -> Report:
    """One invocation, a minute after the previous one started (the schedule)."""
    return _minute_after(cloud, run(cloud, config, **kwargs))


def scheduled_event(cloud: FakeCloud, config: Settings, instance_id: str) -> Report:
    """One event-triggered run, then the clock to where the next scheduled run starts."""
    return _minute_after(cloud, event(cloud, config, instance_id))


def _minute_after(cloud: FakeCloud, report: Report) -> Report:
    cloud.clock.advance(max(0.0, SCHEDULE_SECONDS - report.seconds))
    return report


def settle(cloud: FakeCloud, config: Settings, runs: int = 2) -> Report:
    """`runs` scheduled invocations that must each succeed; the last one's report."""
    report = scheduled(cloud, config)
    assert report.ok, report.errors
    for _ in range(runs - 1):
        report = scheduled(cloud, config)
        assert report.ok, report.errors
    return report
