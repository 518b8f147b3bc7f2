"""The time rules as pure decisions (chalicelib/core/timing.py): what a round needs, whether it
fits, whether a schedule fits the minute, which rounds probe the pool, where the minute ends, and
the detection bound as a sum of named terms."""

from __future__ import annotations

from dataclasses import replace

import pytest

from chalicelib.core.timing import (
    PROBER_INVOKE_SECONDS,
    ROUND_WRITE_SECONDS,
    Term,
    detection_bound,
    pool_due,
    round_deadline,
    round_fits,
    round_seconds,
    round_start,
    rounds_that_fit,
    schedule_fits,
    scheduled_time,
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
    ("rounds", "interval", "timeout", "invoke", "fits"),
    [
        # (ROUNDS - 1) x INTERVAL + TIMEOUT (+ 1 s through the prober function) at most 58 s.
        (29, 2.0, 1.5, False, True),
        (30, 2.0, 1.5, False, False),
        (6, 10.0, 1.5, False, True),
        (7, 10.0, 1.5, False, False),
        (19, 3.0, 1.5, True, True),  # 54 + 2.5 = 56.5
        (20, 3.0, 1.5, True, False),
        (6, 10.0, 8.0, False, True),  # 58 exactly
        (6, 10.0, 7.5, True, False),  # 58.5
        (1, 60.0, 58.0, False, True),
        (1, 60.0, 58.5, False, False),
        (580, 0.1, 0.1, False, True),  # fractions: 57.9 + 0.1, not lost to rounding
    ],
)
def test_a_schedule_fits_the_minute(
    rounds: int, interval: float, timeout: float, invoke: bool, fits: bool
) -> None:
    assert (
        schedule_fits(rounds=rounds, interval=interval, probe_timeout=timeout, invoke=invoke)
        is fits
    )


@pytest.mark.parametrize(
    ("interval", "timeout", "invoke", "rounds"),
    [
        (2.0, 1.5, False, 29),  # the SPEC's defaults
        (2.0, 1.5, True, 28),  # a 29th round's probes and invoke would end at 58.5 s
        (3.0, 1.5, True, 19),  # private LBs through the prober function
        (10.0, 1.5, False, 6),
        (10.0, 2.0, False, 6),  # the old defaults keep their six rounds
        (60.0, 58.0, False, 1),
        (60.0, 59.0, False, 0),  # not even one
    ],
)
def test_the_rounds_that_fit(interval: float, timeout: float, invoke: bool, rounds: int) -> None:
    assert rounds_that_fit(interval=interval, probe_timeout=timeout, invoke=invoke) == rounds


@pytest.mark.parametrize(
    ("scheduled_at", "starts_at", "probed_at", "deadline", "due"),
    [
        (0.0, 0.2, None, None, True),  # the first round probes the pool (late by its reads)
        (2.0, 2.0, 0.0, None, False),
        (8.0, 8.0, 0.0, None, False),
        # LBF_POOL_INTERVAL after its last probe, on the schedule: the first round's late start
        # (0.2 s, the run's reads) does not push the pool's next probe a round later.
        (10.0, 10.0, 0.0, None, True),
        (10.0, 11.5, 0.0, None, True),  # a round running late is still that round
        (12.0, 12.0, 10.0, None, False),
        (0.3 + 0.3 + 0.3 + 10.0, 10.9, 0.9, None, True),  # float sums do not skip a round
        # Its probes (2.5 s through the prober function) and the writes end by the deadline.
        (50.0, 50.0, 40.0, 50.0 + 2.5 + ROUND_WRITE_SECONDS, True),
        (50.0, 50.0, 40.0, 50.0 + 2.4 + ROUND_WRITE_SECONDS, False),
        (50.0, 50.5, 40.0, 50.0 + 2.5 + ROUND_WRITE_SECONDS, False),  # started late: it does not
        (0.0, 0.0, None, 5.0, False),  # not even a first probe the run could not use
    ],
)
def test_which_rounds_probe_the_pool(
    scheduled_at: float,
    starts_at: float,
    probed_at: float | None,
    deadline: float | None,
    due: bool,
) -> None:
    assert (
        pool_due(
            scheduled_at=scheduled_at,
            starts_at=starts_at,
            pool_probed_at=probed_at,
            pool_interval=10.0,
            pool_seconds=2.5,
            deadline=deadline,
        )
        is due
    )


def test_the_pool_is_probed_as_often_as_before_at_the_defaults() -> None:
    """29 rounds 2 s apart, the pool every 10 s: 6 probes a minute, as 6 rounds of 10 s made."""
    probed_at: float | None = None
    probes = []
    for number in range(29):
        starts_at = number * 2.0
        if pool_due(
            scheduled_at=starts_at,
            starts_at=starts_at + (0.3 if number == 0 else 0.0),  # the first round's reads
            pool_probed_at=probed_at,
            pool_interval=10.0,
            pool_seconds=2.5,
            deadline=round_deadline(scheduled_at=0.0, invocation_ends=90.0),
        ):
            probed_at = starts_at
            probes.append(starts_at)
    assert probes == [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]


# 2026-12-05T18:50:00Z
MINUTE = 1_796_496_600.0


@pytest.mark.parametrize(
    ("event_time", "now", "scheduled"),
    [
        ("2026-12-05T18:50:00Z", MINUTE + 3.2, MINUTE),  # EventBridge's form, a late start
        ("2026-12-05T18:50:00+00:00", MINUTE + 60.0, MINUTE),  # the maximum event age
        ("2026-12-05T18:50:00Z", MINUTE - 0.5, MINUTE - 0.5),  # a clock behind: never ahead
        # Delivered late by EventBridge, which retries a delivery for up to 24 hours (Lambda's
        # maximum event age counts only its own queue): the minute it was for is over.
        ("2026-12-05T18:50:00Z", MINUTE + 60.5, MINUTE),
        ("2026-12-05T18:50:00Z", MINUTE + 86_400.0, MINUTE),
        # Older than any delivery: no scheduled run's (chalice's sample says 2015).
        ("2026-12-05T18:50:00Z", MINUTE + 86_400.5, MINUTE + 86_400.5),
        ("2015-11-11T21:29:54Z", MINUTE, MINUTE),
        ("2026-12-05T18:50:00", MINUTE + 1, MINUTE + 1),  # no zone: not EventBridge's
        ("soon", MINUTE, MINUTE),
        (None, MINUTE, MINUTE),
        (1796496600, MINUTE, MINUTE),
    ],
)
def test_the_scheduled_time_comes_from_the_event(
    event_time: object, now: float, scheduled: float
) -> None:
    assert scheduled_time(event_time, now=now) == scheduled


@pytest.mark.parametrize(
    ("scheduled_at", "invocation_ends", "deadline"),
    [
        # Probes end before the next scheduled run: a round's writes may follow it.
        (100.0, 100.0 + 90.0, 160.0 + ROUND_WRITE_SECONDS),
        # A late start does not move the minute's end: the scheduled time decides it.
        (100.0, 104.0 + 90.0, 160.0 + ROUND_WRITE_SECONDS),
        # The invocation's own end comes first: Lambda stops it there.
        (100.0, 150.0, 150.0),
    ],
)
def test_rounds_are_budgeted_to_the_next_scheduled_run(
    scheduled_at: float, invocation_ends: float, deadline: float
) -> None:
    assert round_deadline(scheduled_at=scheduled_at, invocation_ends=invocation_ends) == deadline


def test_a_round_starts_only_while_its_probes_end_before_the_next_run() -> None:
    deadline = round_deadline(scheduled_at=0.0, invocation_ends=90.0)
    needs = round_seconds(probes=True, probe_timeout=1.5)
    assert round_fits(starts_at=58.5, deadline=deadline, needs=needs)  # probes end at 60
    assert not round_fits(starts_at=58.6, deadline=deadline, needs=needs)


def test_the_bound_is_the_sum_of_its_terms_and_takes_one_more() -> None:
    """A new source of delay (a prober function's invoke, say) is one more term of the sum."""
    bound = detection_bound(fall=3, interval=2.0, timeout=1.5, rounds=29)
    assert [t.formula for t in bound.terms] == [
        "(FALL + 1) x INTERVAL",
        "TIMEOUT",
        "(60 - ROUNDS x INTERVAL)",
    ]
    assert bound.seconds == 11.5

    longer = replace(bound, terms=(*bound.terms, Term("prober invoke", "INVOKE", 1.5)))

    assert longer.seconds == 13.0
    assert longer.formula.endswith("+ INVOKE + start-up")
    assert "INVOKE [1.5 s]" in longer.describe()


@pytest.mark.parametrize(
    ("variables", "invoke_term"),
    [
        ({"LBF_PROBER_FUNCTION": PROBER_FUNCTION, "LBF_LB_ADDRESS": "private"}, True),
        # The pool is private by default: its path runs beside the LB rounds, no term.
        ({"LBF_PROBER_FUNCTION": PROBER_FUNCTION}, False),
        (
            {
                "LBF_PROBER_FUNCTION": PROBER_FUNCTION,
                "LBF_LB_ADDRESS": "public",
                "LBF_POOL_ADDRESS": "public",
            },
            False,  # nothing private: the prober function is never invoked
        ),
        ({"LBF_LB_ADDRESS": "private"}, False),  # private targets, probed in-process
    ],
)
def test_the_invoke_is_a_term_only_when_the_lbs_go_to_the_prober_function(
    variables: dict[str, str], invoke_term: bool
) -> None:
    bound = settings(variables).detection_bound

    formulas = [term.formula for term in bound.terms]
    assert ("PROBER INVOKE" in formulas) is invoke_term
    # 17.5 s: the SPEC's private figure; 16.5 s probed in-process; 11.5 s with public LBs.
    private = variables.get("LBF_LB_ADDRESS") == "private"
    assert bound.seconds == (17.5 if invoke_term else 16.5 if private else 11.5)
    if invoke_term:
        assert "PROBER INVOKE [1 s]" in bound.describe()


@pytest.mark.parametrize(
    ("scheduled_at", "now", "previous", "last", "starts_at"),
    [
        (0.0, 0.4, -2.0, False, 0.4),  # the first round, late by the run's first reads
        (2.0, 0.5, 0.0, False, 2.0),  # which count as start-up: the next is on its schedule
        (4.0, 4.3, 2.0, False, 4.3),  # the round before overran a little: late, not dropped
        (6.0, 4.5, 4.3, False, 6.3),  # and the next keeps the interval from it
        # The round before (at 6 s) overran to 36.5 s: the rounds due meanwhile are dropped,
        # not made up back to back; the one due at 36 s starts at 36.5 s, the next an interval
        # later.
        (8.0, 36.5, 6.0, False, None),
        (34.0, 36.5, 6.0, False, None),
        (36.0, 36.5, 6.0, False, 36.5),
        (38.0, 36.6, 36.5, False, 38.5),
        (8.0, 36.0, 6.0, True, 36.0),  # the run's last round is never dropped
    ],
)
def test_a_round_starts_an_interval_after_the_one_before(
    scheduled_at: float, now: float, previous: float, last: bool, starts_at: float | None
) -> None:
    assert (
        round_start(scheduled_at=scheduled_at, now=now, previous=previous, interval=2.0, last=last)
        == starts_at
    )
