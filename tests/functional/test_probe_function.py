"""The prober function and the controller's invoke adapter: the contract pinned on both sides.

The prober function's side runs through chalice's test client (`client.lambda_.invoke`), with real
probes of real local servers. The controller's side is the real adapter with botocore's Stubber
for each answer Lambda can give (a payload stream, FunctionError, throttling, a function not yet
ready after a deploy): moto's Lambda runs functions in Docker, which is not available here, and
the exact request (one synchronous invoke, the encoded targets) matters. The read timeout is real:
a local server that accepts the connection and never answers.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from chalice.test import Client

from chalicelib.adapters.clients import forget_clients, invoke_client
from chalicelib.adapters.probe_function import ProbeFunction
from chalicelib.core import probe_contract
from chalicelib.core.endpoints import parse_url
from chalicelib.core.model import ProbeResult, ProbeTarget
from chalicelib.errors import ProberFault
from standin.aws import free_port
from standin.web import LocalWebServer
from tests.kit.aws_env import use_fake_credentials
from tests.kit.cloud import FakeCloud
from tests.kit.lambda_app import CLUSTER, LambdaApp

ROOT = Path(__file__).resolve().parents[2]
FUNCTION = "lb-failover-prod-ProbePrivate-1A2B3C"
WEB = ProbeTarget("i-0000000000000000a", "")  # url set per test: a live server's port
CLOSED = ProbeTarget("i-0000000000000000b", "")


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    use_fake_credentials(monkeypatch)
    yield
    forget_clients()


@pytest.fixture
def targets() -> Iterator[list[ProbeTarget]]:
    server = LocalWebServer("127.0.0.1", free_port()).start()
    try:
        yield [
            ProbeTarget(WEB.key, parse_url(f"http://127.0.0.1:{server.port}/health")),
            ProbeTarget(CLOSED.key, parse_url(f"tcp://127.0.0.1:{free_port()}")),
        ]
    finally:
        server.stop()


def invoke_handler(payload: object) -> Any:
    import app

    with Client(app.app, stage_name="dev", project_dir=str(ROOT / "infra" / "stages")) as client:
        return client.lambda_.invoke("probe_private", payload).payload


# --- the prober function's side -------------------------------------------------------------------


def test_the_prober_function_probes_what_it_is_sent_and_the_controller_reads_it(
    targets: list[ProbeTarget],
) -> None:
    request = json.loads(probe_contract.encode_request(targets, timeout=1.0))
    answer = invoke_handler(request)

    results = probe_contract.decode_response(json.dumps(answer).encode(), targets)
    assert results[WEB.key].ok
    assert results[WEB.key].detail == "200"
    assert not results[CLOSED.key].ok
    assert results[CLOSED.key].detail == "connection refused"


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"version": 2, "timeout": 1, "targets": []},
        {"version": 1, "timeout": 900, "targets": []},
        {"version": 1, "timeout": 1, "targets": [{"key": "i-0000000000000000a", "url": 5}]},
    ],
)
def test_the_prober_function_answers_a_request_off_contract_with_why_and_probes_nothing(
    event: dict[str, Any],
) -> None:
    answer = invoke_handler(event)
    assert set(answer) == {"version", "error"}
    with pytest.raises(probe_contract.ContractError, match="refused the request"):
        probe_contract.decode_response(json.dumps(answer).encode(), [])


def test_the_prober_function_imports_no_aws_client_and_no_tracer() -> None:
    """As deployed: Lambda sets _HANDLER, and the stage may turn tracing on for the controller."""
    code = (
        "import json, sys, types, app\n"
        "context = types.SimpleNamespace(function_name='probe', memory_limit_in_mb=128,"
        " invoked_function_arn='arn', aws_request_id='r')\n"
        "app.probe_private({'version': 1, 'timeout': 1, 'targets': []}, context)\n"
        "print(json.dumps([m for m in ('boto3', 'botocore.client', 'aws_xray_sdk')"
        " if m in sys.modules]))\n"
    )
    env = {**os.environ, "_HANDLER": "app.probe_private", "POWERTOOLS_TRACE_DISABLED": "false"}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


# --- the controller's side: the invoke adapter -----------------------------------------------------

SENT = [
    ProbeTarget("i-0000000000000000a", parse_url("http://10.0.1.21:80/health")),
    ProbeTarget("i-0000000000000000b", parse_url("http://10.0.1.22:80/health")),
]


def stream(body: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(body), len(body))


def expected_params(timeout: float = 2.0) -> dict[str, Any]:
    return {
        "FunctionName": FUNCTION,
        "InvocationType": "RequestResponse",
        "Payload": probe_contract.encode_request(SENT, timeout=timeout),
    }


def good_answer() -> bytes:
    results = {
        SENT[0].key: ProbeResult(ok=True, detail="200", seconds=0.01),
        SENT[1].key: ProbeResult(ok=False, detail="timeout", seconds=2.0),
    }
    return json.dumps(probe_contract.encode_response(results)).encode()


def adapter(client: Any) -> ProbeFunction:
    return ProbeFunction(client, FUNCTION, timeout=2.0)


def test_one_synchronous_invoke_carries_the_round_and_its_answer_is_the_results(
    lambda_env: None,
) -> None:
    client = invoke_client(2.0)
    with Stubber(client) as stub:
        stub.add_response(
            "invoke", {"StatusCode": 200, "Payload": stream(good_answer())}, expected_params()
        )
        results = adapter(client).probe_round(SENT)
        stub.assert_no_pending_responses()
    assert results == {
        SENT[0].key: ProbeResult(ok=True, detail="200", seconds=0.01),
        SENT[1].key: ProbeResult(ok=False, detail="timeout", seconds=2.0),
    }


def test_no_private_target_means_no_invoke(lambda_env: None) -> None:
    client = invoke_client(2.0)
    with Stubber(client) as stub:
        assert adapter(client).probe_round([]) == {}
        stub.assert_no_pending_responses()  # and no call: the Stubber would refuse an unplanned one


def test_the_invoke_client_waits_the_probe_timeout_plus_a_second_and_tries_once(
    lambda_env: None,
) -> None:
    config = invoke_client(2.5).meta.config
    # Connect and read together: the whole invoke's limit (tests/functional/test_prober_bound.py).
    assert config.connect_timeout + config.read_timeout == 3.5
    assert config.retries["total_max_attempts"] == 1


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("TooManyRequestsException", 429),  # throttled: concurrency or rate
        ("ResourceNotReadyException", 502),  # still Pending after a deploy
        ("ServiceException", 500),
        ("AccessDeniedException", 403),
    ],
)
def test_a_failed_invoke_is_a_fault_and_is_not_retried(
    lambda_env: None, code: str, status: int
) -> None:
    client = invoke_client(2.0)
    with Stubber(client) as stub:
        stub.add_client_error("invoke", code, http_status_code=status)
        # A retry would take this answer; one attempt leaves it pending.
        stub.add_response("invoke", {"StatusCode": 200, "Payload": stream(good_answer())})
        with pytest.raises(ProberFault, match=code):
            adapter(client).probe_round(SENT)
        with pytest.raises(AssertionError):
            stub.assert_no_pending_responses()


def test_an_error_in_the_prober_function_is_a_fault_naming_it(lambda_env: None) -> None:
    error = {"errorMessage": "Task timed out after 5.00 seconds", "errorType": "Sandbox.Timedout"}
    client = invoke_client(2.0)
    with Stubber(client) as stub:
        stub.add_response(
            "invoke",
            {
                "StatusCode": 200,
                "FunctionError": "Unhandled",
                "Payload": stream(json.dumps(error).encode()),
            },
            expected_params(),
        )
        with pytest.raises(ProberFault, match=r"Unhandled.*Task timed out"):
            adapter(client).probe_round(SENT)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"<html>gateway</html>", "not JSON"),
        (b'{"version": 2, "results": []}', "version"),
        (
            json.dumps(
                probe_contract.encode_response({SENT[0].key: ProbeResult(True, "200", 0.0)})
            ).encode(),
            "missing",
        ),
        (
            json.dumps(
                probe_contract.encode_response(
                    {
                        SENT[0].key: ProbeResult(True, "200", 0.0),
                        SENT[1].key: ProbeResult(True, "200", 0.0),
                        "i-0000000000000000c": ProbeResult(True, "200", 0.0),
                    }
                )
            ).encode(),
            "not asked for",
        ),
    ],
)
def test_a_malformed_answer_is_a_fault(lambda_env: None, body: bytes, why: str) -> None:
    client = invoke_client(2.0)
    with Stubber(client) as stub:
        stub.add_response("invoke", {"StatusCode": 200, "Payload": stream(body)}, expected_params())
        with pytest.raises(ProberFault, match=why):
            adapter(client).probe_round(SENT)


class _Silent:
    """Accepts connections and never answers: an invoke that outlives its read timeout."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.listener.close()
        for connection in self.accepted:
            connection.close()


def test_an_invoke_past_its_read_timeout_is_a_fault_after_one_attempt(
    lambda_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    silent = _Silent()
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", f"http://127.0.0.1:{silent.port}")
    try:
        with pytest.raises(ProberFault, match="ReadTimeoutError"):
            ProbeFunction(invoke_client(0.1), FUNCTION, timeout=0.1).probe_round(SENT)
    finally:
        silent.close()
    assert len(silent.accepted) == 1


# --- a stage with the prober function and nothing private ------------------------------------------


def _stage_cloud(*, pool_public: bool) -> FakeCloud:
    """The dev stage's cluster, with public addresses on the LBs (LBF_LB_ADDRESS=public, the
    default) and, with `pool_public`, on the web servers too."""
    cloud = FakeCloud()
    cloud.prober.timeout = 2.0
    for host, name in ((11, "lb1"), (12, "lb2")):
        cloud.ec2.add("lb", f"127.0.0.{host}", name=name, cluster=CLUSTER, public=f"127.0.2.{host}")
    for host in (21, 22):
        public = f"127.0.3.{host}" if pool_public else None
        cloud.ec2.add("web", f"127.0.1.{host}", cluster=CLUSTER, public=public)
    return cloud


@pytest.mark.parametrize(
    ("pool_public", "rounds", "invokes"),
    [
        # Nothing private: every probe is the controller's own, and the invoke's time is not
        # budgeted: the rounds up to 50 s (1.5 s of probes, then the writes) fit 60 s.
        (True, 26, 0),
        # The web pool is private: it alone goes to the function, every LBF_POOL_INTERVAL beside
        # the LB rounds (the same 26); its probe at 50 s would end (invoke, writes) after what the
        # invocation can use, so it is not made, and no LB round is given up for it.
        (False, 26, 5),
    ],
    ids=["nothing-private-never-invoked", "private-pool-invoked-every-pool-interval"],
)
def test_a_stage_with_the_prober_function_invokes_it_only_for_private_targets(
    monkeypatch: pytest.MonkeyPatch, pool_public: bool, rounds: int, invokes: int
) -> None:
    environ = {
        "LBF_PROBER_FUNCTION": FUNCTION,
        "LBF_POOL_ADDRESS": "public" if pool_public else "private",
    }
    lambda_app = LambdaApp(monkeypatch, _stage_cloud(pool_public=pool_public), environ=environ)
    cloud = lambda_app.cloud

    payload = lambda_app.invoke("reconcile", timeout_ms=60_000)

    assert payload["ok"], payload
    assert payload["rounds"] == rounds
    assert len(cloud.probe_function.invocations) == invokes
    webs = {i for i, raw in cloud.ec2.instances.items() if ("lbf:role", "web") in raw.tags}
    assert all(set(sent) == webs for sent in cloud.probe_function.invocations)
    assert cloud.route53.value("lb.edge-dev.example.com") == ("127.0.2.11",)
    assert cloud.ssm.parameters["/lbf/web-dev/backends"] == (
        "127.0.3.21:80 127.0.3.22:80" if pool_public else "127.0.1.21:80 127.0.1.22:80"
    )
