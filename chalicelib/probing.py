"""One probe round on its two paths: public targets in-process, private ones via the prober function.

The controller runs outside the VPC, so it probes what clients reach (public addresses) itself,
and hands the private targets (the web pool under LBF_POOL_ADDRESS=private, the LBs under
LBF_LB_ADDRESS=private) to the prober function inside the VPC, once per round. Without
LBF_PROBER_FUNCTION every target is probed in-process, on one path, as before the split.

Each path is judged on its own (the prober-fault rule, `is_prober_fault`, applies per path): a
prober function that cannot answer, or a round whose private probes all fail, is a fault on that
path only, and the other path's results still count.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from chalicelib.config import Settings
from chalicelib.core.model import AddressKind, Instance, ProbeResult, ProbeTarget, World
from chalicelib.core.plan import probe_targets, probed_lbs
from chalicelib.errors import ProberFault
from chalicelib.services import Prober, Services

# The condition a fault of each path is notified under (a notice goes out once per condition).
# The in-process path keeps the key it had before the split.
IN_PROCESS = "prober-fault"
PRIVATE = "prober-fault:private"


@dataclass(frozen=True)
class PathRound:
    """One path's share of a round: its results, or why it has none."""

    condition: str  # IN_PROCESS or PRIVATE
    targets: tuple[ProbeTarget, ...]
    results: dict[str, ProbeResult]
    fault: str | None = None  # the path could not answer: no results, no verdict from it


def split_targets(world: World, settings: Settings) -> tuple[list[ProbeTarget], list[ProbeTarget]]:
    """(in-process, prober function) targets. Without LBF_PROBER_FUNCTION all are in-process."""
    targets = probe_targets(world, settings.rules.probes)
    if settings.prober_function is None:
        return targets, []
    # A skipped LB is probed as an LB (its tags are frozen, not its health): on the LBs' path,
    # or a public LB would be probed from inside the VPC, where its public address may not answer.
    lb_ids = {lb.instance_id for lb in probed_lbs(world)}

    def private(target: ProbeTarget) -> bool:
        address = settings.lb_address if target.key in lb_ids else settings.pool_address
        return address is AddressKind.PRIVATE

    return [t for t in targets if not private(t)], [t for t in targets if private(t)]


def probe_round(world: World, settings: Settings, services: Services) -> list[PathRound]:
    """Both paths of one round, at once: the invoke runs while the public targets are probed."""
    public, private = split_targets(world, settings)
    function = services.probe_function
    if not private or function is None:
        # No private target (or no function to send them to): the prober function is not invoked.
        return [_probe(services.prober, IN_PROCESS, public + private)]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lbf-invoke") as pool:
        invoked = pool.submit(_probe, function, PRIVATE, private)
        paths = [_probe(services.prober, IN_PROCESS, public)] if public else []
        paths.append(invoked.result())
    return paths


def _probe(prober: Prober, condition: str, targets: Sequence[ProbeTarget]) -> PathRound:
    try:
        results = prober.probe_round(targets)
    except ProberFault as exc:
        return PathRound(condition, tuple(targets), {}, fault=str(exc))
    return PathRound(condition, tuple(targets), results)


def probe_all(world: World, settings: Settings, services: Services) -> dict[str, ProbeResult]:
    """Every target's result for display (`status --probe`); a faulted path shows its fault."""
    return _shown(probe_round(world, settings, services))


def probe_lbs(
    lbs: Sequence[Instance], settings: Settings, services: Services
) -> dict[str, ProbeResult]:
    """These LBs probed live on the LBs' path, as a round probes them (`move-active`'s
    candidates): through the prober function when LBs are private and there is one. A path
    that cannot answer fails each of its targets with its fault: never a move on no answer."""
    targets = [
        ProbeTarget(lb.instance_id, settings.rules.probes.lb_check.endpoint(lb.address))
        for lb in lbs
        if lb.address is not None
    ]
    function = services.probe_function
    if (
        settings.prober_function is not None
        and function is not None
        and (settings.lb_address is AddressKind.PRIVATE)
    ):
        return _shown([_probe(function, PRIVATE, targets)])
    return _shown([_probe(services.prober, IN_PROCESS, targets)])


def _shown(paths: Sequence[PathRound]) -> dict[str, ProbeResult]:
    results: dict[str, ProbeResult] = {}
    for path in paths:
        results.update(path.results)
        if path.fault is not None:
            shown = f"no answer: {path.fault}"[:120]
            results.update(
                {t.key: ProbeResult(ok=False, detail=shown, seconds=0.0) for t in path.targets}
            )
    return results
