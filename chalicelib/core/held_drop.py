"""When a list LBF_MAX_POOL_DROP holds back is published after all. Pure.

The guard keeps the last list when more of it failed probes in one run than the bound allows: more
likely the prober's network than the servers. But not forever (SPEC "Where two rules meet"): when
the same servers have failed every probe for 10 minutes of runs whose other probes answered (no
fault on the prober's side), they are down indeed, and the drop is taken, with a notice.

What carries across runs is `<prefix>/held-drop`: which entries are held, and since when. It is
written only when that changes (a new set of servers held, a hold that ended), never each run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

RELEASE_SECONDS = 600.0
# What the parameter holds when nothing is held (SSM refuses an empty value).
NOTHING_HELD = "none"


@dataclass(frozen=True)
class HeldDrop:
    entries: tuple[str, ...]  # the held list's entries that fail probes, sorted
    since: float  # since when exactly these have failed every probe

    def render(self) -> str:
        return json.dumps(
            {"entries": list(self.entries), "since": int(self.since)}, separators=(",", ":")
        )


def render(held: HeldDrop | None) -> str:
    return NOTHING_HELD if held is None else held.render()


def parse(text: str | None) -> HeldDrop | None:
    """The stored value; anything that does not parse counts as nothing held (the clock starts
    again, which only delays a release)."""
    if not text or text == NOTHING_HELD:
        return None
    try:
        data = json.loads(text)
        entries = tuple(sorted(str(e) for e in data["entries"]))
        since = float(data["since"])
    except (ValueError, TypeError, KeyError):
        return None
    return HeldDrop(entries, since) if entries else None


@dataclass(frozen=True)
class Release:
    stored: HeldDrop | None  # what the parameter holds after this decision
    take: bool  # publish the list without the held entries now


def decide_release(
    stored: HeldDrop | None,
    held: Sequence[str] | None,
    *,
    now: float,
    counts: bool,
) -> Release:
    """`held`: the entries the guard holds back now (None: it holds nothing). `counts`: this
    run's probes count toward the 10 minutes: every probe of the held servers failed and no
    probe path was taken as a fault on the prober's side."""
    if not held:
        return Release(None, take=False)
    entries = tuple(sorted(held))
    if not counts or stored is None or stored.entries != entries:
        # A new set of servers, or a run that cannot vouch for them: the 10 minutes start now.
        return Release(HeldDrop(entries, now), take=False)
    return Release(stored, take=now - stored.since >= RELEASE_SECONDS)
