"""The failover timeline picture: what it draws is what the run recorded, and it draws the same
file twice from the same marks (a picture that changes on every run hides real changes)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bench.timeline import CHANGE, CLIENTS, LANES, PROBES, VERDICT, Mark, draw

MARKS = (
    Mark(-0.4, PROBES, ok=True),
    Mark(1.6, PROBES, ok=False),
    Mark(3.6, PROBES, ok=False),
    Mark(5.6, PROBES, ok=False),
    Mark(5.7, VERDICT, label="lb1 unhealthy"),
    Mark(5.9, CHANGE, label="lb -> lb2"),
    Mark(0.5, CLIENTS, ok=False),
    Mark(7.0, CLIENTS, ok=True),
)


def test_every_lane_and_label_is_drawn(tmp_path: Path) -> None:
    svg = draw(tmp_path / "t.svg", title="plain DNS: kill to first answer", marks=MARKS)
    ET.parse(svg)  # well-formed SVG
    # matplotlib draws text as glyph paths, each group preceded by a comment holding the string.
    text = svg.read_text()
    for lane in LANES:
        assert lane in text
    for label in ("lb1 unhealthy", "lb -&gt; lb2", "kill", "plain DNS: kill to first answer"):
        assert label in text


def test_the_same_marks_draw_the_same_file(tmp_path: Path) -> None:
    first = draw(tmp_path / "a.svg", title="t", marks=MARKS, note="stand-in's model")
    second = draw(tmp_path / "b.svg", title="t", marks=MARKS, note="stand-in's model")
    assert first.read_bytes() == second.read_bytes()


def test_nothing_or_an_unknown_lane_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nothing to draw"):
        draw(tmp_path / "x.svg", title="t", marks=())
    with pytest.raises(ValueError, match="unknown lanes"):
        draw(tmp_path / "x.svg", title="t", marks=(Mark(1.0, "dns", ok=True),))
