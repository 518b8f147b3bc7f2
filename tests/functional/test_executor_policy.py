"""The executor's policy: per kind of change, what is written in each mode (SPEC "Pausing").

Every kind of change in the Plan's `Change` union is checked, so a kind added later is covered
without anyone remembering to add it here.
"""

from __future__ import annotations

import typing

import pytest

from bench.calls import is_write
from chalicelib.core.plan import Change, Notify, RecordHistory, StoreNotices
from chalicelib.executor import Executor, Mode, mode_of, writes
from tests.kit.cloud import FakeCloud

KINDS = typing.get_args(Change)
# What tells the operator, still written while paused: the notices and the history.
NOTICE_KINDS = {Notify, StoreNotices, RecordHistory}


def test_the_modes() -> None:
    assert mode_of(dry_run=False, paused=False) is Mode.LIVE
    assert mode_of(dry_run=False, paused=True) is Mode.PAUSED
    # LBF_DRY_RUN outranks the pause: a dry run sends nothing at all.
    assert mode_of(dry_run=True, paused=True) is Mode.DRY_RUN
    assert mode_of(dry_run=True, paused=False) is Mode.DRY_RUN


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.__name__)
def test_each_kind_of_change_by_mode(kind: type) -> None:
    change = typing.cast(Change, object.__new__(kind))

    assert writes(Mode.LIVE, change)
    assert writes(Mode.PAUSED, change) is (kind in NOTICE_KINDS)
    assert not writes(Mode.DRY_RUN, change)


def test_every_write_kind_is_in_the_plan() -> None:
    names = {kind.__name__ for kind in KINDS}
    assert names == {
        "SetTags",
        "RemoveTags",
        "ChangeRecords",
        "PutParameter",
        "PushBackends",
        "MoveAddress",
        "CreateHealthCheck",
        "UpdateHealthCheck",
        "DeleteHealthCheck",
        "Notify",
        "StoreNotices",
        "RecordHistory",
    }


class RecordingNotifier:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def publish(self, subject: str, message: str) -> None:
        self.sent.append((subject, message))


@pytest.mark.parametrize("mode", list(Mode))
def test_a_notice_by_mode(mode: Mode) -> None:
    cloud = FakeCloud()
    notifier = RecordingNotifier()
    executor = Executor(cloud.services(notifier=notifier), now=cloud.clock.now, mode=mode)

    [outcome] = executor.apply_changes([Notify("k", "lb-failover demo", "lb1 is down")])

    assert outcome.ok
    if mode is Mode.LIVE:
        assert notifier.sent == [("lb-failover demo", "lb1 is down")]
    elif mode is Mode.PAUSED:
        assert notifier.sent == [("[paused] lb-failover demo", "[paused] lb1 is down")]
        assert outcome.change == Notify("k", "[paused] lb-failover demo", "[paused] lb1 is down")
    else:
        assert notifier.sent == []
        assert outcome.printed


def test_paused_stores_the_notices_and_prints_the_rest() -> None:
    from chalicelib.core.plan import PutParameter, SetTags

    cloud = FakeCloud()
    executor = Executor(cloud.services(), now=cloud.clock.now, mode=Mode.PAUSED)

    outcomes = executor.apply_changes(
        [
            SetTags(("i-1",), (("lbf:health", "unhealthy"),)),
            PutParameter("/lbf/demo/backends", "127.0.1.21:80"),
            StoreNotices("/lbf/demo/notices", "no-eligible-lb"),
        ]
    )

    assert [o.printed for o in outcomes] == [True, True, False]
    writes_made = [(op, d) for op, d in cloud.calls.log if is_write(op)]
    assert writes_made == [("PutParameter", ("/lbf/demo/notices", "no-eligible-lb"))]
