"""`python -m bench [--only NAME ...] [--quick]`: run the benchmarks, print and publish the figures.

A full run writes `bench/results/latest.md` and `latest.json`. `--only` runs some and replaces
just their sections in those files, so one benchmark can be re-measured without the others.
`--quick` shrinks every workload for a smoke test and writes nothing.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench.report import (
    RESULTS,
    Figure,
    Progress,
    Section,
    load_average,
    now_utc,
    print_section,
    readme_block,
    render,
    replace_between,
    this_machine,
)

README = RESULTS.parent.parent / "README.md"
MARKERS = ("<!-- bench:start -->", "<!-- bench:end -->")

# name -> module; each module has run(progress, *, quick) -> Section. Imported when chosen, so
# `--only coldstart` never starts moto.
BENCHMARKS = {
    "failover": "bench.failover",
    "failover-eip": "bench.failover_eip",
    "failover-modes": "bench.failover_modes",
    "fanout": "bench.fanout",
    "api-calls": "bench.api_calls",
    "coldstart": "bench.coldstart",
    "prober": "bench.prober",
    "cost": "bench.cost",
    "pool-changes": "bench.pool_changes",
}


def _runner(name: str) -> Callable[..., Section]:
    module = importlib.import_module(BENCHMARKS[name])
    runner: Callable[..., Section] = module.run
    return runner


def _progress(message: str) -> None:
    print(f"  .. {message}", flush=True)


def run(names: list[str], *, quick: bool, progress: Progress = _progress) -> list[Section]:
    machine = this_machine().describe()
    sections = []
    for name in names:
        print(f"\n>> {name}", flush=True)
        started, load = time.monotonic(), load_average()
        try:
            section = _runner(name)(progress, quick=quick)
        except Exception as exc:  # noqa: BLE001 - reported as a finding; the others still run
            traceback.print_exc()
            section = Section(name=name, title=name)
            section.figures.append(
                Figure("benchmark", "did not complete", met=False, note=f"{exc!r}"[:300])
            )
        section.load = load
        section.seconds = time.monotonic() - started
        section.ran_at = now_utc()
        section.machine = machine
        print_section(section)
        sections.append(section)
    return sections


def _merged(fresh: list[Section]) -> list[Section]:
    """The stored sections with the fresh ones replacing theirs, in BENCHMARKS order."""
    stored: dict[str, Section] = {}
    path = RESULTS / "latest.json"
    if path.exists():
        raw: dict[str, Any] = json.loads(path.read_text())
        stored = {s["name"]: Section.from_json(s) for s in raw.get("sections", [])}
    stored.update({s.name: s for s in fresh})
    return [stored[name] for name in BENCHMARKS if name in stored]


def publish(sections: list[Section]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    machine = this_machine()
    document = {
        "machine": machine.__dict__ | {"described": machine.describe()},
        "written_at": now_utc(),
        "sections": [s.to_json() for s in sections],
    }
    (RESULTS / "latest.json").write_text(json.dumps(document, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(render(sections))
    block = readme_block(sections)
    readme = README.read_text() if README.exists() else ""
    updated = replace_between(readme, *MARKERS, block)
    if updated is None:
        # The lead owns the README: without the markers the section waits beside the results.
        (RESULTS / "README-section.md").write_text(block)
        print(f"README markers not found: wrote {RESULTS / 'README-section.md'}")
    elif updated != readme:
        README.write_text(updated)
        print(f"updated the Performance section of {README}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), metavar="NAME")
    parser.add_argument("--quick", action="store_true", help="small workloads; writes nothing")
    parser.add_argument("--list", action="store_true", help="print the benchmark names")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(BENCHMARKS))
        return 0
    names = [n for n in BENCHMARKS if args.only is None or n in args.only]
    started = time.monotonic()
    sections = run(names, quick=args.quick)
    print(f"\nall {len(sections)} benchmarks in {time.monotonic() - started:.0f} s")
    if not args.quick:
        publish(_merged(sections))
        print(f"wrote {RESULTS / 'latest.md'} and {RESULTS / 'latest.json'}")
    missed = [f"{s.title}: {f.name}" for s in sections for f in s.figures if f.met is False]
    if missed:
        print("missed targets:\n  " + "\n  ".join(missed))
    # Missing a target is a finding, not a failure of the benchmark: exit 0 either way.
    return 0


if __name__ == "__main__":
    sys.exit(main())
