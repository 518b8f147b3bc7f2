"""pause -> history -> resume -> status as an operator runs them: one process each, against
moto's server, so that what `history` and `status` show was read back from Parameter Store by a
process that did not write it (the history survives the controller's restarts).

Also the store's bound on moto: Parameter Store keeps a parameter's last 100 versions, and
GetParameterHistory pages through them (the adapter follows the pages).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from chalicelib.adapters.ssm import SsmHistory, SsmParameters
from chalicelib.core.history import EventCode, event, newest_first, render
from standin.aws import LocalAws, local_aws
from tests.kit.cli_process import run_cli

pytestmark = pytest.mark.e2e

DOMAIN = "commands.example.com"
CLUSTER = "ops"


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with local_aws(DOMAIN) as aws:
        yield aws


def cli(aws: LocalAws, *argv: str) -> subprocess.CompletedProcess[str]:
    env = aws.controller_environment(cluster=CLUSTER, domain=DOMAIN, lb_port=18280, web_port=18281)
    return run_cli(aws, env, *argv)


def test_pause_history_resume_status_each_in_a_new_process(aws: LocalAws) -> None:
    paused = cli(aws, "pause", "--reason", "kernel upgrade on lb1")
    assert paused.returncode == 0, paused.stdout + paused.stderr
    assert aws.parameter(f"/lbf/{CLUSTER}/paused") == "true"

    shown = cli(aws, "history", "--json")
    assert shown.returncode == 0, shown.stderr
    [event_shown] = json.loads(shown.stdout)["events"]
    assert event_shown["code"] == "paused"
    assert event_shown["reason"] == "kernel upgrade on lb1"

    status = cli(aws, "status", "--wide")
    [line] = [line for line in status.stdout.splitlines() if line.startswith("PAUSED")]
    assert f"since {event_shown['at']}, reason: kernel upgrade on lb1" in line

    resumed = cli(aws, "resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert aws.parameter(f"/lbf/{CLUSTER}/paused") == "false"

    status = cli(aws, "status", "--json")
    document = json.loads(status.stdout)
    assert document["pause"]["paused"] is False
    assert document["paused"] is False
    text = cli(aws, "history").stdout.splitlines()
    assert [line.split()[1] for line in text] == ["resumed", "paused"]


def test_parameter_store_keeps_the_last_hundred_versions(aws: LocalAws) -> None:
    name = "/lbf/bounded/history"
    parameters = SsmParameters(aws.client("ssm"))
    for number in range(105):
        value = render([event(1_700_000_000 + number, EventCode.VERDICT, f"round {number}")])
        assert value is not None
        parameters.put(name, value)

    versions = SsmHistory(aws.client("ssm")).read(name)

    assert len(versions) == 100
    events = newest_first(versions)
    assert [getattr(e, "text", "") for e in (events[0], events[-1])] == ["round 104", "round 5"]


def test_a_history_never_written_reads_empty(aws: LocalAws) -> None:
    assert SsmHistory(aws.client("ssm")).read("/lbf/never/history") == []
