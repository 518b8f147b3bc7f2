"""A scripted AWS endpoint on 127.0.0.1, for what only a real HTTP exchange shows: botocore's retries.

Stubber and moto answer before botocore's retry handler runs, so neither can show a retry. The
server here answers each request with the next scripted answer in the service's own wire format;
`backoff` records the delays botocore would sleep between attempts instead of sleeping them.
Fixtures: a test module imports `scripted_server` and `backoff` to use them.
"""

from __future__ import annotations

import contextlib
import threading
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import botocore.config
import botocore.endpoint
import pytest

from chalicelib.adapters.clients import CONFIG
from chalicelib.core.dns import RecordChange
from chalicelib.core.model import Record
from tests.kit.cloud import FAKE_DOMAIN


@dataclass
class Scripted:
    """Answers each request with the next scripted (status, body); the last one repeats."""

    answers: list[tuple[int, str]]
    content_type: str = "text/xml"
    delay: float = 0.0
    requests: list[tuple[str, str, bytes]] = field(default_factory=list)


@pytest.fixture
def scripted_server() -> Iterator[Callable[[Scripted], str]]:
    servers: list[ThreadingHTTPServer] = []
    release = threading.Event()

    def start(script: Scripted) -> str:
        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self._answer()

            def do_GET(self) -> None:
                self._answer()

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                script.requests.append((self.command, self.path, body))
                if script.delay:
                    release.wait(script.delay)
                index = min(len(script.requests), len(script.answers)) - 1
                status, text = script.answers[index]
                payload = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", script.content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-amzn-RequestId", "req-1")
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    release.set()
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def backoff(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The delays botocore sleeps between attempts, recorded instead of slept."""
    sleeps: list[float] = []
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=sleeps.append))
    return sleeps


def aws_client(service: str, url: str, config: botocore.config.Config = CONFIG) -> Any:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1"
    )
    return session.client(service, config=config, endpoint_url=url)  # type: ignore[call-overload]


def route53_error(code: str) -> str:
    return (
        '<?xml version="1.0"?>\n<ErrorResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{code} here</Message></Error>"
        "<RequestId>req-1</RequestId></ErrorResponse>"
    )


ROUTE53_CHANGED = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<ChangeResourceRecordSetsResponse xmlns="https://route53.amazonaws.com/doc/2013-04-01/">'
    "<ChangeInfo><Id>/change/C2</Id><Status>PENDING</Status>"
    "<SubmittedAt>2024-01-01T00:00:00.000Z</SubmittedAt></ChangeInfo>"
    "</ChangeResourceRecordSetsResponse>"
)

# The batch that moves the active record from lb1 to lb2 on the fake cloud's domain.
ACTIVE_MOVE = [
    RecordChange("DELETE", Record(f"lb.{FAKE_DOMAIN}", "A", 60, ("127.0.0.11",))),
    RecordChange("CREATE", Record(f"lb.{FAKE_DOMAIN}", "A", 60, ("127.0.0.12",))),
]


def ec2_error(code: str) -> str:
    return (
        f"<Response><Errors><Error><Code>{code}</Code><Message>{code} here</Message></Error>"
        "</Errors><RequestID>req-1</RequestID></Response>"
    )
