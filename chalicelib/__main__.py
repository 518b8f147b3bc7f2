"""The command line: `python -m chalicelib status | plan | reconcile | move-active | handover`.
Wiring only."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from chalicelib import deployed, handover, jobs, move_active, probing, render
from chalicelib.clock import Clock, SystemClock
from chalicelib.config import ConfigError, Settings
from chalicelib.core.names import CLUSTER, show
from chalicelib.core.timing import SCHEDULE_SECONDS
from chalicelib.errors import DomainNotOwned, ViewNotLoaded
from chalicelib.observe import observe
from chalicelib.services import Services, aws_services, aws_time_limit

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2


def stage_environment(stage: str, config_path: Path) -> dict[str, str]:
    """The variables chalice gives a stage: the top level's, overridden by the stage's."""
    try:
        config = json.loads(config_path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError("--stage", f"cannot read {config_path}: {exc}") from exc
    stages = config.get("stages", {})
    if stage not in stages:
        known = ", ".join(sorted(stages)) or "none"
        raise ConfigError("--stage", f"no stage {stage!r} in {config_path} (stages: {known})")
    merged = dict(config.get("environment_variables", {}))
    merged.update(stages[stage].get("environment_variables", {}))
    return {key: str(value) for key, value in merged.items()}


def _probes(args: argparse.Namespace) -> bool:
    return args.command in ("plan", "reconcile") or (args.command == "status" and args.probe)


def _with_stage_prober(settings: Settings, environment: dict[str, str], stage: str) -> Settings:
    """The deployed stage's prober function, so private targets are probed from inside the VPC.

    Not found (never deployed, or this machine cannot read the stack): the targets are probed
    from here, which is right on a machine inside the VPC and on the local stand-in.
    """
    from chalicelib.adapters.clients import client

    found, where = deployed.prober_function(stage, Path("."), lambda: client("cloudformation"))
    if found is None:
        print(f"note: private targets probed from this machine ({where})", file=sys.stderr)
        return settings
    print(f"note: private targets probed by the prober function {found} ({where})", file=sys.stderr)
    return Settings.from_env({**environment, "LBF_PROBER_FUNCTION": found})


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m chalicelib", description="lb-failover: load balancer failover on EC2"
    )
    parser.add_argument(
        "--stage", help="take the environment from .chalice/config.json's stage NAME"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="LBs and web servers from the stored state")
    status.add_argument("--probe", action="store_true", help="add a live probe column")
    status.add_argument("--json", action="store_true")
    plan = commands.add_parser("plan", help="one probe round, then every change it would make")
    plan.add_argument("--json", action="store_true")
    run = commands.add_parser("reconcile", help="exactly the work of one scheduled invocation")
    run.add_argument("--json", action="store_true")
    move = commands.add_parser(
        "move-active",
        help="planned failover: move the active record (or the Elastic IP) and wait for INSYNC",
    )
    move.add_argument(
        "--to",
        metavar="NAME",
        help="the LB to make active (default: the first candidate in natural order that answers)",
    )
    move.add_argument(
        "--drain",
        metavar="NAME",
        help="move off this LB (a name, or an instance id), then tag it lbf:maintenance=drain",
    )
    move.add_argument("--no-wait", action="store_true", help="do not wait for Route 53's INSYNC")
    move.add_argument("--json", action="store_true")
    hand = commands.add_parser(
        "handover", help="hand the domain (its _lbf TXT) to cluster NEW, for a renamed cluster"
    )
    hand.add_argument("new_cluster", metavar="NEW", help="the cluster's new name (lbf:cluster)")
    hand.add_argument("--json", action="store_true")
    return parser.parse_args(argv)


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    services: Services | None = None,
    clock: Clock | None = None,
) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    environment = dict(os.environ if environ is None else environ)
    try:
        if args.stage:
            environment.update(stage_environment(args.stage, Path(".chalice/config.json")))
        settings = Settings.from_env(environment)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if settings.cluster_warning is not None:
        print(f"warning: {settings.cluster_warning}", file=sys.stderr)
    if args.stage:
        # boto3 reads its own variables (region, endpoint) from the process environment.
        os.environ.update({k: v for k, v in environment.items() if k.startswith("AWS_")})
        if settings.prober_function is None and _probes(args):
            try:
                settings = _with_stage_prober(settings, environment, args.stage)
            except ConfigError as exc:
                print(f"configuration error: {exc}", file=sys.stderr)
                return EXIT_CONFIG
    try:
        services = services or aws_services(settings)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    clock = clock or SystemClock()

    if args.command == "handover":
        return _handover(settings, services, clock, args.new_cluster, as_json=args.json)

    if args.command == "status":
        try:
            world = observe(settings, services, now=clock.now())
        except DomainNotOwned as exc:
            print(f"configuration error: {exc}", file=sys.stderr)
            return EXIT_CONFIG
        except ViewNotLoaded as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILED
        assert world is not None  # only None for a run about one instance
        probes = probing.probe_all(world, settings, services) if args.probe else None
        if args.json:
            print(json.dumps(render.status_json(world, settings, probes), indent=2))
        else:
            print(render.status_text(world, settings, probes))
        return EXIT_OK

    if args.command == "move-active":
        if args.to is None and args.drain is None:
            print("move-active: give --to NAME, --drain NAME, or both", file=sys.stderr)
            return EXIT_CONFIG
        report = move_active.move_active(
            settings, services, clock, to=args.to, drain=args.drain, wait=not args.no_wait
        )
    elif args.command == "plan":
        report = jobs.reconcile(settings, services, clock, rounds=1, dry_run=True, job="plan")
    else:
        # The scheduled function's one-minute budget: a round that would end past it is not
        # started, and AWS calls take their timeouts from what is left of it.
        deadline = clock.now() + SCHEDULE_SECONDS
        with aws_time_limit(lambda: deadline - clock.now()):
            report = jobs.reconcile(settings, services, clock, deadline=deadline)
    if report.configuration_error is not None:
        print(f"configuration error: {report.configuration_error}", file=sys.stderr)
        return EXIT_CONFIG
    if args.json:
        print(json.dumps(render.report_json(report), indent=2))
    else:
        print(render.report_text(report))
    return EXIT_OK if report.ok else EXIT_FAILED


def _handover(
    settings: Settings, services: Services, clock: Clock, new_cluster: str, *, as_json: bool
) -> int:
    if not CLUSTER.fullmatch(new_cluster):
        print(
            f"handover: NEW {show(new_cluster)} is not a cluster name "
            "(1-128 characters of A-Z a-z 0-9 . _ -)",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    try:
        result = handover.handover(settings, services, clock, new_cluster)
    except DomainNotOwned as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ViewNotLoaded as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if as_json:
        print(json.dumps(result.json(), indent=2))
    elif result.changed or result.errors:
        print(result.text())
    else:
        print(f"{settings.domain} is owned by cluster {new_cluster} already: nothing to do")
    return EXIT_OK if result.ok else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
