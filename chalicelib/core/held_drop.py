"""When a list LBF_MAX_POOL_DROP holds back is published after all. Pure.

The guard keeps the last list when more of it failed probes in one run than the bound allows: more
likely the prober's network than the servers. But not forever (SPEC "Where two rules meet"): when
the same servers have failed every probe for 10 minutes of runs whose other probes answered (no
fault on the prober's side), they are down indeed, and the drop is taken, with a notice.

What carries across runs is `<prefix>/held-drop`: which entries are held, and since when. It is
written only when that changes (a new set of servers held, a hold that ended, the clock stopped
or started), never each run. A run that cannot vouch for the servers stops the clock rather than
restarting it at its own time: a prober fault that lasts (every web server down fails every
probe, so each round is taken as the prober's) would otherwise rewrite the parameter every run
of a world that does not change. The first run that counts again starts the 10 minutes.
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
    # Since when exactly these have failed every probe; None: the last run could not vouch
    # for them (the clock is stopped until a run that counts starts it again).
    since: float | None

    def render(self) -> str:
        since = None if self.since is None else int(self.since)
        return json.dumps({"entries": list(self.entries), "since": since}, separators=(",", ":"))


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
        since = None if data["since"] is None else float(data["since"])
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
    if not counts:
        return Release(HeldDrop(entries, None), take=False)
    if stored is None or stored.entries != entries or stored.since is None:
        # A new set of servers, or the first run that counts after one that did not.
        return Release(HeldDrop(entries, now), take=False)
    return Release(stored, take=now - stored.since >= RELEASE_SECONDS)
