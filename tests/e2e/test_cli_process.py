"""The command line as a process, against moto's server: pipes, Ctrl-C, output as it happens.

What only a real process meets: a reader that goes away (`| head`), SIGINT from the terminal,
stdout that is a pipe (block-buffered: a round line reaches the reader only if it is flushed).
The LBs and web servers are real HTTP servers on loopback, so `reconcile` really probes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib import jobs
from chalicelib.config import Settings
from chalicelib.services import aws_services
from standin.aws import LocalAws, local_aws
from standin.web import LocalWebServer
from tests.kit.cli_schema import valid
from tests.kit.cloud import FakeClock

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DOMAIN = "cli.example.com"
LB_PORT = 18380
WEB_PORT = 18381
CLUSTER = "cli"
WEBS = 240  # rows enough (about 300 bytes each) for `status --json` to outgrow a pipe's 64 KiB


@pytest.fixture(scope="module")
def aws() -> Iterator[LocalAws]:
    with local_aws(DOMAIN) as aws:
        yield aws


@pytest.fixture(scope="module")
def cluster(aws: LocalAws) -> Iterator[dict[str, str]]:
    """Two LBs and a web server answering on loopback, settled by two scheduled runs; the
    environment a controller process needs."""
    env = aws.controller_environment(
        cluster=CLUSTER,
        domain=DOMAIN,
        lb_port=LB_PORT,
        web_port=WEB_PORT,
        LBF_PROBE_TIMEOUT="0.5",
        LBF_PROBE_INTERVAL="1",
        LBF_PROBE_ROUNDS="4",
        LBF_POOL_INTERVAL="1",  # the pool in every round, as the LBs
    )
    servers = []
    for number, role in ((61, "lb"), (62, "lb"), (63, "web")):
        address = f"127.0.1.{number}"
        tags = {"lbf:cluster": CLUSTER, "lbf:role": role}
        if role == "lb":
            tags["lbf:name"] = f"lb{number - 60}"
        aws.launch(address, tags)
        servers.append(LocalWebServer(address, LB_PORT if role == "lb" else WEB_PORT).start())
    settings = Settings.from_env(env)
    clock = FakeClock()
    for _ in range(2):
        jobs.reconcile(settings, aws_services(settings), clock, rounds=1)
        clock.advance(60)
    assert aws.a_record(f"lb.{DOMAIN}") == ("127.0.1.61",)
    yield env
    for server in servers:
        server.stop()


@pytest.fixture(scope="module")
def many_webs(aws: LocalAws, cluster: dict[str, str]) -> dict[str, str]:
    """The cluster with WEBS more web servers (that nothing has probed yet)."""
    aws.client("ec2").run_instances(
        ImageId=aws.image_id,
        MinCount=WEBS,
        MaxCount=WEBS,
        InstanceType="t3.micro",
        SubnetId=aws.subnet_id,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [
                    {"Key": "lbf:cluster", "Value": CLUSTER},
                    {"Key": "lbf:role", "Value": "web"},
                ],
            }
        ],
    )
    return cluster


def process_env(aws: LocalAws, env: dict[str, str]) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), **aws.environment(), **env}


def test_a_reader_that_closes_at_once_is_a_quiet_exit(
    aws: LocalAws, cluster: dict[str, str]
) -> None:
    for argv in (["status", "--json"], ["status"], ["plan"]):
        child = subprocess.Popen(
            [sys.executable, "-m", "chalicelib", *argv],
            cwd=REPO,
            env=process_env(aws, cluster),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        child.stdout.close()  # the reader is gone before the first byte is written
        _, err = child.communicate(timeout=120)

        assert "Traceback" not in err
        assert "BrokenPipeError" not in err
        assert child.returncode == 141, err  # 128 + SIGPIPE, as a shell reports it


def test_ctrl_c_during_reconcile_prints_the_rounds_applied_and_exits_130(
    aws: LocalAws, cluster: dict[str, str]
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "chalicelib", "reconcile"],
        cwd=REPO,
        env=process_env(aws, cluster),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a test run started in the background has SIGINT ignored, and a
        # child keeps that.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert child.stdout is not None
    # Round 1's line arrives while the process runs (it waits a second before round 2):
    # printed as the round ended, not kept in a buffer until the run is over.
    first = child.stdout.readline()
    assert first.startswith("round 1 "), first
    assert child.poll() is None

    child.send_signal(signal.SIGINT)
    rest, err = child.communicate(timeout=120)

    assert child.returncode == 130, rest + err
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err
    lines = rest.splitlines()
    summary = next((line for line in lines if line.startswith("reconcile ")), rest + err)
    assert "INTERRUPTED" in summary
    assert any(line.startswith("note: interrupted ") and " round " in line for line in lines)
    assert not any(line.startswith("round 4 ") for line in lines)


def test_status_json_into_head_ends_quietly(aws: LocalAws, many_webs: dict[str, str]) -> None:
    """`status --json | head -c 10`: head leaves after 10 bytes, the rest meets a closed pipe."""
    whole = subprocess.run(
        [sys.executable, "-m", "chalicelib", "status", "--json"],
        cwd=REPO,
        env=process_env(aws, many_webs),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert len(whole.stdout) > 65536  # more than the pipe holds: writing must meet head's exit
    valid(whole.stdout)

    piped = subprocess.run(
        ["sh", "-c", f"'{sys.executable}' -m chalicelib status --json | head -c 10"],
        cwd=REPO,
        env=process_env(aws, many_webs),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert piped.stdout == whole.stdout[:10]
    assert piped.stderr == ""  # no BrokenPipeError traceback, no "Exception ignored"
