"""Which notices a round sends and what the notices parameter remembers (core/notices.py)."""

from __future__ import annotations

from chalicelib.core.notices import Failover, parse_notified, plan_notices
from chalicelib.core.plan import Notify, StoreNotices

PARAMETER = "/lbf/demo/notices"


def plan(
    notified: set[str],
    conditions: dict[str, str],
    failovers: list[Failover] | None = None,
    *,
    paused: bool = False,
) -> tuple[tuple[Notify | StoreNotices, ...], frozenset[str]]:
    return plan_notices(
        notified=frozenset(notified),
        conditions=conditions,
        failovers=failovers or [],
        paused=paused,
        subject="lb-failover demo",
        parameter=PARAMETER,
    )


def test_nothing_new_nothing_sent_nothing_written() -> None:
    changes, remembered = plan({"no-eligible-lb"}, {"no-eligible-lb": "no LB"})

    assert changes == ()
    assert remembered == {"no-eligible-lb"}


def test_a_new_condition_is_sent_once_and_remembered() -> None:
    changes, remembered = plan(set(), {"skipped:i-1": "instance i-1 skipped"})

    assert changes == (
        Notify("skipped:i-1", "lb-failover demo", "instance i-1 skipped"),
        StoreNotices(PARAMETER, "skipped:i-1"),
    )
    assert remembered == {"skipped:i-1"}


def test_a_cleared_condition_is_forgotten_without_a_notice() -> None:
    changes, remembered = plan({"skipped:i-1"}, {})

    assert changes == (StoreNotices(PARAMETER, "none"),)
    assert remembered == frozenset()


def test_a_failover_is_an_event_keyed_by_the_move() -> None:
    changes, _ = plan(set(), {}, [Failover("lb1->lb2", "moved off lb1 (unhealthy) to lb2")])

    assert changes == (
        Notify(
            "failover:lb1->lb2",
            "lb-failover demo",
            "active record moved: moved off lb1 (unhealthy) to lb2",
        ),
    )


def test_paused_a_failover_is_a_condition_told_once_and_nothing_is_forgotten() -> None:
    failover = Failover("lb1->lb2", "moved off lb1 (unhealthy) to lb2")

    first, remembered = plan({"skipped:i-1"}, {}, [failover], paused=True)

    assert [c.key for c in first if isinstance(c, Notify)] == ["would-move:lb1->lb2"]
    assert "not moved while paused" in first[0].message  # type: ignore[union-attr]
    # The skipped instance's condition is not current this round, and still kept while paused.
    assert remembered == {"skipped:i-1", "would-move:lb1->lb2"}
    assert first[-1] == StoreNotices(PARAMETER, "skipped:i-1\nwould-move:lb1->lb2")

    # The next paused run plans the same move again (nothing was written): nothing is sent.
    again, _ = plan(set(remembered), {}, [failover], paused=True)
    assert again == ()


def test_parse_notified_reads_the_stored_keys() -> None:
    assert parse_notified(None) == frozenset()
    assert parse_notified("none") == frozenset()
    assert parse_notified("a\nb\n") == {"a", "b"}
