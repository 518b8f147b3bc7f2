"""Writes folded back into the world (core/applied.py): parameters by the kind of the change,
and health checks by what the executor reported.

Each parameter the controller writes has its own kind of change, which says what its value holds;
the fold reads the kind, never the parameter's name, so a cluster whose names end otherwise (or
a new parameter whose name happens to end in "/backends") cannot be taken for another.
"""

from __future__ import annotations

import typing
from dataclasses import replace

import pytest

from chalicelib.core.applied import after
from chalicelib.core.changes import (
    Change,
    CreateHealthCheck,
    DeleteHealthCheck,
    PutBackendList,
    PutHeldDrop,
    PutLbList,
    PutParameter,
    PutPaused,
    UpdateHealthCheck,
)
from chalicelib.core.model import HealthCheck, HealthCheckSpec, World
from chalicelib.core.outcome import Outcome
from chalicelib.core.reread import fold_outcomes
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


# Health checks: the round's check changes, as the executor's outcomes report them.

SPEC = HealthCheckSpec(kind="HTTP", address="52.1.2.11", port=80, resource_path="/health")
OLD = HealthCheck("hc-old", "i-lb1", 3, SPEC)
MOVED = replace(SPEC, address="52.1.2.99")
CREATE = CreateHealthCheck("i-lb2", "lb2", replace(SPEC, address="52.1.2.12"), "ref", ())


def checks(folded: World) -> tuple[tuple[str, str, int, str], ...] | None:
    if folded.health_checks is None:
        return None
    return tuple(
        (c.health_check_id, c.instance_id, c.version, c.spec.address) for c in folded.health_checks
    )


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        # A created check is in the world from the next round, with the id Route 53 gave it.
        (
            Outcome(CREATE, ok=True, created_id="hc-new"),
            (("hc-old", "i-lb1", 3, "52.1.2.11"), ("hc-new", "i-lb2", 1, "52.1.2.12")),
        ),
        # A create that failed, or was only printed (a dry run), has no id to bind: no check.
        (Outcome(CREATE, ok=False, error="Throttling"), (("hc-old", "i-lb1", 3, "52.1.2.11"),)),
        (Outcome(CREATE, ok=True, printed=True), (("hc-old", "i-lb1", 3, "52.1.2.11"),)),
        # An update keeps the id, and Route 53 counts its version on.
        (
            Outcome(UpdateHealthCheck("hc-old", 3, "i-lb1", "lb1", SPEC, MOVED), ok=True),
            (("hc-old", "i-lb1", 4, "52.1.2.99"),),
        ),
        (Outcome(DeleteHealthCheck("hc-old", "i-lb1", "lb1 is terminated"), ok=True), ()),
        # A delete held back because the pair's batch failed leaves the check.
        (
            Outcome(
                DeleteHealthCheck("hc-old", "i-lb1", "moved", after_records=True),
                ok=False,
                skipped=True,
            ),
            (("hc-old", "i-lb1", 3, "52.1.2.11"),),
        ),
    ],
    ids=["created", "create-failed", "create-printed", "updated", "deleted", "delete-skipped"],
)
def test_a_check_change_folds_into_the_checks_the_next_round_binds(
    outcome: Outcome, expected: tuple[tuple[str, str, int, str], ...]
) -> None:
    before = replace(BEFORE, health_checks=(OLD,))
    assert checks(fold_outcomes(before, [outcome])) == expected


def test_checks_that_were_not_read_stay_unread() -> None:
    """Without the checks read (off, or the read failed), a create adds no partial list."""
    assert BEFORE.health_checks is None
    folded = fold_outcomes(BEFORE, [Outcome(CREATE, ok=True, created_id="hc-new")])
    assert folded.health_checks is None
