"""One probe round on its two paths: public targets in-process, private ones via the prober function.

The controller runs outside the VPC, so it probes what clients reach (public addresses) itself,
and hands the private targets (the web pool under LBF_POOL_ADDRESS=private, the LBs under
LBF_LB_ADDRESS=private) to the prober function inside the VPC, once per round. Without
LBF_PROBER_FUNCTION every target is probed in-process, on one path, as before the split.

Each path is judged on its own (the prober-fault rule, `is_prober_fault`, applies per path): a
prober function that cannot answer, or a round whose private probes all fail, is a fault on that
path only, and the other path's results still count.

The LBs are probed every round; the pool in the rounds the core picks (`core.round.pool_due`,
every LBF_POOL_INTERVAL). In-process, the pool's targets join the LBs' in the round's one
concurrent probe, which LBF_PROBE_TIMEOUT ends for all of them alike. A pool that alone goes through the
prober function (public LBs, the default) is invoked in a worker beside the rounds, since its
invoke may outlast LBF_PROBE_INTERVAL: no round waits for it; the first round that starts once
its invoke is over (LBF_PROBE_TIMEOUT + 1 s) judges its results, and the run's last round waits
for them, since no round follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from chalicelib.config import Settings
from chalicelib.core import round as round_rules
from chalicelib.core import timing
from chalicelib.core.model import AddressKind, Instance, ProbeResult, ProbeTarget, World
from chalicelib.core.observed import probe_targets, probed_lbs
from chalicelib.errors import ProberFault
from chalicelib.services import Prober, Services

# The condition a fault of each path is notified under (a notice goes out once per condition).
# The in-process path keeps the key it had before the split; the core keeps conditions by them.
IN_PROCESS = round_rules.IN_PROCESS
PRIVATE = round_rules.PRIVATE


@dataclass(frozen=True)
class PathRound:
    """One path's share of a round: its results, or why it has none."""

    condition: str  # IN_PROCESS or PRIVATE
    targets: tuple[ProbeTarget, ...]
    results: dict[str, ProbeResult]
    fault: str | None = None  # the path could not answer: no results, no verdict from it


def split_targets(
    world: World, settings: Settings, *, pool: bool = True
) -> tuple[list[ProbeTarget], list[ProbeTarget]]:
    """(in-process, prober function) targets, the pool's only with `pool`. Without
    LBF_PROBER_FUNCTION all are in-process."""
    # A skipped LB is probed as an LB (its tags are frozen, not its health): on the LBs' path,
    # or a public LB would be probed from inside the VPC, where its public address may not answer.
    lb_ids = {lb.instance_id for lb in probed_lbs(world)}
    targets = [t for t in probe_targets(world, settings.rules.probes) if pool or t.key in lb_ids]
    if settings.prober_function is None:
        return targets, []

    def private(target: ProbeTarget) -> bool:
        address = settings.lb_address if target.key in lb_ids else settings.pool_address
        return address is AddressKind.PRIVATE

    return [t for t in targets if not private(t)], [t for t in targets if private(t)]


def probe_round(
    world: World, settings: Settings, services: Services, *, pool: bool = True
) -> list[PathRound]:
    """Both paths of one round, at once: the invoke runs while the public targets are probed.
    The pool's targets are among them only with `pool`."""
    public, private = split_targets(world, settings, pool=pool)
    function = services.probe_function
    if not private or function is None:
        # No private target (or no function to send them to): the prober function is not invoked.
        return [_probe(services.prober, IN_PROCESS, public + private)]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lbf-invoke") as workers:
        invoked = workers.submit(_probe, function, PRIVATE, private)
        paths = [_probe(services.prober, IN_PROCESS, public)] if public else []
        paths.append(invoked.result())
    return paths


@dataclass
class RoundProbes:
    """The probe paths of one run's rounds (see the module's doc): the LBs every round, the pool
    in the rounds the core picks (`core.round.pool_due`), its invoke beside the rounds where it
    alone goes to the function. I/O only: what a path's results mean is the core's."""

    settings: Settings
    services: Services
    # The pool's invoke in the worker: when its result may be judged, and the result.
    _running: tuple[float, Future[PathRound]] | None = field(default=None, repr=False)

    def busy(self, starts_at: float) -> bool:
        """Whether the pool's invoke is still out when a round starts at `starts_at` (its results
        not judged yet): the pool is not probed again before they are."""
        return self._running is not None and starts_at < self._running[0]

    def probe(self, world: World, starts_at: float, *, pool: bool, last: bool) -> list[PathRound]:
        """This round's paths (the pool's with `pool`), and the pool's from the worker once its
        invoke is over. The round starts at `starts_at`; the `last` one waits for the worker."""
        paths = self._finished(starts_at, wait=False)
        beside = self._pool_beside()
        paths += probe_round(world, self.settings, self.services, pool=pool and not beside)
        if pool and beside:
            self._start_pool(world, starts_at)
        if last:
            paths += self._finished(starts_at, wait=True)
        return paths

    def _pool_beside(self) -> bool:
        """Whether the pool alone goes to the prober function: its invoke then runs beside."""
        return (
            self.settings.pool_through_prober
            and not self.settings.lbs_through_prober
            and self.services.probe_function is not None
        )

    def _start_pool(self, world: World, starts_at: float) -> None:
        function = self.services.probe_function
        assert function is not None  # _pool_beside
        _, targets = split_targets(world, self.settings)
        lb_ids = {lb.instance_id for lb in probed_lbs(world)}
        pool_targets = [t for t in targets if t.key not in lb_ids]
        if not pool_targets:
            return
        over = starts_at + timing.prober_invoke_limit(self.settings.probe_timeout)
        self._running = (over, _in_worker(function, pool_targets))

    def _finished(self, starts_at: float, *, wait: bool) -> list[PathRound]:
        """The pool's path from the worker, once its invoke is over (or `wait`: now)."""
        if self._running is None:
            return []
        over, result = self._running
        if not wait and starts_at < over:
            return []
        self._running = None
        # Bounded: the invoke client's timeouts end the call by prober_invoke_limit.
        return [result.result()]


def _in_worker(prober: Prober, targets: Sequence[ProbeTarget]) -> Future[PathRound]:
    """The pool's invoke in a thread of its own. A run ended early (its time left, Ctrl-C)
    does not wait for it: its result is then not judged, and the next run probes the pool."""
    workers = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lbf-pool")
    result = workers.submit(_probe, prober, PRIVATE, targets)
    workers.shutdown(wait=False)  # the thread ends with the invoke, bounded by its timeouts
    return result


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
