"""Rise/fall damping: a verdict changes only after RISE (or FALL) equal probe results in a row.

SPEC: `lbf:health` is the verdict after damping (no tag: `unknown`); `lbf:probe` is `ok:N` /
`fail:N`, the current run of equal results, so damping carries across invocations. It is written
only when it changes, so once a verdict is settled the tag must stop changing.
"""

from __future__ import annotations

import pytest

from chalicelib.core.health import (
    Thresholds,
    advance,
    down_at_once,
    parse_probe_run,
    parse_verdict,
)
from chalicelib.core.model import Damping, ProbeRun, Verdict
from tests.kit.world import FALL, RISE, damping

DEFAULT = Thresholds(rise=RISE, fall=FALL)  # 2 / 3, the SPEC's defaults


def probes(start: Damping, results: str, thresholds: Thresholds = DEFAULT) -> Damping:
    """Fold a row of results into `start`: `+` is a good probe, `-` a failed one."""
    for result in results:
        start = advance(start, result == "+", thresholds)
    return start


def shown(state: Damping) -> tuple[str, str | None]:
    """What an operator reads on the instance: lbf:health and lbf:probe."""
    return state.verdict.value, state.run.render() if state.run is not None else None


@pytest.mark.parametrize(
    ("start", "results", "expected"),
    [
        pytest.param(damping("unknown"), "+", ("unknown", "ok:1"), id="unknown-one-ok-is-not-enough"),
        pytest.param(damping("unknown"), "++", ("healthy", "ok:2"), id="unknown-healthy-after-RISE-oks"),
        pytest.param(damping("unknown"), "--", ("unknown", "fail:2"), id="unknown-two-fails-not-enough"),
        pytest.param(damping("unknown"), "---", ("unhealthy", "fail:3"), id="unknown-unhealthy-after-FALL-fails"),
        pytest.param(damping("healthy"), "-", ("healthy", "fail:1"), id="healthy-survives-one-fail"),
        pytest.param(damping("healthy"), "--", ("healthy", "fail:2"), id="healthy-survives-FALL-minus-one"),
        pytest.param(damping("healthy"), "---", ("unhealthy", "fail:3"), id="healthy-falls-after-FALL-fails"),
        pytest.param(damping("unhealthy"), "+", ("unhealthy", "ok:1"), id="unhealthy-one-ok-is-not-enough"),
        pytest.param(damping("unhealthy"), "++", ("healthy", "ok:2"), id="unhealthy-rises-after-RISE-oks"),
        pytest.param(damping("healthy"), "--+", ("healthy", "ok:1"), id="flap-resets-the-fail-run"),
        pytest.param(damping("healthy"), "--+--", ("healthy", "fail:2"), id="flapping-never-falls"),
        pytest.param(damping("unhealthy"), "+-+-+", ("unhealthy", "ok:1"), id="flapping-never-rises"),
        pytest.param(damping("healthy"), "--+---", ("unhealthy", "fail:3"), id="fresh-run-after-flap-falls"),
        pytest.param(damping("healthy"), "++++++", ("healthy", "ok:2"), id="ok-count-capped-at-RISE"),
        pytest.param(damping("unhealthy"), "------", ("unhealthy", "fail:3"), id="fail-count-capped-at-FALL"),
        pytest.param(damping("unknown", "ok:1"), "+", ("healthy", "ok:2"), id="run-carried-across-invocations"),
        pytest.param(damping("unknown", "fail:2"), "-", ("unhealthy", "fail:3"), id="fail-run-carried-across-invocations"),
        pytest.param(damping("healthy", "fail:2"), "+", ("healthy", "ok:1"), id="carried-fail-run-broken-by-ok"),
        pytest.param(damping("healthy", None), "-", ("healthy", "fail:1"), id="no-probe-tag-counts-afresh"),
        pytest.param(damping("unhealthy", "ok:1"), "", ("unhealthy", "ok:1"), id="no-probe-no-change"),
    ],
)  # fmt: skip
def test_damping_with_the_default_rise_and_fall(
    start: Damping, results: str, expected: tuple[str, str | None]
) -> None:
    assert shown(probes(start, results)) == expected


@pytest.mark.parametrize(
    ("rise", "fall", "start", "results", "expected"),
    [
        pytest.param(1, 1, damping("unknown"), "+", ("healthy", "ok:1"), id="rise-1-one-ok-is-enough"),
        pytest.param(1, 1, damping("healthy", "ok:1"), "-", ("unhealthy", "fail:1"), id="fall-1-one-fail-is-enough"),
        pytest.param(5, 2, damping("unhealthy", "fail:2"), "++++", ("unhealthy", "ok:4"), id="rise-5-four-oks-not-enough"),
        pytest.param(5, 2, damping("unhealthy", "fail:2"), "+++++", ("healthy", "ok:5"), id="rise-5-five-oks"),
        pytest.param(2, 10, damping("healthy", "ok:2"), "-" * 9, ("healthy", "fail:9"), id="fall-10-nine-fails-not-enough"),
        pytest.param(2, 10, damping("healthy", "ok:2"), "-" * 12, ("unhealthy", "fail:10"), id="fall-10-capped-at-10"),
    ],
)  # fmt: skip
def test_damping_follows_the_configured_rise_and_fall(
    rise: int, fall: int, start: Damping, results: str, expected: tuple[str, str | None]
) -> None:
    assert shown(probes(start, results, Thresholds(rise=rise, fall=fall))) == expected


@pytest.mark.parametrize(
    ("verdict", "result"),
    [
        pytest.param("healthy", "+", id="healthy-and-passing"),
        pytest.param("unhealthy", "-", id="unhealthy-and-failing"),
    ],
)
def test_a_settled_verdict_stops_changing_its_tags(verdict: str, result: str) -> None:
    """A steady world writes no tag: the settled state is a fixed point of one more probe."""
    settled = damping(verdict)
    assert probes(settled, result * 5) == settled


def test_a_stored_count_above_the_threshold_is_capped_back() -> None:
    # A hand-edited `ok:50` must not keep a tag churning: the next write is the capped count.
    assert shown(probes(damping("healthy", "ok:50"), "+")) == ("healthy", "ok:2")


def test_down_at_once_is_unhealthy_without_rounds() -> None:
    # Whatever the instance's counts were: down_at_once does not take them.
    down = down_at_once(DEFAULT)
    assert shown(down) == ("unhealthy", "fail:3")
    # Coming back takes the full RISE: one good probe after a restart is not enough.
    assert shown(probes(down, "+")) == ("unhealthy", "ok:1")
    assert shown(probes(down, "++")) == ("healthy", "ok:2")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("ok:1", ProbeRun(ok=True, count=1), id="ok-1"),
        pytest.param("fail:3", ProbeRun(ok=False, count=3), id="fail-3"),
        pytest.param("ok:999", ProbeRun(ok=True, count=999), id="three-digits"),
        pytest.param(None, None, id="no-tag"),
        pytest.param("", None, id="empty"),
        pytest.param("ok:0", None, id="zero-count"),
        pytest.param("ok:-1", None, id="negative"),
        pytest.param("ok:\u00b2", None, id="superscript-digit"),
        pytest.param("ok:\u0663", None, id="arabic-indic-digit"),
        pytest.param("ok:\uff13", None, id="full-width-digit"),
        pytest.param("fail:99999", None, id="absurd-count"),
        pytest.param("ok:2\n", None, id="trailing-newline"),
        pytest.param(" ok:2", None, id="leading-space"),
        pytest.param("OK:2", None, id="upper-case"),
        pytest.param("ok:", None, id="no-count"),
        pytest.param("ok", None, id="no-colon"),
        pytest.param("ok:1:2", None, id="two-counts"),
        pytest.param("healthy", None, id="a-health-value"),
        pytest.param("ok:2;rm -rf /", None, id="shell-characters"),
    ],
)
def test_parse_probe_run_reads_garbage_as_absent(
    value: str | None, expected: ProbeRun | None
) -> None:
    assert parse_probe_run(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("healthy", Verdict.HEALTHY, id="healthy"),
        pytest.param("unhealthy", Verdict.UNHEALTHY, id="unhealthy"),
        pytest.param(None, Verdict.UNKNOWN, id="no-tag-is-unknown"),
        pytest.param("", Verdict.UNKNOWN, id="empty"),
        pytest.param("unknown", Verdict.UNKNOWN, id="unknown-spelled-out"),
        pytest.param("healthy\n", Verdict.UNKNOWN, id="trailing-newline"),
        pytest.param(" healthy", Verdict.UNKNOWN, id="leading-space"),
        pytest.param("Healthy", Verdict.UNKNOWN, id="capitalised"),
        pytest.param("HEALTHY", Verdict.UNKNOWN, id="upper-case"),
        pytest.param("ok:2", Verdict.UNKNOWN, id="a-probe-value"),
    ],
)
def test_parse_health_reads_anything_but_the_two_values_as_unknown(
    value: str | None, expected: Verdict
) -> None:
    assert parse_verdict(value) is expected
