"""The time rules as pure decisions (chalicelib/core/timing.py): what a round needs, whether it
fits, whether a schedule fits the minute, and the detection bound as a sum of named terms."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.core.timing import (
    PROBER_INVOKE_SECONDS,
    ROUND_WRITE_SECONDS,
    Term,
    detection_bound,
    round_fits,
    round_seconds,
    schedule_fits,
)
from tests.kit.settings import settings

PROBER_FUNCTION = "lb-failover-prod-ProbePrivate-1A2B"


@pytest.mark.parametrize(
    ("probes", "timeout", "needs"),
    [
        (True, 2.0, 2.0 + ROUND_WRITE_SECONDS),
        (True, 0.5, 0.5 + ROUND_WRITE_SECONDS),
        (False, 2.0, ROUND_WRITE_SECONDS),  # the event run probes nothing
    ],
)
def test_what_a_round_needs(probes: bool, timeout: float, needs: float) -> None:
    assert round_seconds(probes=probes, probe_timeout=timeout) == needs


@pytest.mark.parametrize(
    ("probes", "needs"),
    [
        (True, 2.0 + PROBER_INVOKE_SECONDS + ROUND_WRITE_SECONDS),
        (False, ROUND_WRITE_SECONDS),  # the event run invokes nothing either
    ],
)
def test_a_round_through_the_prober_function_needs_its_invoke_too(
    probes: bool, needs: float
) -> None:
    assert round_seconds(probes=probes, probe_timeout=2.0, prober_invoke=True) == needs


@pytest.mark.parametrize(
    ("starts_at", "deadline", "needs", "fits"),
    [
        (50.0, 60.0, 10.0, True),  # ends exactly at the deadline
        (50.001, 60.0, 10.0, False),
        (0.0, 9.9, 10.0, False),
        (0.0, None, 10.0, True),  # no deadline: the command line's plan, the stand-in
        (70.0, 60.0, 0.0, False),  # already past the end
    ],
)
def test_a_round_fits_when_it_ends_by_the_deadline(
    starts_at: float, deadline: float | None, needs: float, fits: bool
) -> None:
    assert round_fits(starts_at=starts_at, deadline=deadline, needs=needs) is fits


@pytest.mark.parametrize(
    ("rounds", "interval", "fits"),
    [(6, 10.0, True), (7, 10.0, False), (1, 60.0, True), (1, 60.5, False), (60, 1.0, True)],
)
def test_a_schedule_fits_the_minute(rounds: int, interval: float, fits: bool) -> None:
    assert schedule_fits(rounds=rounds, interval=interval) is fits


def test_the_bound_is_the_sum_of_its_terms_and_takes_one_more() -> None:
    """A new source of delay (a prober function's invoke, say) is one more term of the sum."""
    bound = detection_bound(fall=3, interval=10.0, timeout=2.0, rounds=6)
    assert [t.formula for t in bound.terms] == [
        "(FALL + 1) x INTERVAL",
        "TIMEOUT",
        "(60 - ROUNDS x INTERVAL)",
    ]
    assert bound.seconds == 42.0

    longer = replace(bound, terms=(*bound.terms, Term("prober invoke", "INVOKE", 1.5)))

    assert longer.seconds == 43.5
    assert longer.formula.endswith("+ INVOKE + start-up")
    assert "INVOKE [1.5 s]" in longer.describe()


@pytest.mark.parametrize(
    ("variables", "invoke_term"),
    [
        ({"LBF_PROBER_FUNCTION": PROBER_FUNCTION}, True),  # the pool is private by default
        (
            {
                "LBF_PROBER_FUNCTION": PROBER_FUNCTION,
                "LBF_LB_ADDRESS": "public",
                "LBF_POOL_ADDRESS": "public",
            },
            False,  # nothing private: the prober function is never invoked
        ),
        ({}, False),  # private targets, probed in-process
    ],
)
def test_the_invoke_is_a_term_only_when_targets_go_to_the_prober_function(
    variables: dict[str, str], invoke_term: bool
) -> None:
    bound = settings(variables).detection_bound

    formulas = [term.formula for term in bound.terms]
    assert ("PROBER INVOKE" in formulas) is invoke_term
    assert bound.seconds == (43.0 if invoke_term else 42.0)
    if invoke_term:
        assert "PROBER INVOKE [1 s]" in bound.describe()
