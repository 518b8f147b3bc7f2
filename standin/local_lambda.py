"""The prober function, run locally as the separate function it is, behind Lambda's Invoke API.

A process of its own (as a Lambda execution environment is) imports app.py with the variables
Lambda would set, and serves `POST /2015-03-31/functions/<name>/invocations` on 127.0.0.1 by
calling app.py's `probe_private` handler. The controller reaches it with its real adapter and a
real boto3 Lambda client pointed here (`AWS_ENDPOINT_URL_LAMBDA`), so botocore's serialization,
the read timeout and the contract are all exercised on loopback.

`python -m standin.local_lambda --port P --function NAME` runs the server; `LocalLambda` starts
and stops it from the demo, the tests and the benchmarks, and reads what it logged.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import types
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from standin.aws import free_port

ROOT = Path(__file__).resolve().parents[1]
_PREFIX = "/2015-03-31/functions/"
_SUFFIX = "/invocations"
_START_SECONDS = 30.0
# The local prober function's name: what the stand-in's LBF_PROBER_FUNCTION says.
FUNCTION = "lb-failover-local-probe_private"


def _context(function: str, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    return types.SimpleNamespace(
        function_name=function,
        function_version="$LATEST",
        memory_limit_in_mb=128,
        invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{function}",
        aws_request_id=str(uuid.uuid4()),
        log_group_name=f"/aws/lambda/{function}",
        log_stream_name="local",
        get_remaining_time_in_millis=lambda: int(max(0.0, deadline - time.monotonic()) * 1000),
    )


def serve(port: int, function: str, handler: Callable[[Any, Any], Any]) -> None:
    """Lambda's Invoke API for one function, until the process is stopped."""

    class Invocations(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            path = self.path.split("?", 1)[0]
            if not (path.startswith(_PREFIX) and path.endswith(_SUFFIX)):
                self._error(404, "UnknownOperationException", f"no operation at {path}")
                return
            name = unquote(path[len(_PREFIX) : -len(_SUFFIX)])
            # The real API takes a name or an ARN (with an optional qualifier).
            if name != function and name.split(":")[-1] != function:
                self._error(404, "ResourceNotFoundException", f"Function not found: {name}")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {"X-Amz-Executed-Version": "$LATEST"}
            try:
                answer = handler(json.loads(body or b"{}"), _context(function, 10.0))
            except Exception as exc:  # noqa: BLE001 - Lambda reports any error as a FunctionError
                headers["X-Amz-Function-Error"] = "Unhandled"
                answer = {"errorMessage": str(exc), "errorType": type(exc).__name__}
            self._send(200, json.dumps(answer).encode(), headers)

        def _error(self, status: int, code: str, message: str) -> None:
            body = json.dumps({"Type": "User", "message": message}).encode()
            self._send(status, body, {"x-amzn-ErrorType": code})

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return  # the handler's own log line says what was probed

    server = ThreadingHTTPServer(("127.0.0.1", port), Invocations)
    server.daemon_threads = True
    print(json.dumps({"message": "listening", "port": port}), flush=True)
    server.serve_forever()


class LocalLambda:
    """The prober function in a process of its own; `environment()` points boto3 at it."""

    def __init__(self, function: str = FUNCTION) -> None:
        self.function = function
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.logs: queue.Queue[dict[str, Any]] = queue.Queue()
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def environment(self) -> dict[str, str]:
        """For the controller's process: only the Lambda client is sent here."""
        return {"AWS_ENDPOINT_URL_LAMBDA": self.endpoint}

    def start(self) -> LocalLambda:
        env = {
            **os.environ,
            # What Lambda sets for this function: app.py then leaves the tracer out.
            "_HANDLER": "app.probe_private",
            "AWS_LAMBDA_FUNCTION_NAME": self.function,
            "POWERTOOLS_SERVICE_NAME": "lb-failover-prober",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PYTHONUNBUFFERED": "1",
        }
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "standin.local_lambda",
                "--port",
                str(self.port),
                "--function",
                self.function,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._wait_until_listening()
        return self

    def _read(self) -> None:
        assert self._process is not None
        assert self._process.stdout is not None
        for line in self._process.stdout:
            try:
                parsed = json.loads(line)
            except ValueError:
                parsed = {"message": line.rstrip()}
            if isinstance(parsed, dict):
                self.logs.put(parsed)

    def _wait_until_listening(self) -> None:
        give_up = time.monotonic() + _START_SECONDS
        while time.monotonic() < give_up:
            assert self._process is not None
            if self._process.poll() is not None:
                raise RuntimeError(f"the local prober function exited ({self._process.returncode})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"the local prober function did not listen within {_START_SECONDS} s")

    def probed(self, count: int, *, deadline: float = 10.0) -> list[dict[str, Any]]:
        """The next `count` "probed" log lines; fewer if they do not arrive before the deadline.

        The handler logs before it answers, but the line crosses a pipe: it may trail the answer.
        """
        lines: list[dict[str, Any]] = []
        give_up = time.monotonic() + deadline
        while len(lines) < count and (left := give_up - time.monotonic()) > 0:
            try:
                line = self.logs.get(timeout=left)
            except queue.Empty:
                break
            if line.get("message") == "probed":
                lines.append(line)
        return lines

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def __enter__(self) -> LocalLambda:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def probed_lines(logs: queue.Queue[dict[str, Any]]) -> list[dict[str, Any]]:
    """The handler's "probed" log lines received so far (each invocation writes one)."""
    lines: list[dict[str, Any]] = []
    while True:
        try:
            line = logs.get_nowait()
        except queue.Empty:
            return lines
        if line.get("message") == "probed":
            lines.append(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--function", required=True)
    args = parser.parse_args()
    import app  # after the environment is in place, as Lambda imports the handler's module

    serve(args.port, args.function, app.probe_private)


@contextmanager
def local_prober_function() -> Iterator[LocalLambda]:
    """The prober function running, and this process's Lambda client pointed at it."""
    from chalicelib.adapters.clients import forget_clients

    saved = os.environ.get("AWS_ENDPOINT_URL_LAMBDA")
    with LocalLambda() as function:
        os.environ.update(function.environment())
        forget_clients()  # a Lambda client made before would still point elsewhere
        try:
            yield function
        finally:
            if saved is None:
                os.environ.pop("AWS_ENDPOINT_URL_LAMBDA", None)
            else:
                os.environ["AWS_ENDPOINT_URL_LAMBDA"] = saved
            forget_clients()


if __name__ == "__main__":
    main()
