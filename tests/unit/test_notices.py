"""The notice policy as a table: conditions, stored keys and moves in; messages and keys out."""

from __future__ import annotations

import pytest

from chalicelib.core.notices import (
    MAX_PER_KIND,
    MESSAGE_LIMIT,
    STORED_LIMIT,
    Move,
    decide_notices,
    move_key,
    parse_stored,
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
