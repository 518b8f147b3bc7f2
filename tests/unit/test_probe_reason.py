"""The last failed probe's reason, carried in `lbf:probe` (`fail:2 connection refused`).

SPEC: "a failure may carry its reason after a space". `status` shows it as the row's why, so it
is written by the same damping that writes the count, and read back as strictly as the count:
what an operator (or anyone with ec2:CreateTags) put there is shown only if it is plain text.
"""

from __future__ import annotations

import pytest

from chalicelib.core.health import Thresholds, advance, failure_reason, parse_probe_run
from chalicelib.core.model import Damping, ProbeRun, Verdict

THRESHOLDS = Thresholds(rise=2, fall=3)


@pytest.mark.parametrize(
    ("detail", "reason"),
    [
        ("timeout", "timeout"),
        ("connection refused", "connection refused"),
        ("503", "HTTP 503"),  # the prober's detail for an HTTP answer is its bare status code
        ("tls error", "tls error"),
        ("bad url: \x1b[2J\nrm", "bad url: ?[2J?rm"),
        ("x" * 300, "x" * 64),  # an EC2 tag value holds 256 characters; a reason needs few
        ("\u0663\u0660\u0663", "???"),  # digits, but not ASCII ones: not a status code
        ("   ", None),
    ],
)
def test_a_failure_keeps_its_reason_as_plain_text(detail: str, reason: str | None) -> None:
    assert failure_reason(detail) == reason
    run = advance(Damping(), False, THRESHOLDS, detail=detail).run
    assert run == ProbeRun(ok=False, count=1, reason=reason)
    # What is written is read back as it was.
    assert parse_probe_run(run.render()) == run


def test_the_reason_follows_the_last_failure_and_a_success_drops_it() -> None:
    state = advance(Damping(), False, THRESHOLDS, detail="timeout")
    state = advance(state, False, THRESHOLDS, detail="connection refused")
    assert state.run is not None
    assert state.run.render() == "fail:2 connection refused"
    state = advance(state, False, THRESHOLDS, detail="503")
    assert (state.verdict, state.run.render()) == (Verdict.UNHEALTHY, "fail:3 HTTP 503")
    # The count is capped at FALL: a settled failure with the same reason writes nothing more.
    again = advance(state, False, THRESHOLDS, detail="503")
    assert again.run == state.run
    recovered = advance(state, True, THRESHOLDS, detail="200")
    assert recovered.run is not None
    assert recovered.run.render() == "ok:1"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("fail:2 connection refused", ProbeRun(ok=False, count=2, reason="connection refused")),
        ("fail:3 HTTP 503", ProbeRun(ok=False, count=3, reason="HTTP 503")),
        ("fail:1", ProbeRun(ok=False, count=1)),  # as written before reasons were
        ("ok:2 timeout", None),  # a success has no reason
        ("fail:2 ", None),
        ("fail:2  two spaces", None),
        ("fail:2 line\nbreak", None),
        ("fail:2 \x1b[2J", None),
        ("fail:2 " + "x" * 65, None),
        ("fail:2 caf\u00e9", None),
    ],
)
def test_parse_reads_a_reason_only_as_plain_text(value: str, expected: ProbeRun | None) -> None:
    assert parse_probe_run(value) == expected
