"""The detection bound of a configuration, as named terms (SPEC: "Where two rules meet", Time).

`(FALL + 1) x INTERVAL + TIMEOUT + (60 - ROUNDS x INTERVAL)` plus start-up, and, when private
targets go to the prober function, the invoke's own latency. That term is capped by
construction: the invoke client waits the probe timeout plus PROBER_INVOKE_MARGIN and no longer,
so a slower answer does not stretch the round, it voids it (a fault on the prober's side; that
round changes no verdict and the next one decides). The cap is what the bound counts; what the
invoke costs on the stand-in is measured by bench/failover.py.

Pure: settings in, seconds out.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.config import Settings

# The invoke client's read timeout is LBF_PROBE_TIMEOUT plus this (chalicelib/adapters/clients.py).
PROBER_INVOKE_MARGIN = 1.0
SCHEDULE_SECONDS = 60.0  # the scheduled function runs every minute


@dataclass(frozen=True)
class BoundTerm:
    name: str
    seconds: float


def uses_prober_function(settings: Settings) -> bool:
    """Whether any target goes to the prober function: it is set and something is private."""
    private = "private" in (settings.lb_address, settings.pool_address)
    return settings.prober_function is not None and private


def detection_terms(settings: Settings, *, startup_seconds: float = 0.0) -> tuple[BoundTerm, ...]:
    terms = [
        BoundTerm("(FALL + 1) x INTERVAL", (settings.fall + 1) * settings.probe_interval),
        BoundTerm("TIMEOUT", settings.probe_timeout),
        BoundTerm(
            "schedule gap 60 - ROUNDS x INTERVAL",
            max(0.0, SCHEDULE_SECONDS - settings.probe_rounds * settings.probe_interval),
        ),
        BoundTerm("start-up", startup_seconds),
    ]
    if uses_prober_function(settings):
        terms.append(BoundTerm("prober function invoke", PROBER_INVOKE_MARGIN))
    return tuple(terms)


def detection_bound(settings: Settings, *, startup_seconds: float = 0.0) -> float:
    return sum(term.seconds for term in detection_terms(settings, startup_seconds=startup_seconds))
