"""When a list LBF_MAX_POOL_DROP holds back is published after all (core.held_drop), with an
injected time: the same servers failing every probe for 10 minutes of runs that count."""

from __future__ import annotations

import pytest

from chalicelib.core.held_drop import (
    NOTHING_HELD,
    RELEASE_SECONDS,
    HeldDrop,
    Release,
    decide_release,
    parse,
    render,
)

T0 = 1_700_000_000.0
AB = ("10.0.0.1:80", "10.0.0.2:80")
HELD_AB = HeldDrop(AB, T0)
STOPPED_AB = HeldDrop(AB, None)


@pytest.mark.parametrize(
    ("stored", "held", "now", "counts", "expected"),
    [
        # Nothing held: nothing stored (a stored hold ends).
        (None, None, T0, True, Release(None, take=False)),
        (HELD_AB, None, T0 + 30, True, Release(None, take=False)),
        (HELD_AB, (), T0 + 30, True, Release(None, take=False)),
        # A first hold starts the clock.
        (None, AB, T0, True, Release(HELD_AB, take=False)),
        # The same servers, in any order, short of 10 minutes: held, nothing to store anew.
        (HELD_AB, AB[::-1], T0 + RELEASE_SECONDS - 1, True, Release(HELD_AB, take=False)),
        # 10 minutes: taken.
        (HELD_AB, AB, T0 + RELEASE_SECONDS, True, Release(HELD_AB, take=True)),
        (HELD_AB, AB, T0 + 3600, True, Release(HELD_AB, take=True)),
        # Other servers (one more failing, or one fewer): the clock starts again.
        (
            HELD_AB,
            (*AB, "10.0.0.3:80"),
            T0 + 900,
            True,
            Release(HeldDrop((*AB, "10.0.0.3:80"), T0 + 900), take=False),
        ),
        (HELD_AB, AB[:1], T0 + 900, True, Release(HeldDrop(AB[:1], T0 + 900), take=False)),
        # A run that does not count (a prober fault, or one of them answered) stops the clock,
        # stored once: a fault that lasts stores nothing anew each run.
        (HELD_AB, AB, T0 + 900, False, Release(STOPPED_AB, take=False)),
        (None, AB, T0, False, Release(STOPPED_AB, take=False)),
        (STOPPED_AB, AB, T0 + 900, False, Release(STOPPED_AB, take=False)),
        # The first run that counts again starts the 10 minutes.
        (STOPPED_AB, AB, T0, True, Release(HELD_AB, take=False)),
        (STOPPED_AB, AB[:1], T0, False, Release(HeldDrop(AB[:1], None), take=False)),
    ],
)
def test_release(
    stored: HeldDrop | None,
    held: tuple[str, ...] | None,
    now: float,
    counts: bool,
    expected: Release,
) -> None:
    assert decide_release(stored, held, now=now, counts=counts) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, None),
        (NOTHING_HELD, None),
        (HELD_AB.render(), HELD_AB),
        ('{"entries":["10.0.0.2:80","10.0.0.1:80"],"since":1700000000}', HELD_AB),
        (STOPPED_AB.render(), STOPPED_AB),
        ('{"entries":["10.0.0.1:80","10.0.0.2:80"],"since":null}', STOPPED_AB),
        # Anything else counts as nothing held: the clock starts again, a release only waits.
        ("garbage", None),
        ('{"entries":[],"since":1}', None),
        ('{"entries":["10.0.0.1:80"]}', None),
        ('{"entries":["10.0.0.1:80"],"since":"soon"}', None),
        ("[1, 2]", None),
    ],
)
def test_the_stored_value(text: str | None, expected: HeldDrop | None) -> None:
    assert parse(text) == expected


def test_render_round_trips() -> None:
    assert render(None) == NOTHING_HELD
    assert parse(render(HELD_AB)) == HELD_AB
    assert parse(render(STOPPED_AB)) == STOPPED_AB
