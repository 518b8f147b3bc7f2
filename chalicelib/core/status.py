"""`status` decided: which rows it shows with which notes, and whether the cluster is serving. Pure.

The command line only prints these (chalicelib/render.py); the exit code is `serving`'s answer, so
what monitoring pages on is decided here, from the stored state (and a live probe with --probe).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.core import backends as backend_lists
from chalicelib.core import dns, failover_pair
from chalicelib.core.lists import latest_pushes
from chalicelib.core.model import (
    GONE_STATES,
    FailoverMode,
    Instance,
    ProbeResult,
    Record,
    Role,
    Skipped,
    Verdict,
    World,
)
from chalicelib.core.plan import ActiveRules
from chalicelib.core.second_opinion import SecondOpinionRules, status_note

Note = tuple[str, str]  # (code, text)
Probes = Mapping[str, ProbeResult] | None  # None: not probed live (no --probe)


@dataclass(frozen=True)
class StatusRules:
    """What `status` reads of the settings."""

    records: dns.RecordRules
    active: ActiveRules
    push_log_group: str  # where a failed push's output is, named in its note
    second_opinion: SecondOpinionRules


@dataclass(frozen=True)
class _Published:
    """What the LBs' and web servers' notes are compared with: the active record, the list."""

    records: Mapping[tuple[str, str], Record]  # by (name, type)
    active_values: frozenset[str]
    entries: frozenset[str]
    checksum: str | None
    holds: Note


def _published(world: World, rules: StatusRules) -> _Published:
    active = dns.find_record(world.records, rules.records.active_fqdn)
    entries = frozenset(backend_lists.parse_list(world.backends_parameter))
    stored = world.backends_parameter
    return _Published(
        records={(r.name, r.type): r for r in world.records},
        active_values=frozenset(active.values) if active is not None else frozenset(),
        entries=entries,
        checksum=backend_lists.checksum(stored) if entries and stored else None,
        holds=("holds-active", f"holds {rules.records.active_fqdn}"),
    )


def status_rows(world: World, rules: StatusRules, probes: Probes = None) -> list[dict[str, Any]]:
    """One row per LB, web server and skipped instance; notes and reasons as (code, text)."""
    published = _published(world, rules)
    rows = [_lb_row(lb, world, rules, published, probes) for lb in dns.by_name(world.lbs)]
    rows += [
        _web_row(web, published, probes)
        for web in sorted(world.webs, key=lambda w: (w.address or "", w.port or 0))
    ]
    rows += [_skipped_row(skipped, world, published, probes) for skipped in world.skipped]
    return rows


def _lb_row(
    lb: Instance, world: World, rules: StatusRules, published: _Published, probes: Probes
) -> dict[str, Any]:
    # A name's record belongs to the live instance carrying it, not to one it replaced.
    record = (
        published.records.get((rules.records.fqdn(lb.name), "A"))
        if lb.name and lb.state not in GONE_STATES
        else None
    )
    notes = _notes(lb)
    if lb.name_assigned:
        notes.append(("name-to-assign", f"name {lb.name} to be assigned"))
    if lb.backends_checksum is not None and lb.backends_checksum == published.checksum:
        notes.append(("backends-current", "backends current"))
    elif published.checksum is not None and lb.running:
        notes.append(("backends-stale", "backends stale" + _push_note(lb, world, rules)))
    if lb.address is not None and lb.address in published.active_values:
        notes.append(published.holds)
    second_opinion = status_note(lb, world, rules.second_opinion)
    if second_opinion is not None:
        notes.append(("second-opinion", second_opinion))
    values = record.values if record is not None else ()
    return _row("lb", lb, values, notes, probes) | {"name": lb.name or ""}


def _push_note(lb: Instance, world: World, rules: StatusRules) -> str:
    """Where its last push stands, and where an ended one's output is when it failed."""
    command = latest_pushes(world.pushes).get(lb.instance_id)
    if command is None:
        return ""
    ended = not command.in_flight and command.status != "Success"
    output = f", {command.output_in(rules.push_log_group)}" if ended else ""
    return f" (push {command.status}{output})"


def _web_row(web: Instance, published: _Published, probes: Probes) -> dict[str, Any]:
    entry = (
        backend_lists.Backend(web.address, web.port, web.instance_id).render()
        if web.address is not None and web.port is not None
        else None
    )
    notes = _notes(web)
    if entry is not None and entry in published.entries:
        notes.append(("in-backend-list", "in backend list"))
    return _row("web", web, (), notes, probes) | {"name": entry or ""}


def _skipped_row(
    skipped: Skipped, world: World, published: _Published, probes: Probes
) -> dict[str, Any]:
    """Why it is skipped, and what it keeps while frozen (its tags are never written)."""
    notes: list[Note] = [("skipped", f"skipped: {skipped.reason}")]
    frozen = skipped.frozen
    if frozen is not None and frozen.address is not None:
        if (
            frozen.address in published.active_values
            or world.eip_instance_id == skipped.instance_id
        ):
            notes.append(published.holds)
        if backend_lists.entries_of(frozen, tuple(published.entries)):
            notes.append(("in-backend-list", "in backend list"))
    return {
        "role": skipped.role or "?",
        "name": skipped.name or "",
        "instance": skipped.instance_id,
        "address": skipped.address or "",
        "ec2": skipped.state,
        "health": "skipped",
        "reason": _why(frozen) if frozen is not None else None,
        "state": "",
        "record": (),
        "probe": _probe(skipped.instance_id, probes),
        "notes": notes,
    }


def _notes(instance: Instance) -> list[Note]:
    notes = []
    if instance.draining:
        notes.append(("draining", "draining"))
    run = instance.damping.run
    if run is not None:
        notes.append(("probe-run", f"probe {'ok' if run.ok else 'fail'}:{run.count}"))
    return notes


def _why(instance: Instance) -> Note | None:
    """The last failed probe's reason, while the probes fail (from lbf:probe)."""
    run = instance.damping.run
    if run is None or run.ok:
        return None
    text = run.reason or "probe failed"
    return (_code(text), text)


def _code(text: str) -> str:
    """A reason's code: its words, lower case, joined by hyphens ("HTTP 503" -> "http-503")."""
    words = "".join(c if c.isascii() and c.isalnum() else " " for c in text.lower()).split()
    return "-".join(words) or "unknown"


def _probe(instance_id: str, probes: Probes) -> ProbeResult | None:
    return None if probes is None else probes.get(instance_id)


def _row(
    role: str,
    instance: Instance,
    record: Sequence[str],
    notes: list[Note],
    probes: Probes,
) -> dict[str, Any]:
    return {
        "role": role,
        "instance": instance.instance_id,
        "address": instance.address or "",
        "ec2": instance.state,
        "health": instance.verdict.value,
        "reason": _why(instance),
        "state": instance.lb_state.value if instance.lb_state else "",
        "record": tuple(record),
        "probe": _probe(instance.instance_id, probes),
        "notes": notes,
    }


@dataclass(frozen=True)
class Serving:
    """Whether clients are served: the answer `status` exits with (0 yes, 1 no or unknown)."""

    ok: bool
    code: str
    text: str


def serving(world: World, rules: StatusRules, probes: Probes = None) -> Serving:
    """Every address clients can be given is an LB whose verdict is healthy.

    The addresses: the active record's values (of a failover pair, the record Route 53 answers
    by its checks' view), or the Elastic IP's holder. The verdict: the live probe's with --probe
    (a stored verdict can be a minute old), else the stored one.
    """
    # A skipped LB (a tag that does not parse) still serves what it holds, judged as it is probed.
    frozen = [s.frozen for s in world.skipped if s.frozen is not None]
    every_lb = [*world.lbs, *(i for i in frozen if i.role is Role.LB)]
    given = _given(world, rules, every_lb)
    if isinstance(given, Serving):
        return given
    for address, lb in given:
        refused = _not_serving(address, lb, probes)
        if refused is not None:
            return refused
    names = ", ".join(lb.name or lb.instance_id for _, lb in given if lb is not None)
    how = "answered a probe" if probes is not None else "healthy"
    return Serving(True, "serving", f"serving: clients are given {names}, {how}")


def _given(
    world: World, rules: StatusRules, every_lb: Sequence[Instance]
) -> list[tuple[str, Instance | None]] | Serving:
    """The addresses clients can be given, each with the LB that has it (None: no LB does)."""
    if rules.active.mode is FailoverMode.EIP:
        holder = next((lb for lb in every_lb if lb.instance_id == world.eip_instance_id), None)
        if holder is None:
            where = world.eip_instance_id or "no instance"
            return Serving(
                False,
                "no-active-lb",
                f"Elastic IP {rules.active.eip_allocation_id} is on {where}, not on an LB",
            )
        return [(world.eip_address or holder.address or "?", holder)]
    current = failover_pair.read_active_name(world.records, rules.records)
    active = failover_pair.route53_answers(current, dict(world.route53_view))
    if active is None or not active.values:
        return Serving(False, "no-active-record", f"no record {rules.records.active_fqdn}")
    # Route 53's view not read: it may answer either record of the pair.
    answerable = current.records if _answer_unknown(world, current) else (active,)
    values = dict.fromkeys(v for record in answerable for v in record.values)
    lbs = {lb.address: lb for lb in every_lb if lb.address is not None}
    return [(value, lbs.get(value)) for value in values]


def _answer_unknown(world: World, current: failover_pair.ActiveName) -> bool:
    """Whether a check of the pair went unread, so which record Route 53 answers is not known."""
    view = dict(world.route53_view)
    return world.route53_view_unread is not None and any(
        r.health_check_id is not None and r.health_check_id not in view
        for r in current.records
        if r.failover is not None
    )


def _not_serving(address: str, lb: Instance | None, probes: Probes) -> Serving | None:
    if lb is None:
        return Serving(False, "not-an-lb", f"{address} is not an LB of the cluster")
    name = lb.name or lb.instance_id
    if probes is not None:
        result = probes.get(lb.instance_id)
        if result is None or not result.ok:
            why = "not probed" if result is None else result.detail
            return Serving(False, "lb-probe-failed", f"{name} ({address}) failed a probe: {why}")
    elif lb.verdict is not Verdict.HEALTHY:
        return Serving(False, f"lb-{lb.verdict.value}", f"{name} ({address}) is {lb.verdict.value}")
    return None


def pair_lines(world: World, records: dns.RecordRules) -> list[Note]:
    """The failover pair: both records, each check, and Route 53's view of it, and which record
    Route 53 answers by that view (what clients get while no controller runs)."""
    current = failover_pair.read_active_name(world.records, records)
    if not current.is_pair:
        return []
    view = dict(world.route53_view)
    by_address = {lb.address: lb.name or lb.instance_id for lb in world.lbs if lb.address}
    lines: list[Note] = []
    for record in (current.primary, current.secondary):
        if record is None:
            continue
        where = " ".join(f"{by_address.get(v, 'no LB')} {v}" for v in record.values)
        check = record.health_check_id
        if check is None:
            seen = "no health check (Route 53 counts it healthy)"
        elif check in view:
            seen = f"check {check}: Route 53 sees it {'healthy' if view[check] else 'unhealthy'}"
        elif world.route53_view_unread is not None:
            seen = f"check {check}: Route 53's view not read ({world.route53_view_unread})"
        else:
            seen = f"check {check}: no recent report from Route 53"
        role = (record.failover or "").lower()
        lines.append((f"pair-{role}", f"failover pair {record.failover}: {where}, {seen}"))
    answered = failover_pair.route53_answers(current, view)
    if _answer_unknown(world, current):
        lines.append(("pair-answer", "Route 53's answer not known: its view was not read"))
    elif answered is not None:
        who = " ".join(by_address.get(v, v) for v in answered.values)
        lines.append(("pair-answer", f"Route 53 answers {answered.failover} ({who}) by its checks"))
    return lines
