"""Shared plumbing for the benchmarks that run the real job against moto's server.

Each benchmark launches its instances into a /24 of its own (127.0.5.0/24, 127.0.6.0/24, ...),
so its servers never collide with the tests' or the demo's on 127.0.1.0/24 while they run too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from standin.aws import LocalAws


class FastForwardClock:
    """Real time, except that sleeping skips ahead instead of waiting.

    Used where a benchmark counts calls rather than timing them: a 6-round run with the default
    10 s interval takes its real work time instead of a minute, and every timestamp the job
    writes (ListCommands' InvokedAfter, when a push was requested) stays close to moto's clock.
    """

    def __init__(self) -> None:
        self.skipped = 0.0

    def now(self) -> float:
        return time.time() + self.skipped

    def sleep(self, seconds: float) -> None:
        self.skipped += max(0.0, seconds)


def use_subnet(aws: LocalAws, cidr: str) -> None:
    """Launch this benchmark's instances into `cidr` (inside the stand-in's 127.0.0.0/16 VPC)."""
    ec2 = aws.client("ec2")
    vpc = ec2.describe_subnets(SubnetIds=[aws.subnet_id])["Subnets"][0]["VpcId"]
    aws.subnet_id = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr)["Subnet"]["SubnetId"]


class Observer:
    """Reads what the controller wrote, through the stand-in's clients (made once each)."""

    def __init__(self, aws: LocalAws) -> None:
        self._aws = aws

    def tags(self, instance_id: str) -> dict[str, str]:
        return self._aws.tags(instance_id)

    def a_record(self, name: str) -> tuple[str, ...]:
        return self._aws.a_record(name)

    def wait_for(
        self, what: str, condition: Callable[[], bool], *, deadline: float, every: float = 0.2
    ) -> float:
        """Poll until `condition()` holds; the monotonic time it held. TimeoutError names `what`."""
        give_up = time.monotonic() + deadline
        while time.monotonic() < give_up:
            if condition():
                return time.monotonic()
            time.sleep(every)
        raise TimeoutError(f"did not hold within {deadline:.0f} s: {what}")


def environment(
    aws: LocalAws,
    *,
    cluster: str,
    domain: str,
    lb_port: int,
    web_port: int,
    extra: dict[str, str] | None = None,
) -> dict[str, str]:
    """The controller's settings for a benchmark's cluster on the stand-in."""
    return aws.controller_environment(
        cluster=cluster, domain=domain, lb_port=lb_port, web_port=web_port, **(extra or {})
    )


@contextmanager
def quiet_controller() -> Iterator[logging.Logger]:
    """The controller's own log lines (every change, every notice) stay off the bench's output.

    Yields the `chalicelib` logger at INFO: a benchmark may add a handler to it or below it.
    """
    controller = logging.getLogger("chalicelib")
    saved = (controller.level, controller.propagate)
    silence = logging.NullHandler()
    controller.addHandler(silence)
    controller.setLevel(logging.INFO)
    controller.propagate = False
    try:
        yield controller
    finally:
        controller.removeHandler(silence)
        controller.setLevel(saved[0])
        controller.propagate = saved[1]
