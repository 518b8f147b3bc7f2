"""Pushes: the document step's timeout, overdue pushes sent again, a booting LB's agent."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from chalicelib.core import pushes
from chalicelib.core.changes import PushBackends
from chalicelib.core.plan import decide
from tests.kit.scripts import load_script
from tests.kit.settings import settings
from tests.kit.world import a_push, lb, retag, settled, web

NOW = 10_000.0  # when this run started
TIMEOUT = pushes.STEP_TIMEOUT_SECONDS
GRACE = pushes.AGENT_GRACE_SECONDS
ROOT = Path(__file__).resolve().parents[2]


def _render_document() -> object:
    return load_script(ROOT / "infra" / "render_document.py")


def test_the_document_step_times_out_when_the_controller_counts_it_overdue() -> None:
    render = _render_document()
    (step,) = render.document()["mainSteps"]  # type: ignore[attr-defined]
    # aws:runShellScript reads its limit from its inputs only (tests/infra/test_ssm_document.py
    # reads every rendered document as the agent does).
    assert step["inputs"]["timeoutSeconds"] == TIMEOUT
    assert TIMEOUT < 3600  # SSM's default for a step is an hour: minutes, not that


@pytest.mark.parametrize(
    ("status", "age", "is_overdue"),
    [
        ("Pending", 10, False),
        ("InProgress", TIMEOUT, False),
        ("InProgress", TIMEOUT + 1, True),
        ("Pending", TIMEOUT + 1, True),
        ("Delayed", 3000, True),
        ("Success", 3000, False),
        ("Failed", 3000, False),
    ],
)
def test_overdue(status: str, age: float, is_overdue: bool) -> None:
    assert pushes.overdue(a_push("i-lb1", "c", status, requested_at=NOW - age), now=NOW) is (
        is_overdue
    )


@pytest.mark.parametrize(
    ("launched_ago", "news"), [(0, False), (GRACE, False), (GRACE + 1, True), (86400, True)]
)
def test_an_agent_missing_is_news_only_after_the_grace_period(
    launched_ago: float, news: bool
) -> None:
    assert pushes.agent_missing_is_news(NOW - launched_ago, now=NOW) is news


WEBS = [web("10.0.1.1"), web("10.0.1.2")]


@pytest.mark.parametrize(
    ("status", "age", "pushed", "condition"),
    [
        ("InProgress", 30, False, False),  # still running: wait
        ("Pending", TIMEOUT + 60, True, True),  # overdue: reported and sent again
        ("InProgress", TIMEOUT + 60, True, True),
        ("Success", TIMEOUT + 60, False, False),  # done: the tag is written instead
    ],
)
def test_a_push_past_its_step_timeout_is_sent_again_and_reported(
    status: str, age: float, pushed: bool, condition: bool
) -> None:
    view = settled([lb("lb1", "203.0.113.1"), lb("lb2", "203.0.113.2")], WEBS)
    lb1 = next(i for i in view.lbs if i.name == "lb1")
    checksum = lb1.backends_checksum or ""
    view = replace(
        view,
        lbs=(retag(lb1, backends_checksum=None), *view.lbs[1:]),
        pushes=(a_push("i-lb1", checksum, status, requested_at=NOW - age),),
    )
    plan = decide(view, settings().rules.plan, run_started_at=NOW)
    sends = [c.lb_name for c in plan.changes if isinstance(c, PushBackends)]
    assert sends == (["lb1"] if pushed else [])
    assert ("push-overdue:i-lb1" in plan.conditions) is condition
