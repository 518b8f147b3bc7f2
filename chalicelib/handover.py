"""Handing the domain to a renamed cluster: `python -m chalicelib handover NEW`.

It runs as the owner (LBF_CLUSTER is the old name): it reads the world as a run does (so a domain
another cluster owns is refused the same way), and swaps the `_lbf` TXT to name NEW, with the same
compare-and-swap and the same executor as a run: LBF_DRY_RUN prints the change and writes nothing.
While paused it refuses, as the other commands that write do.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chalicelib.clock import Clock
from chalicelib.config import Settings
from chalicelib.core import commands, dns
from chalicelib.executor import Executor, writes_for
from chalicelib.observe import observe
from chalicelib.services import Services

SCHEMA = 1


@dataclass
class Handover:
    """What `handover` did: from which cluster to which, and the labels that went with it."""

    domain: str
    from_cluster: str
    to_cluster: str
    labels: tuple[str, ...] = ()
    changed: bool = False
    dry_run: bool = False
    planned: list[str] = field(default_factory=list)  # printed only (dry run)
    applied: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def text(self) -> str:
        if not self.changed and not self.errors:
            return f"{self.domain} is owned by cluster {self.to_cluster} already: nothing to do"
        lines = []
        if self.changed:
            owned = ", ".join(self.labels) or "no records"
            verb = "would hand" if self.dry_run else "handed"
            lines.append(
                f"{verb} {self.domain} from cluster {self.from_cluster} to cluster "
                f"{self.to_cluster} ({owned})"
            )
        lines += [f"would apply: {text}" for text in self.planned]
        lines += [f"applied: {text}" for text in self.applied]
        lines += [f"error: {text}" for text in self.errors]
        return "\n".join(lines)

    def json(self) -> dict[str, object]:
        from chalicelib.render import envelope, reason

        return envelope(
            "handover",
            {
                "domain": self.domain,
                "from": self.from_cluster,
                "to": self.to_cluster,
                "labels": list(self.labels),
                "changed": self.changed,
                "dry_run": self.dry_run,
                "planned": self.planned,
                "applied": self.applied,
                "errors": [reason("action-failed", text) for text in self.errors],
            },
        )


def handover(settings: Settings, services: Services, clock: Clock, new_cluster: str) -> Handover:
    """Raises DomainNotOwned (a configuration error) when LBF_CLUSTER does not own the domain,
    and WorldNotRead when the world cannot be read; a refusal or a failed swap is in `errors`."""
    result = Handover(
        domain=settings.domain,
        from_cluster=settings.cluster,
        to_cluster=new_cluster,
        dry_run=settings.dry_run,
    )
    world = observe(settings, services, now=clock.now())
    assert world is not None  # only None for a run about one instance
    rules = settings.rules.records
    result.labels = dns.ownership_of(world.records, rules).labels
    plan = commands.plan_handover(
        world, rules, new_cluster, paused_parameter_name=settings.paused_parameter_name
    )
    if plan.refused is not None:
        result.errors.append(plan.refused[1])
        return result
    if not plan.changes:
        return result
    executor = Executor(
        services, now=clock.now, writes=writes_for(dry_run=settings.dry_run, paused=False)
    )
    [outcome] = executor.apply_changes(plan.changes)
    change = outcome.change
    if outcome.printed:
        result.planned.append(change.describe())
        result.changed = True
    elif outcome.ok:
        result.applied.append(change.describe())
        result.changed = True
    elif outcome.rejected:
        # One compare-and-swap batch: rejected means nothing changed, whether the TXT moved since
        # it was read (a run or another handover) or Route 53 refuses the change for good.
        result.errors.append(
            f"{change.describe()}: Route 53 rejected it, nothing changed ({rules.ownership_fqdn} "
            f"changed since it was read, or the change cannot go through): {outcome.error}"
        )
    else:
        result.errors.append(f"{change.describe()}: {outcome.error}")
    return result
