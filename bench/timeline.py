"""One failover drawn as a timeline: probes, verdicts, the record or answer change, client requests.

A table of medians says how long failovers take; a timeline says why one took that long (the round
that started just before the kill, the FALL probes it needed, the TTL the clients waited out). Each
lane is one actor, time runs from the kill at 0. Drawn with matplotlib's SVG backend, with the date
and the element ids fixed, so the same run draws the same file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display: the benchmark runs headless

import matplotlib.pyplot as plt  # after use(): the backend is chosen before pyplot loads

PROBES = "probes"
VERDICT = "verdict"
CHANGE = "record / answer"
CLIENTS = "client requests"
LANES = (PROBES, VERDICT, CHANGE, CLIENTS)

_OK, _FAILED, _EVENT = "#2a9d4b", "#d1495b", "#30638e"


@dataclass(frozen=True)
class Mark:
    """Something that happened, `at` seconds after the kill (negative: before it)."""

    at: float
    lane: str
    ok: bool | None = None  # a probe's or a request's result; None for an event
    label: str = ""  # an event's text, drawn beside it


def draw(path: Path, *, title: str, marks: Sequence[Mark], note: str = "") -> Path:
    """Writes the timeline as SVG to `path` and returns it. Lanes with no mark are still drawn,
    so a mode without, say, a record change shows that it had none."""
    if not marks:
        raise ValueError(f"{title}: nothing to draw")
    unknown = {m.lane for m in marks} - set(LANES)
    if unknown:
        raise ValueError(f"{title}: unknown lanes {sorted(unknown)}; lanes are {LANES}")
    plt.rcParams["svg.hashsalt"] = "lb-failover"
    figure, axes = plt.subplots(figsize=(10, 3.2))
    try:
        rows = {lane: len(LANES) - 1 - i for i, lane in enumerate(LANES)}
        for mark in marks:
            y = rows[mark.lane]
            if mark.ok is None:
                axes.plot([mark.at], [y], marker="D", color=_EVENT, markersize=7)
                if mark.label:
                    axes.annotate(
                        mark.label,
                        (mark.at, y),
                        textcoords="offset points",
                        xytext=(6, 6),
                        fontsize=8,
                        color=_EVENT,
                    )
            else:
                axes.plot(
                    [mark.at],
                    [y],
                    marker="|" if mark.lane == CLIENTS else "o",
                    color=_OK if mark.ok else _FAILED,
                    markersize=9 if mark.lane == CLIENTS else 5,
                )
        axes.axvline(0.0, color=_FAILED, linestyle="--", linewidth=1)
        axes.annotate(
            "kill",
            (0.0, len(LANES) - 0.6),
            color=_FAILED,
            fontsize=8,
            xytext=(3, 0),
            textcoords="offset points",
        )
        axes.set_yticks(list(rows.values()), list(rows.keys()))
        axes.set_ylim(-0.7, len(LANES) - 0.3)
        axes.set_xlabel("seconds after the kill")
        axes.set_title(title, fontsize=10)
        axes.grid(axis="x", linewidth=0.3)
        if note:
            figure.text(0.01, 0.01, note, fontsize=7, color="#555555")
        figure.tight_layout(rect=(0, 0.05 if note else 0, 1, 1))
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, format="svg", metadata={"Date": None})
    finally:
        plt.close(figure)
    return path
