"""Ctrl-C between steps: a write in flight completes (and is reported) before the run stops.

A KeyboardInterrupt raised inside a boto3 call would leave the caller not knowing whether Route 53
took the change. While a step's writes are applied, SIGINT is only remembered; when the step is
done, the caller sees that it came and ends its run with the Report of what was applied.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType


@dataclass
class Held:
    interrupted: bool = False  # Ctrl-C came while the block ran


@contextmanager
def writes_finish_first() -> Iterator[Held]:
    """Holds SIGINT for the block; `interrupted` says afterwards whether one came.

    Only where Python's own Ctrl-C handler is in place, in the main thread (the command line): a
    handler someone else installed (a test runner, Lambda's runtime) is left alone.
    """
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield Held()
        return
    held = Held()

    def remember(signum: int, frame: FrameType | None) -> None:
        held.interrupted = True

    signal.signal(signal.SIGINT, remember)
    try:
        yield held
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
