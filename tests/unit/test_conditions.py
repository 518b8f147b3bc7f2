"""The conditions a round adds to its plan's own, and what counts as notified already.

Table tests of core/conditions.py. A condition's key decides whether its notice is new
(core/notices.py sends a key once until it clears), so each row pins the exact keys.
"""

from __future__ import annotations

import pytest

from chalicelib.core import notices
from chalicelib.core.changes import PushBackends, PutBackendList, SetTags
from chalicelib.core.conditions import (
    ROUTE53_REJECTED,
    by_message,
    failed_actions,
    failovers_to_notify,
    notified_after_reread,
    rejected_records,
    unregistered_agents,
)
from chalicelib.core.failover import Failover
from chalicelib.core.outcome import Outcome

PUSH = PushBackends("i-lb1", "lb1", "10.0.0.1:80 10.0.0.2:80", "c" * 64)
TAGS = SetTags(("i-lb1",), (("lbf:state", "standby"),), after_records=True)
LONG = PutBackendList("/lbf/prod/backends", "x" * 300)


@pytest.mark.parametrize(
    ("outcomes", "expected"),
    [
        ([], {}),
        ([Outcome(PUSH, ok=True)], {}),
        (
            [Outcome(PUSH, ok=False, error="throttled")],
            {
                f"failed:{PUSH.describe()}": (
                    f"action failed, retried next round or run: {PUSH.describe()}: throttled"
                )
            },
        ),
        # Left out because the move failed: the move's failure is the condition, not this.
        ([Outcome(TAGS, ok=False, skipped=True)], {}),
        # A stale change that stayed stale is a failed action too.
        (
            [Outcome(TAGS, ok=False, rejected=True, error="changed")],
            {
                f"failed:{TAGS.describe()}": (
                    f"action failed, retried next round or run: {TAGS.describe()}: changed"
                )
            },
        ),
        # The key keeps the first 120 characters of the description; the text has it all.
        (
            [Outcome(LONG, ok=False, error="e")],
            {
                f"failed:{LONG.describe()[:120]}": (
                    f"action failed, retried next round or run: {LONG.describe()}: e"
                )
            },
        ),
    ],
    ids=["none", "ok", "failed", "skipped", "stale", "long-key"],
)
def test_failed_actions(outcomes: list[Outcome], expected: dict[str, str]) -> None:
    assert failed_actions(outcomes) == expected


@pytest.mark.parametrize(
    ("unregistered", "expected"),
    [
        ({}, {}),
        # Still booting: not news.
        ({"i-lb1": ""}, {}),
        ({"i-lb1": "agent unknown"}, {"push-unregistered:i-lb1": "agent unknown"}),
        (
            {"i-lb1": "", "i-lb2": "agent unknown", "i-lb3": "also"},
            {"push-unregistered:i-lb2": "agent unknown", "push-unregistered:i-lb3": "also"},
        ),
    ],
    ids=["none", "booting", "news", "mixed"],
)
def test_unregistered_agents(unregistered: dict[str, str], expected: dict[str, str]) -> None:
    assert unregistered_agents(unregistered) == expected


@pytest.mark.parametrize(
    ("rejected", "expected"),
    [
        ({}, {}),
        ({"lb.example.com": "[CNAME exists]"}, {"lb.example.com": "[CNAME exists]"}),
        (
            {"lb2.x.org": "[not in zone]", "lb1.x.org": "[not in zone]"},
            {"lb1.x.org,lb2.x.org": "[not in zone]"},
        ),
        (
            {"lb.example.com": "[CNAME]", "lb1.x.org": "[zone]", "lb2.x.org": "[zone]"},
            {"lb.example.com": "[CNAME]", "lb1.x.org,lb2.x.org": "[zone]"},
        ),
    ],
    ids=["none", "one", "one-message-sorted", "two-messages"],
)
def test_by_message(rejected: dict[str, str], expected: dict[str, str]) -> None:
    assert by_message(rejected) == expected


@pytest.mark.parametrize(
    ("rejected", "expected"),
    [
        ({}, {}),
        (
            {"lb.example.com": "[CNAME exists]"},
            {
                ROUTE53_REJECTED: "Route 53 rejects changes to lb.example.com ([CNAME exists]); "
                "the runs go on without them and try again each run"
            },
        ),
        # One condition however many names: one notice.
        (
            {"lb.example.com": "[CNAME]", "lb1.x.org": "[zone]", "lb2.x.org": "[zone]"},
            {
                ROUTE53_REJECTED: "Route 53 rejects changes to lb.example.com ([CNAME]), "
                "lb1.x.org,lb2.x.org ([zone]); the runs go on without them and try again each run"
            },
        ),
    ],
    ids=["none", "one", "several"],
)
def test_rejected_records(rejected: dict[str, str], expected: dict[str, str]) -> None:
    assert rejected_records(rejected) == expected


def failover(round: int, move: str = "", moved_from: str | None = "lb1") -> Failover:
    return Failover(moved_from, "lb2", f"reason {round}", round=round, seconds=1.0, move=move)


@pytest.mark.parametrize(
    ("failovers", "round", "expected"),
    [
        ([], 1, []),
        # Only this round's: an earlier round's failover was notified in its round.
        ([failover(1, "failover:a->b")], 2, []),
        (
            [failover(2, "failover:a->b")],
            2,
            [notices.ReportedMove("a->b", "reason 2", key="failover:a->b")],
        ),
        # Without a move key (none known): named by the LBs.
        ([failover(1)], 1, [notices.ReportedMove("lb1->lb2", "reason 1", key="")]),
        ([failover(1, moved_from=None)], 1, [notices.ReportedMove("->lb2", "reason 1", key="")]),
        (
            [
                failover(1, "failover:x->y"),
                failover(2, "failover:a->b"),
                failover(2, "failover:b->a"),
            ],
            2,
            [
                notices.ReportedMove("a->b", "reason 2", key="failover:a->b"),
                notices.ReportedMove("b->a", "reason 2", key="failover:b->a"),
            ],
        ),
    ],
    ids=["none", "earlier-round", "this-round", "no-key", "from-nowhere", "two-in-round"],
)
def test_failovers_to_notify(
    failovers: list[Failover], round: int, expected: list[notices.ReportedMove]
) -> None:
    assert failovers_to_notify(failovers, round=round) == expected


@pytest.mark.parametrize(
    ("remembered", "stored", "expected"),
    [
        # The parameter holds what this run read: its plan stands.
        (frozenset(), None, None),
        (frozenset(), "none", None),
        (frozenset({"a"}), "a", None),
        # An overlapping run notified "b" since: notified, and the parameter holds what it stored.
        (frozenset({"a"}), "a\nb", (frozenset({"a", "b"}), frozenset({"a", "b"}))),
        (frozenset({"a"}), "b", (frozenset({"a", "b"}), frozenset({"b"}))),
        # It cleared "a" since: what this run remembers still counts as notified (never sent twice).
        (frozenset({"a"}), "none", (frozenset({"a"}), frozenset())),
    ],
    ids=[
        "nothing",
        "none-stored",
        "same",
        "other-notified-more",
        "other-replaced",
        "other-cleared",
    ],
)
def test_notified_after_reread(
    remembered: frozenset[str],
    stored: str | None,
    expected: tuple[frozenset[str], frozenset[str]] | None,
) -> None:
    assert notified_after_reread(remembered, stored) == expected
