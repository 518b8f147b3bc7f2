"""`make demo` runs in the suite: the whole scenario, judged on outcomes, never on seconds.

Each step waits (with a generous deadline that only stops a hang) for what an operator would
check: the record, the lists HAProxy applied, and real requests through the address clients
resolve the active name to, through the Route 53 stand-in as real clients would.
"""

from __future__ import annotations

import pytest

from standin import demo

pytestmark = pytest.mark.e2e


def test_the_demo_scenario_holds(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.run() == 0
    out = capsys.readouterr().out
    for step in ("start", "failover", "pool", "replace", "healthy"):
        assert f"  {step:<10} OK" in out, step
    assert "all 6 steps held" in out
    # The summary shows the failover against its bound, and the clients' figure as the
    # stand-in's model, not AWS's.
    assert "kill lb1" in out
    assert "resolving the active name through the Route 53" in out
    assert "Route 53 stand-in's model, not AWS's" in out
    assert "FAILED" not in out
    # Both functions at work: the prober function probed the private targets, and saw lb1 die.
    prober_lines = [line for line in out.splitlines() if "  prober fn  " in line]
    assert any("failed: none" in line for line in prober_lines)
    assert any("failed: lb1" in line for line in prober_lines)
    [both] = [line for line in out.splitlines() if line.startswith("both functions at work")]
    rounds, invocations = (int(word) for word in both.split() if word.isdigit())
    assert rounds == invocations > 0
    # The operator's view at the end: both LBs current, the pool with who is in the list.
    status = out.split("what `python -m chalicelib status` shows now:")[1]
    assert status.count("backends current") == 2
    assert status.count("in backend list") == 3
    assert "holds lb.demo.example.com" in status
