"""Parameter writes folded back into the world (core/applied.py): by the kind of the change.

Each parameter the controller writes has its own kind of change, which says what its value holds;
the fold reads the kind, never the parameter's name, so a cluster whose names end otherwise (or
a new parameter whose name happens to end in "/backends") cannot be taken for another.
"""

from __future__ import annotations

import typing

import pytest

from chalicelib.core.applied import after
from chalicelib.core.changes import (
    Change,
    PutBackendList,
    PutHeldDrop,
    PutLbList,
    PutParameter,
    PutPaused,
)
from chalicelib.core.model import World
from tests.kit.world import world

BEFORE = world(backends="10.0.1.1:80", lbs_parameter="10.0.0.1")


def lists(folded: World) -> tuple[str | None, str | None, str | None, bool]:
    """What the next round plans from: the backend list, the LB list, the held drop, the pause."""
    return (
        folded.backends_parameter,
        folded.lbs_parameter,
        folded.held_drop_parameter,
        folded.paused,
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (PutBackendList("/p/backends", "10.0.1.2:80"), ("10.0.1.2:80", "10.0.0.1", None, False)),
        (PutLbList("/p/lbs", "10.0.0.2"), ("10.0.1.1:80", "10.0.0.2", None, False)),
        (PutHeldDrop("/p/held-drop", "none"), ("10.0.1.1:80", "10.0.0.1", "none", False)),
        # The pause switch is read when a run starts: writing it changes the next run, not this one.
        (PutPaused("/p/paused", "true"), ("10.0.1.1:80", "10.0.0.1", None, False)),
        # The kind says what the value is, whatever the name.
        (PutLbList("/p/backends", "10.0.0.2"), ("10.0.1.1:80", "10.0.0.2", None, False)),
        (PutBackendList("/p/lbs", "10.0.1.2:80"), ("10.0.1.2:80", "10.0.0.1", None, False)),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, PutParameter) else "",
)
def test_a_parameter_write_folds_into_what_it_holds(
    change: Change, expected: tuple[str | None, str | None, str | None, bool]
) -> None:
    assert lists(after(BEFORE, [change])) == expected


def test_a_bare_parameter_write_is_no_change_a_plan_can_hold() -> None:
    """Only the kinds that say what they hold are changes; a bare PutParameter is their base."""
    kinds = set(typing.get_args(Change))
    assert PutParameter not in kinds
    assert {PutBackendList, PutLbList, PutHeldDrop, PutPaused} <= kinds
