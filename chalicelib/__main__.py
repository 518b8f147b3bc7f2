"""The command line: `python -m chalicelib COMMAND`. Wiring only.

Its conventions, for every command: `--stage NAME` before or after the command, `--json` for one
object a script can read (render.envelope, schemas/cli-output.schema.json), exit 0 done, 1 an
action failed or was refused (status: not serving), 2 bad configuration or usage, 130
interrupted. Nothing an operator can cause ends in a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.core.names import NEW_CLUSTER_FORM, is_new_cluster_name, show

if TYPE_CHECKING:
    from chalicelib.clock import Clock
    from chalicelib.config import Settings
    from chalicelib.report import Report
    from chalicelib.services import Services

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports a process Ctrl-C ended
EXIT_PIPE_CLOSED = 141  # 128 + SIGPIPE: the reader went away (`| head`); nothing is wrong here

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def version() -> str:
    """pyproject's version, read as text: `--version` must not wait for boto3 to import."""
    try:
        return str(tomllib.loads(PYPROJECT.read_text())["project"]["version"])
    except (OSError, ValueError, KeyError):
        return "unknown (no pyproject.toml beside chalicelib)"


# --- arguments ----------------------------------------------------------------------------------


def _options() -> argparse.ArgumentParser:
    """The options every command takes, wherever they stand on the line.

    `--stage` is on the main parser and on each command's: SUPPRESS keeps a command's parser
    from overwriting, with its default, a `--stage` given before the command.
    """
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--stage",
        metavar="NAME",
        default=argparse.SUPPRESS,
        help="take the environment from .chalice/config.json's stage NAME",
    )
    options.add_argument(
        "--json", action="store_true", help="print one JSON object (schemas/cli-output.schema.json)"
    )
    return options


def parser() -> argparse.ArgumentParser:
    main_parser = argparse.ArgumentParser(
        prog="python -m chalicelib",
        description="lb-failover: load balancer failover on EC2",
        epilog="exit codes: 0 done, 1 an action failed or was refused (status: not serving), "
        "2 bad configuration or usage, 130 interrupted",
    )
    main_parser.add_argument("--version", action="version", version=f"lb-failover {version()}")
    main_parser.add_argument(
        "--stage",
        metavar="NAME",
        help="take the environment from .chalice/config.json's stage NAME",
    )
    options = _options()
    commands = main_parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, description: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, parents=[options], help=description)

    status = command("status", "LBs and web servers from the stored state; exit 1 if not serving")
    status.add_argument("--probe", action="store_true", help="add a live probe column")
    status.add_argument("--wide", action="store_true", help="every column, whatever the width")
    command("plan", "one probe round, then every change it would make")
    command("reconcile", "exactly the work of one scheduled invocation")
    move = command(
        "move-active",
        "planned failover: move the active record (or the Elastic IP) and wait for INSYNC",
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
    hand = command(
        "handover", "hand the domain (its _lbf TXT) to cluster NEW, for a renamed cluster"
    )
    hand.add_argument("new_cluster", metavar="NEW", help="the cluster's new name (lbf:cluster)")
    _operator_commands(command)
    return main_parser


def _operator_commands(command: Callable[[str, str], argparse.ArgumentParser]) -> None:
    pause = command("pause", "runs plan and notify, and change nothing, until `resume`")
    pause.add_argument(
        "--reason", type=_reason, default="", help="why (status and history show it)"
    )
    command("resume", "runs change what they plan again")
    target = "an LB's name, a web server's address, or an instance id"
    drain = command(
        "drain", "lbf:maintenance=drain on an LB (moved off first if it is active) or web server"
    )
    drain.add_argument("name", metavar="NAME", help=target)
    drain.add_argument("--no-wait", action="store_true", help="do not wait for Route 53's INSYNC")
    undrain = command("undrain", "remove lbf:maintenance (nothing moves back to it)")
    undrain.add_argument("name", metavar="NAME", help=target)
    command("accept-drop", "publish the backend list LBF_MAX_POOL_DROP holds back, as it is now")
    history = command("history", "what the controller did, newest first")
    history.add_argument(
        "--limit", type=_positive, default=20, metavar="N", help="at most N events (default 20)"
    )


def _reason(text: str) -> str:
    from chalicelib.core.history import REASON_LIMIT

    line = " ".join(text.split())
    if len(line) > REASON_LIMIT or not line.isprintable():
        raise argparse.ArgumentTypeError(
            f"at most {REASON_LIMIT} printable characters on one line (got {len(text)})"
        )
    return line


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, not {text!r}")
    return value


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """The arguments; a usage error exits 2 with the usage, before anything is read."""
    line = parser()
    args = line.parse_args(argv)
    if args.command == "move-active" and args.to is None and args.drain is None:
        line.error("move-active: give --to NAME, --drain NAME, or both")
    if args.command == "handover" and not is_new_cluster_name(args.new_cluster):
        line.error(
            f"handover: NEW {show(args.new_cluster)} is not a cluster name ({NEW_CLUSTER_FORM})"
        )
    return args


# --- running a command --------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What a command runs with: its arguments, the settings, the AWS services, the clock."""

    args: argparse.Namespace
    settings: Settings
    services: Services
    clock: Clock


def emit(ctx: Context, document: Mapping[str, Any], text: str) -> None:
    """The command's result on stdout: the JSON object with --json, else the text."""
    print(json.dumps(document, indent=2) if ctx.args.json else text, flush=True)


def print_report(ctx: Context, report: Report) -> int:
    """A Report printed, and its exit code."""
    from chalicelib import render

    if report.configuration_error is not None:
        # Refused before anything was planned (the domain is another cluster's): nothing written.
        print(f"configuration error: {report.configuration_error}", file=sys.stderr)
        return EXIT_CONFIG
    emit(ctx, render.report_json(report, ctx.args.command), render.report_text(report))
    if report.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if report.ok else EXIT_FAILED


def run_status(ctx: Context) -> int:
    from chalicelib import commands, render

    found = commands.status(ctx.settings, ctx.services, ctx.clock, probe=ctx.args.probe)
    if found.history_error is not None:
        print(f"warning: {found.history_error}", file=sys.stderr)
    world, probes, events = found.world, found.probes, found.events
    emit(
        ctx,
        render.status_json(world, ctx.settings, probes, events),
        render.status_text(world, ctx.settings, probes, wide=ctx.args.wide, events=events),
    )
    return EXIT_OK if found.serving.ok else EXIT_FAILED


def run_plan(ctx: Context) -> int:
    from chalicelib import jobs

    report = jobs.reconcile(
        ctx.settings, ctx.services, ctx.clock, rounds=1, dry_run=True, job="plan"
    )
    return print_report(ctx, report)


def run_reconcile(ctx: Context) -> int:
    from chalicelib import jobs, render
    from chalicelib.core import timing
    from chalicelib.report import RoundDone
    from chalicelib.services import aws_time_limit

    # The scheduled function's schedule, as if scheduled now: a round starts only while its
    # probes end within the minute, and AWS calls take their timeouts from what is left.
    deadline = timing.round_deadline(scheduled_at=ctx.clock.now(), invocation_ends=math.inf)

    def progress(done: RoundDone) -> None:
        # As it happens, not after the minute: the operator sees a failover when it is made.
        if not ctx.args.json:
            print(render.round_line(done), flush=True)

    with aws_time_limit(lambda: deadline - ctx.clock.now()):
        report = jobs.reconcile(
            ctx.settings, ctx.services, ctx.clock, deadline=deadline, progress=progress
        )
    return print_report(ctx, report)


def run_move_active(ctx: Context) -> int:
    from chalicelib import move_active

    args = ctx.args
    report = move_active.move_active(
        ctx.settings, ctx.services, ctx.clock, to=args.to, drain=args.drain, wait=not args.no_wait
    )
    return print_report(ctx, report)


def run_handover(ctx: Context) -> int:
    from chalicelib import handover

    result = handover.handover(ctx.settings, ctx.services, ctx.clock, ctx.args.new_cluster)
    emit(ctx, result.json(), result.text())
    return EXIT_OK if result.ok else EXIT_FAILED


def run_pause(ctx: Context) -> int:
    from chalicelib import commands

    return print_report(ctx, commands.pause_cluster(*_run_with(ctx), reason=ctx.args.reason))


def run_resume(ctx: Context) -> int:
    from chalicelib import commands

    return print_report(ctx, commands.resume_cluster(*_run_with(ctx)))


def run_drain(ctx: Context) -> int:
    from chalicelib import commands

    report = commands.drain(*_run_with(ctx), ctx.args.name, wait=not ctx.args.no_wait)
    return print_report(ctx, report)


def run_undrain(ctx: Context) -> int:
    from chalicelib import commands

    return print_report(ctx, commands.undrain(*_run_with(ctx), ctx.args.name))


def run_accept_drop(ctx: Context) -> int:
    from chalicelib import commands

    return print_report(ctx, commands.accept_drop(*_run_with(ctx)))


def run_history(ctx: Context) -> int:
    from chalicelib import commands, render

    events = commands.history_events(ctx.settings, ctx.services, limit=ctx.args.limit)
    emit(ctx, render.history_json(events), render.history_text(events))
    return EXIT_OK


def _run_with(ctx: Context) -> tuple[Settings, Services, Clock]:
    return ctx.settings, ctx.services, ctx.clock


COMMANDS: dict[str, Callable[[Context], int]] = {
    "status": run_status,
    "plan": run_plan,
    "reconcile": run_reconcile,
    "move-active": run_move_active,
    "handover": run_handover,
    "pause": run_pause,
    "resume": run_resume,
    "drain": run_drain,
    "undrain": run_undrain,
    "accept-drop": run_accept_drop,
    "history": run_history,
}
# Commands that probe: with --stage, they look for the stage's deployed prober function.
PROBING = ("plan", "reconcile", "move-active", "drain")


def _settings(args: argparse.Namespace, environ: Mapping[str, str] | None) -> Settings:
    from chalicelib import stage
    from chalicelib.adapters.clients import client
    from chalicelib.config import Settings

    name = getattr(args, "stage", None)
    environment = stage.environment(os.environ if environ is None else environ, name)
    settings = Settings.from_env(environment)
    if settings.cluster_warning is not None:
        print(f"warning: {settings.cluster_warning}", file=sys.stderr)
    if not name:
        return settings
    # boto3 reads its own variables (region, endpoint) from the process environment.
    os.environ.update({k: v for k, v in environment.items() if k.startswith("AWS_")})
    settings, note = stage.with_prober(
        settings,
        environment,
        name,
        probes=args.command in PROBING or getattr(args, "probe", False),
        bound=args.command == "status",
        cloudformation=lambda: client("cloudformation"),
    )
    if note is not None:
        print(note, file=sys.stderr)
    return settings


def configure_logging() -> None:
    """Warnings on stderr, once.

    The run's own log lines (chalicelib's: a failed action, a notice sent, a round not started)
    are for the deployed function's logs; each is also in the Report this command prints, so
    here they would print twice. Other libraries' warnings (botocore's) reach stderr through the
    one handler. Done for the process only (`entry`), never by `main`, which tests call in
    process and whose log capture must stay as it is.
    """
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    logging.getLogger("chalicelib").setLevel(logging.CRITICAL + 1)


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    services: Services | None = None,
    clock: Clock | None = None,
) -> int:
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except SystemExit as exc:  # argparse's own exit: --help, --version (0), a usage error (2)
        return (
            EXIT_OK if exc.code is None else exc.code if isinstance(exc.code, int) else EXIT_CONFIG
        )
    from chalicelib.clock import SystemClock
    from chalicelib.config.reading import ConfigError
    from chalicelib.errors import AwsError, DomainNotOwned, WorldNotRead
    from chalicelib.services import aws_services

    try:
        settings = _settings(args, environ)
        ctx = Context(
            args=args,
            settings=settings,
            services=services or aws_services(settings),
            clock=clock or SystemClock(),
        )
        return COMMANDS[args.command](ctx)
    except (ConfigError, DomainNotOwned) as exc:
        # DomainNotOwned: LBF_CLUSTER is not the domain's owner (a typo, another cluster's name).
        print(f"configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except WorldNotRead as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except AwsError as exc:
        # A read outside a run's Report (credentials, an endpoint, throttling): one line.
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        # Outside a run's rounds, which end with their Report: before any write.
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def entry(run: Callable[[], int] = main) -> int:
    """`python -m chalicelib`: `run` (main) in a process, with what only a process meets: its
    logging, Ctrl-C before a command starts, and a reader that goes away (`| head`)."""
    configure_logging()
    try:
        code = run()
        sys.stdout.flush()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The Python documentation's way (signal, "Note on SIGPIPE"): point stdout at devnull so
        # that the interpreter's own flush at exit does not raise again, and leave quietly.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE_CLOSED
    return code


if __name__ == "__main__":
    sys.exit(entry())
