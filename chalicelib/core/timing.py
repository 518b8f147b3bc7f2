"""The time rules of a run (SPEC "Where two rules meet", Time). Pure: numbers in, numbers out.

- The schedule: a run starts every minute, and its rounds must fit in it; the defaults that do.
- The paths: the LBs are probed every round, the pool every LBF_POOL_INTERVAL beside them.
- The detection bound: how long a dead LB can hold the active record, as a sum of named terms, so
  that a new source of delay becomes one more term.
- The round budget: a round starts only if its probes and its writes fit in the time left.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

# EventBridge's rate(1 minute): the next run is scheduled a minute after this one was.
SCHEDULE_SECONDS = 60.0

# How long EventBridge goes on retrying the delivery of an event to its target, by default (its
# RetryPolicy's MaximumEventAgeInSeconds, 24 hours): no scheduled event arrives later than this.
EVENTBRIDGE_RETRY_SECONDS = 86_400.0

# The last round's probes end by this long after the run's scheduled time (SPEC "Time"): the 2 s
# to the next run absorb the invocation's start, so the default rounds still fit a minute whose
# first round starts a little late.
PROBES_END_BY = 58.0

# LBF_PROBE_INTERVAL's default: LBs probed from inside the VPC (private) go through the prober
# function, whose invoke (PROBER_INVOKE_SECONDS beyond LBF_PROBE_TIMEOUT) must fit one interval.
PUBLIC_LB_INTERVAL = 2.0
PRIVATE_LB_INTERVAL = 3.0
DEFAULT_PROBE_TIMEOUT = 1.5
DEFAULT_POOL_INTERVAL = 10.0

# Float sums of fractional intervals (0.1 x 3) must not lose a round that fits exactly.
_EPSILON = 1e-9

# What a round may spend on its writes once its probes are done: one Route 53 change batch, the
# tags, the two parameters and one push per LB take a fraction of a second each when AWS is well,
# and this leaves room for botocore's first retries. A round that cannot have this much after its
# probes is not started: a change half-way through when the Lambda's time runs out is worse than
# a change the next run makes.
ROUND_WRITE_SECONDS = 8.0

# AWS calls stop this long before the invocation's end, so the run still logs its report and
# publishes its figures when a slow call took the rest.
REPORT_SECONDS = 1.0

STARTUP_TERM = "start-up (cold start, the first reads)"

# With LBF_PROBER_FUNCTION and a private target, a round's private probes are one synchronous
# invoke of the prober function, and the whole invoke, connect included, must end within
# LBF_PROBE_TIMEOUT plus this (`prober_invoke_limit`): the invoke client's timeouts fit inside it
# (chalicelib/adapters/clients.invoke_client) and an answer that comes later anyway is void, a
# fault on the prober's side for that path's round (chalicelib/adapters/probe_function). So this
# cap is what the bound and the round budget count for the invoke; what it costs on the stand-in
# is measured by bench/.
PROBER_INVOKE_SECONDS = 1.0


def prober_invoke_limit(probe_timeout: float) -> float:
    """The longest one invoke of the prober function may take and still count."""
    return probe_timeout + PROBER_INVOKE_SECONDS


def path_seconds(probe_timeout: float, *, invoke: bool) -> float:
    """The longest one probe path takes in a round: its probes' timeout, and through the prober
    function (`invoke`) the invoke's margin beyond it."""
    return probe_timeout + (PROBER_INVOKE_SECONDS if invoke else 0.0)


def rounds_that_fit(*, interval: float, probe_timeout: float, invoke: bool) -> int:
    """The most rounds whose last one's probes end by PROBES_END_BY (0: not even one):
    `(ROUNDS - 1) x INTERVAL + TIMEOUT` (+ the invoke) at most 58 s; 29 at 2 s, 6 at 10 s."""
    room = PROBES_END_BY - path_seconds(probe_timeout, invoke=invoke)
    if room < -_EPSILON:
        return 0
    return math.floor(room / interval + _EPSILON) + 1


def schedule_fits(*, rounds: int, interval: float, probe_timeout: float, invoke: bool) -> bool:
    """Whether `rounds` rounds `interval` apart end their probes before the next run starts."""
    return rounds <= rounds_that_fit(interval=interval, probe_timeout=probe_timeout, invoke=invoke)


def path_fits(*, interval: float, probe_timeout: float, invoke: bool) -> bool:
    """Whether one path's probes end before its next probes start (`interval` later)."""
    return path_seconds(probe_timeout, invoke=invoke) <= interval + _EPSILON


def pool_due(
    *,
    scheduled_at: float,
    starts_at: float,
    pool_probed_at: float | None,
    pool_interval: float,
    pool_seconds: float,
    deadline: float | None,
) -> bool:
    """Whether the round scheduled at `scheduled_at` (and starting at `starts_at`) probes the
    pool as well as the LBs.

    The pool is probed in the first round, then in each round that starts at least
    LBF_POOL_INTERVAL after its last probe (`pool_probed_at`, the scheduled start of that round;
    None before the first). Rounds are counted where the schedule puts them, LBF_PROBE_INTERVAL
    apart start to start: the first round always starts late by the run's first reads, and
    counted from there the pool would skip a round every time (5 probes a minute, not 6). Only
    where its probes (`pool_seconds`) and the round's writes end by the run's `deadline`, as a
    round's must (`round_fits`): a probe the run cannot use is not made.
    """
    if not round_fits(
        starts_at=starts_at, deadline=deadline, needs=pool_seconds + ROUND_WRITE_SECONDS
    ):
        return False
    return pool_probed_at is None or scheduled_at - pool_probed_at >= pool_interval - _EPSILON


def scheduled_time(event_time: object, *, now: float) -> float:
    """When EventBridge scheduled this run (the event's `time`, e.g. "2026-12-05T18:50:00Z"), in
    seconds since the epoch, as the runs' clock counts; `now` when the event carries no time.

    Never later than `now`: a scheduled time ahead of the invocation's own clock is a clock's
    skew, and the run's minute cannot have started after the run did. An older time is the
    run's even past the minute: the function's maximum event age (60 s, the merge template)
    counts only Lambda's own queue, and EventBridge retries a delivery for up to
    EVENTBRIDGE_RETRY_SECONDS, so a run delivered that late has no round left to start rather
    than a whole minute of them beside the runs scheduled since. Only a time older than any
    delivery is no scheduled run's (a hand-made or sample event, chalice's test events
    included): the run is budgeted as if scheduled now.
    """
    if not isinstance(event_time, str):
        return now
    try:
        parsed = datetime.fromisoformat(event_time)
    except ValueError:
        return now
    if parsed.tzinfo is None:
        return now  # EventBridge always says UTC; a time without a zone is not its
    scheduled = parsed.timestamp()
    if scheduled < now - EVENTBRIDGE_RETRY_SECONDS:
        return now
    return min(scheduled, now)


def round_start(
    *, scheduled_at: float, now: float, previous: float, interval: float, last: bool
) -> float | None:
    """When the round scheduled at `scheduled_at` starts, or None: it is dropped.

    On its schedule when the loop is on time; never sooner than LBF_PROBE_INTERVAL after the
    round before started (`previous`), since LBF_RISE/LBF_FALL count probes that far apart. The
    run's first round counts as started at the run's start: its first reads are start-up, and
    shift no round after it.
    A round that overran its interval (slow writes) is not made up by rounds back to back: a
    round that could not start before the next one is due is dropped, unless it is the `last`.
    """
    starts_at = max(now, scheduled_at, previous + interval)
    if not last and starts_at >= scheduled_at + interval - _EPSILON:
        return None
    return starts_at


def round_deadline(*, scheduled_at: float, invocation_ends: float) -> float:
    """The `deadline` a scheduled run's rounds are budgeted to (`round_fits`): a round starts only
    while its probes end before the next scheduled run (a minute after `scheduled_at`, not after
    the invocation's start) and its writes before the invocation ends (Lambda stops it then)."""
    return min(invocation_ends, scheduled_at + SCHEDULE_SECONDS + ROUND_WRITE_SECONDS)


@dataclass(frozen=True)
class Term:
    """One part of the detection bound: what it stands for, its formula, its value."""

    name: str
    formula: str
    seconds: float

    def describe(self) -> str:
        return f"{self.formula} [{self.seconds:g} s]"


@dataclass(frozen=True)
class DetectionBound:
    """The longest a dead LB holds the active role: the sum of the terms, plus start-up."""

    terms: tuple[Term, ...]
    # The settings the terms were computed from, as the operator writes them: "FALL 3".
    inputs: tuple[tuple[str, float], ...] = ()
    plus: str = STARTUP_TERM

    @property
    def seconds(self) -> float:
        return sum(term.seconds for term in self.terms)

    @property
    def formula(self) -> str:
        return " + ".join(term.formula for term in self.terms) + " + start-up"

    def describe(self) -> str:
        """One line for people: the total, each term with its value, and the settings used."""
        terms = " + ".join(term.describe() for term in self.terms)
        inputs = ", ".join(f"{name} {value:g}" for name, value in self.inputs)
        return f"{self.seconds:g} s + start-up = {terms} + start-up ({inputs})"


def detection_bound(
    *, fall: int, interval: float, timeout: float, rounds: int, prober_invoke: bool = False
) -> DetectionBound:
    """`(FALL + 1) x INTERVAL + TIMEOUT + (60 - ROUNDS x INTERVAL)` plus start-up.

    FALL failed rounds turn the LB unhealthy; its death can fall just after a round began (one
    INTERVAL more); the last of those rounds waits its probes' TIMEOUT; and the minute leaves a
    gap of 60 - ROUNDS x INTERVAL between one run's last round and the next run's first. With
    `prober_invoke` (the LBs go to the prober function) the last round may also wait the
    invoke's own time beyond its probes: one more term, PROBER_INVOKE_SECONDS. The pool's path
    is no term: it runs beside the LB rounds and never delays one.
    """
    invoke = (
        (
            Term(
                "the prober function's invoke, beyond its probes' TIMEOUT",
                "PROBER INVOKE",
                PROBER_INVOKE_SECONDS,
            ),
        )
        if prober_invoke
        else ()
    )
    return DetectionBound(
        terms=(
            Term(
                "FALL failed rounds, and a death just after a round's probes",
                "(FALL + 1) x INTERVAL",
                (fall + 1) * interval,
            ),
            Term("the last failed round's probes", "TIMEOUT", timeout),
            Term(
                "the gap between one run's last round and the next run's first",
                "(60 - ROUNDS x INTERVAL)",
                max(0.0, SCHEDULE_SECONDS - rounds * interval),
            ),
            *invoke,
        ),
        inputs=(("FALL", fall), ("INTERVAL", interval), ("TIMEOUT", timeout), ("ROUNDS", rounds)),
    )


def round_seconds(*, probes: bool, probe_timeout: float, prober_invoke: bool = False) -> float:
    """What one round needs before it may start: its probes' timeout and its writes, and with
    `prober_invoke` the invoke's time beyond the probes (the two paths run side by side, so the
    longer one counts: the invoke's)."""
    if not probes:
        return ROUND_WRITE_SECONDS
    return probe_timeout + (PROBER_INVOKE_SECONDS if prober_invoke else 0.0) + ROUND_WRITE_SECONDS


def round_fits(*, starts_at: float, deadline: float | None, needs: float) -> bool:
    """Whether a round starting at `starts_at` finishes by the invocation's `deadline`."""
    return deadline is None or starts_at + needs <= deadline
