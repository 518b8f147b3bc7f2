"""A scheduled invocation never starts a round that Lambda's timeout would cut short."""

from __future__ import annotations

import pytest

import app
from tests.builders import settings


class _Context:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


@pytest.mark.parametrize(
    ("remaining_ms", "rounds"),
    [
        (90_000, 6),  # the stages' 90 s timeout: all six rounds (last starts at 50 s)
        (60_000, 6),  # 60 - 8 s safety - 2 s timeout = 50 s: the round at 50 s still fits
        (50_000, 5),
        (30_000, 3),
        (3_000, 1),  # chalice's test context: one round, never none
    ],
)
def test_rounds_fit_the_time_left(remaining_ms: int, rounds: int) -> None:
    assert app._rounds_that_fit(settings(), _Context(remaining_ms)) == rounds


def test_without_a_context_the_configured_rounds_run() -> None:
    assert app._rounds_that_fit(settings(probe_rounds=4), None) == 4


def test_a_round_through_the_prober_function_is_given_its_invoke_margin() -> None:
    # 50 s - 8 s safety - 2 s timeout = 40 s: the round at 40 s still fits in-process (5 rounds);
    # with the prober function's 1 s invoke margin it would end past the time left (4 rounds).
    in_process = settings()
    with_function = settings(prober_function="lb-failover-prod-ProbePrivate-1A2B")
    assert app._rounds_that_fit(in_process, _Context(50_000)) == 5
    assert app._rounds_that_fit(with_function, _Context(50_000)) == 4
