"""Counting the controller's AWS calls through botocore's event hooks.

Every call the controller makes goes through the boto3 clients of `chalicelib.adapters.clients`
(made once per process and shared), so hooking `before-call` on those clients counts each API
call by service and operation, pages included; `before-send` counts HTTP attempts (retries
included) and the bytes that go out, `after-call` the bytes that come back. No moto here: the
handler benchmark imports this in a process of its own.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from chalicelib.adapters.clients import client

# The one read/write classification, shared with the tests; bench.calls.is_write stays its name.
from chalicelib.adapters.operations import is_write as is_write

SERVICES = ("ec2", "route53", "ssm", "sns")


@dataclass(frozen=True)
class Counted:
    """The calls of one run: "service.Operation" -> count, plus what went over the wire."""

    calls: dict[str, int]
    attempts: int  # HTTP requests, retries included
    bytes_sent: int
    bytes_received: int

    @property
    def total(self) -> int:
        return sum(self.calls.values())

    @property
    def writes(self) -> dict[str, int]:
        return {k: v for k, v in self.calls.items() if is_write(k.split(".", 1)[1])}

    def count(self, key: str) -> int:
        return self.calls.get(key, 0)


class CallCounter:
    """botocore event hooks on the controller's shared clients."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._attempts = 0
        self._sent = 0
        self._received = 0

    def attach(self, services: tuple[str, ...] = SERVICES) -> CallCounter:
        for service in services:
            events = client(service).meta.events
            events.register("before-call", self._call)
            events.register("before-send", self._send)
            events.register("after-call", self._answered)
        return self

    def take(self) -> Counted:
        """What was counted since the last take, and start counting afresh."""
        with self._lock:
            counted = Counted(dict(self._calls), self._attempts, self._sent, self._received)
            self._calls.clear()
            self._attempts = self._sent = self._received = 0
        return counted

    # Handlers return None: a value returned from before-call or before-send would replace
    # the real request's response.
    def _call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self._calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def _send(self, request: Any, **_: Any) -> None:
        body = request.body or b""
        headers = sum(len(k) + len(str(v)) + 4 for k, v in request.headers.items())
        with self._lock:
            self._attempts += 1
            self._sent += len(body) + headers + len(request.url) + 16

    def _answered(self, http_response: Any, **_: Any) -> None:
        if http_response is None:
            return
        headers = sum(len(k) + len(str(v)) + 4 for k, v in http_response.headers.items())
        with self._lock:
            self._received += len(http_response.content or b"") + headers + 16
