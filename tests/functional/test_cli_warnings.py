"""Warnings once, and no traceback: what a real process prints on stdout and stderr.

A child process runs the command line's real entry point (`entry`, with its logging set-up and
its pipe and Ctrl-C handling) on the in-memory AWS built in that child: in pytest's own process,
pytest's log capture would hide a line printed twice.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.kit.cli_schema import valid

REPO = Path(__file__).resolve().parents[2]

CHILD = """
import sys
from chalicelib import jobs
from chalicelib.__main__ import entry, main
from chalicelib.config import Settings
from chalicelib.errors import AwsError
from tests.kit.cloud import FAKE_CLOUD_ENV, FakeCloud
from tests.kit.settings import environment

env = environment(FAKE_CLOUD_ENV)  # with an SNS topic: a failover is notified
cloud = FakeCloud()
cloud.ec2.add("lb", "127.0.0.11", name="lb1")
cloud.ec2.add("lb", "127.0.0.12", name="lb2")
cloud.ec2.add("web", "127.0.1.21")
jobs.reconcile(Settings.from_env(env), cloud.services(), cloud.clock)  # settled, quietly
cloud.clock.advance(60)
{scenario}
sys.exit(entry(lambda: main(sys.argv[1:], environ=env, services=cloud.services(), clock=cloud.clock)))
"""

FAILOVER_WITH_FAILED_TAGS = """
cloud.ec2.set_state(cloud.ec2.id_at("127.0.0.11"), "stopped")
cloud.ec2.fail_tags = AwsError("ec2", "CreateTags", "UnauthorizedOperation", "denied")
"""

THROTTLED = """
cloud.ec2.fail_describe = AwsError("ec2", "DescribeInstances", "RequestLimitExceeded", "Rate exceeded.")
"""


def child(scenario: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD.format(scenario=textwrap.dedent(scenario)), *argv],
        cwd=REPO,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_each_warning_and_error_is_printed_once() -> None:
    result = child(FAILOVER_WITH_FAILED_TAGS, "reconcile")

    assert result.returncode == 1, result.stderr
    both = result.stdout + result.stderr
    # The failover's notice: once, across stdout and stderr together.
    assert both.count("active record moved: moved off lb1 (stopped) to lb2") == 1, both
    # The failed tag writes: in the Report (one line each, however many rounds retried them),
    # and not again as log lines on stderr.
    errors = [line for line in result.stdout.splitlines() if line.startswith("error: ")]
    assert errors
    # x19: every round of 3 s (the fake cloud's LBs are private) retried them.
    assert all("UnauthorizedOperation" in line and line.endswith("(x19)") for line in errors)
    assert len(set(errors)) == len(errors)
    assert "UnauthorizedOperation" not in result.stderr
    assert "WARNING" not in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "argv",
    [["status"], ["status", "--json"], ["plan"], ["reconcile"], ["move-active", "--to", "lb2"]],
)
def test_throttling_is_one_line_and_exit_1_never_a_traceback(argv: list[str]) -> None:
    result = child(THROTTLED, *argv)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    both = (result.stdout + result.stderr).splitlines()
    errors = [line for line in both if "RequestLimitExceeded" in line or "RequestLimit" in line]
    if "--json" not in argv:
        assert len(errors) == 1, both
        assert errors[0].startswith("error: ")


@pytest.mark.parametrize("argv", [["status"], ["plan"], ["reconcile", "--json"]])
def test_an_unreachable_endpoint_is_one_line_and_exit_1_never_a_traceback(argv: list[str]) -> None:
    """AWS_ENDPOINT_URL at a port where nothing listens: what a wrong endpoint or a network
    outage looks like from the operator's machine."""
    result = subprocess.run(
        [sys.executable, "-m", "chalicelib", *argv],
        cwd=REPO,
        env={
            "PATH": os.environ.get("PATH", ""),
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
            "AWS_MAX_ATTEMPTS": "1",
            "LBF_CLUSTER": "demo",
            "LBF_DOMAIN": "example.com",
            "LBF_HOSTED_ZONE_ID": "Z0000000000EXAMPLE",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    both = (result.stdout + result.stderr).splitlines()
    unreachable = [line for line in both if "Could not connect to the endpoint URL" in line]
    if "--json" in argv:
        error = valid(result.stdout)["errors"][0]
        assert error["code"] == "view-not-loaded"
        assert "EndpointConnectionError" in error["text"]
    else:
        assert len(unreachable) == 1, both
        assert unreachable[0].startswith("error: ")
