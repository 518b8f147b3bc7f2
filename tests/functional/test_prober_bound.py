"""The prober function's invoke counts only within its term of the detection bound.

The bound (and a round's budget) allow the invoke LBF_PROBE_TIMEOUT + timing.PROBER_INVOKE_SECONDS,
connect included. An answer that comes later is void: a fault on the prober's side for that path's
round, whatever it says, so no verdict changes from it. Driven by the fake clock: a fake Lambda
client answers with the fake prober function's results after the time a test gives it. One test
uses a real loopback endpoint that drips its answer, which botocore's read timeout alone lets
through, because it bounds each wait for bytes and not the whole answer.
"""

from __future__ import annotations

import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from botocore.response import StreamingBody

from chalicelib import jobs
from chalicelib.adapters.clients import INVOKE_CONNECT_SECONDS, forget_clients, invoke_client
from chalicelib.adapters.probe_function import ProbeFunction
from chalicelib.core import probe_contract
from chalicelib.core.endpoints import parse_url
from chalicelib.core.model import ProbeResult, ProbeTarget
from chalicelib.core.timing import PROBER_INVOKE_SECONDS, prober_invoke_limit
from chalicelib.errors import ProberFault
from tests.kit.aws_env import use_fake_credentials
from tests.kit.cloud import FAKE_CLOUD_ENV, FakeCloud, small_cluster
from tests.kit.settings import settings

FUNCTION = "lb-failover-prod-ProbePrivate-1A2B3C"
TIMEOUT = 2.0
LIMIT = TIMEOUT + PROBER_INVOKE_SECONDS
DEAD_WEB = "127.0.1.22"


class SlowLambda:
    """Lambda's Invoke as botocore returns it: the fake prober function's answer, `extra` seconds
    after its probes (which cost the fake clock one timeout when a target is dead)."""

    def __init__(self, cloud: FakeCloud) -> None:
        self.cloud = cloud
        self.extra = 0.0
        self.invokes: list[float] = []  # how long each took, on the fake clock

    def invoke(self, **params: Any) -> dict[str, Any]:
        started = self.cloud.clock.now()
        request = probe_contract.decode_request(json.loads(params["Payload"]))
        results = self.cloud.probe_function.probe_round(request.targets)
        self.cloud.clock.advance(self.extra)
        self.invokes.append(self.cloud.clock.now() - started)
        body = json.dumps(probe_contract.encode_response(results)).encode()
        return {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(body), len(body))}


@pytest.fixture
def cloud() -> FakeCloud:
    cloud = small_cluster()
    cloud.prober.timeout = cloud.probe_function.prober.timeout = TIMEOUT
    return cloud


def run_through_the_function(cloud: FakeCloud, lam: SlowLambda) -> jobs.Report:
    config = settings(FAKE_CLOUD_ENV, prober_function=FUNCTION, probe_timeout=TIMEOUT)
    adapter = ProbeFunction(lam, FUNCTION, timeout=TIMEOUT, monotonic=cloud.clock.now)
    services = replace(cloud.services(), probe_function=adapter)
    report = jobs.reconcile(config, services, cloud.clock)
    cloud.clock.advance(60.0)
    return report


def backends(cloud: FakeCloud) -> str:
    return cloud.ssm.parameters["/lbf/demo/backends"]


@pytest.mark.parametrize(
    ("extra", "used"),
    [
        # 2.0 s of probes + 0.9 s: within the 3 s limit, the answer counts.
        (PROBER_INVOKE_SECONDS - 0.1, True),
        # 2.0 s + 1.1 s = 3.1 s: later than the limit, void (the 2.6 s at 1.5 s timeout).
        (PROBER_INVOKE_SECONDS + 0.1, False),
    ],
    ids=["within-the-limit-used", "after-the-limit-void"],
)
def test_an_answer_later_than_the_invoke_limit_changes_no_verdict(
    cloud: FakeCloud, extra: float, used: bool
) -> None:
    lam = SlowLambda(cloud)
    for _ in range(2):
        assert run_through_the_function(cloud, lam).ok
    assert DEAD_WEB in backends(cloud)
    cloud.prober.dead.add(DEAD_WEB)
    lam.extra = extra
    lam.invokes.clear()

    report = run_through_the_function(cloud, lam)
    report = run_through_the_function(cloud, lam)

    # The invokes that carry the pool (every LBF_POOL_INTERVAL) wait for the dead web server's
    # timeout; the LBs-only ones in between answer at once.
    assert any(t == pytest.approx(TIMEOUT + extra) for t in lam.invokes)
    assert all(t in (pytest.approx(extra), pytest.approx(TIMEOUT + extra)) for t in lam.invokes)
    if used:
        assert DEAD_WEB not in backends(cloud)
        assert not any("void" in n for n in cloud.sns.messages)
    else:
        assert DEAD_WEB in backends(cloud)  # its failed probes were never counted
        [notice] = [n for n in cloud.sns.messages if "void" in n]
        assert f"answered after {TIMEOUT + extra:.2f} s" in notice
        assert f"the {LIMIT:g} s (LBF_PROBE_TIMEOUT + 1 s)" in notice
        assert "fault on the prober's side" in notice
        assert report.ok, report.errors


def test_the_limit_is_the_bounds_term() -> None:
    assert prober_invoke_limit(1.5) == 2.5
    assert prober_invoke_limit(TIMEOUT) == LIMIT


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    use_fake_credentials(monkeypatch)
    yield
    forget_clients()


def test_the_clients_connect_and_read_timeouts_fit_inside_the_limit(lambda_env: None) -> None:
    config = invoke_client(1.5).meta.config

    assert config.connect_timeout == INVOKE_CONNECT_SECONDS
    assert config.connect_timeout + config.read_timeout == prober_invoke_limit(1.5)


class _Dripping:
    """An HTTP endpoint that answers an invoke in small pieces, each within the read timeout, so
    that the whole answer ends after the limit: the case the read timeout cannot catch."""

    def __init__(self, body: bytes, *, pieces: int, gap: float) -> None:
        self.body = body
        self.pieces = pieces
        self.gap = gap
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        with connection:
            connection.recv(65536)
            head = (
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"X-Amz-Executed-Version: $LATEST\r\nContent-Length: {len(self.body)}\r\n\r\n"
            )
            connection.sendall(head.encode())
            size = -(-len(self.body) // self.pieces)
            for start in range(0, len(self.body), size):
                time.sleep(self.gap)
                connection.sendall(self.body[start : start + size])

    def close(self) -> None:
        self.listener.close()


def test_a_real_answer_dripping_past_the_limit_is_void(
    lambda_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each piece comes within the read timeout (0.6 s at a 0.1 s probe timeout); the whole answer
    takes about 1.6 s, past the 1.1 s limit. Bounded: the server stops after its pieces."""
    target = ProbeTarget("i-0000000000000000a", parse_url("tcp://127.0.0.1:9"))
    answer = {target.key: ProbeResult(ok=True, detail="open", seconds=0.01)}
    body = json.dumps(probe_contract.encode_response(answer)).encode()
    dripping = _Dripping(body, pieces=4, gap=0.4)
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", f"http://127.0.0.1:{dripping.port}")
    try:
        adapter = ProbeFunction(invoke_client(0.1), FUNCTION, timeout=0.1)
        with pytest.raises(
            ProberFault, match=r"answered after 1\.[0-9]+ s, later than the 1\.1 s"
        ) as raised:
            adapter.probe_round([target])
    finally:
        dripping.close()
    took = float(str(raised.value).split("answered after ")[1].split(" s,")[0])
    assert took > prober_invoke_limit(0.1)
