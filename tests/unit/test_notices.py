"""Which notices a round sends and what the notices parameter remembers (core/notices.py).

The policy as a table (conditions, stored keys and moves in; messages and keys out), then the same
decision as Plan changes for the executor, paused included.
"""

from __future__ import annotations

import pytest

from chalicelib.core.changes import Notify, StoreNotices
from chalicelib.core.notices import (
    MAX_PER_KIND,
    MESSAGE_LIMIT,
    STORED_LIMIT,
    Move,
    ReportedMove,
    decide_notices,
    move_key,
    parse_stored,
    plan_notices,
)


def skipped(count: int, start: int = 0) -> dict[str, str]:
    return {
        f"skipped:i-{n:017x}": f"instance i-{n:017x} skipped: lbf:port 'x' is not a port"
        for n in range(start, start + count)
    }


MOVE = Move(move_key(["10.0.0.1"], ["10.0.0.2"]), "active record moved: off lb1 to lb2")
BACK = Move(move_key(["10.0.0.2"], ["10.0.0.1"]), "active record moved: off lb2 to lb1")

CASES = [
    # (name, conditions, stored, moves, messages sent, keys stored)
    ("nothing", {}, set(), [], [], set()),
    ("a new condition", {"no-eligible-lb": "no LB"}, set(), [], ["no LB"], {"no-eligible-lb"}),
    (
        "already notified",
        {"no-eligible-lb": "no LB"},
        {"no-eligible-lb"},
        [],
        [],
        {"no-eligible-lb"},
    ),
    ("cleared: forgotten", {}, {"no-eligible-lb"}, [], [], set()),
    ("a move", {}, set(), [MOVE], [MOVE.text], {MOVE.key}),
    ("a move another run notified", {}, {MOVE.key}, [MOVE], [], {MOVE.key}),
    ("the last move is remembered", {}, {MOVE.key}, [], [], {MOVE.key}),
    ("a move back is news", {}, {MOVE.key}, [BACK], [BACK.text], {BACK.key}),
    ("and forth again too", {}, {BACK.key}, [MOVE], [MOVE.text], {MOVE.key}),
    (
        "a move and a condition",
        {"no-eligible-lb": "no LB"},
        {MOVE.key},
        [],
        ["no LB"],
        {MOVE.key, "no-eligible-lb"},
    ),
    (
        "a few skipped, one new",
        skipped(3),
        set(skipped(2)),
        [],
        [skipped(3)["skipped:i-00000000000000002"]],
        set(skipped(3)),
    ),
]


@pytest.mark.parametrize(
    ("conditions", "stored", "moves", "messages", "keys"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_notice_policy(
    conditions: dict[str, str],
    stored: set[str],
    moves: list[Move],
    messages: list[str],
    keys: set[str],
) -> None:
    decision = decide_notices(conditions, frozenset(stored), moves)
    assert list(decision.messages) == messages
    assert decision.keys == keys


def test_a_flood_is_one_summary_stored_as_its_kind() -> None:
    flood = skipped(300)
    decision = decide_notices(flood | {"no-eligible-lb": "no LB"}, frozenset())
    assert decision.keys == {"skipped:*", "no-eligible-lb"}
    assert len(decision.messages) == 2
    summary = next(m for m in decision.messages if m.startswith("300 conditions"))
    assert "300 new" in summary
    assert "i-00000000000000000" in summary
    # The next run, with the same flood or one more instance in it, says nothing again.
    for later in (flood, skipped(301)):
        again = decide_notices(later | {"no-eligible-lb": "no LB"}, decision.keys)
        assert again.messages == ()
        assert again.keys == decision.keys


def test_a_flood_that_shrinks_is_not_notified_member_by_member() -> None:
    stored = decide_notices(skipped(300), frozenset()).keys
    fewer = decide_notices(skipped(5), stored)
    assert fewer.messages == ()
    assert fewer.keys == set(skipped(5))


def test_a_kind_just_over_the_bound_is_summarised_only_for_its_new_members() -> None:
    stored = frozenset(skipped(MAX_PER_KIND))
    grown = decide_notices(skipped(MAX_PER_KIND + 1), stored)
    assert grown.keys == {"skipped:*"}
    assert len(grown.messages) == 1
    assert "(1 new;" in grown.messages[0]


def test_long_keys_of_many_kinds_still_fit_a_standard_parameter() -> None:
    conditions = {
        f"failed:{kind} {'x' * 110} {n}": f"action failed: {'y' * 5000}"
        for kind in ("tag", "push", "parameter")
        for n in range(MAX_PER_KIND)
    } | skipped(MAX_PER_KIND)
    decision = decide_notices(conditions, frozenset(), [MOVE])
    assert len(decision.text) <= STORED_LIMIT
    assert all(len(m) <= MESSAGE_LIMIT for m in decision.messages)
    assert MOVE.key in decision.keys
    again = decide_notices(conditions, decision.keys, [])
    assert again.messages == ()
    assert again.keys == decision.keys


def test_stored_text_round_trips() -> None:
    decision = decide_notices(skipped(2) | {"a\nb": "newline in a key"}, frozenset())
    assert parse_stored(decision.text) == decision.keys
    assert "a b" in decision.keys
    assert parse_stored("none") == frozenset()
    assert decide_notices({}, frozenset()).text == "none"


def test_a_move_key_is_the_same_for_the_same_move_and_short() -> None:
    assert move_key(["10.0.0.2", "10.0.0.1"], ["10.0.0.3"]) == move_key(
        ["10.0.0.1", "10.0.0.2"], ["10.0.0.3"]
    )
    many = [f"10.0.{n}.{m}" for n in range(10) for m in range(10)]
    assert len(move_key(many, many[:50])) < 100


PARAMETER = "/lbf/demo/notices"


def plan(
    notified: set[str],
    conditions: dict[str, str],
    failovers: list[ReportedMove] | None = None,
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


def test_a_failover_is_an_event_keyed_by_the_move_and_remembered() -> None:
    changes, remembered = plan(
        set(), {}, [ReportedMove("lb1->lb2", "moved off lb1 (unhealthy) to lb2")]
    )

    # The move is remembered until the next one, so that an overlapping run that made or
    # recognised the same move does not send it again.
    assert changes == (
        Notify(
            "failover:lb1->lb2",
            "lb-failover demo",
            "active record moved: moved off lb1 (unhealthy) to lb2",
        ),
        StoreNotices(PARAMETER, "failover:lb1->lb2"),
    )
    assert plan(set(remembered), {}, [ReportedMove("lb1->lb2", "again")]) == ((), remembered)


def test_a_failover_keyed_by_its_values_names_them() -> None:
    key = move_key(["10.0.0.1"], ["10.0.0.2"])
    changes, remembered = plan(set(), {}, [ReportedMove("10.0.0.1->10.0.0.2", "off lb1", key=key)])

    assert changes[0] == Notify(
        key, "lb-failover demo", "active record moved: off lb1 (10.0.0.1->10.0.0.2)"
    )
    assert remembered == {key}


def test_a_flood_is_one_notify_and_the_stored_value_fits() -> None:
    changes, remembered = plan(set(), skipped(300))

    notices = [c for c in changes if isinstance(c, Notify)]
    assert [n.key for n in notices] == ["skipped:*"]
    assert remembered == {"skipped:*"}
    assert changes[-1] == StoreNotices(PARAMETER, "skipped:*")
    # Paused, the flood's stored summary is kept and nothing is told again.
    assert plan(set(remembered), skipped(301), paused=True) == ((), remembered)


def test_paused_the_kept_keys_still_fit_a_standard_parameter() -> None:
    # Nothing is forgotten while paused, yet the kept keys and the new ones together must fit.
    notified = {f"failed:{kind} {'x' * 150} {n}" for kind in "abc" for n in range(15)}
    changes, remembered = plan(notified, skipped(MAX_PER_KIND), paused=True)

    store = [c for c in changes if isinstance(c, StoreNotices)]
    assert len(store) == 1
    assert len(store[0].value) <= STORED_LIMIT
    assert parse_stored(store[0].value) == remembered
    told = [c for c in changes if isinstance(c, Notify)]
    # The skipped instances are news; the kept failures were told before and are not told again.
    assert len(told) == MAX_PER_KIND
    assert all(n.key.startswith("skipped:") for n in told)


def test_what_the_parameter_holds_decides_whether_it_is_written() -> None:
    # Another run stored the same keys since this run read the parameter: nothing to write.
    changes, _ = plan_notices(
        notified=frozenset({"no-eligible-lb"}),
        conditions={"no-eligible-lb": "no LB"},
        failovers=[],
        paused=False,
        subject="lb-failover demo",
        parameter=PARAMETER,
        stored=frozenset(),
    )
    assert changes == (StoreNotices(PARAMETER, "no-eligible-lb"),)


def test_paused_a_failover_is_a_condition_told_once_and_nothing_is_forgotten() -> None:
    failover = ReportedMove("lb1->lb2", "moved off lb1 (unhealthy) to lb2")

    first, remembered = plan({"skipped:i-1"}, {}, [failover], paused=True)

    assert [c.key for c in first if isinstance(c, Notify)] == ["would-move:lb1->lb2"]
    assert "not moved while paused" in first[0].message  # type: ignore[union-attr]
    # The skipped instance's condition is not current this round, and still kept while paused.
    assert remembered == {"skipped:i-1", "would-move:lb1->lb2"}
    assert first[-1] == StoreNotices(PARAMETER, "skipped:i-1\nwould-move:lb1->lb2")

    # The next paused run plans the same move again (nothing was written): nothing is sent.
    again, _ = plan(set(remembered), {}, [failover], paused=True)
    assert again == ()


def test_parse_stored_reads_the_stored_keys() -> None:
    assert parse_stored(None) == frozenset()
    assert parse_stored("none") == frozenset()
    assert parse_stored("a\nb\n") == {"a", "b"}
