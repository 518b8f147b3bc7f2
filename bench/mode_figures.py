"""The pure side of `python -m bench --only failover-modes`: what a kill recorded, and what is
printed and drawn from it (bench/failover_modes.py runs the stand).

Each mode is measured three times per kill, each from the kill: to detection, to the answer
clients get changing, and to the first client request that succeeds. Every series is shown as
median, p95 and worst, each with its ratio to the time it is held against: the detection bound
that `status` prints for the controller's modes, Route 53's check time in the stand-in's model
when no controller runs. A figure measured through the Route 53 stand-in says so, with the
model's time factor and propagation delay: it is the stand-in's model of Route 53, not AWS's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bench.report import Figure
from bench.stats import median, percentile, ratio
from bench.timeline import CHANGE, CLIENTS, PROBES, VERDICT, Mark

# A timeline starts this long before the kill (the last good probes and requests show) and ends
# this long after the first successful request.
LEAD_SECONDS = 3.0
TAIL_SECONDS = 1.0


@dataclass(frozen=True)
class Mode:
    key: str
    title: str
    controller: bool  # whether the controller runs during the kills
    route53_answers: bool  # whether clients resolve through the Route 53 stand-in
    detection: str  # what "detection" means in this mode
    answer: str  # what "the answer changed" means
    change: str  # the label of the controller's change on the timeline


MODES = (
    Mode(
        "dns",
        "plain DNS",
        controller=True,
        route53_answers=True,
        detection="the executor's change batch moving the active record returned",
        answer="the stand-in's DNS answer for the active name changed to the other LB",
        change="record",
    ),
    Mode(
        "route53",
        "route53, controller running",
        controller=True,
        route53_answers=True,
        detection="the executor's batch making the other LB PRIMARY returned",
        answer="the stand-in's DNS answer for the failover pair changed to the other LB",
        change="PRIMARY",
    ),
    Mode(
        "route53-stopped",
        "route53, controller stopped",
        controller=False,
        route53_answers=True,
        detection="the stand-in's checkers judged the killed LB's health check unhealthy",
        answer="the stand-in's DNS answer for the failover pair changed to the other LB",
        change="",
    ),
    Mode(
        "eip",
        "Elastic IP",
        controller=True,
        route53_answers=False,
        detection="the executor's AssociateAddress moving the Elastic IP returned",
        answer="the Elastic IP's holder (DescribeAddresses) changed to the other LB",
        change="Elastic IP",
    ),
)
MODE_KEYS = tuple(mode.key for mode in MODES)


def mode_named(key: str) -> Mode:
    for mode in MODES:
        if mode.key == key:
            return mode
    raise ValueError(f"no mode {key!r}; modes are {MODE_KEYS}")


@dataclass(frozen=True)
class Model:
    """The Route 53 stand-in's parameters, and the settings the client figures depend on."""

    time_factor: float  # the checkers' request intervals are multiplied by this
    propagation: float  # seconds before a record change reaches the answers
    ttl: int  # LBF_TTL: how long the client keeps an answer
    route53_interval: int  # LBF_ROUTE53_INTERVAL
    fall: int  # LBF_FALL: the checks' failure threshold

    @property
    def route53_seconds(self) -> float:
        """Route 53's own detection time: LBF_ROUTE53_INTERVAL x LBF_FALL (SPEC)."""
        return float(self.route53_interval * self.fall)

    @property
    def model_seconds(self) -> float:
        """That time in the stand-in's model (its checks run `time_factor` times as often)."""
        return self.route53_seconds * self.time_factor

    def label(self) -> str:
        return (
            "the Route 53 stand-in's model, not AWS's: health checks every "
            f"{self.route53_interval * self.time_factor:g} s for LBF_ROUTE53_INTERVAL "
            f"{self.route53_interval} (time factor {self.time_factor:g}), propagation "
            f"{self.propagation:g} s"
        )


@dataclass(frozen=True)
class Kill:
    """One kill of the LB clients were using, and the three times measured from it (None: did
    not happen within the deadline)."""

    mode: str
    number: int
    lb: str
    waited: float  # the random wait before the kill
    phase: float | None  # seconds into the controller's minute at the kill (None: stopped)
    detection: float | None
    answer: float | None
    served: float | None


@dataclass(frozen=True)
class Reference:
    """What a series is held against: a name for people and its seconds."""

    name: str
    seconds: float


def references(mode: Mode, *, bound: float, model: Model) -> tuple[Reference, Reference, Reference]:
    """The reference of each series (detection, answer, client) of one mode.

    The answer adds the propagation delay where the controller changes a record; the client adds
    the TTL it may keep the old answer for. With the controller stopped, Route 53's check time in the
    model replaces the bound.
    """
    if mode.controller:
        first = Reference(f"the bound `status` prints, {bound:g} s", bound)
    else:
        first = Reference(
            f"Route 53's check time in the model, {model.model_seconds:g} s "
            f"(LBF_ROUTE53_INTERVAL x LBF_FALL = {model.route53_seconds:g} s x "
            f"{model.time_factor:g})",
            model.model_seconds,
        )
    if not mode.route53_answers:
        return first, first, first
    # Without the controller no record changes: the answer follows the checks at once.
    answer = (
        Reference(
            f"{first.seconds:g} s + propagation {model.propagation:g} s",
            first.seconds + model.propagation,
        )
        if mode.controller
        else first
    )
    client = Reference(f"{answer.seconds:g} s + TTL {model.ttl} s", answer.seconds + model.ttl)
    return first, answer, client


def spread(values: Sequence[float], reference: Reference) -> str:
    """`median 6.1 s (0.53 x), p95 ..., worst ...`: each figure with its ratio to the reference."""

    def shown(value: float) -> str:
        return f"{value:.2f} s ({ratio(value, reference.seconds):.2f} x)"

    return (
        f"median {shown(median(values))}, p95 {shown(percentile(values, 95))}, "
        f"worst {shown(max(values))}"
    )


SERIES = ("kill -> detection", "kill -> answer changed", "kill -> first client request")


def mode_figures(
    mode: Mode, kills: Sequence[Kill], *, planned: int, bound: float, model: Model
) -> list[Figure]:
    """The figures of one mode: how many kills it measured, then each series against its
    reference. Detection is held to the bound where the controller detects."""
    figures = [
        Figure(
            f"{mode.title}: kills measured",
            f"{sum(k.served is not None for k in kills)} of {planned} served again",
            target=f"all {planned}",
            met=len(kills) == planned and all(k.served is not None for k in kills),
            note=f"{planned - len(kills)} not attempted (the stand did not recover)"
            if len(kills) < planned
            else "",
        )
    ]
    refs = references(mode, bound=bound, model=model)
    measured = ([k.detection for k in kills], [k.answer for k in kills], [k.served for k in kills])
    for index, (series, values, reference) in enumerate(zip(SERIES, measured, refs, strict=True)):
        found = [v for v in values if v is not None]
        if not found:
            continue
        through_model = mode.route53_answers and (index > 0 or not mode.controller)
        held = index == 0 and mode.controller
        figures.append(
            Figure(
                f"{mode.title}: {series}" + (" (stand-in's model)" if through_model else ""),
                spread(found, reference) + f"; {len(found)} of {len(kills)}",
                target=f"worst <= {reference.seconds:g} s" if held else "",
                met=max(found) <= reference.seconds if held else None,
                note="; ".join(
                    part
                    for part in (
                        f"ratios to {reference.name}",
                        model.label() if through_model else "",
                    )
                    if part
                ),
            )
        )
    return figures


def with_defaults_note(model: Model, *, default_ttl: int = 60) -> str:
    """What the client figures would be with LBF_TTL and Route 53 at their defaults."""
    return (
        f"With the default LBF_TTL {default_ttl} instead of {model.ttl}, a client that cached "
        f"the old answer just before it changed keeps it up to {default_ttl - model.ttl} s "
        "longer: the client figures of the DNS modes grow by the TTL's residue (up to "
        f"{default_ttl} s after the answer changed, {default_ttl / 2:g} s on average). Route 53 "
        f"reports a change in sync within about 60 s, not {model.propagation:g} s: the answer "
        "and client figures of the controller's DNS modes grow by the difference. With the "
        f"controller stopped, Route 53's checks take {model.route53_seconds:g} s "
        f"(LBF_ROUTE53_INTERVAL {model.route53_interval} x LBF_FALL {model.fall}) where the "
        f"model takes {model.model_seconds:g} s: that mode's figures scale by "
        f"{1 / model.time_factor:g} for detection, and its answer follows the checks at once "
        "(the records do not change, so no propagation)."
    )


# --- what the executor applied, read from its log lines ------------------------------------------


@dataclass(frozen=True)
class Applied:
    """One change the executor applied that the benchmark times: a move of the active role (to
    an address, or the Elastic IP to an instance id) or an LB's verdict written to its tags."""

    kind: str  # "move" or "verdict"
    target: str  # the address or instance id moved to; the instance id of a verdict
    value: str = ""  # a verdict's value: healthy, unhealthy


_ELASTIC_IP = re.compile(r"move Elastic IP \S+ to \S+ (i-[0-9a-f]+)")
_HEALTH = re.compile(r"lbf:health=(\w+)")


def parse_applied(message: str, active_name: str) -> Applied | None:
    """The move or verdict in one of the executor's `applied: ...` lines, None for any other.

    A record batch moves the active role when it creates the active name's plain record or its
    PRIMARY; a SECONDARY created in the same batch moves nothing.
    """
    if message.startswith("applied: records"):
        created = re.compile(
            rf"(?:CREATE|UPSERT) {re.escape(active_name)} A ([0-9.]+)(?: (PRIMARY|SECONDARY))?"
        )
        for match in created.finditer(message):
            if match[2] != "SECONDARY":
                return Applied("move", match[1])
        return None
    if message.startswith("applied: move Elastic IP"):
        found = _ELASTIC_IP.search(message)
        return None if found is None else Applied("move", found[1])
    if message.startswith("applied: tag "):
        health = _HEALTH.search(message)
        if health is None:
            return None
        instances = message.removeprefix("applied: tag ").split(":", 1)[0].split()
        return Applied("verdict", " ".join(instances), health[1])
    return None


# --- one kill's timeline ------------------------------------------------------------------------


@dataclass(frozen=True)
class Trace:
    """What happened around one kill, in monotonic seconds: the killed LB's probes (the
    controller's, or the stand-in's checkers' with the controller stopped), its verdict, the
    controller's change, the answer's change, and the client's requests."""

    mode: str
    killed_at: float
    lb: str  # the killed LB's name
    to: str  # the LB clients moved to
    probes: tuple[tuple[float, bool], ...]
    verdict: float | None
    change: float | None
    answer: float | None
    requests: tuple[tuple[float, bool], ...]


def marks_from(trace: Trace) -> list[Mark]:
    """The timeline's marks, in seconds after the kill, from LEAD_SECONDS before it to
    TAIL_SECONDS after the first successful request since it (or the last thing recorded)."""
    mode = mode_named(trace.mode)
    killed = trace.killed_at
    served = next((at for at, ok in trace.requests if ok and at > killed), None)
    events = [at for at in (trace.verdict, trace.change, trace.answer, served) if at is not None]
    end = max(events, default=killed) + TAIL_SECONDS
    start = killed - LEAD_SECONDS

    def inside(at: float) -> bool:
        return start <= at <= end

    marks = [Mark(at - killed, PROBES, ok=ok) for at, ok in trace.probes if inside(at)]
    if trace.verdict is not None:
        who = "the controller" if mode.controller else "Route 53's checkers"
        marks.append(Mark(trace.verdict - killed, VERDICT, label=f"{who}: {trace.lb} unhealthy"))
    if trace.change is not None and mode.change:
        marks.append(Mark(trace.change - killed, CHANGE, label=f"{mode.change} -> {trace.to}"))
    if trace.answer is not None:
        what = "holder" if not mode.route53_answers else "answer"
        marks.append(Mark(trace.answer - killed, CHANGE, label=f"{what} -> {trace.to}"))
    marks += [Mark(at - killed, CLIENTS, ok=ok) for at, ok in trace.requests if inside(at)]
    return marks


def representative(kills: Sequence[Kill]) -> Kill | None:
    """The kill whose client time is the median (the lower middle of an even count): the one
    drawn, so the picture shows a typical failover rather than the luckiest."""
    served = sorted((k for k in kills if k.served is not None), key=lambda k: k.served or 0.0)
    if not served:
        return None
    return served[(len(served) - 1) // 2]
