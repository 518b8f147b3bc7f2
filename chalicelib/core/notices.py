"""Which notices a round sends, and what `<prefix>/notices` holds so that none goes out twice.

Pure. Notices go out when something changes (SPEC): a failover, or a condition not notified
before (no eligible LB, a held list, a failed action, a skipped instance, ...). The stored keys are
the controller's memory of what it already said: a condition is notified when its key first
appears and again only after it cleared; a failover is notified once per move (old values -> new
values), so two overlapping runs that made or recognised the same move send it once.

`<prefix>/notices` is a standard-tier parameter: at most 4,096 characters (beyond that
Intelligent-Tiering makes it an advanced parameter, which is billed, and 8 KB is a hard limit).
A flood of conditions of one kind (hundreds of skipped instances) is therefore stored as the
kind alone (`skipped:*`) and notified as one summary; what is stored depends only on the
conditions and the last move, so the next run with the same conditions sends nothing.

`decide_notices` is that policy; `plan_notices` turns its decision into Plan changes (`Notify`,
`StoreNotices`) for the executor, which alone sends and stores them: while paused they are still
sent (marked paused), under LBF_DRY_RUN they are only printed.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from chalicelib.core.changes import NoticeChange, Notify, StoreNotices

# Parameter Store's standard tier holds values up to 4 KB.
STORED_LIMIT = 4096
# Each message stays within the same bound: a notice is read by a person (or a pager's SMS).
MESSAGE_LIMIT = 4096
# More conditions of one kind than this are summarised: one notice, one stored line.
MAX_PER_KIND = 20
# Conditions quoted in a summary notice.
SUMMARY_EXAMPLES = 5
MOVE_KIND = "failover"
# What the notices parameter holds when nothing is remembered (SSM refuses an empty value).
NO_CONDITIONS = "none"
_SUMMARY = ":*"
_MAX_MOVE_KEY = 200


@dataclass(frozen=True)
class Move:
    """A failover this round: its key (see `move_key`) and the notice text."""

    key: str
    text: str


@dataclass(frozen=True)
class ReportedMove:
    """A move of the active record (or the Elastic IP) this round, as the run reports it."""

    moved: str  # old -> new, what the notice is about
    reason: str
    # `move_key` of the values moved, `moved` then naming those values; without one the move is
    # keyed by `moved` alone.
    key: str = ""

    @property
    def move(self) -> Move:
        if not self.key:
            return Move(f"{MOVE_KIND}:{self.moved}", f"active record moved: {self.reason}")
        return Move(self.key, f"active record moved: {self.reason} ({self.moved})")


@dataclass(frozen=True)
class NoticeDecision:
    notices: tuple[tuple[str, str], ...]  # (key, message) to send, each at most MESSAGE_LIMIT
    keys: frozenset[str]  # to remember; `text` is how they are stored

    @property
    def messages(self) -> tuple[str, ...]:
        return tuple(message for _, message in self.notices)

    @property
    def text(self) -> str:
        return "\n".join(sorted(self.keys)) or NO_CONDITIONS


def subject_of(cluster: str) -> str:
    return f"lb-failover {cluster}"


def move_key(old: Sequence[str], new: Sequence[str]) -> str:
    """`failover:<old values>-><new values>`, values sorted: the same move gives the same key."""
    key = f"{MOVE_KIND}:{','.join(sorted(old))}->{','.join(sorted(new))}"
    if len(key) <= _MAX_MOVE_KEY:
        return key
    # Active-active records with many addresses: a digest keeps the stored line short.
    return f"{MOVE_KIND}:{hashlib.sha256(key.encode()).hexdigest()[:32]}"


def kind_of(key: str) -> str:
    return key.split(":", 1)[0]


def parse_stored(text: str | None) -> frozenset[str]:
    """The keys in `<prefix>/notices`, one a line ("none" when nothing is remembered)."""
    return frozenset(line for line in (text or "").splitlines() if line and line != NO_CONDITIONS)


def decide_notices(
    conditions: Mapping[str, str],
    stored: Collection[str],
    moves: Sequence[Move] = (),
) -> NoticeDecision:
    stored = frozenset(stored)
    # A key is one line of the stored text.
    current = {_one_line(key): text for key, text in conditions.items()}
    groups: dict[str, dict[str, str]] = defaultdict(dict)
    for key, text in current.items():
        groups[kind_of(key)][key] = text
    groups.pop(MOVE_KIND, None)  # moves come from `moves` only

    # The last move is remembered until the next one: enough for an overlapping run to see it,
    # and a later move back and forth again is a new failover, notified again.
    move_lines = {moves[-1].key} if moves else {k for k in stored if kind_of(k) == MOVE_KIND}
    keys, summarised = _stored_lines(groups, move_lines)

    notices: list[tuple[str, str]] = []
    for move in moves:
        if move.key not in stored:
            notices.append((move.key, _fit(move.text)))
    for kind in sorted(groups):
        members = groups[kind]
        covered = kind + _SUMMARY in stored  # a summary already told of every member
        new = {k: t for k, t in sorted(members.items()) if k not in stored and not covered}
        if not new:
            continue
        if kind in summarised:
            examples = "; ".join(list(new.values())[:SUMMARY_EXAMPLES])
            notices.append(
                (
                    kind + _SUMMARY,
                    _fit(
                        f"{len(members)} conditions of kind {kind} ({len(new)} new; `status` "
                        f"lists them; notified once as a whole until they clear): {examples}"
                    ),
                )
            )
        else:
            notices += [(key, _fit(text)) for key, text in new.items()]
    return NoticeDecision(notices=tuple(notices), keys=frozenset(keys))


def _stored_lines(
    groups: Mapping[str, Mapping[str, str]], move_lines: set[str]
) -> tuple[set[str], set[str]]:
    """What `<prefix>/notices` holds within STORED_LIMIT, and the kinds summarised to fit: the
    kinds with too many members, then the largest kinds, until the lines fit."""
    summarised = {kind for kind, members in groups.items() if len(members) > MAX_PER_KIND}

    def lines() -> set[str]:
        found = set(move_lines)
        for kind, members in groups.items():
            found |= {kind + _SUMMARY} if kind in summarised else set(members)
        return found

    while _size(lines()) > STORED_LIMIT:
        open_kinds = [kind for kind in groups if kind not in summarised]
        if not open_kinds:
            break
        summarised.add(max(open_kinds, key=lambda k: (_size(groups[k]), k)))
    keys = lines()
    if _size(keys) > STORED_LIMIT:  # only with absurdly many kinds: keep what fits, in order
        kept: set[str] = set()
        for line in sorted(keys):
            if _size(kept | {line}) <= STORED_LIMIT:
                kept.add(line)
        keys = kept
    return keys, summarised


def plan_notices(
    *,
    notified: Collection[str],
    conditions: Mapping[str, str],
    failovers: Sequence[ReportedMove],
    paused: bool,
    subject: str,
    parameter: str,
    stored: Collection[str] | None = None,
) -> tuple[tuple[NoticeChange, ...], frozenset[str]]:
    """The notices of one round as Plan changes, and the keys remembered after it.

    `notified` is what counts as said already; `stored` is what the parameter holds now (default:
    `notified`), so that the parameter is written only when what it should hold differs. One
    Notify per notice of `decide_notices`, then, if needed, the StoreNotices that keeps the keys.

    While paused nothing moves, so a failover is only planned: it is told as a condition ("would
    move"), once. And nothing is forgotten: a paused run starts each minute from the same stored
    verdicts, so a condition comes and goes within every run, and would otherwise be told anew
    each minute. Unpausing forgets what no longer holds.
    """
    notified = frozenset(notified)
    current = dict(conditions)
    moves: list[Move] = []
    for failover in failovers:
        move = failover.move
        if paused:
            current[f"would-move:{move.key.split(':', 1)[1]}"] = (
                f"active record would move, not moved while paused: {failover.reason}"
            )
        else:
            moves.append(move)
    if paused:
        # Carried as conditions already said (so never sent), to be kept within the same bound.
        lines = {_one_line(key) for key in current}
        for key in notified:
            if key not in lines and kind_of(key) != MOVE_KIND:
                current[key] = ""
    decision = decide_notices(current, notified, moves)
    changes: list[NoticeChange] = [Notify(key, subject, text) for key, text in decision.notices]
    if decision.keys != frozenset(notified if stored is None else stored):
        changes.append(StoreNotices(parameter, decision.text))
    return tuple(changes), decision.keys


def _one_line(key: str) -> str:
    return " ".join(key.split()) or "?"


def _size(lines: Collection[str]) -> int:
    return len("\n".join(sorted(lines))) if lines else len(NO_CONDITIONS)


def _fit(message: str) -> str:
    if len(message) <= MESSAGE_LIMIT:
        return message
    return message[: MESSAGE_LIMIT - 3] + "..."
