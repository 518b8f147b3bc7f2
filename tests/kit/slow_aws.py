"""A slow AWS for the in-memory fakes, and the Lambda context of an invocation on the fake clock.

Nothing sleeps: a slow call moves the fake clock on. With a `deadline`, a call behaves as botocore
does under the run's time limit (chalicelib/adapters/clients.py): one that would end past the
invocation's end less the report's share fails at that moment with OutOfTime, and one started
after it is not sent at all. Without a deadline the call simply takes its time, as botocore's own
timeouts would let it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bench.calls import is_write
from chalicelib.core.timing import REPORT_SECONDS
from chalicelib.errors import AwsError
from tests.kit.cloud import FakeClock


class SlowAws:
    """A `Calls.before` hook: each operation takes the `seconds` given for it (by name, "*" for
    any other), or that a function of its name says."""

    def __init__(
        self,
        clock: FakeClock,
        seconds: Mapping[str, float] | Callable[[str], float],
        *,
        deadline: float | None = None,
        then: Callable[[str, object], None] | None = None,
    ) -> None:
        self.clock = clock
        self.seconds: Callable[[str], float]
        if callable(seconds):
            self.seconds = seconds
        else:
            by_name = dict(seconds)
            self.seconds = lambda operation: by_name.get(operation, by_name.get("*", 0.0))
        self.deadline = deadline
        self.then = then  # another hook to run after the delay (e.g. kill_at_write)
        self.cut: list[str] = []  # operations that ran out of time

    def __call__(self, operation: str, detail: object) -> None:
        delay = self.seconds(operation)
        if self.deadline is not None:
            limit = self.deadline - REPORT_SECONDS
            if self.clock.now() + delay > limit:
                self.clock.time = max(self.clock.now(), limit)
                self.cut.append(operation)
                raise AwsError("aws", operation, "OutOfTime", "the invocation's time is spent")
        self.clock.advance(delay)
        if self.then is not None:
            self.then(operation, detail)

    @staticmethod
    def writes_only(seconds: float) -> Callable[[str], float]:
        """Every write slow, reads instant: what the tests name "a slow write path"."""
        return lambda operation: seconds if is_write(operation) else 0.0


class ClockTime:
    """chalice's LambdaContext reads time through `.time()`: this one is the fake clock's."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def time(self) -> float:
        return self.clock.now()
