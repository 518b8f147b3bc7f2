"""What the command line prints: tables for people, JSON for scripts. Pure functions."""

from __future__ import annotations

import re
import textwrap
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from chalicelib.config import Settings
from chalicelib.core import backends as backend_lists
from chalicelib.core import dns, pausing, status
from chalicelib.core.dns import ActiveDecision
from chalicelib.core.history import Event, EventCode, Unreadable, last_of
from chalicelib.core.model import (
    FailoverMode,
    ProbeResult,
    World,
)
from chalicelib.core.plan import confirmed_current_list
from chalicelib.core.status import Note, Serving, StatusRules
from chalicelib.report import Report, RoundDone

SCHEMA_VERSION = 1  # schemas/cli-output.schema.json: raised when a field is removed or changes


def envelope(command: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Every command's --json object: the schema's version and the command, then its fields."""
    return {"schema": SCHEMA_VERSION, "command": command, **body}


def reason(code: str, text: str) -> dict[str, str]:
    """A reason for scripts: a stable code to compare, and the text an operator reads."""
    return {"code": code, "text": text}


def status_rules(settings: Settings) -> StatusRules:
    """What `status` reads of the settings, as the core's rule objects."""
    rules = settings.rules
    return StatusRules(
        records=rules.records,
        active=rules.plan.active,
        push_log_group=settings.push_log_group,
        second_opinion=rules.second_opinion,
    )


def status_rows(
    world: World, settings: Settings, probes: Mapping[str, ProbeResult] | None = None
) -> list[dict[str, Any]]:
    """One row per LB, web server and skipped instance (core.status decides them)."""
    return status.status_rows(world, status_rules(settings), probes)


def _probe_text(result: ProbeResult | None) -> str:
    if result is None:
        return "-"
    return ("ok " if result.ok else "FAIL ") + result.detail


def _text_cells(row: Mapping[str, Any], *, probed: bool) -> dict[str, str]:
    """A row's cells as the table prints them."""
    cells = {key: value for key, value in row.items() if isinstance(value, str)}
    cells["why"] = row["reason"][1] if row["reason"] is not None else ""
    cells["record"] = " ".join(row["record"])
    cells["notes"] = ", ".join(text for _, text in row["notes"])
    cells["probe"] = _probe_text(row["probe"]) if probed else ""
    return cells


def _json_row(row: Mapping[str, Any], *, probed: bool) -> dict[str, Any]:
    probe = row["probe"]
    cause = row["reason"]
    return {
        **row,
        "reason": None if cause is None else reason(*cause),
        "record": list(row["record"]),
        "probe": None if not probed or probe is None else {"ok": probe.ok, "detail": probe.detail},
        "notes": [reason(code, text) for code, text in row["notes"]],
    }


WIDTH = 80  # what `status` fits by default: a terminal, a ticket, a pager's message
# What `_wrapped` keeps on one line: a short bracketed value, and an upper-case name and its number.
_KEPT_TOGETHER = re.compile(r"\[[^\]\n]{1,20}\]|\b[A-Z]+ [0-9][0-9.]*")
_GLUE = "\x00"  # stands for a kept space while wrapping: one column, and never in a line
TRUNCATED = "~"  # ends a cut cell (ASCII: the output may go to a log or a C-locale terminal)


def table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    headers: Mapping[str, str] | None = None,
    width: int | None = None,
    cuts: Sequence[tuple[str, int]] = (),
    below: str | None = None,
) -> str:
    """A plain aligned table; every cell was escaped or came from a parsed value.

    With `width`, a line that is too long first loses a space between columns, then the `cuts`
    are made in their order (a column down to its width there; a cut cell marked TRUNCATED,
    addresses in the middle so that the port stays) until it fits. Column `below` goes under
    its row, wrapped, instead.
    """
    titles = [(headers or {}).get(c, c).upper() for c in columns]
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max([len(t)] + [len(r[i]) for r in cells]) for i, t in enumerate(titles)]
    gap = 2
    if width is not None:
        if sum(widths) + gap * (len(widths) - 1) > width:
            gap = 1
        for column, floor in cuts:
            if column not in columns:
                continue
            over = sum(widths) + gap * (len(widths) - 1) - width
            if over <= 0:
                break
            i = columns.index(column)
            widths[i] = max(floor, widths[i] - over)
    space = " " * gap
    lines = [space.join(_cut(t, w).ljust(w) for t, w in zip(titles, widths, strict=True))]
    for row, line in zip(rows, cells, strict=True):
        lines.append(
            space.join(
                _cut(v, w, middle=c in MIDDLE_CUT).ljust(w)
                for c, v, w in zip(columns, line, widths, strict=True)
            )
        )
        under = str(row.get(below, "")) if below is not None else ""
        if under:
            lines += textwrap.wrap(
                under,
                width=width or len(under) + 4,
                initial_indent="    ",
                subsequent_indent="    ",
                break_on_hyphens=False,
            )
    return "\n".join(line.rstrip() for line in lines)


def _cut(value: str, width: int, *, middle: bool = False) -> str:
    if len(value) <= width:
        return value
    if middle and width >= 7:
        tail = (width - 1) // 2
        return value[: width - 1 - tail] + TRUNCATED + value[len(value) - tail :]
    return value[: max(0, width - 1)] + TRUNCATED


# --wide: every column, one line per instance, nothing cut.
WIDE_COLUMNS = (
    "role",
    "name",
    "instance",
    "address",
    "ec2",
    "health",
    "why",
    "state",
    "record",
    "notes",
)
# By default one table per role, each with the columns that mean something for it; the EC2 state
# (unless "running") and the notes go under the row, and cells are cut to fit WIDTH.
LB_COLUMNS = ("lb", "instance", "address", "health", "why", "state", "record")
WEB_COLUMNS = ("web server", "instance", "health", "why")
OTHER_COLUMNS = ("other", "role", "address", "health")
# Where a line too long for WIDTH is cut, in this order, and how far: first what is long only
# when unusual (a 63-character name, a reason), then the live probe's detail, and addresses last
# (cut in the middle, so that a port stays). Never an instance id (what an operator pastes into
# the AWS CLI) or a verdict. Every table cut this far fits WIDTH.
CUTS = (
    ("lb", 5),
    ("other", 19),
    ("why", 7),
    ("record", 6),
    ("state", 5),
    ("probe", 8),
    ("web server", 15),
    ("address", 9),
    ("role", 4),
)
MIDDLE_CUT = frozenset({"address", "web server", "record"})
# The table's short words for the commonest reasons (the JSON and --wide keep the full text).
SHORT_WHY = {"connection refused": "refused", "connection reset": "reset"}


def status_text(
    world: World,
    settings: Settings,
    probes: Mapping[str, ProbeResult] | None = None,
    *,
    wide: bool = False,
    events: Sequence[Event | Unreadable] | None = None,
) -> str:
    probed = probes is not None
    rows = [_text_cells(row, probed=probed) for row in status_rows(world, settings, probes)]
    active = dns.find_record(world.records, settings.active_record_name)
    backends = backend_lists.parse_list(world.backends_parameter)
    verdict = serving(world, settings, probes)
    header = [
        f"cluster {settings.cluster}  domain {settings.domain}  mode {settings.mode}"
        f"  active {settings.active_mode}",
        verdict.text if verdict.ok else f"NOT SERVING: {verdict.text}",
        f"{settings.active_record_name} -> "
        + (" ".join(active.values) if active is not None else "(no record)"),
        f"backends ({settings.backends_parameter_name}): "
        + (" ".join(backends) or world.backends_parameter or "(none published)"),
        f"detection bound: {settings.detection_bound.describe()}",
    ]
    header += [text for _, text in feature_lines(world, settings)]
    header += operator_lines(world, settings, events)
    if wide:
        columns = list(WIDE_COLUMNS)
        if probed:
            columns.insert(columns.index("notes"), "probe")
        return "\n".join(header) + "\n\n" + table(rows, columns)
    lines = [line for text in header for line in _wrapped(text)]
    return "\n".join(lines) + "\n\n" + "\n\n".join(_role_tables(rows, probed=probed))


def _wrapped(text: str) -> list[str]:
    """A header line in WIDTH columns, never cutting a value from its unit ("[1.5 s]") or a
    setting from its value ("TIMEOUT 1.5"): the detection bound's line is made of them."""
    glued = _KEPT_TOGETHER.sub(lambda found: found[0].replace(" ", _GLUE), text)
    wrapped = textwrap.wrap(glued, width=WIDTH, subsequent_indent="    ", break_on_hyphens=False)
    return [line.replace(_GLUE, " ") for line in wrapped]


def _role_tables(rows: Sequence[dict[str, str]], *, probed: bool) -> list[str]:
    """The LBs, the web servers and instances of no known role, each in a table fitting WIDTH."""
    tables = []
    for role, columns in (("lb", LB_COLUMNS), ("web", WEB_COLUMNS), (None, OTHER_COLUMNS)):
        chosen = [
            r
            for r in rows
            if r["role"] == role or (role is None and r["role"] not in ("lb", "web"))
        ]
        if not chosen:
            continue
        shown = []
        for row in chosen:
            cells = dict(row)
            cells["why"] = SHORT_WHY.get(row["why"], row["why"])
            if row["record"] and row["record"] == row["address"]:
                cells["record"] = "ok"  # its name's record points at its address
            elif role == "lb" and not row["record"] and row["health"] != "skipped":
                cells["record"] = "none"
            cells["lb"] = row["name"]
            cells["web server"] = row["name"] or row["address"]
            cells["other"] = row["instance"]
            notes = [f"EC2 {row['ec2']}" if row["ec2"] != "running" else "", row["notes"]]
            cells["notes"] = ", ".join(n for n in notes if n)
            shown.append(cells)
        chosen_columns = list(columns) + (["probe"] if probed else [])
        tables.append(table(shown, chosen_columns, width=WIDTH, cuts=CUTS, below="notes"))
    return tables


def operator_lines(
    world: World, settings: Settings, events: Sequence[Event | Unreadable] | None
) -> list[str]:
    """Whether the cluster is paused (why, since when) and the last failover, from the history."""
    data = operator_json(world, events)
    paused = data["paused"]
    if paused["paused"]:
        line = f"PAUSED: {pausing.describe(world, settings.paused_parameter_name)}"
        if paused["since"] is not None:
            line += f" since {paused['since']}"
        if paused["reason"]:
            line += f", reason: {paused['reason']}"
        lines = [line + "; runs plan and notify, change nothing (`resume` ends it)"]
    else:
        lines = ["paused: no"]
    failover = data["last_failover"]
    if failover is not None:
        lines.append(f"last failover: {failover['at']} {failover['text']} ({failover['reason']})")
    elif data["history_error"] is None:
        lines.append("last failover: none in the history")
    if data["history_error"] is not None:
        lines.append(f"history not read: {data['history_error']}")
    return lines


def operator_json(world: World, events: Sequence[Event | Unreadable] | None) -> dict[str, Any]:
    """`events`: the history, newest first; None when it could not be read."""
    switch = last_of(events or (), (EventCode.PAUSED, EventCode.RESUMED))
    # The pause event is the one that explains this pause only if it is the latest switch.
    pause_event = switch if switch is not None and switch.code is EventCode.PAUSED else None
    failover = last_of(events or (), (EventCode.FAILOVER,))
    return {
        "paused": {
            "paused": world.paused,
            # The value found when it is neither true nor false (taken as paused); else null.
            "value": world.paused_unclear,
            "odd_value": world.paused_unclear is not None,
            "since": timestamp(pause_event.at) if world.paused and pause_event else None,
            "reason": pause_event.reason if world.paused and pause_event else "",
        },
        "last_failover": event_json(failover) if failover is not None else None,
        "history_error": None if events is not None else "GetParameterHistory failed",
    }


def timestamp(at: float) -> str:
    return datetime.fromtimestamp(at, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_json(item: Event | Unreadable) -> dict[str, Any]:
    if isinstance(item, Unreadable):
        return {"at": timestamp(item.at), "code": "unreadable", "text": item.text, "reason": ""}
    return {
        "at": timestamp(item.at),
        "code": item.code.value,
        "text": item.text,
        "reason": item.reason,
    }


def history_json(events: Sequence[Event | Unreadable]) -> dict[str, Any]:
    return envelope("history", {"events": [event_json(e) for e in events]})


def history_text(events: Sequence[Event | Unreadable]) -> str:
    if not events:
        return "no history yet: nothing has happened since it was first kept"
    rows = [event_json(e) for e in events]
    width = max(len(r["code"]) for r in rows)
    lines = []
    for row in rows:
        line = f"{row['at']}  {row['code'].ljust(width)}  {row['text']}"
        lines.append(line + (f" ({row['reason']})" if row["reason"] else ""))
    return "\n".join(lines)


def serving(
    world: World, settings: Settings, probes: Mapping[str, ProbeResult] | None = None
) -> Serving:
    """Whether clients are served (core.status decides it): what `status` exits with."""
    return status.serving(world, status_rules(settings), probes)


def serving_json(verdict: Serving) -> dict[str, Any]:
    return {"ok": verdict.ok, "reason": reason(verdict.code, verdict.text)}


def feature_lines(world: World, settings: Settings) -> list[Note]:
    """What the optional features are doing, in the operator's words."""
    lines: list[Note] = []
    names = {lb.instance_id: lb.name or lb.instance_id for lb in world.lbs}
    if settings.mode is FailoverMode.EIP:
        holder = world.eip_instance_id
        where = names.get(holder or "", holder or "no instance")
        lines.append(
            (
                "elastic-ip",
                f"Elastic IP {settings.eip_allocation_id} ({world.eip_address or '?'}) is on {where}",
            )
        )
    if settings.lb_min_backends > 0:
        confirmed = confirmed_current_list(world, settings.lb_min_backends)
        ready = [lb.name or lb.instance_id for lb in dns.by_name(world.lbs) if confirmed(lb)]
        lines.append(
            (
                "lb-min-backends",
                f"LBF_LB_MIN_BACKENDS={settings.lb_min_backends}: may take over: "
                + (", ".join(ready) or "none (no LB confirmed the current list)"),
            )
        )
    if settings.route53_health_checks:
        if world.health_checks is None:
            text = f"second opinion: {world.health_checks_error or 'checks not read'}"
            lines.append(("second-opinion-unread", text))
        else:
            lines.append(
                (
                    "second-opinion",
                    f"second opinion: {len(world.health_checks)} Route 53 health check(s), "
                    "asked only when most probes fail at once",
                )
            )
    return lines + status.pair_lines(world, settings.rules.records)


def status_json(
    world: World,
    settings: Settings,
    probes: Mapping[str, ProbeResult] | None = None,
    events: Sequence[Event | Unreadable] | None = None,
) -> dict[str, Any]:
    active = dns.find_record(world.records, settings.active_record_name)
    probed = probes is not None
    operator = operator_json(world, events)
    return envelope(
        "status",
        {
            "cluster": settings.cluster,
            "domain": settings.domain,
            "mode": settings.mode,
            "active_mode": settings.active_mode,
            "active_record": settings.active_record_name,
            "active": list(active.values) if active is not None else [],
            "backends": list(backend_lists.parse_list(world.backends_parameter)),
            "paused": world.paused,
            "pause": operator["paused"],
            "last_failover": operator["last_failover"],
            "history_error": operator["history_error"],
            "serving": serving_json(serving(world, settings, probes)),
            "features": [reason(code, text) for code, text in feature_lines(world, settings)],
            "detection_bound": detection_bound_json(settings),
            "instances": [
                _json_row(row, probed=probed) for row in status_rows(world, settings, probes)
            ],
        },
    )


def detection_bound_json(settings: Settings) -> dict[str, Any]:
    bound = settings.detection_bound
    return {
        "seconds": bound.seconds,
        "formula": bound.formula,
        "terms": [
            {"name": term.name, "formula": term.formula, "seconds": term.seconds}
            for term in bound.terms
        ],
        "plus": bound.plus,
        "inputs": dict(bound.inputs),
    }


def active_reason(decision: ActiveDecision) -> dict[str, str]:
    if decision.moved_to is not None:
        code = "moved"
    elif decision.no_eligible:
        code = "no-eligible-lb"
    elif decision.repaired:
        code = "repaired"
    else:
        code = "kept"
    return reason(code, decision.reason)


def report_json(report: Report, command: str | None = None) -> dict[str, Any]:
    """The Report for scripts; `command` is the command line's, the job's name by default."""
    plan = report.plan
    return envelope(
        command or report.job,
        {
            "job": report.job,
            "run_id": report.run_id,
            "ok": report.ok,
            "dry_run": report.dry_run,
            "interrupted": report.interrupted,
            "rounds": report.rounds,
            "applied": report.applied,
            "planned": report.planned,
            "errors": [reason(report.code_of(e, "action-failed"), e) for e in report.errors],
            "notes": [reason(report.code_of(n, "note"), n) for n in report.notes],
            "notices": report.notices,
            "failovers": [
                {
                    "from": f.moved_from,
                    "to": f.moved_to,
                    "reason": reason("failover", f.reason),
                    "round": f.round,
                }
                for f in report.failovers
            ],
            "active": active_reason(plan.active) if plan is not None else None,
            "backends": list(plan.backends.entries)
            if plan is not None and plan.backends is not None
            else None,
            "held": reason(plan.held.guard, plan.held.reason)
            if plan is not None and plan.held
            else None,
            "seconds": round(report.seconds, 3),
            "timeline": [{"seconds": round(t, 3), "event": e} for t, e in report.timeline],
        },
    )


def round_line(done: RoundDone) -> str:
    """One line per round as it ends: its number, time, verdict changes and writes."""
    at = datetime.fromtimestamp(done.at, tz=UTC).strftime("%H:%M:%S")
    parts = ["; ".join(done.verdicts) or "no verdict changed"]
    if done.applied:
        parts.append(f"changed {len(done.applied)}")
    if done.planned:
        parts.append(f"would change {len(done.planned)}")
    if not done.applied and not done.planned:
        parts.append("nothing to change")
    if done.errors:
        parts.append(f"{len(done.errors)} FAILED")
    return f"round {done.number}  {at} UTC  +{done.seconds:.1f} s  " + ", ".join(parts)


def _counted(texts: Sequence[str]) -> list[str]:
    """Each text once, in order, with how many times it came (a write failing in every round)."""
    counts: dict[str, int] = {}
    for text in texts:
        counts[text] = counts.get(text, 0) + 1
    return [text if n == 1 else f"{text} (x{n})" for text, n in counts.items()]


ROUND_JOBS = frozenset({"reconcile", "plan", "on_instance_change"})


def report_text(report: Report) -> str:
    plan = report.plan
    verb = "would change" if report.dry_run else "changed"
    # Rounds are a run's (reconcile, plan); an operator's command makes one step, not rounds.
    rounds = f"{report.rounds} round(s), " if report.job in ROUND_JOBS else ""
    lines = [
        f"{report.job} {report.run_id}: {rounds}"
        f"{'ok' if report.ok else 'FAILED'}"
        + (", INTERRUPTED" if report.interrupted else "")
        + f", {round(report.seconds, 3)} s"
    ]
    if plan is not None and plan.active.reason:
        lines.append(f"active record: {plan.active.reason}")
    if plan is not None and plan.backends is not None:
        lines.append(f"backend list: {len(plan.backends)} entries")
    if plan is not None and plan.held:
        lines.append(f"backend list held: {plan.held.reason}")
    lines += [f"  {t:7.1f}s  {event}" for t, event in report.timeline]
    changes = report.planned if report.dry_run else report.applied
    lines.append(f"{verb}: {len(changes)}" + ("" if changes else " (nothing to do)"))
    lines += [f"  {c}" for c in changes]
    lines += [f"error: {e}" for e in _counted(report.errors)]
    lines += [f"note: {n}" for n in _counted(report.notes)]
    lines += [f"notice: {n}" for n in report.notices]
    return "\n".join(lines)
