"""`make demo` runs in the suite: the whole scenario, judged on outcomes, never on seconds.

Each step waits (with a generous deadline that only stops a hang) for what an operator would
check: the record, the lists HAProxy applied, and real requests through the address clients
resolve the active name to, through the Route 53 stand-in as real clients would.

Where the time goes (about 70 s on an idle machine, 30 s before the data-plane part): the
controller's part takes about 35 s, 8 more than when it read moto's records, waiting for what
clients see (each record change reaches the stand-in's answers after its 2 s propagation, and
clients keep a cached answer for the 5 s TTL); the part with the controller stopped about 30 s:
the second cluster's start (about 6 s), a controller run ending before it stops (up to 5 s),
Route 53's checkers and then a client's TTL (about 6 s), the controller's rounds after it comes
back and the old LB's recovery (about 3 s), and 7 s watched for a failback that must not come.
"""

from __future__ import annotations

import pytest

from standin import demo

pytestmark = pytest.mark.e2e


def test_the_demo_scenario_holds(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.run() == 0
    out = capsys.readouterr().out
    assert "FAILED" not in out
    plain, dataplane = out.split("setup      cluster demo-pair")
    _the_controllers_failover_held(plain)
    _the_failover_without_controller_held(dataplane)
    assert "all 10 steps held" in out


def _the_controllers_failover_held(out: str) -> None:
    for step in ("start", "failover", "pool", "replace", "healthy"):
        assert f"  {step:<10} OK" in out, step
    # The summary shows the failover against its bound, and the clients' figure as the
    # stand-in's model, not AWS's.
    assert "kill lb1" in out
    assert "resolving the active name through the Route 53" in out
    assert "Route 53 stand-in's model, not AWS's" in out
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


def _the_failover_without_controller_held(out: str) -> None:
    """The second cluster, LBF_DNS_FAILOVER=route53: each step checked its outcome with real
    requests through the address clients resolved; here, that every step held and said so."""
    for step in ("pair", "dataplane", "matched", "no return"):
        assert f"  {step:<10} OK" in out, step
    # The data plane alone moved clients: the controller was stopped and moto's records stayed.
    assert "controller STOPPED" in out
    assert "by Route 53's checkers alone" in out
    assert "moto's records unchanged (PRIMARY is still lb1)" in out
    timeline = out.split("failover with the controller stopped")[1]
    for moment in (
        "killed HAProxy of PRIMARY lb1",
        "the stand-in answers SECONDARY lb2",
        "first client request served through lb2",
        "PRIMARY is lb2: the controller matched Route 53",
        "the new pair answered by Route 53's name servers (INSYNC)",
        "Route 53's checkers judge lb1 healthy",
        "SECONDARY is lb1 again: PRIMARY stays lb2",
        "every answer and every request lb2",
    ):
        assert moment in timeline, moment
    assert "Route 53 stand-in's model, not AWS's" in timeline
    # The operator's view at the end: the pair, each check as Route 53 sees it, what it answers.
    status = timeline.split("shows now for this cluster:")[1]
    assert "failover pair PRIMARY: lb2" in status
    assert "failover pair SECONDARY: lb1" in status
    assert status.count("Route 53 sees it healthy") == 2
    assert "Route 53 answers PRIMARY (lb2)" in status
    assert "history not read" not in status
