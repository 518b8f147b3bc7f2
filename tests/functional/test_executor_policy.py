"""The executor's policy: per kind of change, what is written by each setting of `Writes` (SPEC "Pausing").

Every kind of change in the Plan's `Change` union is checked, so a kind added later is covered
without anyone remembering to add it here.
"""

from __future__ import annotations

import typing

import pytest

from bench.calls import is_write
from chalicelib.core.changes import Change, Notify, RecordHistory, StoreNotices
from chalicelib.executor import Executor, Writes, is_applied, writes_for
from tests.kit.cloud import FakeCloud

KINDS = typing.get_args(Change)
# What tells the operator, still written while paused: the notices and the history.
NOTICE_KINDS = {Notify, StoreNotices, RecordHistory}


def test_what_the_switches_let_the_executor_write() -> None:
    assert writes_for(dry_run=False, paused=False) is Writes.ALL
    assert writes_for(dry_run=False, paused=True) is Writes.NOTICES_ONLY
    # LBF_DRY_RUN outranks the pause: a dry run sends nothing at all.
    assert writes_for(dry_run=True, paused=True) is Writes.NOTHING
    assert writes_for(dry_run=True, paused=False) is Writes.NOTHING


@pytest.mark.parametrize("kind", KINDS, ids=lambda kind: kind.__name__)
def test_each_kind_of_change_by_what_is_written(kind: type) -> None:
    change = typing.cast(Change, object.__new__(kind))

    assert is_applied(Writes.ALL, change)
    assert is_applied(Writes.NOTICES_ONLY, change) is (kind in NOTICE_KINDS)
    assert not is_applied(Writes.NOTHING, change)


def test_every_write_kind_is_in_the_plan() -> None:
    names = {kind.__name__ for kind in KINDS}
    assert names == {
        "SetTags",
        "RemoveTags",
        "ChangeRecords",
        "PutBackendList",
        "PutLbList",
        "PutHeldDrop",
        "PutPaused",
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


@pytest.mark.parametrize("writes", list(Writes))
def test_a_notice_by_what_is_written(writes: Writes) -> None:
    cloud = FakeCloud()
    notifier = RecordingNotifier()
    executor = Executor(cloud.services(notifier=notifier), now=cloud.clock.now, writes=writes)

    [outcome] = executor.apply_changes([Notify("k", "lb-failover demo", "lb1 is down")])

    assert outcome.ok
    if writes is Writes.ALL:
        assert notifier.sent == [("lb-failover demo", "lb1 is down")]
    elif writes is Writes.NOTICES_ONLY:
        assert notifier.sent == [("[paused] lb-failover demo", "[paused] lb1 is down")]
        assert outcome.change == Notify("k", "[paused] lb-failover demo", "[paused] lb1 is down")
    else:
        assert notifier.sent == []
        assert outcome.printed


def test_paused_stores_the_notices_and_prints_the_rest() -> None:
    from chalicelib.core.changes import PutBackendList, SetTags

    cloud = FakeCloud()
    executor = Executor(cloud.services(), now=cloud.clock.now, writes=Writes.NOTICES_ONLY)

    outcomes = executor.apply_changes(
        [
            SetTags(("i-1",), (("lbf:health", "unhealthy"),)),
            PutBackendList("/lbf/demo/backends", "127.0.1.21:80"),
            StoreNotices("/lbf/demo/notices", "no-eligible-lb"),
        ]
    )

    assert [o.printed for o in outcomes] == [True, True, False]
    writes_made = [(op, d) for op, d in cloud.calls.log if is_write(op)]
    assert writes_made == [("PutParameter", ("/lbf/demo/notices", "no-eligible-lb"))]
