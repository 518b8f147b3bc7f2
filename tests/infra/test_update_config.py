"""infra/update_config.py: a new haproxy.cfg reaches every running LB of a cluster, one at a time.

The order and the stop at the first failure are what matter here, and moto cannot show either:
its send_command succeeds at once and targets every instance of the region (tests/STACK-FACTS),
so an LB never fails and a command is never "still running". The tests use an in-memory SSM that
runs each command through Pending and InProgress to the outcome the test chose, and records every
call in order; the exact requests are pinned with botocore's Stubber. What the document's script
does on an LB is tested on a real HAProxy in tests/e2e/test_update_config.py.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from tests.kit.scripts import load_script

ROOT = Path(__file__).resolve().parents[2]


def _load_tool() -> ModuleType:
    return load_script(ROOT / "infra" / "update_config.py")


tool = _load_tool()
CONFIG = (ROOT / "infra" / "lb" / "haproxy.cfg").read_bytes()
CHECKSUM = hashlib.sha256(CONFIG).hexdigest()
# As update-config.sh prints it once the LB serves with the new file.
SERVING_LINE = "update-config: serving: 2 server(s) of backend web up, /health 200, / 200"


def instance(instance_id: str, name: str | None, *, state: str = "standby") -> dict[str, Any]:
    tags = [{"Key": "lbf:cluster", "Value": "web"}, {"Key": "lbf:role", "Value": "lb"}]
    if name is not None:
        tags.append({"Key": "lbf:name", "Value": name})
    tags.append({"Key": "lbf:state", "Value": state})
    return {"InstanceId": instance_id, "Tags": tags}


class FakeEc2:
    def __init__(self, *instances: dict[str, Any]) -> None:
        self.instances = list(instances)
        self.filters: list[Any] = []

    def describe_instances(self, **kwargs: Any) -> dict[str, Any]:
        self.filters.append(kwargs["Filters"])
        # Two pages, to check that the tool reads them all.
        if "NextToken" not in kwargs:
            return {"Reservations": [{"Instances": self.instances[:1]}], "NextToken": "page-2"}
        return {"Reservations": [{"Instances": self.instances[1:]}]}


class FakeSsm:
    """Each command goes Pending (unknown to GetCommandInvocation at first), InProgress, then
    the outcome chosen for its instance; `events` records every call in order."""

    def __init__(self, outcomes: dict[str, str] | None = None, *, serving: bool = True) -> None:
        self.outcomes = outcomes or {}
        self.serving = serving
        self.events: list[tuple[str, str, str]] = []
        self._polls: dict[str, int] = {}
        self.sent: list[dict[str, Any]] = []

    def send_command(self, **kwargs: Any) -> dict[str, Any]:
        (instance_id,) = kwargs["InstanceIds"]
        command_id = f"cmd-{len(self.sent) + 1}"
        self.sent.append(kwargs)
        self.events.append(("send", instance_id, command_id))
        return {"Command": {"CommandId": command_id}}

    def get_command_invocation(self, *, CommandId: str, InstanceId: str) -> dict[str, Any]:
        polls = self._polls[CommandId] = self._polls.get(CommandId, 0) + 1
        if polls == 1:
            self.events.append(("unknown", InstanceId, CommandId))
            raise ClientError(
                {"Error": {"Code": "InvocationDoesNotExist", "Message": ""}}, "GetCommandInvocation"
            )
        status = "InProgress" if polls == 2 else self.outcomes.get(InstanceId, "Success")
        self.events.append((status, InstanceId, CommandId))
        stderr = (
            "update-config: failed: HAProxy did not start a worker" if status == "Failed" else ""
        )
        stdout = "update-config: HAProxy reloaded with configuration c0ffee\n"
        if status == "Success" and self.serving:
            stdout += f"{SERVING_LINE}\n"
        return {"Status": status, "StandardOutputContent": stdout, "StandardErrorContent": stderr}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def run(ec2: Any, ssm: Any, tmp_path: Path, content: bytes = CONFIG) -> tuple[int, str]:
    path = tmp_path / "haproxy.cfg"
    path.write_bytes(content)
    out = io.StringIO()
    clock = Clock()
    code = tool.update_cluster(ec2, ssm, "web", path, out=out, sleep=clock.sleep, clock=clock)
    return code, out.getvalue()


LBS = (
    instance("i-0a", "lb10"),
    instance("i-0b", "lb2", state="active"),
    instance("i-0c", "lb1"),
    instance("i-0d", None),
)


def test_one_lb_at_a_time_standbys_first_active_last(tmp_path: Path) -> None:
    ssm = FakeSsm()
    code, out = run(FakeEc2(*LBS), ssm, tmp_path)

    assert code == 0, out
    sends = [instance_id for event, instance_id, _ in ssm.events if event == "send"]
    # Natural order among standbys (an LB without a name yet goes by its id), the LB holding
    # the active role last.
    assert sends == ["i-0d", "i-0c", "i-0a", "i-0b"]
    # Each LB is sent to only once the one before reported Success.
    for previous, following in itertools.pairwise(sends):
        finished = ssm.events.index(("Success", previous, f"cmd-{sends.index(previous) + 1}"))
        started = ssm.events.index(("send", following, f"cmd-{sends.index(following) + 1}"))
        assert finished < started
    assert "done: 4 LB(s)" in out
    assert "lb1 i-0c: installed and serving: 2 server(s) of backend web up, /health 200" in out


def test_a_success_that_does_not_say_the_lb_serves_stops_the_rollout(tmp_path: Path) -> None:
    # A document from before the serving check (a stale lbf-document stack) reports Success
    # after a reload alone: that proves nothing about clients, so the next LB is not touched.
    ssm = FakeSsm(serving=False)
    code, out = run(FakeEc2(*LBS), ssm, tmp_path)

    assert code == 1
    assert [e for e in ssm.events if e[0] == "send"] == [("send", "i-0d", "cmd-1")]
    assert "did not report that it serves: is the stack lbf-document current" in out
    assert "stopped; not sent to: lb1, lb10, lb2" in out


def test_it_stops_at_the_first_lb_that_fails_and_names_the_rest(tmp_path: Path) -> None:
    ssm = FakeSsm(outcomes={"i-0a": "Failed"})
    code, out = run(FakeEc2(*LBS), ssm, tmp_path)

    assert code == 1
    sends = [instance_id for event, instance_id, _ in ssm.events if event == "send"]
    assert sends == ["i-0d", "i-0c", "i-0a"]  # two done, lb10 failed; nothing sent after
    assert "lb10 i-0a: Failed (command cmd-3)" in out
    assert "HAProxy did not start a worker" in out
    assert "output in CloudWatch Logs /lbf/web/pushes, streams cmd-3/i-0a/" in out
    assert "stopped; not sent to: lb2" in out


@pytest.mark.parametrize("status", ["TimedOut", "Cancelled", "Undeliverable"])
def test_any_outcome_but_success_stops(tmp_path: Path, status: str) -> None:
    ssm = FakeSsm(outcomes={"i-0c": status})
    code, out = run(FakeEc2(*LBS[:3]), ssm, tmp_path)
    assert code == 1
    assert [e for e in ssm.events if e[0] == "send"] == [("send", "i-0c", "cmd-1")]
    assert f"lb1 i-0c: {status}" in out


def test_an_lb_that_never_reports_stops_the_update_after_the_deadline(tmp_path: Path) -> None:
    ssm = FakeSsm(outcomes={"i-0c": "InProgress"})
    code, out = run(FakeEc2(*LBS[:3]), ssm, tmp_path)
    assert code == 1
    assert "lb1 i-0c: still InProgress after 900 s" in out
    assert len(ssm.sent) == 1


def test_a_command_ssm_refuses_stops_before_the_next_lb(tmp_path: Path) -> None:
    class Refusing(FakeSsm):
        def send_command(self, **kwargs: Any) -> dict[str, Any]:
            raise ClientError(
                {"Error": {"Code": "InvalidInstanceId", "Message": "not registered"}}, "SendCommand"
            )

    code, out = run(FakeEc2(*LBS[:3]), Refusing(), tmp_path)
    assert code == 1
    assert "lb1 i-0c: refused by SSM: InvalidInstanceId not registered" in out
    assert "not sent to: lb10, lb2" in out


def test_the_file_travels_base64_with_its_checksum(tmp_path: Path) -> None:
    ssm = FakeSsm()
    run(FakeEc2(instance("i-0c", "lb1")), ssm, tmp_path)
    (sent,) = ssm.sent
    assert base64.b64decode(sent["Parameters"]["Config"][0]) == CONFIG
    assert sent["Parameters"]["Checksum"] == [CHECKSUM]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b"#" * 12289, "the document takes at most 12288")],
    ids=["empty", "too big"],
)
def test_a_file_the_document_cannot_take_is_refused_before_any_call(
    tmp_path: Path, content: bytes, message: str
) -> None:
    ec2, ssm = FakeEc2(*LBS), FakeSsm()
    with pytest.raises(tool.UsageError, match=message):
        run(ec2, ssm, tmp_path, content)
    assert ec2.filters == []
    assert ssm.events == []


def test_no_running_lb_is_nothing_to_update(tmp_path: Path) -> None:
    ssm = FakeSsm()
    code, out = run(FakeEc2(), ssm, tmp_path)
    assert code == 0
    assert "no running load balancer in cluster web: nothing to update" in out
    assert ssm.events == []


def test_the_requests_are_exactly_these(tmp_path: Path) -> None:
    """Pinned with the Stubber: the filters that keep it to the cluster's running LBs, one
    instance per command, the document, the output group, and the status read."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1"
    )
    ec2, ssm = session.client("ec2"), session.client("ssm")
    encoded = base64.b64encode(CONFIG).decode()
    with Stubber(ec2) as ec2_stub, Stubber(ssm) as ssm_stub:
        ec2_stub.add_response(
            "describe_instances",
            {"Reservations": [{"Instances": [instance("i-0123456789abcdef0", "lb1")]}]},
            {
                "Filters": [
                    {"Name": "tag:lbf:cluster", "Values": ["web"]},
                    {"Name": "tag:lbf:role", "Values": ["lb"]},
                    {"Name": "instance-state-name", "Values": ["running"]},
                ]
            },
        )
        ssm_stub.add_response(
            "send_command",
            {"Command": {"CommandId": "0b5e1c6a-1f2d-4c3b-9a8e-7d6c5b4a3f21"}},
            {
                "InstanceIds": ["i-0123456789abcdef0"],
                "DocumentName": "LbFailover-UpdateConfig",
                "Comment": f"lbf-config {CHECKSUM}",
                "Parameters": {"Config": [encoded], "Checksum": [CHECKSUM]},
                "TimeoutSeconds": 600,
                "CloudWatchOutputConfig": {
                    "CloudWatchLogGroupName": "/lbf/web/pushes",
                    "CloudWatchOutputEnabled": True,
                },
            },
        )
        ssm_stub.add_response(
            "get_command_invocation",
            {"Status": "Success", "StandardOutputContent": SERVING_LINE + "\n"},
            {
                "CommandId": "0b5e1c6a-1f2d-4c3b-9a8e-7d6c5b4a3f21",
                "InstanceId": "i-0123456789abcdef0",
            },
        )
        code, out = run(ec2, ssm, tmp_path)
        ec2_stub.assert_no_pending_responses()
        ssm_stub.assert_no_pending_responses()
    assert code == 0, out


def test_the_tool_and_the_document_agree_on_the_limits() -> None:
    render = load_script(ROOT / "infra" / "render_document.py")
    document = render.update_config_document()
    assert tool.DOCUMENT == render.UPDATE_CONFIG_DOCUMENT_NAME
    assert document["parameters"]["Config"]["maxChars"] == tool.MAX_ENCODED_CHARS
    assert set(document["parameters"]) == {"Config", "Checksum"}
