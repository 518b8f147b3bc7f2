"""What the controller did, as typed events, and how a round's events are stored. Pure.

The history lives in one standard parameter, `<prefix>/history`: each round in which something
happened writes it once (one PutParameter, Overwrite), its value the JSON array of that round's
events. Parameter Store keeps a parameter's last 100 versions and drops the oldest by itself, so
the history is bounded (100 rounds) without a store of its own, survives every restart, and reads
the same from a laptop and from the function (`GetParameterHistory`). A steady round writes nothing.

Events carry a code (for scripts) and a text (for people), never prose to parse.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from chalicelib.core.backends import Backend
from chalicelib.core.changes import (
    ChangeRecords,
    MoveAddress,
    PutBackendList,
    RecordHistory,
    RemoveTags,
    SetTags,
)
from chalicelib.core.failover import Failover
from chalicelib.core.model import (
    TAG_BACKENDS,
    TAG_HEALTH,
    TAG_MAINTENANCE,
    TAG_PROBE,
    Instance,
    Push,
    Verdict,
    World,
)
from chalicelib.core.outcome import Outcome

VERDICTS = frozenset(v.value for v in Verdict)
# A standard parameter holds 4,096 characters; beyond that it would become an advanced
# (billed) one, and Parameter Store keeps the same 100 versions either way.
STORED_LIMIT = 4096
# Each text is cut to this, so that one hostile tag value or reason cannot crowd out the others.
TEXT_LIMIT = 300
REASON_LIMIT = 200


class EventCode(enum.StrEnum):
    FAILOVER = "failover"  # the active record (or the Elastic IP) moved
    VERDICT = "verdict"  # an instance's lbf:health changed
    BACKENDS_PUBLISHED = "backends-published"  # <prefix>/backends written
    PUSH_CONFIRMED = "push-confirmed"  # an LB confirmed the list (lbf:backends written)
    PUSH_FAILED = "push-failed"  # an LB's push ended in a failure
    ACTION_FAILED = "action-failed"  # an AWS write failed
    DROP_TAKEN = "drop-taken"  # a list LBF_MAX_POOL_DROP held was published
    PAUSED = "paused"
    RESUMED = "resumed"
    DRAINED = "drained"
    UNDRAINED = "undrained"
    SUMMARY = "summary"  # more events than one stored value holds: what was left out


@dataclass(frozen=True)
class Event:
    at: float  # epoch seconds
    code: EventCode
    text: str
    reason: str = ""

    def as_json(self) -> dict[str, object]:
        data: dict[str, object] = {"at": int(self.at), "code": self.code.value, "text": self.text}
        if self.reason:
            data["reason"] = self.reason
        return data


def event(at: float, code: EventCode, text: str, reason: str = "") -> Event:
    """An event whose text and reason are single lines within their limits."""
    return Event(at, code, _fit(text, TEXT_LIMIT), _fit(reason, REASON_LIMIT))


def record(name: str, events: Sequence[Event]) -> RecordHistory | None:
    """The change that stores one round's events; None when nothing happened."""
    value = render(events)
    if value is None:
        return None
    return RecordHistory(name, value, tuple(e.code.value for e in events))


def render(events: Sequence[Event]) -> str | None:
    """One round's events as the stored value, within STORED_LIMIT; None when there are none.

    More than fit: the first ones are kept and a summary event counts the rest by code (the
    run's log has every one of them).
    """
    if not events:
        return None
    kept = list(events)
    while True:
        left = len(events) - len(kept)
        shown = kept + ([_summary(events[len(kept) :])] if left else [])
        text = json.dumps([e.as_json() for e in shown], separators=(",", ":"))
        if len(text) <= STORED_LIMIT or not kept:
            return text
        kept.pop()


def _summary(left: Sequence[Event]) -> Event:
    counts: dict[str, int] = {}
    for item in left:
        counts[item.code.value] = counts.get(item.code.value, 0) + 1
    listed = ", ".join(f"{count} {code}" for code, count in sorted(counts.items()))
    return Event(left[0].at, EventCode.SUMMARY, f"{len(left)} more events not kept: {listed}")


@dataclass(frozen=True)
class Unreadable:
    """A stored version that is not a list of events (written by hand, say): shown, not parsed."""

    at: float
    text: str


def parse(value: str, *, written_at: float) -> list[Event] | Unreadable:
    """One stored version's events; `written_at` (its LastModifiedDate) stands in for a
    missing time."""
    try:
        items = json.loads(value)
    except ValueError:
        return Unreadable(written_at, _fit(value, TEXT_LIMIT))
    if not isinstance(items, list):
        return Unreadable(written_at, _fit(value, TEXT_LIMIT))
    events = []
    for item in items:
        if not isinstance(item, dict):
            return Unreadable(written_at, _fit(value, TEXT_LIMIT))
        try:
            code = EventCode(str(item.get("code")))
        except ValueError:
            return Unreadable(written_at, _fit(value, TEXT_LIMIT))
        at = item.get("at")
        events.append(
            event(
                float(at) if isinstance(at, int | float) else written_at,
                code,
                str(item.get("text", "")),
                str(item.get("reason", "")),
            )
        )
    return events


def newest_first(versions: Iterable[tuple[float, str]]) -> list[Event | Unreadable]:
    """Every stored version's events, newest first (a round's own events in their order,
    reversed with the rest, so that the newest event is always first)."""
    found: list[Event | Unreadable] = []
    for written_at, value in versions:
        parsed = parse(value, written_at=written_at)
        found += parsed if isinstance(parsed, list) else [parsed]
    order = sorted(range(len(found)), key=lambda n: (found[n].at, n), reverse=True)
    return [found[n] for n in order]


def last_of(events: Iterable[Event | Unreadable], codes: Iterable[EventCode]) -> Event | None:
    """The newest event with one of these codes (`events` newest first)."""
    wanted = set(codes)
    return next((e for e in events if isinstance(e, Event) and e.code in wanted), None)


def _fit(text: str, limit: int) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


# ---------------------------------------------------------------------------------------------
# A round's events, from what it wrote (a change only printed, in a dry run or paused, is not
# something the controller did).


def round_events(
    world: World,
    outcomes: Sequence[Outcome],
    failovers: Sequence[Failover],
    *,
    now: float,
    drop_taken: Sequence[str] = (),
    by: str = "",
) -> list[Event]:
    """What one round did: `world` is the world its changes were planned against. `by` names
    who asked, when a command did (the reason of a drain, or of a drop taken at once)."""
    # A move only printed (dry run, paused) is reported as a failover, but did not happen.
    printed = any(o.printed for o in outcomes if isinstance(o.change, ChangeRecords | MoveAddress))
    events = [
        event(now, EventCode.FAILOVER, f"active role {f.moved_from} -> {f.moved_to}", f.reason)
        for f in failovers
        if not printed
    ]
    by_id = {i.instance_id: i for i in (*world.lbs, *world.webs)}
    by_id |= {s.instance_id: s.frozen for s in world.skipped if s.frozen is not None}
    for outcome in outcomes:
        change = outcome.change
        if outcome.printed or outcome.skipped:
            continue
        if not outcome.ok:
            if not outcome.rejected:  # judged by a re-read, not failed yet
                events.append(
                    event(now, EventCode.ACTION_FAILED, change.describe(), outcome.error or "")
                )
            continue
        if isinstance(change, RemoveTags) and TAG_MAINTENANCE in change.keys:
            events += [
                event(
                    now,
                    EventCode.UNDRAINED,
                    f"{_label_of(by_id, i)}: {TAG_MAINTENANCE} removed",
                    by,
                )
                for i in change.instance_ids
            ]
        if isinstance(change, SetTags):
            events += _tag_events(change, by_id, now=now, by=by)
        elif isinstance(change, PutBackendList):
            events += _published_events(change, now=now, drop_taken=drop_taken, by=by)
    return events


def _label_of(by_id: Mapping[str, Instance], instance_id: str) -> str:
    instance = by_id.get(instance_id)
    return _label(instance) if instance is not None else instance_id


def _tag_events(
    change: SetTags, by_id: Mapping[str, Instance], *, now: float, by: str
) -> list[Event]:
    """A drain, a verdict changed, a list confirmed: what tags written say happened."""
    events: list[Event] = []
    tags = dict(change.tags)
    for instance_id in change.instance_ids:
        instance = by_id.get(instance_id)
        label = _label_of(by_id, instance_id)
        if TAG_MAINTENANCE in tags:
            events.append(
                event(
                    now,
                    EventCode.DRAINED,
                    f"{label}: {TAG_MAINTENANCE}={tags[TAG_MAINTENANCE]}",
                    by,
                )
            )
        if TAG_HEALTH in tags:
            # As read: a value that does not parse was read as absent (and may be anything
            # someone wrote).
            stored = dict(instance.written).get(TAG_HEALTH) if instance else None
            before = stored if stored in VERDICTS else None
            events.append(
                event(
                    now,
                    EventCode.VERDICT,
                    f"{label} {before or 'unknown'} -> {tags[TAG_HEALTH]}",
                    _verdict_reason(instance, tags),
                )
            )
        if TAG_BACKENDS in tags:
            events.append(
                event(
                    now,
                    EventCode.PUSH_CONFIRMED,
                    f"{label} applied the backend list {tags[TAG_BACKENDS][:12]}",
                )
            )
    return events


def _published_events(
    change: PutBackendList, *, now: float, drop_taken: Sequence[str], by: str
) -> list[Event]:
    """A backend list published, and the held drop it takes, if it takes one."""
    count = len(change.value.split(" "))
    events = [event(now, EventCode.BACKENDS_PUBLISHED, f"{count} backend(s): {change.value}")]
    if drop_taken:
        events.append(
            event(
                now,
                EventCode.DROP_TAKEN,
                f"{len(drop_taken)} failing backend(s) taken out: {' '.join(drop_taken)}",
                by or "failed every probe for 10 minutes",
            )
        )
    return events


def push_events(
    world: World, before: Sequence[Push], after: Sequence[Push], *, now: float
) -> list[Event]:
    """Pushes whose status SSM now reports as ended without success."""
    known = {p.command_id: p.status for p in before}
    names = {lb.instance_id: _label(lb) for lb in world.lbs}
    return [
        event(
            now,
            EventCode.PUSH_FAILED,
            f"push {push.command_id} to {names.get(push.instance_id, push.instance_id)} "
            f"ended {push.status}",
        )
        for push in after
        if push.status != known.get(push.command_id)
        and not push.in_flight
        and push.status != "Success"
    ]


def _verdict_reason(instance: Instance | None, tags: dict[str, str]) -> str:
    """Why the verdict changed: EC2's state when it is not running, else the probes' run
    (`lbf:probe`, with the last failure's reason: `fail:3 connection refused`)."""
    if instance is not None and not instance.running:
        return f"EC2 {instance.state}"
    if TAG_PROBE in tags:
        return f"{TAG_PROBE} {tags[TAG_PROBE]}"
    return ""


def _label(instance: Instance) -> str:
    if instance.name is not None:
        return f"{instance.name} ({instance.instance_id})"
    if instance.address is not None and instance.port is not None:
        entry = Backend(instance.address, instance.port, instance.instance_id).render()
        return f"{entry} ({instance.instance_id})"
    return instance.instance_id
