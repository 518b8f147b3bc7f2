"""The operator's commands as values: what each writes, what it tells, or why it refuses. Pure.

`pause`/`resume` (plan_switch), `drain`/`undrain` (core.maintenance), `accept-drop` and
`handover` (here) each turn the observed world into a CommandPlan; chalicelib/commands.py applies its changes
with the same executor as a run, then stores its history. A paused cluster refuses every command
but pause and resume: the pause is the operator's word that nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.core import dns, history, pausing
from chalicelib.core.changes import (
    Change,
    ChangeRecords,
    PushBackends,
    PutBackendList,
    PutHeldDrop,
    PutPaused,
)
from chalicelib.core.dns import RecordRules
from chalicelib.core.health import Thresholds
from chalicelib.core.history import Event, EventCode
from chalicelib.core.model import World
from chalicelib.core.observed import fold_down_states
from chalicelib.core.plan import PlanRules, decide

Note = tuple[str, str]  # (code, text)


@dataclass(frozen=True)
class CommandPlan:
    """One command's decision. `refused` (code, reason): nothing is written.

    `events`: the history it adds, kept only if every change went through; None: the history
    tells what the applied changes did (core.history.round_events), as a run's does.
    """

    changes: tuple[Change, ...] = ()
    notes: tuple[Note, ...] = ()
    events: tuple[Event, ...] | None = None
    drop_taken: tuple[str, ...] = ()
    refused: Note | None = None

    @property
    def nothing_to_do(self) -> bool:
        return self.refused is None and not self.changes and not self.events


def refused(reason: str, code: str = "refused") -> CommandPlan:
    return CommandPlan(refused=(code, f"refused, nothing changed: {reason}"))


def nothing(text: str) -> CommandPlan:
    return CommandPlan(notes=(("nothing-to-do", text),))


def refuse_paused(world: World, paused_parameter_name: str) -> CommandPlan | None:
    """Every command that writes, but pause and resume, refuses while paused."""
    if not world.paused:
        return None
    return refused(f"paused: {pausing.describe(world, paused_parameter_name)}; `resume` first")


def plan_accept_drop(
    world: World, rules: PlanRules, thresholds: Thresholds, *, now: float
) -> CommandPlan:
    """The list LBF_MAX_POOL_DROP holds back, published as it is now, and the hold cleared."""
    plan = decide(fold_down_states(world, thresholds), rules, run_started_at=now, accept_drop=True)
    if plan.held is not None:
        # Another guard holds the list: never an empty one, whatever an operator accepts.
        return refused(f"the list is held back, and not by LBF_MAX_POOL_DROP: {plan.held.reason}")
    if not plan.drop_taken:
        return nothing("LBF_MAX_POOL_DROP holds nothing back: nothing to publish")
    lists = rules.lists
    changes: list[Change] = [
        c for c in plan.changes if isinstance(c, PushBackends | PutBackendList)
    ]
    if world.held_drop_parameter not in (None, "none"):
        changes.append(PutHeldDrop(lists.held_drop_parameter_name, "none"))
    return CommandPlan(changes=tuple(changes), drop_taken=plan.drop_taken)


def plan_switch(
    world: World, parameter: str, *, paused: bool, reason: str, now: float
) -> CommandPlan:
    """`pause` (paused) or `resume`: `<prefix>/paused`, and the event with the operator's reason.

    Never refused while paused: they are how a pause starts and ends.
    """
    if not paused and not world.paused:
        return nothing(f"not paused ({parameter} is not true): nothing to resume")
    value = "true" if paused else "false"
    # Already what it should be: only the history hears the (new) reason. An unclear value is
    # written over either way.
    changes: tuple[Change, ...] = ()
    if paused != world.paused or world.paused_unclear is not None:
        changes = (PutPaused(parameter, value),)
    code = EventCode.PAUSED if paused else EventCode.RESUMED
    text = (
        f"{parameter} = {value}: runs plan and notify, change nothing"
        if paused
        else f"{parameter} = {value}: runs change what they plan again"
    )
    return CommandPlan(changes=changes, events=(history.event(now, code, text, reason),))


def plan_handover(
    world: World, rules: RecordRules, new_cluster: str, *, paused_parameter_name: str
) -> CommandPlan:
    """`handover NEW`: the `_lbf` TXT's compare-and-swap to name NEW, labels unchanged.

    Refused while paused, and when no TXT exists (no cluster owns the domain yet: NEW's first
    run takes it). Nothing to do when NEW owns it already.
    """
    if world.paused:
        return CommandPlan(
            refused=(
                "refused",
                f"refused, nothing changed: paused ({paused_parameter_name} is true); resume first",
            )
        )
    if dns.ownership_of(world.records, rules).record is None:
        return CommandPlan(
            refused=(
                "refused",
                f"refused, nothing changed: {rules.ownership_fqdn} has no TXT record, so no "
                f"cluster owns {rules.domain} yet; the first run of {new_cluster} that writes a "
                "record takes it",
            )
        )
    changes = dns.handover_change(world.records, rules, new_cluster)
    if not changes:
        return CommandPlan()
    reason = f"handover from {rules.cluster} to {new_cluster}"
    return CommandPlan(changes=(ChangeRecords(tuple(changes), reason),))
