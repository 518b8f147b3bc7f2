"""The command line: `python -m chalicelib status | plan | reconcile`. Wiring only."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from chalicelib import commands as operator_commands
from chalicelib import deployed, jobs, move_active, probing, render
from chalicelib.clock import Clock, SystemClock
from chalicelib.config import ConfigError, Settings
from chalicelib.core.history import REASON_LIMIT, Event, Unreadable
from chalicelib.core.timing import SCHEDULE_SECONDS
from chalicelib.errors import ViewNotLoaded
from chalicelib.observe import observe
from chalicelib.report import Report
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
    return args.command in ("plan", "reconcile", "move-active", "drain") or (
        args.command == "status" and args.probe
    )


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
    _add_operator_commands(commands)
    return parser.parse_args(argv)


def _add_operator_commands(commands: Any) -> None:
    pause = commands.add_parser("pause", help="runs plan and notify, and change nothing")
    pause.add_argument("--reason", default="", help="why (shown by status and history)")
    pause.add_argument("--json", action="store_true")
    resume = commands.add_parser("resume", help="runs change what they plan again")
    resume.add_argument("--json", action="store_true")
    drain = commands.add_parser(
        "drain",
        help="tag lbf:maintenance=drain on an LB (moved off first if it is active) or web server",
    )
    drain.add_argument(
        "name", metavar="NAME", help="an LB's name, a web server's address, or an instance id"
    )
    drain.add_argument("--no-wait", action="store_true", help="do not wait for Route 53's INSYNC")
    drain.add_argument("--json", action="store_true")
    undrain = commands.add_parser(
        "undrain", help="remove lbf:maintenance (nothing moves back to it)"
    )
    undrain.add_argument(
        "name", metavar="NAME", help="an LB's name, a web server's address, or an instance id"
    )
    undrain.add_argument("--json", action="store_true")
    accept = commands.add_parser(
        "accept-drop", help="publish the backend list LBF_MAX_POOL_DROP holds back, as it is now"
    )
    accept.add_argument("--json", action="store_true")
    history = commands.add_parser("history", help="what the controller did, newest first")
    history.add_argument(
        "--limit", type=_positive, default=20, metavar="N", help="at most N events (default 20)"
    )
    history.add_argument("--json", action="store_true")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, not {text!r}")
    return value


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

    if args.command == "status":
        try:
            world = observe(settings, services, now=clock.now())
        except ViewNotLoaded as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_FAILED
        assert world is not None  # only None for a run about one instance
        probes = probing.probe_all(world, settings, services) if args.probe else None
        events = _status_history(settings, services)
        if args.json:
            print(json.dumps(render.status_json(world, settings, probes, events), indent=2))
        else:
            print(render.status_text(world, settings, probes, events))
        return EXIT_OK
    if args.command in OPERATOR_COMMANDS:
        return OPERATOR_COMMANDS[args.command](args, settings, services, clock)

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
    if args.json:
        print(json.dumps(render.report_json(report), indent=2))
    else:
        print(render.report_text(report))
    return EXIT_OK if report.ok else EXIT_FAILED


def _status_history(settings: Settings, services: Services) -> list[Event | Unreadable] | None:
    """The history for status' pause and last-failover lines; status goes on without it."""
    try:
        return operator_commands.read_history(settings, services)
    except ViewNotLoaded as exc:
        print(f"warning: {exc}", file=sys.stderr)
        return None


def _printed(report: Report, args: argparse.Namespace) -> int:
    if args.json:
        print(json.dumps(render.report_json(report), indent=2))
    else:
        print(render.report_text(report))
    return EXIT_OK if report.ok else EXIT_FAILED


def _pause(args: argparse.Namespace, settings: Settings, services: Services, clock: Clock) -> int:
    reason = " ".join(args.reason.split())
    if len(reason) > REASON_LIMIT or not reason.isprintable():
        print(
            f"pause: --reason: at most {REASON_LIMIT} printable characters "
            f"(got {len(args.reason)})",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    return _printed(operator_commands.pause_cluster(settings, services, clock, reason=reason), args)


def _resume(args: argparse.Namespace, settings: Settings, services: Services, clock: Clock) -> int:
    return _printed(operator_commands.resume_cluster(settings, services, clock), args)


def _drain(args: argparse.Namespace, settings: Settings, services: Services, clock: Clock) -> int:
    report = operator_commands.drain(settings, services, clock, args.name, wait=not args.no_wait)
    return _printed(report, args)


def _undrain(args: argparse.Namespace, settings: Settings, services: Services, clock: Clock) -> int:
    return _printed(operator_commands.undrain(settings, services, clock, args.name), args)


def _accept_drop(
    args: argparse.Namespace, settings: Settings, services: Services, clock: Clock
) -> int:
    return _printed(operator_commands.accept_drop(settings, services, clock), args)


def _history(args: argparse.Namespace, settings: Settings, services: Services, clock: Clock) -> int:
    try:
        events = operator_commands.read_history(settings, services)[: args.limit]
    except ViewNotLoaded as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.json:
        print(json.dumps(render.history_json(events), indent=2))
    else:
        print(render.history_text(events))
    return EXIT_OK


OPERATOR_COMMANDS: dict[str, Callable[[argparse.Namespace, Settings, Services, Clock], int]] = {
    "pause": _pause,
    "resume": _resume,
    "drain": _drain,
    "undrain": _undrain,
    "accept-drop": _accept_drop,
    "history": _history,
}


if __name__ == "__main__":
    sys.exit(main())
