"""What a benchmark hands back, the machine it ran on, and the Markdown and JSON written from it."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"

# A benchmark prints its progress through this, so the long ones show they are alive.
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Figure:
    """One published number: its value as shown, the target it is held to, and whether it met it."""

    name: str
    value: str
    target: str = ""
    met: bool | None = None  # None: reported only, no target
    note: str = ""  # why a target was missed and what limits it, or what the figure means

    @property
    def status(self) -> str:
        if self.met is None:
            return "-"
        return "met" if self.met else "MISSED"


@dataclass
class Section:
    """One benchmark's outcome: the headline figures, Markdown details, and raw data for JSON."""

    name: str  # the --only key
    title: str
    figures: list[Figure] = field(default_factory=list)
    details: list[str] = field(default_factory=list)  # Markdown blocks, in order
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0  # how long the benchmark itself took
    ran_at: str = ""
    machine: str = ""
    load: str = ""  # the 1/5/15-minute load averages when it started: a shared machine shows here

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "figures": [asdict(f) | {"status": f.status} for f in self.figures],
            "details": self.details,
            "data": self.data,
            "seconds": round(self.seconds, 1),
            "ran_at": self.ran_at,
            "machine": self.machine,
            "load": self.load,
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Section:
        figures = [
            Figure(
                name=f["name"],
                value=f["value"],
                target=f.get("target", ""),
                met=f.get("met"),
                note=f.get("note", ""),
            )
            for f in raw.get("figures", [])
        ]
        return cls(
            name=raw["name"],
            title=raw["title"],
            figures=figures,
            details=list(raw.get("details", [])),
            data=dict(raw.get("data", {})),
            seconds=float(raw.get("seconds", 0.0)),
            ran_at=str(raw.get("ran_at", "")),
            machine=str(raw.get("machine", "")),
            load=str(raw.get("load", "")),
        )


@dataclass(frozen=True)
class Machine:
    cpu_model: str
    cpus: int
    memory_gib: float
    python: str
    system: str
    commit: str

    def describe(self) -> str:
        return (
            f"{self.cpus} CPUs ({self.cpu_model}), {self.memory_gib:.0f} GiB RAM, "
            f"{self.system}, Python {self.python}, commit {self.commit}"
        )


def this_machine() -> Machine:
    return Machine(
        cpu_model=_cpu_model(),
        cpus=len(os.sched_getaffinity(0)),
        memory_gib=_memory_gib(),
        python=platform.python_version(),
        system=f"{platform.system()} {platform.release()}",
        commit=_commit(),
    )


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def _commit() -> str:
    """HEAD, and whether the measured code (app.py, chalicelib) differs from it in the work tree."""
    try:
        head = _git("rev-parse", "--short", "HEAD")
        changed = _git("status", "--porcelain", "--", "app.py", "chalicelib", "requirements.txt")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head} + uncommitted changes to the measured code" if changed else head


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
    )
    return done.stdout.strip()


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


# --- Markdown ------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub Markdown table; `|` inside a cell is escaped so it cannot split the cell."""

    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = [
        "| " + " | ".join(cell(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def summary_table(sections: Sequence[Section]) -> str:
    rows = []
    for section in sections:
        for figure in section.figures:
            rows.append(
                (
                    section.title,
                    figure.name,
                    figure.value,
                    figure.target or "-",
                    figure.status,
                    figure.note,
                )
            )
    return table(("benchmark", "figure", "value", "target", "status", "note"), rows)


def render(sections: Sequence[Section], *, heading_level: int = 1) -> str:
    """The whole results page: where it ran, the summary table, then each benchmark's details."""
    top = "#" * heading_level
    sub = "#" * (heading_level + 1)
    machines = sorted({s.machine for s in sections if s.machine})
    dates = sorted({s.ran_at for s in sections if s.ran_at})
    parts = [f"{top} Benchmark results", ""]
    if len(machines) == 1:
        parts.append(f"Machine: {machines[0]}.")
    else:
        parts += [f"Machine ({s.title}): {s.machine}." for s in sections]
    if dates:
        span = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
        parts.append(f"Run: {span}, with `make bench` (`python -m bench`).")
    parts += ["", summary_table(sections), ""]
    for section in sections:
        parts += [f"{sub} {section.title}", ""]
        parts += [
            f"_{section.ran_at}, {section.seconds:.0f} s; load average {section.load} "
            "(1, 5, 15 min) at the start._",
            "",
        ]
        for block in section.details:
            parts += [block, ""]
    return "\n".join(parts).rstrip() + "\n"


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


# The figures the README shows, by benchmark and figure name: what decides whether to use the
# project (how fast, what clients see, what it costs, what it does to traffic). The rest, with
# every method, is in bench/results/latest.md.
HEADLINES = {
    "failover": ("LB killed: detection max", "what clients see (record change + TTL)"),
    "failover-eip": ("LB killed: first client request through the address",),
    "failover-modes": (
        "plain DNS: kill -> detection",
        "plain DNS: kill -> first client request (stand-in's model)",
        "route53, controller running: kill -> detection",
        "route53, controller stopped: kill -> first client request (stand-in's model)",
        "Elastic IP: kill -> detection",
        "Elastic IP: kill -> first client request",
    ),
    "fanout": ("2000 targets, concurrency 256: one round",),
    "api-calls": ("steady run (2 LBs, 50 web)", "failover run"),
    "coldstart": ("import app.py, tracing disabled",),
    "cost": ("this design, 2 LBs + 20 web servers, all in",),
    "pool-changes": (
        "keep-alive clients: failed requests, Runtime API / reloads / reloads as before",
    ),
}


def readme_block(sections: Sequence[Section]) -> str:
    """The README's Performance section: the headline figures of the newest run, one machine.

    Sections re-measured with `--only` come from other runs (another commit, or another machine):
    the README shows only the figures of the run measured last, so that every figure in it comes
    from one run on one commit, and names that machine once; latest.md has every section.
    """
    measured = [s for s in sections if s.ran_at and s.machine]
    if not measured:
        return "No benchmark run yet: `make bench`.\n"
    newest = max(measured, key=lambda s: s.ran_at)
    run = [s for s in measured if s.machine == newest.machine]
    dates = sorted(s.ran_at for s in run)
    span = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
    headlines = [
        Section(
            name=s.name,
            title=s.title,
            figures=[f for f in s.figures if f.name in HEADLINES.get(s.name, ())],
        )
        for s in run
    ]
    left_out = sorted(s.title for s in sections if s not in run)
    lines = [
        "Measured on the local stand-in (moto's server, real HAProxy and HTTP servers on "
        "loopback) by `make bench`. Every figure with its method, and the figures not shown "
        "here: [bench/results/latest.md](bench/results/latest.md).",
        "",
        f"Machine: {newest.machine}. Run: {span}.",
        "",
        summary_table([h for h in headlines if h.figures]),
    ]
    if left_out:
        lines += [
            "",
            "Measured in another run, so only in latest.md: " + ", ".join(left_out) + ".",
        ]
    return "\n".join(lines) + "\n"


def replace_between(text: str, start: str, end: str, block: str) -> str | None:
    """`text` with what lies between the two markers replaced by `block`; None without both."""
    first = text.find(start)
    last = text.find(end, first + len(start)) if first >= 0 else -1
    if first < 0 or last < 0:
        return None
    return text[: first + len(start)] + "\n" + block + text[last:]


def print_section(section: Section, out: Callable[[str], None] = print) -> None:
    out(f"\n== {section.title} ({section.seconds:.0f} s, load average {section.load} at start)")
    width = max((len(f.name) for f in section.figures), default=0)
    for figure in section.figures:
        target = f"  target {figure.target}" if figure.target else ""
        status = "" if figure.met is None else f"  [{figure.status}]"
        out(f"  {figure.name:<{width}}  {figure.value}{target}{status}")
        if figure.note and figure.met is False:
            out(f"  {'':<{width}}  why: {figure.note}")
