"""The measuring side of the prober function benchmark, in a fresh process as a cold start is.

`python -m bench.prober_run SPEC.json` sets what Lambda sets for the prober function, imports
app.py (timed: wall and CPU), invokes `probe_private` once (the cold invocation: first event loop,
TLS context) and then `rounds` more times, and prints one JSON object: the import's and the first
invocation's wall and CPU seconds, each warm round's wall and CPU seconds (the handler's whole
work: the contract's decode and encode and the probes), and the peak RSS.
"""

from __future__ import annotations

import json
import os
import sys
import time
import types
from pathlib import Path
from typing import Any


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _timed(call: Any) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    value = call()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    # As Lambda runs the prober function: its handler named, tracing left to the controller.
    os.environ["_HANDLER"] = "app.probe_private"
    os.environ["POWERTOOLS_TRACE_DISABLED"] = "false"
    os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"  # one log line per invocation is not work
    app, import_wall, import_cpu = _timed(lambda: __import__("app"))
    context = types.SimpleNamespace(
        function_name="probe",
        memory_limit_in_mb=128,
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:probe",
        aws_request_id="bench",
    )
    event = {
        "version": 1,
        "timeout": spec["timeout"],
        "targets": [{"key": f"i-{n:017x}", "url": url} for n, url in enumerate(spec["urls"])],
    }
    answer, first_wall, first_cpu = _timed(lambda: app.probe_private(event, context))
    failed = sum(1 for r in answer["results"] if not r["ok"])
    rounds = []
    for _ in range(int(spec["rounds"])):
        _, wall, cpu = _timed(lambda: app.probe_private(event, context))
        rounds.append({"seconds": wall, "cpu_seconds": cpu})
    print(
        json.dumps(
            {
                "import_seconds": import_wall,
                "import_cpu_seconds": import_cpu,
                "first_seconds": first_wall,
                "first_cpu_seconds": first_cpu,
                "rounds": rounds,
                "failed": failed,
                "loaded": sorted(
                    m for m in ("boto3", "botocore.client", "aws_xray_sdk") if m in sys.modules
                ),
                "peak_rss_kib": _peak_rss_kib(),
            }
        )
    )


if __name__ == "__main__":
    main()
