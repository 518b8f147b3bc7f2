"""The measuring side of the fan-out benchmark, in a fresh process of its own.

`python -m bench.fanout_probe SPEC.json` runs one warm-up round and then `rounds` timed rounds of
the project's prober (`chalicelib.adapters.probe.SocketProber`) over the spec's URLs, and prints one
JSON object: seconds and CPU seconds per round, results, peak RSS, peak open descriptors and threads.

A fresh process, because peak RSS is a high-water mark of the whole process: here it holds the
prober alone, not moto or another benchmark. The descriptor limit is set to Lambda's
1,024, so a pool that needed more would fail here as it would there.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import threading
import time
from collections import Counter
from pathlib import Path

from chalicelib.adapters.probe import SocketProber
from chalicelib.core.endpoints import parse_url
from chalicelib.core.model import ProbeTarget

LAMBDA_DESCRIPTORS = 1024


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class _Peaks:
    """Samples open descriptors and threads every 5 ms while a round runs.

    Sampling can miss a peak shorter than its period, so the pool bound is also reported as
    configured; a short read of /proc costs the measured round well under a percent.
    """

    def __init__(self) -> None:
        self.descriptors = 0
        self.threads = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> _Peaks:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.descriptors = max(self.descriptors, len(os.listdir("/proc/self/fd")))
            # The sampler itself is one thread; report the prober's.
            self.threads = max(self.threads, threading.active_count() - 1)


def main() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (LAMBDA_DESCRIPTORS, LAMBDA_DESCRIPTORS))
    spec = json.loads(Path(sys.argv[1]).read_text())
    targets = [ProbeTarget(str(i), parse_url(url)) for i, url in enumerate(spec["urls"])]
    prober = SocketProber(timeout=float(spec["timeout"]), concurrency=int(spec["concurrency"]))
    baseline_rss = _status_kib("VmRSS")
    prober.probe_round(targets)  # warm-up: first-use costs (imports, TLS context) are not a round
    rounds = []
    with _Peaks() as peaks:
        for _ in range(int(spec["rounds"])):
            started, cpu_started = time.monotonic(), time.thread_time()
            results = prober.probe_round(targets)
            # The round's event loop runs on this thread: its CPU time is the prober's own.
            cpu = time.thread_time() - cpu_started
            seconds = time.monotonic() - started
            details = Counter(r.detail for r in results.values())
            rounds.append({"seconds": seconds, "cpu_seconds": cpu, "details": dict(details)})
    print(
        json.dumps(
            {
                "rounds": rounds,
                "baseline_rss_kib": baseline_rss,
                # VmHWM, not ru_maxrss: Linux carries the parent's peak into ru_maxrss across
                # fork and exec, so a child of a large bench process would report the parent's.
                "peak_rss_kib": _status_kib("VmHWM"),
                "peak_descriptors": peaks.descriptors,
                "peak_threads": peaks.threads,
                "descriptor_limit": LAMBDA_DESCRIPTORS,
            }
        )
    )


if __name__ == "__main__":
    main()
