"""The backend list a round keeps in force, `<prefix>/backends` and `<prefix>/lbs`, and the
pushes that bring every LB to it. Pure: core/plan.py's `decide` asks `plan_backends`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chalicelib.core import backends as backend_lists
from chalicelib.core import dns
from chalicelib.core import pushes as push_rules
from chalicelib.core.changes import Change, PushBackends, PutBackendList, PutLbList
from chalicelib.core.model import Push, Verdict, World
from chalicelib.core.observed import frozen_webs


@dataclass(frozen=True)
class ListRules:
    """The published lists, `<prefix>/backends` and `<prefix>/lbs`, and the pool-drop guard."""

    backends_parameter_name: str
    lbs_parameter_name: str
    max_pool_drop: int  # percent (LBF_MAX_POOL_DROP)
    held_drop_parameter_name: str  # what the guard holds, and since when (core.held_drop)


def plan_backends(
    world: World,
    rules: ListRules,
    pushes: push_rules.PushRules,
    run_started_at: float,
    start_list: Sequence[str],
    accepted: Sequence[str] = (),
) -> tuple[
    backend_lists.BackendList | None, backend_lists.Held | None, list[Change], dict[str, str]
]:
    changes: list[Change] = []
    conditions: dict[str, str] = {}
    published = backend_lists.parse_list(world.backends_parameter)
    kept, failed = _entries_kept(world, published)
    try:
        wanted: backend_lists.BackendList | None = backend_lists.build_list(world.webs, kept)
    except backend_lists.BackendListTooLong as exc:
        conditions["backends-too-long"] = str(exc)
        wanted = None
    held = None
    if wanted is not None:
        held = backend_lists.guard_not_empty(wanted) or backend_lists.guard_pool_drop(
            start_list,
            wanted,
            world.webs,
            rules.max_pool_drop,
            failed_entries=failed,
            accepted=accepted,
        )
    # The list in force: the one wanted, or while a guard holds that back, the one published.
    in_force = wanted if wanted is not None and held is None else None
    if in_force is None and published:
        in_force = backend_lists.BackendList(published)

    if in_force is not None and len(in_force) > 0:
        if in_force.text != world.backends_parameter:
            changes.append(PutBackendList(rules.backends_parameter_name, in_force.text))
        changes += _plan_pushes(world, in_force, run_started_at, conditions, rules=pushes)

    changes += _plan_lbs_parameter(world, rules)
    return in_force, held, changes, conditions


def _entries_kept(world: World, published: Sequence[str]) -> tuple[list[str], list[str]]:
    """Entries of the published list that stay without a healthy verdict, and the skipped web
    servers' entries that failed. A skipped web server keeps the entry it has while it answers,
    and is never newly added."""
    kept: list[str] = []
    failed: list[str] = []
    for web, entries in frozen_webs(world):
        if not web.running or web.draining:
            continue
        (failed if web.verdict is Verdict.UNHEALTHY else kept).extend(entries)
    # No verdict (its tags were lost, say, by a run killed between the list and the tags) is
    # never a reason to take a server out: it keeps the entry it has until probes decide, so
    # that a removal is always one for failed probes, counted against LBF_MAX_POOL_DROP.
    kept += [
        entry
        for web in world.webs
        if web.running and not web.draining and web.verdict is Verdict.UNKNOWN
        for entry in backend_lists.entries_of(web, published)
    ]
    return kept, failed


def _plan_lbs_parameter(world: World, rules: ListRules) -> list[Change]:
    """`<prefix>/lbs`: the running LBs' addresses, in name order."""
    addresses = [
        lb.address for lb in dns.by_name(world.lbs) if lb.running and lb.address is not None
    ]
    # A skipped LB keeps its place in the list while it runs; it is never newly added.
    stored = (world.lbs_parameter or "").split()
    addresses += [
        lb.address
        for lb in dns.frozen_lbs(world.skipped)
        if lb.running and lb.address is not None and lb.address in stored
    ]
    lbs_text = " ".join(addresses)
    # SSM rejects an empty parameter value; with no LB running the last value stays.
    if lbs_text and lbs_text != world.lbs_parameter:
        return [PutLbList(rules.lbs_parameter_name, lbs_text)]
    return []


def _plan_pushes(
    world: World,
    in_force: backend_lists.BackendList,
    run_started_at: float,
    conditions: dict[str, str],
    *,
    rules: push_rules.PushRules,
) -> list[Change]:
    last = latest_sent(world)
    pushes: list[Change] = []
    for lb in dns.by_name(world.lbs):
        if not lb.running or lb.backends_checksum == in_force.checksum:
            continue
        if dict(world.pushes_printed).get(lb.instance_id) == in_force.checksum:
            continue  # printed earlier in this run: printed once, not every round
        command = last.get(lb.instance_id)
        if command is not None and command.checksum == in_force.checksum:
            if push_rules.overdue(command, now=run_started_at):
                conditions[f"push-overdue:{lb.instance_id}"] = (
                    f"backend push {command.command_id} to {lb.name} {lb.instance_id} still "
                    f"{command.status} {run_started_at - command.requested_at:.0f} s after it was "
                    f"sent (its step times out after {push_rules.STEP_TIMEOUT_SECONDS} s): sent again"
                )
            elif command.in_flight or command.status == "Success":
                continue  # in flight: wait; Success: the tag is written in _plan_tags
            if command.requested_at >= run_started_at:
                # Failed in this run: retried on the next run, not hammered every round.
                conditions[f"push-failed:{lb.instance_id}"] = (
                    f"backend push to {lb.name} {lb.instance_id} ended {command.status}; "
                    f"retried next run; {command.output_in(rules.log_group)}"
                )
                continue
        pushes.append(
            PushBackends(
                instance_id=lb.instance_id,
                lb_name=lb.name or lb.instance_id,
                backends=in_force.text,
                checksum=in_force.checksum,
            )
        )
    return pushes


def latest_pushes(pushes: Iterable[Push]) -> dict[str, Push]:
    latest: dict[str, Push] = {}
    for push in pushes:
        seen = latest.get(push.instance_id)
        if seen is None or push.requested_at >= seen.requested_at:
            latest[push.instance_id] = push
    return latest


def latest_sent(world: World) -> dict[str, Push]:
    """The last push SSM reports per LB, less the LBs this run printed a push to since (dry run,
    paused): for them the printed one is the latest, and it has no answer yet, as if in flight."""
    printed = {instance_id for instance_id, _ in world.pushes_printed}
    return {i: push for i, push in latest_pushes(world.pushes).items() if i not in printed}
