"""One scheduled invocation of the real Lambda handler, in a process of its own, for the cost bench.

`python -m bench.handler_run SPEC.json` imports app.py as Lambda's runtime does, calls the
`reconcile` handler (Chalice's wrapper, with the Powertools logger and metrics middleware) with an
EventBridge scheduled event and a context that reports the stage's Lambda timeout, and writes
what it measured to the spec's `result` file: the handler's wall time (what Lambda bills), its
AWS calls and bytes. Its standard output and error are exactly what the invocation logs, which
Lambda would ship to CloudWatch Logs; the parent counts them.
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from bench.calls import SERVICES, CallCounter
from chalicelib.adapters.clients import client

SCHEDULED_EVENT = {
    "version": "0",
    "id": "5b5b6a4e-0000-4000-8000-000000000000",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "123456789012",
    "time": "2025-01-01T00:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/lb-failover-reconcile"],
    "detail": {},
}


class _Context:
    """The parts of Lambda's context object that app.py and Powertools read."""

    def __init__(self, timeout_seconds: float, memory_mb: int) -> None:
        self._deadline = time.monotonic() + timeout_seconds
        self.function_name = "lb-failover-prod-reconcile"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = (
            "arn:aws:lambda:us-east-1:123456789012:function:" + self.function_name
        )
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = "/aws/lambda/" + self.function_name
        self.log_stream_name = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> None:
    spec: dict[str, Any] = json.loads(Path(sys.argv[1]).read_text())
    started = time.monotonic()
    import app  # the runtime's init phase

    init_seconds = time.monotonic() - started
    # A warm environment already holds its clients (made by its first invocation): make them
    # now, so the measured invocation is a typical one of the 60 an hour, and count their calls.
    for service in SERVICES:
        client(service)
    counter = CallCounter().attach()
    context = _Context(float(spec["timeout_seconds"]), int(spec["memory_mb"]))
    started = time.monotonic()
    summary = app.app.handler_map["reconcile"](dict(SCHEDULED_EVENT), context)
    seconds = time.monotonic() - started
    counted = counter.take()
    sys.stdout.flush()
    Path(spec["result"]).write_text(
        json.dumps(
            {
                "init_seconds": init_seconds,
                "seconds": seconds,
                "summary": summary,
                "calls": counted.calls,
                "attempts": counted.attempts,
                "bytes_sent": counted.bytes_sent,
                "bytes_received": counted.bytes_received,
            }
        )
    )


if __name__ == "__main__":
    main()
